// The canonical value encoding of docs/axiom.md section 1. Decoding never throws and never
// allocates more than the input's size: every length is checked against the bytes left.
import { err, ok, type AxiomError, type Result, type Value, type ValueMap } from './types.ts';

export const MAX_DEPTH = 32;
const T_NULL = 0, T_FALSE = 1, T_TRUE = 2, T_INT = 3, T_FLOAT = 4, T_BYTES = 5, T_STRING = 6, T_LIST = 7, T_MAP = 8;
const I64_MIN = -(2n ** 63n), I64_MAX = 2n ** 63n - 1n;
const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Growable byte writer shared by the encoders. */
export class Writer {
  buf: Uint8Array;
  view: DataView;
  len = 0;
  constructor(cap = 256) { this.buf = new Uint8Array(cap); this.view = new DataView(this.buf.buffer); }
  private grow(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + n) cap *= 2;
    const b = new Uint8Array(cap);
    b.set(this.buf.subarray(0, this.len));
    this.buf = b; this.view = new DataView(b.buffer);
  }
  u8(v: number): void { this.grow(1); this.buf[this.len++] = v; }
  u16(v: number): void { this.grow(2); this.view.setUint16(this.len, v, true); this.len += 2; }
  u32(v: number): void { this.grow(4); this.view.setUint32(this.len, v, true); this.len += 4; }
  u64(v: number): void { this.grow(8); this.view.setBigUint64(this.len, BigInt(v), true); this.len += 8; }
  i64(v: bigint): void { this.grow(8); this.view.setBigInt64(this.len, v, true); this.len += 8; }
  f64(v: number): void { this.grow(8); this.view.setFloat64(this.len, v, true); this.len += 8; }
  bytes(b: Uint8Array): void { this.grow(b.length); this.buf.set(b, this.len); this.len += b.length; }
  done(): Uint8Array { return this.buf.slice(0, this.len); }
}

const compareBytes = (a: Uint8Array, b: Uint8Array): number => {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
};

/** Thrown only for values that cannot be encoded (a bug in the caller, not bad bytes). */
export class EncodeError extends Error { readonly kind = 'bug' as const }

function writeValue(w: Writer, v: Value, depth: number): void {
  if (depth > MAX_DEPTH) throw new EncodeError(`value nested deeper than ${MAX_DEPTH}`);
  if (v === null) return w.u8(T_NULL);
  switch (typeof v) {
    case 'boolean': return w.u8(v ? T_TRUE : T_FALSE);
    case 'bigint':
      if (v < I64_MIN || v > I64_MAX) throw new EncodeError(`int ${v} is outside i64`);
      w.u8(T_INT); return w.i64(v);
    case 'number':
      if (Number.isInteger(v) && v >= -(2 ** 63) && v < 2 ** 63) { w.u8(T_INT); return w.i64(BigInt(v)); }
      w.u8(T_FLOAT); return w.f64(Number.isNaN(v) ? NaN : v);
    case 'string': { const b = utf8.encode(v); w.u8(T_STRING); w.u32(b.length); return w.bytes(b); }
    case 'object': {
      if (v instanceof Uint8Array) { w.u8(T_BYTES); w.u32(v.length); return w.bytes(v); }
      if (Array.isArray(v)) { w.u8(T_LIST); w.u32(v.length); for (const x of v) writeValue(w, x, depth + 1); return; }
      const keys = Object.keys(v).map((k) => [k, utf8.encode(k)] as const).sort((a, b) => compareBytes(a[1], b[1]));
      w.u8(T_MAP); w.u32(keys.length);
      for (const [k, kb] of keys) {
        const x = (v as ValueMap)[k];
        if (x === undefined) throw new EncodeError(`map key '${k}' is undefined`);
        w.u32(kb.length); w.bytes(kb); writeValue(w, x, depth + 1);
      }
      return;
    }
    default: throw new EncodeError(`cannot encode ${typeof v}`);
  }
}

/** Canonical encoding of a value. Throws EncodeError only for values no encoding exists for. */
export function encodeValue(v: Value, w = new Writer()): Uint8Array {
  writeValue(w, v, 1);
  return w.done();
}
/** Appends the encoding of `v` to `w` (no copy). */
export function writeValueTo(w: Writer, v: Value): void { writeValue(w, v, 1); }

class Bad { constructor(readonly message: string, readonly offset: number) {} }

class Reader {
  pos = 0;
  constructor(readonly b: Uint8Array) {}
  need(n: number): void { if (n > this.b.length - this.pos) throw new Bad(`needs ${n} bytes at offset ${this.pos}, only ${this.b.length - this.pos} left`, this.pos); }
  u32(): number { const b = this.b, p = this.pos; this.pos += 4; return (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24)) >>> 0; }
  u32At(p: number): number { const b = this.b; return (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24)) >>> 0; }
}
const F64 = new Float64Array(1), F64B = new Uint8Array(F64.buffer);

