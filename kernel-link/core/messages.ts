// The messages of docs/kernel-link.md section 4: typed objects <-> frame payloads (one canonical
// Axiom value, a map). Decoding never throws; unknown keys are ignored, missing or mistyped keys
// make the message 'bad-message'.
import { decodeValue, encodeValue, isMap } from '../../axiom/value.ts';
import type { Proposal, Value, ValueMap } from '../../axiom/types.ts';

export const MsgType = {
  Hello: 0x01, Welcome: 0x02, Ping: 0x03, Pong: 0x04, Close: 0x05, Error: 0x06,
  Propose: 0x10, Result: 0x11, Subscribe: 0x20, Entries: 0x21, Credit: 0x22, Console: 0x30,
} as const;
export type MsgType = (typeof MsgType)[keyof typeof MsgType];
export const MSG_NAMES: Record<number, string> = Object.fromEntries(Object.entries(MsgType).map(([k, v]) => [v, k.toUpperCase()]));

export const PROTOCOL_VERSION = 1;

export type CloseReason = 'normal' | 'version' | 'protocol' | 'timeout' | 'shutdown' | 'reboot';
export type ErrorCode = 'version' | 'no-session' | 'unknown-type' | 'bad-message' | 'busy' | 'too-large' | 'ahead' | 'diverged' | 'gone' | 'internal';

export interface Hello { t: 'hello'; rid: number; min: number; max: number; client: string; maxFrame: number; consoleWindow: number; caps: string[] }
export interface Welcome { t: 'welcome'; rid: number; version: number; device: Uint8Array; boot: Uint8Array; os: string; head: number; maxFrame: number; maxRequests: number; caps: string[] }
export interface Ping { t: 'ping'; rid: number }
export interface Pong { t: 'pong'; rid: number; head: number }
export interface Close { t: 'close'; reason: string; detail: string }
export interface ErrorMsg { t: 'error'; rid: number; code: string; detail: string }
export interface Propose { t: 'propose'; rid: number; proposal: Proposal }
export interface ResultMsg { t: 'result'; rid: number; status: 'committed' | 'rejected' | 'duplicate'; of: 'committed' | 'rejected'; seq: number; receipt: number; reason: string; detail: string }
export interface Subscribe { t: 'subscribe'; rid: number; from: number; prev: Uint8Array; window: number }
export interface Entries { t: 'entries'; stream: number; seq: number; entries: Uint8Array[] }
export interface Credit { t: 'credit'; stream: number; limit: number }
export interface ConsoleMsg { t: 'console'; text: Uint8Array }
export type Message = Hello | Welcome | Ping | Pong | Close | ErrorMsg | Propose | ResultMsg | Subscribe | Entries | Credit | ConsoleMsg;

export interface MessageError { code: 'unknown-type' | 'bad-message'; type: number; rid: number; detail: string }
export type Decoded = { ok: true; msg: Message } | { ok: false; error: MessageError };

/** The value body of a message (its frame payload is encodeValue of this). */
export function messageValue(m: Message): { type: number; value: ValueMap } {
  switch (m.t) {
    case 'hello': return { type: MsgType.Hello, value: { caps: m.caps, client: m.client, console_window: m.consoleWindow, max: m.max, max_frame: m.maxFrame, min: m.min, rid: m.rid } };
    case 'welcome': return { type: MsgType.Welcome, value: { boot: m.boot, caps: m.caps, device: m.device, head: m.head, max_frame: m.maxFrame, max_requests: m.maxRequests, os: m.os, rid: m.rid, version: m.version } };
    case 'ping': return { type: MsgType.Ping, value: { rid: m.rid } };
    case 'pong': return { type: MsgType.Pong, value: { head: m.head, rid: m.rid } };
    case 'close': return { type: MsgType.Close, value: { detail: m.detail, reason: m.reason } };
    case 'error': return { type: MsgType.Error, value: { code: m.code, detail: m.detail, rid: m.rid } };
    case 'propose': { const p = m.proposal; return { type: MsgType.Propose, value: { action: p.action, actor: p.actor, args: p.args, domain: p.domain, id: p.id, rid: m.rid, time: p.time } }; }
    case 'result': return { type: MsgType.Result, value: { detail: m.detail, of: m.of, reason: m.reason, receipt: m.receipt, rid: m.rid, seq: m.seq, status: m.status } };
    case 'subscribe': return { type: MsgType.Subscribe, value: { from: m.from, prev: m.prev, rid: m.rid, window: m.window } };
    case 'entries': return { type: MsgType.Entries, value: { entries: m.entries, seq: m.seq, stream: m.stream } };
    case 'credit': return { type: MsgType.Credit, value: { limit: m.limit, stream: m.stream } };
    case 'console': return { type: MsgType.Console, value: { text: m.text } };
  }
}

