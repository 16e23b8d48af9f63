// What bench/layout.ts measures as `action_ms`: one window-drag step — reduce a committed
// window.move, bring the scene tree in step and lay it out, composite (reusing unchanged groups),
// compute damage — on a desktop of 32 windows holding ~10k glyphs in all.
import { Domain, Kind, type Entry } from '../../axiom/types.ts';
import { SessionScene } from '../compositor/compose.ts';
import { computeDamage } from '../compositor/damage.ts';
import type { Frame } from '../compositor/layers.ts';
import type { Rect } from '../compositor/rect.ts';
import type { TextShaper } from '../tree.ts';
import { applyCommit, sessionReducer } from './reducer.ts';
import type { SessionState } from './state.ts';

export interface DragBench {
  state: SessionState;
  scene: SessionScene;
  frame: Frame;
  /** Glyphs in the window texts (what the ~10k counts). */
  glyphs: number;
  windows: number;
  /** One drag step of the focused window by one pixel; returns the damage. */
  step(): Rect[];
}

const WORDS = ['orbital', 'replays', 'every', 'entry', 'of', 'its', 'log', 'and', 'the', 'screen', 'follows', 'deterministic', 'scene'];

/** Builds the desktop. `shaper`: the app's shaper (scene/text); default the tree's FixedShaper. */
export function buildDragBench(opts: { windows?: number; glyphs?: number; shaper?: TextShaper } = {}): DragBench {
  const windows = opts.windows ?? 32, glyphs = opts.glyphs ?? 10_000;
  const state = sessionReducer.init();
  let seq = 0;
  const commit = (action: string, args: Record<string, unknown>) => {
    const entry: Entry = { version: 1, kind: Kind.Commit, domain: Domain.Session, seq, time: seq + 1, actor: 1, prev: new Uint8Array(32), payload: new Uint8Array() };
    const r = applyCommit(state, entry.seq, { id: seq, action, args } as never);
    seq++;
    if (r) throw new Error(`bench setup: ${action} rejected: ${r.code} ${r.detail}`);
  };
  commit('screen.resize', { w: 1920, h: 1080 });
  const perWindow = Math.ceil(glyphs / windows);
  let total = 0;
  for (let i = 0; i < windows; i++) {
    commit('window.open', { app: `app${i % 6}`, title: `Window ${i + 1}`, bounds: { x: 20 + (i % 8) * 210, y: 20 + Math.floor(i / 8) * 240, w: 400, h: 300 } });
    let text = '';
    let k = i;
    while (text.replace(/\s/g, '').length < perWindow) text += WORDS[k++ % WORDS.length] + (k % 9 === 0 ? '\n' : ' ');
    commit('text.input', { id: i + 1, text: text.slice(0, 4096) });
    total += text.replace(/\s/g, '').length;
  }
  const scene = new SessionScene(opts.shaper ? { shaper: opts.shaper } : {});
  let frame = scene.update(state);
  const id = state.focused;
  const x0 = state.windows.get(id)!.x;
  let n = 0;
  const bench: DragBench = {
    state, scene, frame, glyphs: total, windows,
    step() {
      const w = state.windows.get(id)!;
      // Back and forth over 100 px, one pixel per step.
      const k = n++ % 200;
      applyCommit(state, seq++, { id: seq, action: 'window.move', args: { id, x: x0 + (k < 100 ? k + 1 : 199 - k), y: w.y } });
      const next = scene.update(state);
      const damage = computeDamage(frame, next);
      frame = next;
      bench.frame = next;
      return damage;
    },
  };
  return bench;
}
