// Semantic input: raw pointer and keyboard events, hit-tested against the last composited frame,
// become session actions (docs/session-domain.md). They are proposals: nothing here changes the
// scene. The scene changes when the committed entry comes back and the session reducer applies it.
// The only state kept here is the gesture in progress (a drag, a press on a button).
import { Domain, type Proposal, type ValueMap } from '../../axiom/types.ts';
import type { Frame, HitPart } from '../compositor/layers.ts';
import type { SessionState, SessionWindow } from '../session/state.ts';
import { LIMITS } from '../session/actions.ts';
import { hitTest } from './hit.ts';

/** A session action to propose (domain 2): the action name and its args map. */
export interface Proposed { action: string; args: ValueMap }

/** Wraps an action as an Axiom proposal for domain 2 (`id` unique per actor; `time` the client's logical time). */
export const toProposal = (p: Proposed, actor: number, id: number, time = 0): Proposal =>
  ({ actor, id, domain: Domain.Session, action: p.action, args: p.args, time });

export type RawEvent =
  /** `time`: the host's event time in ms (only compared with itself, for double-clicks). */
  | { type: 'pointerdown' | 'pointermove' | 'pointerup'; x: number; y: number; button?: number; time?: number }
  | { type: 'pointercancel' }
  | { type: 'wheel'; x: number; y: number; dy: number }
  | { type: 'key'; key: string; text?: string; ctrl?: boolean; alt?: boolean; shift?: boolean; meta?: boolean };

type Gesture =
  | { kind: 'move'; id: number; sx: number; sy: number; ox: number; oy: number; lx: number; ly: number }
  | { kind: 'resize'; id: number; part: HitPart; sx: number; sy: number; b: { x: number; y: number; w: number; h: number }; last: string }
  | { kind: 'press'; id: number; part: HitPart }
  | null;

/** At most n UTF-16 units, never ending in half a surrogate pair. */
const whole = (t: string, n: number): string => {
  if (t.length <= n) return t;
  const c = t.charCodeAt(n - 1);
  return t.slice(0, c >= 0xd800 && c <= 0xdbff ? n - 1 : n);
};
const has = (p: string, edge: string): boolean => p.startsWith('resize-') && p.slice(7).includes(edge);

/** Two presses on one title bar within this many ms and px are a double-click. */
export const DOUBLE_CLICK_MS = 400;
export const DOUBLE_CLICK_PX = 4;

export class InputMachine {
  private g: Gesture = null;
  private lastTitle: { id: number; x: number; y: number; time: number } | null = null;

  /** Whether a drag or press is in progress (the host may capture the pointer meanwhile). */
  get busy(): boolean { return this.g !== null; }

  /**
   * Turns one raw event into zero or more actions, against the frame on screen and the committed
   * state it was composited from. Never throws; nonsense events give no actions.
   */
  handle(ev: RawEvent, frame: Frame, s: SessionState): Proposed[] {
    switch (ev.type) {
      case 'pointerdown': return (ev.button ?? 0) === 0 ? this.down(ev.x, ev.y, frame, s, ev.time) : [];
      case 'pointermove': return this.move(ev.x, ev.y);
      case 'pointerup': return this.up(ev.x, ev.y, frame, s);
      // The pointer left or the host lost capture: the gesture ends where its last proposal left it.
      case 'pointercancel': this.g = null; this.lastTitle = null; return [];
      case 'wheel': {
        const h = hitTest(frame, ev.x, ev.y);
        if (!h || h.window === 0 || !Number.isFinite(ev.dy) || ev.dy === 0) return [];
        return [{ action: 'window.scroll', args: { id: h.window, dy: Math.round(ev.dy) } }];
      }
      case 'key': return this.key(ev, s);
      default: return [];
    }
  }

  private down(x: number, y: number, frame: Frame, s: SessionState, time: number | undefined): Proposed[] {
    this.g = null;
    const last = this.lastTitle;
    this.lastTitle = null;
    const h = hitTest(frame, x, y);
    if (!h) return [];
    const out: Proposed[] = [];
    if (h.part === 'panel-button') { this.g = { kind: 'press', id: h.window, part: h.part }; return out; }
    if (h.window === 0) return out;
    const w = s.windows.get(h.window);
    if (!w) return out;
    if (s.focused !== w.id || s.mru[s.mru.length - 1] !== w.id) out.push({ action: 'window.focus', args: { id: w.id } });
    if (h.part === 'title' && time !== undefined && Number.isFinite(time)) {
      // Double-click on a title bar: maximize or restore (the "activate" gesture of most shells).
      if (last && last.id === w.id && time - last.time >= 0 && time - last.time <= DOUBLE_CLICK_MS && Math.abs(x - last.x) <= DOUBLE_CLICK_PX && Math.abs(y - last.y) <= DOUBLE_CLICK_PX) {
        out.push({ action: w.mode === 'maximized' ? 'window.restore' : 'window.maximize', args: { id: w.id } });
        return out;
      }
      this.lastTitle = { id: w.id, x, y, time };
    }
    if (h.part === 'title' && w.mode !== 'maximized') this.g = { kind: 'move', id: w.id, sx: x, sy: y, ox: w.x, oy: w.y, lx: w.x, ly: w.y };
    else if (h.part.startsWith('resize-')) this.g = { kind: 'resize', id: w.id, part: h.part, sx: x, sy: y, b: { x: w.x, y: w.y, w: w.w, h: w.h }, last: '' };
    else if (h.part === 'close' || h.part === 'minimize' || h.part === 'maximize') this.g = { kind: 'press', id: w.id, part: h.part };
    return out;
  }