// ENTRIES is the hot path (the whole log streams through it): encoded directly, no Value tree.
const K_ENTRIES = [0x65, 0x6e, 0x74, 0x72, 0x69, 0x65, 0x73], K_SEQ = [0x73, 0x65, 0x71], K_STREAM = [0x73, 0x74, 0x72, 0x65, 0x61, 0x6d];

/**
 * The frame payload of ENTRIES in one buffer, byte-identical to encodeValue of its map
 * `{entries: [bytes...], seq, stream}` (keys sorted), written straight into one buffer (`scratch`
 * when it is large enough: the result is then a view of it): the entry stream's hot path copies
 * each entry exactly once here, and once more when stuffing.
 */
export function encodeEntriesPayload(stream: number, seq: number, entries: Uint8Array[], scratch?: Uint8Array): Uint8Array {
  let n = ENTRIES_HEAD + ENTRIES_TAIL;
  for (const e of entries) n += 5 + e.length;
  // A caller that copies the payload on at once (the server stuffs it into the frame) lends a
  // scratch buffer, so a stream does not allocate and zero a fresh payload for every frame.
  const b = scratch && scratch.length >= n ? scratch.subarray(0, n) : new Uint8Array(n);
  const v = new DataView(b.buffer, b.byteOffset, n);
  writeEntriesHead(b, v, 0, entries.length);
  let at = 21;
  for (const e of entries) {
    const len = e.length;
    b[at] = 0x05; b[at + 1] = len & 0xff; b[at + 2] = (len >>> 8) & 0xff; b[at + 3] = (len >>> 16) & 0xff; b[at + 4] = len >>> 24;
    b.set(e, at + 5);
    at += 5 + len;
  }
  writeEntriesTail(b, v, at, seq, stream);
  return b;
}

/** Bytes before the first entry of an ENTRIES payload (map of 3, key `entries`, list head). */
export const ENTRIES_HEAD = 21;
/** Bytes after the last entry (keys `seq` and `stream` with their ints). */
export const ENTRIES_TAIL = 35;
/** Writes the ENTRIES payload's head at `at` (`v` views the same bytes as `b`). */
export function writeEntriesHead(b: Uint8Array, v: DataView, at: number, count: number): void {
  b[at] = 0x08; v.setUint32(at + 1, 3, true); v.setUint32(at + 5, 7, true); b.set(K_ENTRIES, at + 9);
  b[at + 16] = 0x07; v.setUint32(at + 17, count, true);
}
/** Writes the ENTRIES payload's tail (seq and stream) at `at`. */
export function writeEntriesTail(b: Uint8Array, v: DataView, at: number, seq: number, stream: number): void {
  v.setUint32(at, 3, true); b.set(K_SEQ, at + 4); b[at + 7] = 0x03; v.setBigInt64(at + 8, BigInt(seq), true);
  v.setUint32(at + 16, 6, true); b.set(K_STREAM, at + 20); b[at + 26] = 0x03; v.setBigInt64(at + 27, BigInt(stream), true);
}

