// The `os` domain (docs/os-domain.md): capabilities, services, a key-value store, jobs and the
// `sh` console commands. One function, `run`, both decides a committed action's receipt and
// applies its state change, so the sequencer's receipt and the replayed state cannot disagree.
import { blake3 } from '../hash.ts';
import { Domain, Kind, type Entry, type Outcome, type Proposal, type Reducer, type Rejection, type Value, type ValueMap } from '../types.ts';
import { getInt, getStr, isMap, utf8Bytes, utf8Len } from '../value.ts';

export interface Service { running: boolean; starts: number }
export interface OsState {
  caps: Map<string, Set<string>>;
  services: Map<string, Service>;
  kv: Map<string, string>;
  echoes: number;
  jobs: { count: number; last: Uint8Array };
  errors: number;
}

const ALL = ['console', 'job', 'kv', 'svc'];
export const INITIAL_CAPS: Record<string, string[]> = { '0': ['admin', ...ALL], '1': ALL, '2': ALL };

type Arg = 'str' | 'int' | 'bytes';
interface Spec { cap: string; args: Record<string, [Arg, number, number]> }
// [type, min, max]: byte length for str/bytes, value for int.
const ACTIONS: Record<string, Spec> = {
  echo: { cap: 'console', args: { text: ['str', 0, 4096] } },
  'kv.set': { cap: 'kv', args: { key: ['str', 1, 256], value: ['str', 0, 4096] } },
  'kv.del': { cap: 'kv', args: { key: ['str', 1, 256] } },
  'svc.start': { cap: 'svc', args: { name: ['str', 1, 64] } },
  'svc.stop': { cap: 'svc', args: { name: ['str', 1, 64] } },
  'cap.grant': { cap: 'admin', args: { actor: ['int', 0, Number.MAX_SAFE_INTEGER], cap: ['str', 1, 32] } },
  'cap.revoke': { cap: 'admin', args: { actor: ['int', 0, Number.MAX_SAFE_INTEGER], cap: ['str', 1, 32] } },
  'job.run': { cap: 'job', args: { name: ['str', 1, 64], rounds: ['int', 1, 100_000], seed: ['bytes', 0, 64] } },
  sh: { cap: 'console', args: { line: ['str', 0, 4096] } },
};
export const OS_ACTIONS = Object.keys(ACTIONS);
export const capFor = (action: string): string | undefined => ACTIONS[action]?.cap;

/** Checks an action's argument map against its spec; returns a message or null. */
export function checkArgs(action: string, args: ValueMap): string | null {
  const spec = ACTIONS[action];
  if (!spec) return `unknown action '${action}'`;
  const want = Object.keys(spec.args);
  // The first unexpected key in canonical (UTF-8 byte) order, not JS property order, so a device
  // in any language names the same one (docs/os-domain.md).
  for (const k of Object.keys(args).sort(cmpUtf8)) if (!want.includes(k)) return `unexpected argument '${k}' (takes ${want.join(', ')})`;
  for (const [k, [type, min, max]] of Object.entries(spec.args)) {
    const v = args[k];
    if (v === undefined) return `missing argument '${k}'`;
    if (type === 'str') {
      if (typeof v !== 'string') return `'${k}' must be a string`;
      const n = utf8Len(v);
      if (n < min || n > max) return `'${k}' must be ${min}..${max} bytes, is ${n}`;
    } else if (type === 'bytes') {
      if (!(v instanceof Uint8Array)) return `'${k}' must be bytes`;
      if (v.length < min || v.length > max) return `'${k}' must be ${min}..${max} bytes, is ${v.length}`;
    } else {
      if (typeof v !== 'number' || !Number.isInteger(v)) return `'${k}' must be an int`;
      if (v < min || v > max) return `'${k}' must be in ${min}..${max}, is ${v}`;
    }
  }
  return null;
}

export const hasCap = (s: OsState, actor: number, cap: string): boolean => s.caps.get(String(actor))?.has(cap) ?? false;

