// Entry encoding (docs/axiom.md section 2): a fixed 64-byte little-endian header, then the payload.
import { blake3 } from './hash.ts';
import { scanValue } from './scan.ts';
import { ENTRY_HEADER_BYTES, ENTRY_VERSION, HASH_BYTES, KIND_NAMES, MAX_PAYLOAD, err, ok, type AxiomError, type Entry, type Result } from './types.ts';

export const GENESIS = new Uint8Array(HASH_BYTES);
const MAX_U64_SAFE = Number.MAX_SAFE_INTEGER;

/** Encodes an entry. Throws only on a caller bug (out-of-range field). */
export function encodeEntry(e: Entry): Uint8Array {
  if (e.payload.length > MAX_PAYLOAD) throw new RangeError(`payload of ${e.payload.length} bytes exceeds ${MAX_PAYLOAD}`);
  if (e.prev.length !== HASH_BYTES) throw new RangeError('prev must be 32 bytes');
  for (const f of ['seq', 'time', 'actor'] as const) {
    const v = e[f];
    if (!Number.isInteger(v) || v < 0 || v > MAX_U64_SAFE) throw new RangeError(`${f} ${v} is not a u64 this implementation can hold`);
  }
  const out = new Uint8Array(ENTRY_HEADER_BYTES + e.payload.length);
  const dv = new DataView(out.buffer);
  out[0] = e.version; out[1] = e.kind;
  dv.setUint16(2, e.domain, true);
  dv.setBigUint64(4, BigInt(e.seq), true);
  dv.setBigUint64(12, BigInt(e.time), true);
  dv.setBigUint64(20, BigInt(e.actor), true);
  out.set(e.prev, 28);
  dv.setUint32(60, e.payload.length, true);
  out.set(e.payload, 64);
  return out;
}

/** The entry's hash: BLAKE3 over its whole encoding. */
export const entryHash = (encoded: Uint8Array): Uint8Array => blake3(encoded);

const bad = (message: string, seq?: number, offset?: number): AxiomError => ({ kind: 'bad-input', reason: 'bad-encoding', message, ...(seq !== undefined ? { seq } : {}), ...(offset !== undefined ? { offset } : {}) });

const u32 = (b: Uint8Array, p: number): number => (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24)) >>> 0;
/** A u64 field as a number, or -1 beyond 2^53. */
export function u64At(b: Uint8Array, at: number): number {
  const hi = u32(b, at + 4);
  return hi > 0x1fffff ? -1 : hi * 0x100000000 + u32(b, at);
}

/** Reads the header fields without decoding the payload (the verifier's hot path). */
export interface EntryHeader { version: number; kind: number; domain: number; seq: number; time: number; actor: number; length: number }
export function readHeader(b: Uint8Array): Result<EntryHeader> {
  if (b.length < ENTRY_HEADER_BYTES) return err(bad(`entry is ${b.length} bytes, shorter than its 64-byte header`));
  const seq = u64At(b, 4), time = u64At(b, 12), actor = u64At(b, 20);
  const length = u32(b, 60);
  if (seq < 0) return err(bad('seq is beyond 2^53'));
  if (b[0] !== ENTRY_VERSION) return err({ kind: 'bad-input', reason: 'unknown-version', message: `entry version ${b[0]} is not supported (this reader knows version ${ENTRY_VERSION})`, seq });
  if (!(b[1]! in KIND_NAMES)) return err(bad(`unknown entry kind ${b[1]}`, seq));
  if (time < 0 || actor < 0) return err(bad('time or actor is beyond 2^53', seq));
  if (length > MAX_PAYLOAD) return err({ kind: 'bad-input', reason: 'too-large', message: `payload length ${length} exceeds the ${MAX_PAYLOAD}-byte limit`, seq });
  if (length !== b.length - ENTRY_HEADER_BYTES) return err(bad(`payload length field says ${length} bytes, entry holds ${b.length - ENTRY_HEADER_BYTES}`, seq));
  return ok({ version: b[0]!, kind: b[1]!, domain: b[2]! | (b[3]! << 8), seq, time, actor, length });
}

/** Decodes an entry and checks its payload is one canonical value. Never throws. */
export function decodeEntry(b: Uint8Array): Result<Entry> {
  const h = readHeader(b);
  if (!h.ok) return h;
  const bad = scanValue(b, ENTRY_HEADER_BYTES, b.length);
  if (bad) return err({ kind: 'bad-input', reason: 'bad-encoding', seq: h.value.seq, message: `entry ${h.value.seq}: bad value encoding: ${bad}` });
  const payload = b.slice(ENTRY_HEADER_BYTES);
  const { length: _l, ...fields } = h.value;
  return ok({ ...fields, prev: b.slice(28, 60), payload });
}

/** The prev-hash field of an encoded entry, without copying. */
export const prevOf = (b: Uint8Array): Uint8Array => b.subarray(28, 60);

/**
 * Decodes the header and takes a view of the payload without checking anything: only for bytes
 * a ChainVerifier has already accepted (the replay hot path, which must not scan twice).
 */
export function decodeEntryTrusted(b: Uint8Array): Entry {
  return { version: b[0]!, kind: b[1]!, domain: b[2]! | (b[3]! << 8), seq: u64At(b, 4), time: u64At(b, 12), actor: u64At(b, 20), prev: b.subarray(28, 60), payload: b.subarray(ENTRY_HEADER_BYTES) };
}