/** Frame type and payload bytes of a message. Throws only for a value no encoding exists for (a caller bug). */
export function encodeMessage(m: Message): { type: number; payload: Uint8Array } {
  if (m.t === 'entries') return { type: MsgType.Entries, payload: encodeEntriesPayload(m.stream, m.seq, m.entries) };
  const { type, value } = messageValue(m);
  return { type, payload: encodeValue(value) };
}

class Bad { constructor(readonly detail: string) {} }
const U32_MAX = 0xffffffff;

function int(m: ValueMap, k: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const v = m[k];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new Bad(`'${k}' must be an int in ${min}..${max}`);
  return v;
}
function str(m: ValueMap, k: string): string { const v = m[k]; if (typeof v !== 'string') throw new Bad(`'${k}' must be a string`); return v; }
function bytes(m: ValueMap, k: string, len?: number): Uint8Array {
  const v = m[k];
  if (!(v instanceof Uint8Array) || (len !== undefined && v.length !== len)) throw new Bad(`'${k}' must be bytes${len !== undefined ? `(${len})` : ''}`);
  return v;
}
function strList(m: ValueMap, k: string): string[] {
  const v = m[k];
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new Bad(`'${k}' must be a list of strings`);
  return v as string[];
}
function map(m: ValueMap, k: string): ValueMap { const v = m[k]; if (!isMap(v)) throw new Bad(`'${k}' must be a map`); return v; }
function oneOf<T extends string>(m: ValueMap, k: string, options: readonly T[]): T {
  const v = str(m, k);
  if (!(options as readonly string[]).includes(v)) throw new Bad(`'${k}' must be one of ${options.join(', ')}`);
  return v as T;
}

/**
 * ENTRIES in the exact layout encodeEntriesPayload writes (what every canonical ENTRIES without
 * extra keys is), parsed without building a Value tree: entries are views into `p`, no copies.
 * Returns null for anything else (the generic decoder then decides).
 */
function fastEntries(p: Uint8Array): Entries | null {
  const n = p.length;
  if (n < 56 || p[0] !== 0x08) return null;
  const dv = new DataView(p.buffer, p.byteOffset, n);
  if (dv.getUint32(1, true) !== 3 || dv.getUint32(5, true) !== 7) return null;
  for (let i = 0; i < 7; i++) if (p[9 + i] !== K_ENTRIES[i]) return null;
  if (p[16] !== 0x07) return null;
  const count = dv.getUint32(17, true);
  if (count > n) return null;
  let at = 21;
  const entries: Uint8Array[] = new Array(count);
  for (let i = 0; i < count; i++) {
    if (at + 5 > n || p[at] !== 0x05) return null;
    const len = dv.getUint32(at + 1, true);
    at += 5;
    if (len > n - at) return null;
    entries[i] = p.subarray(at, at + len);
    at += len;
  }
  if (n - at !== 35) return null;
  if (dv.getUint32(at, true) !== 3 || p[at + 4] !== K_SEQ[0] || p[at + 5] !== K_SEQ[1] || p[at + 6] !== K_SEQ[2] || p[at + 7] !== 0x03) return null;
  const seq = dv.getBigInt64(at + 8, true);
  at += 16;
  if (dv.getUint32(at, true) !== 6) return null;
  for (let i = 0; i < 6; i++) if (p[at + 4 + i] !== K_STREAM[i]) return null;
  if (p[at + 10] !== 0x03) return null;
  const stream = dv.getBigInt64(at + 11, true);
  if (seq < 0n || seq > BigInt(Number.MAX_SAFE_INTEGER) || stream < 0n || stream > 0xffffffffn) return null;
  return { t: 'entries', stream: Number(stream), seq: Number(seq), entries };
}

