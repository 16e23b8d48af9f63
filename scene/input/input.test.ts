import { beforeAll, describe, expect, it } from 'vitest';
import { Sequencer, initAxiom, osReducer, systemReducer } from '../../axiom/index.ts';
import { SessionScene } from '../compositor/compose.ts';
import type { Frame, HitPart } from '../compositor/layers.ts';
import { sessionReducer } from '../session/reducer.ts';
import type { SessionState } from '../session/state.ts';
import { InputMachine, toProposal, type Proposed, type RawEvent } from './input.ts';

beforeAll(() => initAxiom());

/** A device, a scene and an input machine wired as the shell wires them. */
function shell() {
  const dev = new Sequencer({ reducers: [systemReducer, osReducer, sessionReducer], deviceId: new Uint8Array(16), bootId: new Uint8Array(16), os: 't' });
  dev.boot();
  const scene = new SessionScene();
  const input = new InputMachine();
  let id = 0;
  const state = (): SessionState => dev.stateOf(sessionReducer)!;
  let frame: Frame = scene.update(state());
  const commit = (ps: Proposed[]) => { for (const p of ps) expect(dev.propose(toProposal(p, 1, ++id)).status).toBe('committed'); frame = scene.update(state()); };
  return {
    state, get frame() { return frame; }, commit,
    /** Feeds an event; returns its proposals WITHOUT committing them. */
    feed: (ev: RawEvent) => input.handle(ev, frame, state()),
    input,
  };
}

/** The center of the first hit region of `part` of window `w` (layout-agnostic). */
function at(f: Frame, w: number, part: HitPart): { x: number; y: number } {
  for (const g of f.groups) for (const h of g.hits) if (h.window === w && h.part === part) return { x: h.x + h.w / 2, y: h.y + h.h / 2 };
  throw new Error(`no ${part} region for window ${w}`);
}

