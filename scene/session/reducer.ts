// The session reducer (domain 2): applies committed session actions to the session state. A
// device commits any session proposal with map args, so a COMMIT here may be nonsense; it becomes
// a typed rejection recorded in the state (docs/session-domain.md), never an exception, and every
// replay of the same log reaches the same state.
import { stateHash } from '../../axiom/index.ts';
import { Domain, Kind, type Entry, type Reducer, type Value, type ValueMap } from '../../axiom/types.ts';
import { LIMITS, checkAction, clip, utf8Length, type SessionAction } from './actions.ts';
import { REJECTIONS_KEPT, cloneState, initialState, stateValue, type RejectCode, type SessionState, type SessionWindow } from './state.ts';

const clamp = (v: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, v));
const size = (v: number, min: number): number => clamp(v, min, LIMITS.maxSize);
const coord = (v: number): number => clamp(v, -LIMITS.coord, LIMITS.coord);

class Reject { constructor(readonly code: RejectCode, readonly detail: string) {} }

function record(s: SessionState, seq: number, action: Value | undefined, code: RejectCode, detail: string): void {
  s.rejected++;
  s.codes.set(code, (s.codes.get(code) ?? 0) + 1);
  s.last.push({ seq, action: typeof action === 'string' ? clip(action, 64) : '', code, detail: clip(detail, 200) });
  if (s.last.length > REJECTIONS_KEPT) s.last.shift();
}

function win(s: SessionState, id: number): SessionWindow {
  const w = s.windows.get(id);
  if (!w) throw new Reject('no-such-window', `there is no window ${id} (open: ${[...s.windows.keys()].slice(0, 16).join(', ') || 'none'})`);
  return w;
}

const put = (s: SessionState, w: SessionWindow): void => { s.windows.set(w.id, w); };

/** Moves `id` to the most-recent end of the focus order and gives it keyboard focus. */
function focus(s: SessionState, id: number): void {
  const i = s.mru.indexOf(id);
  if (i >= 0) s.mru.splice(i, 1);
  s.mru.push(id);
  s.focused = id;
}

/** Focus goes to the most recently focused window that is not minimized, or nowhere. */
function refocus(s: SessionState): void {
  s.focused = 0;
  for (let i = s.mru.length - 1; i >= 0; i--) {
    const w = s.windows.get(s.mru[i]!);
    if (w && w.mode !== 'minimized') { s.focused = w.id; return; }
  }
}

/** Drops trailing code points: `count` of them. */
function dropCodePoints(t: string, count: number): string {
  let end = t.length;
  for (let n = 0; n < count && end > 0; n++) {
    const c = t.charCodeAt(end - 1);
    end -= c >= 0xdc00 && c <= 0xdfff && end >= 2 && (t.charCodeAt(end - 2) & 0xfc00) === 0xd800 ? 2 : 1;
  }
  return t.slice(0, end);
}