/** A message from a frame. Never throws. */
export function decodeMessage(type: number, payload: Uint8Array): Decoded {
  if (type === MsgType.Entries) { const f = fastEntries(payload); if (f) return { ok: true, msg: f }; }
  const v = decodeValue(payload);
  const body: Value | undefined = v.ok ? v.value : undefined;
  const m = isMap(body) ? body : undefined;
  const rid = m && typeof m.rid === 'number' && Number.isInteger(m.rid) && m.rid >= 0 && m.rid <= U32_MAX ? m.rid : 0;
  if (!MSG_NAMES[type]) return { ok: false, error: { code: 'unknown-type', type, rid, detail: `unknown message type 0x${type.toString(16).padStart(2, '0')}` } };
  if (!v.ok) return { ok: false, error: { code: 'bad-message', type, rid, detail: `${MSG_NAMES[type]} payload is not a canonical value: ${v.error.message}` } };
  if (!m) return { ok: false, error: { code: 'bad-message', type, rid, detail: `${MSG_NAMES[type]} payload is not a map` } };
  try {
    return { ok: true, msg: parse(type, m) };
  } catch (e) {
    if (e instanceof Bad) return { ok: false, error: { code: 'bad-message', type, rid, detail: `${MSG_NAMES[type]}: ${e.detail}` } };
    return { ok: false, error: { code: 'bad-message', type, rid, detail: `${MSG_NAMES[type]}: ${String(e)}` } };
  }
}

function parse(type: number, m: ValueMap): Message {
  switch (type) {
    case MsgType.Hello: return { t: 'hello', rid: int(m, 'rid', 0, U32_MAX), min: int(m, 'min'), max: int(m, 'max'), client: str(m, 'client'), maxFrame: int(m, 'max_frame'), consoleWindow: int(m, 'console_window'), caps: strList(m, 'caps') };
    case MsgType.Welcome: return { t: 'welcome', rid: int(m, 'rid', 0, U32_MAX), version: int(m, 'version'), device: bytes(m, 'device', 16), boot: bytes(m, 'boot', 16), os: str(m, 'os'), head: int(m, 'head'), maxFrame: int(m, 'max_frame'), maxRequests: int(m, 'max_requests', 1), caps: strList(m, 'caps') };
    case MsgType.Ping: return { t: 'ping', rid: int(m, 'rid', 0, U32_MAX) };
    case MsgType.Pong: return { t: 'pong', rid: int(m, 'rid', 0, U32_MAX), head: int(m, 'head') };
    case MsgType.Close: return { t: 'close', reason: str(m, 'reason'), detail: str(m, 'detail') };
    case MsgType.Error: return { t: 'error', rid: int(m, 'rid', 0, U32_MAX), code: str(m, 'code'), detail: str(m, 'detail') };
    case MsgType.Propose: return { t: 'propose', rid: int(m, 'rid', 1, U32_MAX), proposal: { actor: int(m, 'actor'), id: int(m, 'id'), domain: int(m, 'domain', 0, 0xffff), action: str(m, 'action'), args: map(m, 'args'), time: int(m, 'time') } };
    case MsgType.Result: return { t: 'result', rid: int(m, 'rid', 0, U32_MAX), status: oneOf(m, 'status', ['committed', 'rejected', 'duplicate'] as const), of: oneOf(m, 'of', ['committed', 'rejected'] as const), seq: int(m, 'seq'), receipt: int(m, 'receipt', -1), reason: str(m, 'reason'), detail: str(m, 'detail') };
    case MsgType.Subscribe: return { t: 'subscribe', rid: int(m, 'rid', 1, U32_MAX), from: int(m, 'from'), prev: bytes(m, 'prev', 32), window: int(m, 'window') };
    case MsgType.Entries: {
      const list = m.entries;
      if (!Array.isArray(list) || !list.every((x) => x instanceof Uint8Array)) throw new Bad(`'entries' must be a list of bytes`);
      return { t: 'entries', stream: int(m, 'stream', 0, U32_MAX), seq: int(m, 'seq'), entries: list as Uint8Array[] };
    }
    case MsgType.Credit: return { t: 'credit', stream: int(m, 'stream', 0, U32_MAX), limit: int(m, 'limit') };
    case MsgType.Console: return { t: 'console', text: bytes(m, 'text') };
  }
  throw new Bad('unknown type');
}