const EMPTY = new Uint8Array(0);
// Outcomes are built as text and encoded only when a receipt needs the bytes: a replay applies
// millions of commits whose receipts are already in the log.
interface Out { outcome: 'ok' | 'error'; text?: string; bytes?: Uint8Array }
const okOut = (text = ''): Out => ({ outcome: 'ok', text });
const errOut = (text: string): Out => ({ outcome: 'error', text });
const toOutcome = (o: Out): Outcome => ({ outcome: o.outcome, result: o.bytes ?? (o.text ? utf8Bytes(o.text) : EMPTY) });

/** job.run: h0 = BLAKE3(name ‖ 0x00 ‖ seed), h(i+1) = BLAKE3(h(i)), result h(rounds). */
export function jobResult(name: string, rounds: number, seed: Uint8Array): Uint8Array {
  const nb = utf8Bytes(name);
  const first = new Uint8Array(nb.length + 1 + seed.length);
  first.set(nb); first.set(seed, nb.length + 1);
  let h = blake3(first);
  for (let i = 0; i < rounds; i++) h = blake3(h);
  return h;
}

function svcStart(s: OsState, name: string, apply: boolean): boolean {
  const cur = s.services.get(name);
  if (cur?.running) return false;
  if (apply) s.services.set(name, { running: true, starts: (cur?.starts ?? 0) + 1 });
  return true;
}
function svcStop(s: OsState, name: string, apply: boolean): boolean {
  const cur = s.services.get(name);
  if (!cur?.running) return false;
  if (apply) s.services.set(name, { running: false, starts: cur.starts });
  return true;
}

function runSh(s: OsState, line: string, apply: boolean): Out {
  if (apply) s.echoes++;
  const words = line.split(' ').filter((w) => w !== '');
  const [cmd = '', ...rest] = words;
  const key = rest[0] ?? '';
  const keyOk = (k: string, max: number) => utf8Len(k) >= 1 && utf8Len(k) <= max;
  switch (cmd) {
    case '': return okOut();
    case 'echo': return okOut(rest.join(' '));
    case 'help': return okOut('echo get set del start stop ps help');
    case 'set': {
      const value = rest.slice(1).join(' ');
      if (!keyOk(key, 256) || utf8Len(value) > 4096) return errOut('bad argument');
      if (apply) s.kv.set(key, value);
      return okOut(`${key}=${value}`);
    }
    case 'get': {
      if (!keyOk(key, 256)) return errOut('bad argument');
      const v = s.kv.get(key);
      return v === undefined ? errOut(`no such key: ${key}`) : okOut(v);
    }
    case 'del': {
      if (!keyOk(key, 256)) return errOut('bad argument');
      if (!s.kv.has(key)) return errOut(`no such key: ${key}`);
      if (apply) s.kv.delete(key);
      return okOut(`deleted ${key}`);
    }
    case 'start':
      if (!keyOk(key, 64)) return errOut('bad argument');
      return svcStart(s, key, apply) ? okOut(`started ${key}`) : errOut(`already running: ${key}`);
    case 'stop':
      if (!keyOk(key, 64)) return errOut('bad argument');
      return svcStop(s, key, apply) ? okOut(`stopped ${key}`) : errOut(`not running: ${key}`);
    case 'ps':
      return okOut([...s.services.keys()].sort(cmpUtf8).map((n) => { const v = s.services.get(n)!; return `${n} ${v.running ? 'running' : 'stopped'} starts=${v.starts}`; }).join('\n'));
    default: return errOut(`unknown command: ${cmd}`);
  }
}

/** Decides the receipt of a valid action and, when `apply`, applies its change to `s`. */
export function runOs(s: OsState, action: string, args: ValueMap, apply: boolean): Outcome {
  return toOutcome(run(s, action, args, apply));
}