describe('semantic input', () => {
  it('dragging a title bar proposes focus, then absolute moves; nothing changes until the commits are applied', () => {
    const sh = shell();
    sh.commit([{ action: 'window.open', args: { app: 'a', title: 'A', bounds: { x: 100, y: 100, w: 300, h: 200 } } }]);
    sh.commit([{ action: 'window.open', args: { app: 'b', title: 'B', bounds: { x: 500, y: 100, w: 300, h: 200 } } }]);
    const p = at(sh.frame, 1, 'title');
    const down = sh.feed({ type: 'pointerdown', x: p.x, y: p.y, button: 0 });
    expect(down).toEqual([{ action: 'window.focus', args: { id: 1 } }]);
    expect(sh.state().focused).toBe(2);
    sh.commit(down);
    expect(sh.state().focused).toBe(1);
    expect(sh.feed({ type: 'pointermove', x: p.x + 30, y: p.y + 20 })).toEqual([{ action: 'window.move', args: { id: 1, x: 130, y: 120 } }]);
    expect(sh.feed({ type: 'pointermove', x: p.x + 30.2, y: p.y + 20 })).toEqual([]);
    const mv = sh.feed({ type: 'pointermove', x: p.x + 50, y: p.y - 10 });
    expect(mv).toEqual([{ action: 'window.move', args: { id: 1, x: 150, y: 90 } }]);
    expect(sh.state().windows.get(1)).toMatchObject({ x: 100, y: 100 });
    sh.commit(mv);
    expect(sh.state().windows.get(1)).toMatchObject({ x: 150, y: 90 });
    expect(sh.feed({ type: 'pointerup', x: p.x + 50, y: p.y - 10 })).toEqual([]);
    expect(sh.feed({ type: 'pointermove', x: 0, y: 0 })).toEqual([]);
    // A cancelled drag stops proposing.
    const q = at(sh.frame, 1, 'title');
    sh.feed({ type: 'pointerdown', x: q.x, y: q.y });
    expect(sh.input.busy).toBe(true);
    expect(sh.feed({ type: 'pointercancel' })).toEqual([]);
    expect(sh.input.busy).toBe(false);
    expect(sh.feed({ type: 'pointermove', x: q.x + 9, y: q.y })).toEqual([]);
  });

  it('a double-click on a title bar maximizes, and another restores; slow or dragged clicks do not', () => {
    const sh = shell();
    sh.commit([{ action: 'window.open', args: { app: 'a', title: 'A', bounds: { x: 100, y: 100, w: 300, h: 200 } } }]);
    const p = at(sh.frame, 1, 'title');
    const click = (dx: number, time: number) => { const r = sh.feed({ type: 'pointerdown', x: p.x + dx, y: p.y, time }); sh.feed({ type: 'pointerup', x: p.x + dx, y: p.y, time }); return r; };
    expect(click(0, 1000)).toEqual([]);
    expect(click(0, 1500)).toEqual([]);
    const dbl = click(2, 1700);
    expect(dbl).toEqual([{ action: 'window.maximize', args: { id: 1 } }]);
    sh.commit(dbl);
    const q = at(sh.frame, 1, 'title');
    sh.feed({ type: 'pointerdown', x: q.x, y: q.y, time: 5000 }); sh.feed({ type: 'pointerup', x: q.x, y: q.y, time: 5000 });
    expect(sh.feed({ type: 'pointerdown', x: q.x, y: q.y, time: 5100 })).toEqual([{ action: 'window.restore', args: { id: 1 } }]);
    sh.feed({ type: 'pointerup', x: q.x, y: q.y, time: 5100 });
    sh.commit([{ action: 'window.restore', args: { id: 1 } }]);
    const r = at(sh.frame, 1, 'title');
    sh.feed({ type: 'pointerdown', x: r.x, y: r.y, time: 9000 });
    sh.feed({ type: 'pointermove', x: r.x + 20, y: r.y, time: 9050 });
    sh.feed({ type: 'pointerup', x: r.x + 20, y: r.y, time: 9060 });
    expect(sh.feed({ type: 'pointerdown', x: r.x, y: r.y, time: 9100 })).toEqual([]);
  });

  it('resizing from the west edge keeps the east edge still and stops at the minimum size', () => {
    const sh = shell();
    sh.commit([{ action: 'window.open', args: { app: 'a', title: 'A', bounds: { x: 100, y: 100, w: 300, h: 200 } } }]);
    const p = at(sh.frame, 1, 'resize-w');
    expect(sh.feed({ type: 'pointerdown', x: p.x, y: p.y })).toEqual([]);
    expect(sh.feed({ type: 'pointermove', x: p.x - 10, y: p.y + 7 })).toEqual([{ action: 'window.resize', args: { id: 1, x: 90, y: 100, w: 310, h: 200 } }]);
    expect(sh.feed({ type: 'pointermove', x: p.x + 1000, y: p.y })).toEqual([{ action: 'window.resize', args: { id: 1, x: 280, y: 100, w: 120, h: 200 } }]);
    const se = shell();
    se.commit([{ action: 'window.open', args: { app: 'a', title: 'A', bounds: { x: 100, y: 100, w: 300, h: 200 } } }]);
    const q = at(se.frame, 1, 'resize-se');
    se.feed({ type: 'pointerdown', x: q.x, y: q.y });
    expect(se.feed({ type: 'pointermove', x: q.x + 5, y: q.y + 6 })).toEqual([{ action: 'window.resize', args: { id: 1, x: 100, y: 100, w: 305, h: 206 } }]);
  });

  it('buttons act on release over the same button only', () => {
    const sh = shell();
    sh.commit([{ action: 'window.open', args: { app: 'a', title: 'A', bounds: { x: 100, y: 100, w: 300, h: 200 } } }]);
    const c = at(sh.frame, 1, 'close');
    expect(sh.feed({ type: 'pointerdown', x: c.x, y: c.y })).toEqual([]);
    expect(sh.feed({ type: 'pointerup', x: c.x, y: c.y })).toEqual([{ action: 'window.close', args: { id: 1 } }]);
    sh.feed({ type: 'pointerdown', x: c.x, y: c.y });
    const t = at(sh.frame, 1, 'title');
    expect(sh.feed({ type: 'pointerup', x: t.x, y: t.y })).toEqual([]);
    const m = at(sh.frame, 1, 'maximize');
    sh.feed({ type: 'pointerdown', x: m.x, y: m.y });
    const max = sh.feed({ type: 'pointerup', x: m.x, y: m.y });
    expect(max).toEqual([{ action: 'window.maximize', args: { id: 1 } }]);
    sh.commit(max);
    const m2 = at(sh.frame, 1, 'maximize');
    sh.feed({ type: 'pointerdown', x: m2.x, y: m2.y });
    expect(sh.feed({ type: 'pointerup', x: m2.x, y: m2.y })).toEqual([{ action: 'window.restore', args: { id: 1 } }]);
  });

  it('panel buttons minimize the focused window and bring back any other', () => {
    const sh = shell();
    sh.commit([{ action: 'window.open', args: { app: 'a', title: 'A' } }, { action: 'window.open', args: { app: 'b', title: 'B' } }]);
    const click = (w: number) => { const p = at(sh.frame, w, 'panel-button'); sh.feed({ type: 'pointerdown', x: p.x, y: p.y }); return sh.feed({ type: 'pointerup', x: p.x, y: p.y }); };
    expect(click(2)).toEqual([{ action: 'window.minimize', args: { id: 2 } }]);
    expect(click(1)).toEqual([{ action: 'window.focus', args: { id: 1 } }]);
    sh.commit([{ action: 'window.minimize', args: { id: 2 } }]);
    expect(click(2)).toEqual([{ action: 'window.focus', args: { id: 2 } }]);
  });

  it('keys: text into the focused window, backspace, enter, shortcuts', () => {
    const sh = shell();
    expect(sh.feed({ type: 'key', key: 'a', text: 'a' })).toEqual([]);
    sh.commit([{ action: 'window.open', args: { app: 'a', title: 'A' } }, { action: 'window.open', args: { app: 'b', title: 'B' } }]);
    expect(sh.feed({ type: 'key', key: 'a', text: 'a' })).toEqual([{ action: 'text.input', args: { id: 2, text: 'a' } }]);
    expect(sh.feed({ type: 'key', key: '🙂' })).toEqual([{ action: 'text.input', args: { id: 2, text: '🙂' } }]);
    expect(sh.feed({ type: 'key', key: 'Shift' })).toEqual([]);
    expect(sh.feed({ type: 'key', key: 'Backspace' })).toEqual([]);
    sh.commit([{ action: 'text.input', args: { id: 2, text: 'hi' } }]);
    expect(sh.feed({ type: 'key', key: 'Backspace' })).toEqual([{ action: 'text.delete', args: { id: 2, count: 1 } }]);
    expect(sh.feed({ type: 'key', key: 'Enter' })).toEqual([{ action: 'text.input', args: { id: 2, text: '\n' } }]);
    expect(sh.feed({ type: 'key', key: 'Tab', alt: true })).toEqual([{ action: 'window.focus', args: { id: 1 } }]);
    expect(sh.feed({ type: 'key', key: 'w', ctrl: true })).toEqual([{ action: 'window.close', args: { id: 2 } }]);
    expect(sh.feed({ type: 'key', key: 'F4', alt: true })).toEqual([{ action: 'window.close', args: { id: 2 } }]);
    expect(sh.feed({ type: 'key', key: 'ArrowUp', meta: true })).toEqual([{ action: 'window.maximize', args: { id: 2 } }]);
    expect(sh.feed({ type: 'key', key: 'ArrowDown', meta: true })).toEqual([{ action: 'window.minimize', args: { id: 2 } }]);
    expect(sh.feed({ type: 'key', key: 'c', text: 'c', ctrl: true })).toEqual([]);
  });

  it('wheel scrolls the window under the pointer; nonsense events propose nothing', () => {
    const sh = shell();
    sh.commit([{ action: 'window.open', args: { app: 'a', title: 'A', bounds: { x: 100, y: 100, w: 300, h: 200 } } }]);
    const p = at(sh.frame, 1, 'content');
    expect(sh.feed({ type: 'wheel', x: p.x, y: p.y, dy: 40.4 })).toEqual([{ action: 'window.scroll', args: { id: 1, dy: 40 } }]);
    expect(sh.feed({ type: 'wheel', x: NaN, y: p.y, dy: 40 })).toEqual([]);
    expect(sh.feed({ type: 'wheel', x: p.x, y: p.y, dy: Infinity })).toEqual([]);
    expect(sh.feed({ type: 'pointerdown', x: NaN, y: Infinity })).toEqual([]);
    expect(sh.feed({ type: 'pointermove', x: NaN, y: 1 })).toEqual([]);
    expect(sh.feed({ type: 'bogus' } as unknown as RawEvent)).toEqual([]);
    expect(sh.feed({ type: 'pointerdown', x: p.x, y: p.y, button: 2 })).toEqual([]);
  });
});
