// The bridge: everything the renderer may ask of its host and every event it receives.
// app/ implements it twice (Electron preload over IPC, WebSocket in web mode); both sides
// validate every message against the same schemas below, so a compromised or buggy renderer
// can only ever send these shapes. No DOM and no Node APIs here: app/ imports this file too.

/** A JSON value as it crosses the bridge. Bytes travel as base64 strings. */
export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

export type BridgeErrorKind = 'bad-input' | 'protocol' | 'timeout' | 'disconnected' | 'bug';
export interface BridgeError { kind: BridgeErrorKind; message: string }

/** Largest request (serialized JSON) a host accepts; larger ones are rejected unread. */
export const MAX_REQUEST_BYTES = 64 * 1024;
export const PROTOCOL_VERSION = 1;

export type DeviceTarget = 'hosted' | 'qemu' | 'serial';
export type LinkState = 'connecting' | 'up' | 'down';

/** What the System and Devices windows show about one device. */
export interface DeviceInfo {
  id: string;
  label: string;
  target: DeviceTarget;
  link: LinkState;
  /** Hex device id and boot id from the BOOT entry, '' until known. */
  deviceId: string;
  bootId: string;
  /** Seq of the newest entry the host has seen, -1 when none. */
  seq: number;
  /** Hex state hashes per domain name at `seq` as last reported by the device, when known. */
  stateHashes: Record<string, string>;
  /** Seq of the newest CHECKPOINT, -1 when none. */
  lastCheckpoint: number;
  /** Why the link is down, when it is. */
  error?: string;
}

export interface ProposeResult {
  status: 'committed' | 'rejected' | 'duplicate';
  seq: number;
  receiptSeq?: number;
  /** For a rejection: the reason code and detail. */
  reason?: string;
}

export interface HostCapabilities {
  /** Whether a QEMU guest can be booted on this host (kernel image and qemu present). */
  qemu: boolean;
  qemuWhyNot?: string;
  /** Serial ports the host can open. */
  serialPorts: string[];
}

/** Requests: channel → [argument type, result type]. */
export interface Requests {
  hello: [Record<string, never>, { version: number; mode: 'web' | 'electron'; devices: DeviceInfo[]; capabilities: HostCapabilities }];
  'device.connect': [{ target: DeviceTarget; path?: string }, DeviceInfo];
  'device.propose': [{ device: string; domain: number; action: string; args: { [k: string]: Json } }, ProposeResult];
  /** Encoded entries (base64) from seq `from`, at most `count` of them. */
  'device.log': [{ device: string; from: number; count: number }, { entries: string[] }];
  'device.info': [{ device: string }, DeviceInfo];
  /** The console text the host kept for a device (the last 64 KiB), for a window opened late. */
  'device.console': [{ device: string }, { text: string }];
}

/** Events from the host. */
export interface Events {
  /** Newly committed entries, encoded (base64), in seq order. */
  'device.entries': { device: string; entries: string[] };
  /** Console text as it arrives from the device (not Axiom entries). */
  'device.console': { device: string; text: string };
  'device.status': DeviceInfo;
}

export type RequestChannel = keyof Requests;
export type EventChannel = keyof Events;
export type ArgsOf<C extends RequestChannel> = Requests[C][0];
export type ResultOf<C extends RequestChannel> = Requests[C][1];

/** What the renderer needs from its host. */
export interface Bridge {
  request<C extends RequestChannel>(channel: C, args: ArgsOf<C>): Promise<ResultOf<C>>;
  on<C extends EventChannel>(channel: C, handler: (data: Events[C]) => void): () => void;
  readonly mode: 'web' | 'electron';
}

// ---------------------------------------------------------------------------------------------
// Schemas. Deliberately tiny: every field is named, typed and bounded; unknown keys are errors.

type Field =
  | { t: 'string'; min?: number; max: number; optional?: boolean }
  | { t: 'int'; min: number; max: number; optional?: boolean }
  | { t: 'enum'; values: readonly string[]; optional?: boolean }
  | { t: 'jsonmap'; maxDepth: number; maxKeys: number; optional?: boolean };

type Schema = Record<string, Field>;

export const REQUEST_SCHEMAS: { [C in RequestChannel]: Schema } = {
  hello: {},
  'device.connect': { target: { t: 'enum', values: ['hosted', 'qemu', 'serial'] }, path: { t: 'string', min: 1, max: 256, optional: true } },
  'device.propose': {
    device: { t: 'string', min: 1, max: 64 },
    domain: { t: 'int', min: 0, max: 3 },
    action: { t: 'string', min: 1, max: 64 },
    args: { t: 'jsonmap', maxDepth: 8, maxKeys: 64 },
  },
  'device.log': { device: { t: 'string', min: 1, max: 64 }, from: { t: 'int', min: 0, max: Number.MAX_SAFE_INTEGER }, count: { t: 'int', min: 1, max: 4096 } },
  'device.info': { device: { t: 'string', min: 1, max: 64 } },
  'device.console': { device: { t: 'string', min: 1, max: 64 } },
};

export const REQUEST_CHANNELS = Object.keys(REQUEST_SCHEMAS) as RequestChannel[];
export const EVENT_CHANNELS: EventChannel[] = ['device.entries', 'device.console', 'device.status'];

export function isRequestChannel(c: unknown): c is RequestChannel {
  return typeof c === 'string' && Object.prototype.hasOwnProperty.call(REQUEST_SCHEMAS, c);
}
export function isEventChannel(c: unknown): c is EventChannel {
  return typeof c === 'string' && (EVENT_CHANNELS as string[]).includes(c);
}

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && (Object.getPrototypeOf(v) === Object.prototype || Object.getPrototypeOf(v) === null);

