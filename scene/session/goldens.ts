// Named, fixed sessions for golden images: the renderer draws `goldenFrame(name)` in Chromium and
// compares its screenshot with the reference rasterizer's `renderFull` of the same frame.
import type { TextShaper } from '../tree.ts';
import { SessionScene } from '../compositor/compose.ts';
import type { Frame } from '../compositor/layers.ts';
import type { ActionSpec } from './random.ts';
import { applyCommit, sessionReducer } from './reducer.ts';
import type { SessionState } from './state.ts';

export const GOLDEN_SCENES: Record<string, ActionSpec[]> = {
  /** The empty desktop: desktop and panel only. */
  empty: [{ action: 'screen.resize', args: { w: 640, h: 400 } }],
  /** Two overlapping windows, the lower one focused-then-not, text in one. */
  two: [
    { action: 'screen.resize', args: { w: 640, h: 400 } },
    { action: 'window.open', args: { app: 'term', title: 'Terminal', bounds: { x: 20, y: 30, w: 300, h: 200 } } },
    { action: 'text.input', args: { id: 1, text: 'hello world, this is the orbital session with some text that wraps around' } },
    { action: 'window.open', args: { app: 'notes', title: 'Notes', bounds: { x: 200, y: 120, w: 300, h: 200 } } },
  ],
  /** Bands, a minimized window, scrolling and title clipping. */
  bands: [
    { action: 'screen.resize', args: { w: 640, h: 400 } },
    { action: 'window.open', args: { app: 'term', title: 'Terminal with a very long title that should be clipped', bounds: { x: 20, y: 30, w: 300, h: 200 } } },
    { action: 'text.input', args: { id: 1, text: 'line one\nline two is longer and wraps around the window edge\nthree\nfour\nfive\nsix\nseven\neight\nnine\nten' } },
    { action: 'window.scroll', args: { id: 1, dy: 30 } },
    { action: 'window.open', args: { app: 'notes', title: 'Notes', bounds: { x: 200, y: 120, w: 300, h: 200 } } },
    { action: 'window.open', args: { app: 'clock', title: 'Overlay', bounds: { x: 420, y: 250, w: 200, h: 130 }, band: 'overlay' } },
    { action: 'window.open', args: { app: 'files', title: 'Files' } },
    { action: 'window.minimize', args: { id: 4 } },
    { action: 'window.focus', args: { id: 1 } },
  ],
  /** A maximized window over another. */
  maximized: [
    { action: 'screen.resize', args: { w: 640, h: 400 } },
    { action: 'window.open', args: { app: 'files', title: 'Files', bounds: { x: 60, y: 60, w: 300, h: 200 } } },
    { action: 'window.open', args: { app: 'term', title: 'Maximized', bounds: { x: 100, y: 100, w: 300, h: 200 } } },
    { action: 'text.input', args: { id: 2, text: 'maximized windows fill the screen above the panel' } },
    { action: 'window.maximize', args: { id: 2 } },
  ],
};

/** The state and frame of a golden scene (throws on an unknown name: a programming error). */
export function goldenFrame(name: string, opts: { shaper?: TextShaper } = {}): { state: SessionState; frame: Frame } {
  const actions = GOLDEN_SCENES[name];
  if (!actions) throw new RangeError(`no golden scene '${name}' (have: ${Object.keys(GOLDEN_SCENES).join(', ')})`);
  const state = sessionReducer.init();
  actions.forEach((a, i) => {
    const r = applyCommit(state, i, { id: i, action: a.action, args: a.args });
    if (r) throw new Error(`golden scene '${name}': action ${i} (${a.action}) rejected: ${r.code} ${r.detail}`);
  });
  const scene = new SessionScene(opts.shaper ? { shaper: opts.shaper } : {});
  return { state, frame: scene.update(state) };
}
