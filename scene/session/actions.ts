// The session action vocabulary (docs/session-domain.md) and its argument checks. A device commits
// any session proposal whose args is a map, so everything here assumes hostile input: a check
// returns a typed rejection, never throws, and never copies a big string into the state.
import { utf8Len } from '../../axiom/value.ts';
import type { Value, ValueMap } from '../../axiom/types.ts';
import { BANDS, type Band, type RejectCode } from './state.ts';

export const LIMITS = {
  appBytes: 64,
  titleBytes: 256,
  inputBytes: 4096,
  /** A window's whole text field. */
  textBytes: 65536,
  windows: 256,
  minW: 120, minH: 80,
  maxSize: 16384,
  /** Window origins are clamped into ±coord. */
  coord: 32768,
  screenMin: 320,
  scrollMax: 1_000_000,
  deleteMax: 4096,
} as const;

export type SessionAction =
  | { action: 'window.open'; app: string; title: string; bounds: { x: number; y: number; w: number; h: number } | null; band: Band }
  | { action: 'window.move'; id: number; x: number; y: number }
  | { action: 'window.resize'; id: number; w: number; h: number; x: number | null; y: number | null }
  | { action: 'window.focus' | 'window.raise' | 'window.close' | 'window.minimize' | 'window.maximize' | 'window.restore'; id: number }
  | { action: 'window.title'; id: number; title: string }
  | { action: 'window.scroll'; id: number; dy: number }
  | { action: 'text.input'; id: number; text: string }
  | { action: 'text.delete'; id: number; count: number }
  | { action: 'screen.resize'; w: number; h: number };

export type ActionName = SessionAction['action'];

export interface Rejected { ok: false; code: RejectCode; detail: string }
export type Checked = { ok: true; act: SessionAction } | Rejected;

const reject = (code: RejectCode, detail: string): Rejected => ({ ok: false, code, detail });
class Bad { constructor(readonly code: RejectCode, readonly detail: string) {} }

type ArgKind = 'id' | 'str' | 'num' | 'int' | 'bounds' | 'band';
interface ArgSpec { kind: ArgKind; optional?: boolean; min?: number; max?: number }
const id: ArgSpec = { kind: 'id' };
const SPECS: Record<ActionName, Record<string, ArgSpec>> = {
  'window.open': { app: { kind: 'str', min: 1, max: LIMITS.appBytes }, title: { kind: 'str', min: 0, max: LIMITS.titleBytes }, bounds: { kind: 'bounds', optional: true }, band: { kind: 'band', optional: true } },
  'window.move': { id, x: { kind: 'num' }, y: { kind: 'num' } },
  'window.resize': { id, w: { kind: 'num' }, h: { kind: 'num' }, x: { kind: 'num', optional: true }, y: { kind: 'num', optional: true } },
  'window.focus': { id },
  'window.raise': { id },
  'window.close': { id },
  'window.minimize': { id },
  'window.maximize': { id },
  'window.restore': { id },
  'window.title': { id, title: { kind: 'str', min: 0, max: LIMITS.titleBytes } },
  'window.scroll': { id, dy: { kind: 'num' } },
  'text.input': { id, text: { kind: 'str', min: 1, max: LIMITS.inputBytes } },
  'text.delete': { id, count: { kind: 'int', min: 1, max: LIMITS.deleteMax } },
  'screen.resize': { w: { kind: 'num' }, h: { kind: 'num' } },
};
export const SESSION_ACTIONS = Object.keys(SPECS) as ActionName[];

/** UTF-8 length of a string without encoding it (the one axiom uses for its own limits). */
export const utf8Length = utf8Len;

/** At most `max` UTF-16 code units of `s`, never splitting a surrogate pair (for rejection records). */
export function clip(s: string, max: number): string {
  if (s.length <= max) return s;
  let t = s.slice(0, max);
  const last = t.charCodeAt(t.length - 1);
  if (last >= 0xd800 && last <= 0xdbff) t = t.slice(0, -1);
  return t + '…';
}

const describe = (v: Value): string =>
  v === null ? 'null' : v instanceof Uint8Array ? 'bytes' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'a map' : typeof v === 'bigint' ? 'a big int' : `a ${typeof v}`;

