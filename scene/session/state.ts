// The session state (domain 2): windows, focus order, screen, and a record of rejected actions.
// Everything in it is an int or a string, so its canonical value — and its hash — is the same in
// Node, Chromium and Electron. Window objects are immutable: an action that changes a window
// replaces its object, so the compositor can reuse everything built from an unchanged one.
import type { Value, ValueMap } from '../../axiom/types.ts';

export type WindowMode = 'normal' | 'maximized' | 'minimized';
export type Band = 'background' | 'normal' | 'overlay';
export const BANDS: readonly Band[] = ['background', 'normal', 'overlay'];
export const MODES: readonly WindowMode[] = ['normal', 'maximized', 'minimized'];

export interface SessionWindow {
  readonly id: number;
  readonly app: string;
  readonly title: string;
  /** Bounds in normal mode (kept while maximized or minimized, restored after). Ints. */
  readonly x: number; readonly y: number; readonly w: number; readonly h: number;
  readonly mode: WindowMode;
  readonly band: Band;
  /** The window's text field. */
  readonly text: string;
  /** Content scroll offset in px, ≥ 0. */
  readonly scroll: number;
}

export type RejectCode =
  | 'malformed-entry' | 'unknown-action' | 'bad-args' | 'bad-number' | 'too-large' | 'no-such-window' | 'limit';

export interface SessionRejection { seq: number; action: string; code: RejectCode; detail: string }

export interface SessionState {
  screenW: number; screenH: number;
  windows: Map<number, SessionWindow>;
  /** Focus order, least recent first: z-order within a band follows it. */
  mru: number[];
  /** The window with keyboard focus, 0 for none. */
  focused: number;
  /** The id the next window.open gets. */
  nextId: number;
  /** Session COMMITs applied, and how many of them were rejected. */
  applied: number;
  rejected: number;
  /** Rejections by code. */
  codes: Map<RejectCode, number>;
  /** The last REJECTIONS_KEPT rejections, oldest first. */
  last: SessionRejection[];
}

export const REJECTIONS_KEPT = 8;

export function initialState(): SessionState {
  return {
    screenW: 1280, screenH: 800, windows: new Map(), mru: [], focused: 0, nextId: 1,
    applied: 0, rejected: 0, codes: new Map(), last: [],
  };
}

export function cloneState(s: SessionState): SessionState {
  return { ...s, windows: new Map(s.windows), mru: [...s.mru], codes: new Map(s.codes), last: [...s.last] };
}

const windowValue = (w: SessionWindow): ValueMap => ({
  id: w.id, app: w.app, title: w.title, x: w.x, y: w.y, w: w.w, h: w.h, mode: w.mode, band: w.band, text: w.text, scroll: w.scroll,
});

/** The canonical value of the state (docs/session-domain.md). */
export function stateValue(s: SessionState): Value {
  const codes: ValueMap = {};
  for (const [k, v] of s.codes) codes[k] = v;
  return {
    screen: { w: s.screenW, h: s.screenH },
    windows: [...s.windows.values()].sort((a, b) => a.id - b.id).map(windowValue),
    mru: [...s.mru],
    focused: s.focused,
    next: s.nextId,
    applied: s.applied,
    rejected: s.rejected,
    codes,
    last: s.last.map((r) => ({ seq: r.seq, action: r.action, code: r.code, detail: r.detail })),
  };
}