function checkJson(v: unknown, depth: number, maxDepth: number, budget: { keys: number }): string | null {
  if (depth > maxDepth) return `nested deeper than ${maxDepth}`;
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return null;
  if (typeof v === 'number') return Number.isFinite(v) ? null : 'numbers must be finite';
  if (Array.isArray(v)) {
    if ((budget.keys -= v.length) < 0) return 'too many items';
    for (const x of v) { const e = checkJson(x, depth + 1, maxDepth, budget); if (e) return e; }
    return null;
  }
  if (isPlainObject(v)) {
    const ks = Object.keys(v);
    if ((budget.keys -= ks.length) < 0) return 'too many keys';
    for (const k of ks) { const e = checkJson(v[k], depth + 1, maxDepth, budget); if (e) return `${k}: ${e}`; }
    return null;
  }
  return `unsupported type ${typeof v}`;
}

/** Validates `args` for `channel`; returns null when they are well formed, else a message. */
export function validateArgs(channel: RequestChannel, args: unknown): string | null {
  const schema = REQUEST_SCHEMAS[channel];
  if (!isPlainObject(args)) return 'arguments must be an object';
  for (const k of Object.keys(args)) if (!Object.prototype.hasOwnProperty.call(schema, k)) return `unknown argument "${k}"`;
  for (const [k, f] of Object.entries(schema)) {
    const v = args[k];
    if (v === undefined) { if (f.optional) continue; return `missing argument "${k}"`; }
    switch (f.t) {
      case 'string': {
        if (typeof v !== 'string') return `"${k}" must be a string`;
        if (v.length < (f.min ?? 0) || v.length > f.max) return `"${k}" must be ${f.min ?? 0}..${f.max} characters`;
        break;
      }
      case 'int':
        if (typeof v !== 'number' || !Number.isInteger(v) || v < f.min || v > f.max) return `"${k}" must be an integer in ${f.min}..${f.max}`;
        break;
      case 'enum':
        if (typeof v !== 'string' || !f.values.includes(v)) return `"${k}" must be one of ${f.values.join(', ')}`;
        break;
      case 'jsonmap': {
        if (!isPlainObject(v)) return `"${k}" must be an object`;
        const e = checkJson(v, 1, f.maxDepth, { keys: f.maxKeys });
        if (e) return `"${k}": ${e}`;
        break;
      }
    }
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// Wire messages (WebSocket text frames; Electron IPC carries the same objects).

export type WireIn = { t: 'req'; id: number; ch: string; args: unknown };
export type WireOut =
  | { t: 'res'; id: number; ok: true; value: unknown }
  | { t: 'res'; id: number; ok: false; error: BridgeError }
  | { t: 'ev'; ch: EventChannel; data: unknown };

/** Parses one raw request message. Never throws. */
export function parseWireIn(text: string): { ok: true; msg: WireIn } | { ok: false; id: number | null; error: BridgeError } {
  if (text.length > MAX_REQUEST_BYTES) return { ok: false, id: null, error: { kind: 'bad-input', message: `request larger than ${MAX_REQUEST_BYTES} bytes` } };
  let m: unknown;
  try { m = JSON.parse(text); } catch { return { ok: false, id: null, error: { kind: 'bad-input', message: 'request is not JSON' } }; }
  if (!isPlainObject(m) || m.t !== 'req') return { ok: false, id: null, error: { kind: 'protocol', message: 'expected {t:"req", id, ch, args}' } };
  const id = typeof m.id === 'number' && Number.isSafeInteger(m.id) && m.id >= 0 ? m.id : null;
  if (id === null) return { ok: false, id: null, error: { kind: 'protocol', message: 'request id must be a non-negative integer' } };
  return { ok: true, msg: { t: 'req', id, ch: typeof m.ch === 'string' ? m.ch : '', args: m.args } };
}

// Base64 without Buffer or DOM (the layer is shared with app/ and runs in browsers and Node).
const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const B64_INV = (() => { const t = new Int16Array(128).fill(-1); for (let i = 0; i < 64; i++) t[B64.charCodeAt(i)] = i; return t; })();

export function toBase64(b: Uint8Array): string {
  let s = '';
  let i = 0;
  for (; i + 2 < b.length; i += 3) {
    const n = (b[i]! << 16) | (b[i + 1]! << 8) | b[i + 2]!;
    s += B64[n >> 18]! + B64[(n >> 12) & 63]! + B64[(n >> 6) & 63]! + B64[n & 63]!;
  }
  if (i < b.length) {
    const n = (b[i]! << 16) | ((b[i + 1] ?? 0) << 8);
    s += B64[n >> 18]! + B64[(n >> 12) & 63]! + (i + 1 < b.length ? B64[(n >> 6) & 63]! : '=') + '=';
  }
  return s;
}

/** Decodes base64; null when it is not canonical base64. */
export function fromBase64(s: string): Uint8Array | null {
  if (s.length % 4 !== 0) return null;
  const pad = s.endsWith('==') ? 2 : s.endsWith('=') ? 1 : 0;
  const out = new Uint8Array((s.length / 4) * 3 - pad);
  let o = 0;
  for (let i = 0; i < s.length; i += 4) {
    let n = 0;
    for (let j = 0; j < 4; j++) {
      const c = s.charCodeAt(i + j);
      if (c === 61 /* = */ && i + j >= s.length - pad) { n <<= 6; continue; }
      const v = c < 128 ? B64_INV[c]! : -1;
      if (v < 0) return null;
      n = (n << 6) | v;
    }
    if (o < out.length) out[o++] = (n >> 16) & 255;
    if (o < out.length) out[o++] = (n >> 8) & 255;
    if (o < out.length) out[o++] = n & 255;
  }
  return out;
}

export const toHex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