function exec(s: SessionState, a: SessionAction): void {
  switch (a.action) {
    case 'window.open': {
      if (s.windows.size >= LIMITS.windows) throw new Reject('limit', `the session already has ${LIMITS.windows} windows; close one first`);
      const id = s.nextId++;
      const k = (id - 1) % 10;
      const b = a.bounds ?? { x: 40 + 32 * k, y: 40 + 32 * k, w: 480, h: 320 };
      put(s, { id, app: a.app, title: a.title, x: coord(b.x), y: coord(b.y), w: size(b.w, LIMITS.minW), h: size(b.h, LIMITS.minH), mode: 'normal', band: a.band, text: '', scroll: 0 });
      focus(s, id);
      return;
    }
    case 'window.move': {
      const w = win(s, a.id);
      put(s, { ...w, x: coord(a.x), y: coord(a.y), mode: w.mode === 'maximized' ? 'normal' : w.mode });
      return;
    }
    case 'window.resize': {
      const w = win(s, a.id);
      put(s, { ...w, x: a.x === null ? w.x : coord(a.x), y: a.y === null ? w.y : coord(a.y), w: size(a.w, LIMITS.minW), h: size(a.h, LIMITS.minH), mode: w.mode === 'maximized' ? 'normal' : w.mode });
      return;
    }
    case 'window.focus':
    case 'window.raise': {
      // z-order is derived from the focus order, so raising a window is focusing it.
      const w = win(s, a.id);
      if (w.mode === 'minimized') put(s, { ...w, mode: 'normal' });
      focus(s, w.id);
      return;
    }
    case 'window.close': {
      win(s, a.id);
      s.windows.delete(a.id);
      s.mru.splice(s.mru.indexOf(a.id), 1);
      if (s.focused === a.id) refocus(s);
      return;
    }
    case 'window.minimize': {
      const w = win(s, a.id);
      put(s, { ...w, mode: 'minimized' });
      s.mru.splice(s.mru.indexOf(a.id), 1);
      s.mru.unshift(a.id);
      if (s.focused === a.id) refocus(s);
      return;
    }
    case 'window.maximize':
    case 'window.restore': {
      const w = win(s, a.id);
      put(s, { ...w, mode: a.action === 'window.maximize' ? 'maximized' : 'normal' });
      focus(s, w.id);
      return;
    }
    case 'window.title': {
      const w = win(s, a.id);
      put(s, { ...w, title: a.title });
      return;
    }
    case 'window.scroll': {
      const w = win(s, a.id);
      put(s, { ...w, scroll: clamp(w.scroll + a.dy, 0, LIMITS.scrollMax) });
      return;
    }
    case 'text.input': {
      const w = win(s, a.id);
      const n = utf8Length(w.text) + utf8Length(a.text);
      if (n > LIMITS.textBytes) throw new Reject('too-large', `window ${w.id}'s text would be ${n} bytes; a text field holds at most ${LIMITS.textBytes}`);
      put(s, { ...w, text: w.text + a.text });
      return;
    }
    case 'text.delete': {
      const w = win(s, a.id);
      put(s, { ...w, text: dropCodePoints(w.text, a.count) });
      return;
    }
    case 'screen.resize': {
      s.screenW = clamp(a.w, LIMITS.screenMin, LIMITS.maxSize);
      s.screenH = clamp(a.h, LIMITS.screenMin, LIMITS.maxSize);
      return;
    }
  }
}

const isMap = (v: Value | undefined): v is ValueMap => typeof v === 'object' && v !== null && !(v instanceof Uint8Array) && !Array.isArray(v);

/**
 * Applies one COMMIT's payload to the state (mutating it). Returns the rejection, if any, so the
 * session host can tell the user why nothing happened.
 */
export function applyCommit(s: SessionState, seq: number, payload: Value | undefined): { code: RejectCode; detail: string } | null {
  s.applied++;
  if (!isMap(payload)) {
    const detail = payload === undefined ? 'the COMMIT payload is not a canonical value' : 'the COMMIT payload is not a map';
    record(s, seq, undefined, 'malformed-entry', detail);
    return { code: 'malformed-entry', detail };
  }
  const checked = checkAction(payload.action, payload.args);
  if (!checked.ok) { record(s, seq, payload.action, checked.code, checked.detail); return checked; }
  // exec checks everything before its first write, so a rejected action leaves no trace but the record.
  try {
    exec(s, checked.act);
  } catch (e) {
    const r = e instanceof Reject ? e : new Reject('bad-args', `the session reducer failed on this action: ${clip(String(e), 120)}`);
    record(s, seq, payload.action, r.code, r.detail);
    return { code: r.code, detail: r.detail };
  }
  return null;
}

/** The axiom reducer of domain 2 `session`. Only COMMITs of domain 2 change its state. */
export const sessionReducer: Reducer<SessionState> = {
  domain: Domain.Session,
  name: 'session',
  init: initialState,
  apply(s, e: Entry, payload: Value | undefined) {
    if (e.domain !== Domain.Session || e.kind !== Kind.Commit) return s;
    applyCommit(s, e.seq, payload);
    return s;
  },
  toValue: stateValue,
  clone: cloneState,
};

/** The canonical scene hash: the session state hash of docs/axiom.md section 6. */
export const sceneHash = (s: SessionState): Uint8Array => stateHash(sessionReducer, s);