function readValue(r: Reader, depth: number): Value {
  if (depth > MAX_DEPTH) throw new Bad(`nested deeper than ${MAX_DEPTH}`, r.pos);
  r.need(1);
  const tag = r.b[r.pos++]!;
  switch (tag) {
    case T_NULL: return null;
    case T_FALSE: return false;
    case T_TRUE: return true;
    case T_INT: {
      r.need(8);
      const lo = r.u32At(r.pos), hi = r.u32At(r.pos + 4) | 0;
      // |v| < 2^53 (safe): a number without BigInt; otherwise a bigint.
      if (hi >= -0x200000 && hi < 0x200000 && !(hi === -0x200000 && lo === 0)) { r.pos += 8; return hi * 0x100000000 + lo; }
      let v = (BigInt(hi) << 32n) | BigInt(lo); r.pos += 8;
      if (v >= -9007199254740991n && v <= 9007199254740991n) return Number(v);
      return v;
    }
    case T_FLOAT: {
      r.need(8);
      const at = r.pos;
      for (let i = 0; i < 8; i++) F64B[i] = r.b[at + i]!;
      const v = F64[0]!; r.pos += 8;
      if (Number.isNaN(v)) {
        if (r.u32At(at) !== 0 || r.u32At(at + 4) !== 0x7ff80000) throw new Bad('non-canonical NaN', at);
      } else if (Number.isInteger(v) && v >= -(2 ** 63) && v < 2 ** 63) throw new Bad(`float ${v} is integral: must be an int`, at);
      return v;
    }
    case T_BYTES: { r.need(4); const n = r.u32(); r.need(n); const v = r.b.slice(r.pos, r.pos + n); r.pos += n; return v; }
    case T_STRING: return readString(r);
    case T_LIST: {
      r.need(4); const n = r.u32();
      r.need(n); // every element is at least one byte: a count larger than the bytes left is a lie
      const out: Value[] = [];
      for (let i = 0; i < n; i++) out.push(readValue(r, depth + 1));
      return out;
    }
    case T_MAP: {
      r.need(4); const n = r.u32();
      r.need(n * 5);
      const out: ValueMap = {};
      let prev: Uint8Array | null = null;
      for (let i = 0; i < n; i++) {
        const at = r.pos;
        r.need(4); const kl = r.u32(); r.need(kl);
        const kb = r.b.subarray(r.pos, r.pos + kl);
        if (prev && compareBytes(prev, kb) >= 0) throw new Bad('map keys are not unique and ascending', at);
        const k = decodeUtf8(kb, r.pos); r.pos += kl; prev = kb;
        const x = readValue(r, depth + 1);
        if (k === '__proto__') Object.defineProperty(out, k, { value: x, enumerable: true, writable: true, configurable: true });
        else out[k] = x;
      }
      return out;
    }
    default: throw new Bad(`unknown value tag 0x${tag.toString(16)}`, r.pos - 1);
  }
}

function decodeUtf8(b: Uint8Array, at: number): string {
  // Short ASCII strings (most keys and names) skip TextDecoder's per-call cost.
  if (b.length <= 64) {
    let ascii = true;
    for (let i = 0; i < b.length; i++) if (b[i]! >= 0x80) { ascii = false; break; }
    if (ascii) { let s = ''; for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]!); return s; }
  }
  try { return utf8Strict.decode(b); } catch { throw new Bad('invalid UTF-8', at); }
}
function readString(r: Reader): string {
  r.need(4); const n = r.u32(); r.need(n);
  const s = decodeUtf8(r.b.subarray(r.pos, r.pos + n), r.pos); r.pos += n; return s;
}

/** Decodes exactly one canonical value filling all of `bytes`. Never throws. */
export function decodeValue(bytes: Uint8Array): Result<Value> {
  const r = new Reader(bytes);
  try {
    const v = readValue(r, 1);
    if (r.pos !== bytes.length) return err(badValue(`${bytes.length - r.pos} trailing bytes after the value`, r.pos));
    return ok(v);
  } catch (e) {
    if (e instanceof Bad) return err(badValue(e.message, e.offset));
    if (e instanceof RangeError) return err(badValue(`value too large: ${e.message}`, r.pos));
    return err({ kind: 'bug', reason: 'bad-encoding', message: `value decoder failed: ${String(e)}` });
  }
}

const badValue = (message: string, offset: number): AxiomError => ({ kind: 'bad-input', reason: 'bad-encoding', message: `bad value encoding: ${message}`, offset });

// Small typed accessors for reducers and tools: a map's field of the expected type, or undefined.
export const isMap = (v: Value | undefined): v is ValueMap => typeof v === 'object' && v !== null && !(v instanceof Uint8Array) && !Array.isArray(v);
export const getStr = (m: ValueMap, k: string): string | undefined => (typeof m[k] === 'string' ? (m[k] as string) : undefined);
export const getInt = (m: ValueMap, k: string): number | undefined => (typeof m[k] === 'number' && Number.isInteger(m[k]) ? (m[k] as number) : undefined);
export const getBytes = (m: ValueMap, k: string): Uint8Array | undefined => (m[k] instanceof Uint8Array ? (m[k] as Uint8Array) : undefined);
export const utf8Bytes = (s: string): Uint8Array => utf8.encode(s);
/** UTF-8 length of a string without encoding it (lone surrogates count as U+FFFD, 3 bytes). */
export function utf8Len(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) { n += 4; i++; }
    else n += 3;
  }
  return n;
}
export const fromUtf8 = (b: Uint8Array): string => new TextDecoder().decode(b);