function run(s: OsState, action: string, args: ValueMap, apply: boolean): Out {
  switch (action) {
    case 'echo': if (apply) s.echoes++; return okOut(args.text as string);
    case 'kv.set': if (apply) s.kv.set(args.key as string, args.value as string); return okOut();
    case 'kv.del': {
      const k = args.key as string;
      if (!s.kv.has(k)) return errOut('no such key');
      if (apply) s.kv.delete(k);
      return okOut();
    }
    case 'svc.start': return svcStart(s, args.name as string, apply) ? okOut() : errOut('already running');
    case 'svc.stop': return svcStop(s, args.name as string, apply) ? okOut() : errOut('not running');
    case 'cap.grant': {
      if (apply) { const a = String(args.actor); const set = s.caps.get(a) ?? new Set<string>(); set.add(args.cap as string); s.caps.set(a, set); }
      return okOut();
    }
    case 'cap.revoke': {
      if (apply) { const a = String(args.actor); const set = s.caps.get(a); if (set) { set.delete(args.cap as string); if (set.size === 0) s.caps.delete(a); } }
      return okOut();
    }
    case 'job.run': {
      const r = jobResult(args.name as string, args.rounds as number, args.seed as Uint8Array);
      if (apply) s.jobs = { count: s.jobs.count + 1, last: r };
      return { outcome: 'ok', bytes: r };
    }
    case 'sh': return runSh(s, args.line as string, apply);
    default: return errOut(`unknown action ${action}`);
  }
}

/** Orders strings by their UTF-8 bytes (the canonical order); UTF-16 order differs only past U+D7FF. */
function cmpUtf8(a: string, b: string): number {
  if (!/[\ud800-\uffff]/.test(a) && !/[\ud800-\uffff]/.test(b)) return a < b ? -1 : a > b ? 1 : 0;
  const x = utf8Bytes(a), y = utf8Bytes(b);
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return x.length - y.length;
}

export const osReducer: Reducer<OsState> = {
  domain: Domain.Os,
  name: 'os',
  init: () => ({
    caps: new Map(Object.entries(INITIAL_CAPS).map(([a, c]) => [a, new Set(c)])),
    services: new Map(), kv: new Map(), echoes: 0, jobs: { count: 0, last: new Uint8Array(32) }, errors: 0,
  }),
  apply(s, e: Entry, payload: Value | undefined) {
    if (e.kind !== Kind.Commit || e.domain !== Domain.Os) return s;
    const action = isMap(payload) ? getStr(payload, 'action') : undefined;
    const args = isMap(payload) ? payload.args : undefined;
    if (action === undefined || !isMap(args) || getInt(payload as ValueMap, 'id') === undefined || checkArgs(action, args) !== null) { s.errors++; return s; }
    run(s, action, args, true);
    return s;
  },
  needsPayload: (e) => e.kind === Kind.Commit && e.domain === Domain.Os,
  toValue(s) {
    const caps: ValueMap = {};
    for (const [a, set] of s.caps) caps[a] = [...set].sort(cmpUtf8);
    const services: ValueMap = {};
    for (const [n, v] of s.services) services[n] = { running: v.running, starts: v.starts };
    const kv: ValueMap = {};
    for (const [k, v] of s.kv) kv[k] = v;
    return { caps, services, kv, echoes: s.echoes, jobs: { count: s.jobs.count, last: s.jobs.last }, errors: s.errors };
  },
  clone: (s) => ({
    caps: new Map([...s.caps].map(([a, c]) => [a, new Set(c)])),
    services: new Map([...s.services].map(([n, v]) => [n, { ...v }])),
    kv: new Map(s.kv), echoes: s.echoes, jobs: { ...s.jobs }, errors: s.errors,
  }),
  check(s, p: Proposal): Rejection | null {
    const spec = ACTIONS[p.action];
    if (!spec) return { reason: 'unknown-action', detail: `the os domain has no action '${p.action}' (known: ${OS_ACTIONS.join(', ')})` };
    const bad = checkArgs(p.action, p.args);
    if (bad) return { reason: 'bad-args', detail: `${p.action}: ${bad}` };
    if (!hasCap(s, p.actor, spec.cap)) return { reason: 'missing-capability', detail: `actor ${p.actor} lacks capability '${spec.cap}' needed by ${p.action}` };
    return null;
  },
  execute: (before, p) => runOs(before, p.action, p.args, false),
};