function str(name: string, v: Value, spec: ArgSpec): string {
  if (typeof v !== 'string') throw new Bad('bad-args', `'${name}' must be a string, is ${describe(v)}`);
  const max = spec.max!;
  // Every code unit is at least one UTF-8 byte: a too-long string is rejected without a full scan.
  if (v.length > max) throw new Bad('too-large', `'${name}' must be at most ${max} bytes of UTF-8, has ${v.length} or more`);
  const n = utf8Length(v);
  if (n > max) throw new Bad('too-large', `'${name}' must be at most ${max} bytes of UTF-8, has ${n}`);
  if (n < spec.min!) throw new Bad('bad-args', `'${name}' must be at least ${spec.min} bytes`);
  return v;
}

function num(name: string, v: Value): number {
  if (typeof v === 'bigint') throw new Bad('bad-number', `'${name}' is ${v}, far outside any screen`);
  if (typeof v !== 'number') throw new Bad('bad-args', `'${name}' must be a number, is ${describe(v)}`);
  if (!Number.isFinite(v)) throw new Bad('bad-number', `'${name}' must be finite, is ${v}`);
  // Canonical state: pixel positions are ints. Math.round(-0.4) is -0, which encodes as int 0.
  return Math.round(v) + 0;
}

function intArg(name: string, v: Value, spec: ArgSpec): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new Bad('bad-args', `'${name}' must be an int, is ${describe(v)}`);
  if (v < spec.min! || v > spec.max!) throw new Bad('bad-args', `'${name}' must be in ${spec.min}..${spec.max}, is ${v}`);
  return v;
}

function windowId(name: string, v: Value): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) throw new Bad('bad-args', `'${name}' must be a window id (an int ≥ 1), is ${typeof v === 'number' ? v : describe(v)}`);
  return v;
}

const isMap = (v: Value | undefined): v is ValueMap => typeof v === 'object' && v !== null && !(v instanceof Uint8Array) && !Array.isArray(v);

function bounds(name: string, v: Value): { x: number; y: number; w: number; h: number } {
  if (!isMap(v)) throw new Bad('bad-args', `'${name}' must be a map {x, y, w, h}, is ${describe(v)}`);
  const keys = Object.keys(v);
  for (const k of keys) if (k !== 'x' && k !== 'y' && k !== 'w' && k !== 'h') throw new Bad('bad-args', `'${name}' has an unexpected key '${clip(k, 32)}' (takes x, y, w, h)`);
  const out = { x: 0, y: 0, w: 0, h: 0 };
  for (const k of ['x', 'y', 'w', 'h'] as const) {
    const x = v[k];
    if (x === undefined) throw new Bad('bad-args', `'${name}' is missing '${k}'`);
    out[k] = num(`${name}.${k}`, x);
  }
  return out;
}

/** Checks a committed action's name and args. Never throws. */
export function checkAction(action: Value | undefined, args: Value | undefined): Checked {
  if (typeof action !== 'string') return reject('malformed-entry', `the COMMIT's 'action' must be a string, is ${action === undefined ? 'missing' : describe(action)}`);
  if (!Object.prototype.hasOwnProperty.call(SPECS, action)) return reject('unknown-action', `unknown session action '${clip(action, 64)}' (known: ${SESSION_ACTIONS.join(', ')})`);
  if (!isMap(args)) return reject('malformed-entry', `the COMMIT's 'args' must be a map, is ${args === undefined ? 'missing' : describe(args)}`);
  const name = action as ActionName;
  const spec = SPECS[name];
  const out: Record<string, unknown> = { action: name };
  try {
    for (const k of Object.keys(args)) if (!Object.prototype.hasOwnProperty.call(spec, k)) throw new Bad('bad-args', `${name} takes no argument '${clip(k, 32)}' (takes ${Object.keys(spec).join(', ')})`);
    for (const [k, s] of Object.entries(spec)) {
      const v = args[k];
      if (v === undefined) {
        if (!s.optional) throw new Bad('bad-args', `${name} needs argument '${k}'`);
        out[k] = s.kind === 'band' ? 'normal' : null;
        continue;
      }
      switch (s.kind) {
        case 'id': out[k] = windowId(k, v); break;
        case 'str': out[k] = str(k, v, s); break;
        case 'num': out[k] = num(k, v); break;
        case 'int': out[k] = intArg(k, v, s); break;
        case 'bounds': out[k] = bounds(k, v); break;
        case 'band':
          if (typeof v !== 'string' || !(BANDS as readonly string[]).includes(v)) throw new Bad('bad-args', `'${k}' must be one of ${BANDS.join(', ')}`);
          out[k] = v; break;
      }
    }
  } catch (e) {
    if (e instanceof Bad) return reject(e.code, e.detail);
    return reject('bad-args', `could not read the arguments: ${clip(String(e), 120)}`);
  }
  return { ok: true, act: out as unknown as SessionAction };
}