  private move(x: number, y: number): Proposed[] {
    const g = this.g;
    if (!g || !Number.isFinite(x) || !Number.isFinite(y)) return [];
    const dx = Math.round(x - (g.kind === 'press' ? 0 : g.sx)), dy = Math.round(y - (g.kind === 'press' ? 0 : g.sy));
    if (g.kind === 'move') {
      const nx = g.ox + dx, ny = g.oy + dy;
      if (nx === g.lx && ny === g.ly) return [];
      g.lx = nx; g.ly = ny;
      this.lastTitle = null; // a drag is not the first half of a double-click
      // Absolute positions: a lost or reordered proposal cannot accumulate error.
      return [{ action: 'window.move', args: { id: g.id, x: nx, y: ny } }];
    }
    if (g.kind === 'resize') {
      let { x: bx, y: by, w: bw, h: bh } = g.b;
      if (has(g.part, 'e')) bw = Math.max(LIMITS.minW, g.b.w + dx);
      if (has(g.part, 's')) bh = Math.max(LIMITS.minH, g.b.h + dy);
      if (has(g.part, 'w')) { bw = Math.max(LIMITS.minW, g.b.w - dx); bx = g.b.x + g.b.w - bw; }
      if (has(g.part, 'n')) { bh = Math.max(LIMITS.minH, g.b.h - dy); by = g.b.y + g.b.h - bh; }
      const key = `${bx},${by},${bw},${bh}`;
      if (key === g.last) return [];
      g.last = key;
      return [{ action: 'window.resize', args: { id: g.id, x: bx, y: by, w: bw, h: bh } }];
    }
    return [];
  }

  private up(x: number, y: number, frame: Frame, s: SessionState): Proposed[] {
    const g = this.g;
    this.g = null;
    if (!g || g.kind !== 'press') return [];
    // A press counts only when released over the same part of the same window (as buttons do).
    const h = hitTest(frame, x, y);
    if (!h || h.window !== g.id || h.part !== g.part) return [];
    return this.click(g.id, g.part, s);
  }

  private click(id: number, part: HitPart, s: SessionState): Proposed[] {
    const w = s.windows.get(id);
    switch (part) {
      case 'close': return [{ action: 'window.close', args: { id } }];
      case 'minimize': return [{ action: 'window.minimize', args: { id } }];
      case 'maximize': return [{ action: w?.mode === 'maximized' ? 'window.restore' : 'window.maximize', args: { id } }];
      case 'panel-button': {
        // The panel toggles: the focused window minimizes, any other one comes to the front.
        if (w && s.focused === id && w.mode !== 'minimized') return [{ action: 'window.minimize', args: { id } }];
        return [{ action: 'window.focus', args: { id } }];
      }
      default: return [];
    }
  }

  private key(ev: Extract<RawEvent, { type: 'key' }>, s: SessionState): Proposed[] {
    const f = s.focused;
    const fw: SessionWindow | undefined = f ? s.windows.get(f) : undefined;
    const k = ev.key;
    if ((ev.alt && k === 'F4') || (ev.ctrl && (k === 'w' || k === 'W'))) return fw ? [{ action: 'window.close', args: { id: fw.id } }] : [];
    if (ev.alt && k === 'Tab') {
      // The previously focused visible window comes forward (the window list is the focus order).
      const visible = s.mru.filter((id) => s.windows.get(id)?.mode !== 'minimized');
      const target = ev.shift ? visible[0] : visible.length >= 2 ? visible[visible.length - 2] : undefined;
      return target !== undefined && target !== f ? [{ action: 'window.focus', args: { id: target } }] : [];
    }
    if (ev.meta && k === 'ArrowUp') return fw ? [{ action: fw.mode === 'maximized' ? 'window.restore' : 'window.maximize', args: { id: fw.id } }] : [];
    if (ev.meta && k === 'ArrowDown') return fw ? [{ action: fw.mode === 'maximized' ? 'window.restore' : 'window.minimize', args: { id: fw.id } }] : [];
    if (!fw || ev.ctrl || ev.meta || ev.alt) return [];
    if (k === 'Backspace') return fw.text.length ? [{ action: 'text.delete', args: { id: fw.id, count: 1 } }] : [];
    if (k === 'Enter') return [{ action: 'text.input', args: { id: fw.id, text: '\n' } }];
    const text = ev.text ?? (k.length === 1 || (k.length === 2 && k.codePointAt(0)! > 0xffff) ? k : '');
    if (!text) return [];
    return [{ action: 'text.input', args: { id: fw.id, text: whole(text, LIMITS.inputBytes / 4) } }];
  }
}
