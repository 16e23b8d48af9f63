// Trace file format (docs/axiom.md section 9), pure: header codec, record codec, and a streaming
// record parser with bounded memory (one record plus the current chunk).
import { blake3 } from './hash.ts';
import { ENTRY_HEADER_BYTES, HASH_BYTES, MAX_PAYLOAD, err, ok, type AxiomError, type Result } from './types.ts';

export const TRACE_MAGIC = new Uint8Array([0x4f, 0x52, 0x42, 0x54, 0x52, 0x41, 0x43, 0x45]); // "ORBTRACE"
export const TRACE_VERSION = 1;
export const TRACE_HEADER_BYTES = 64;
export const MAX_RECORD = 4 + ENTRY_HEADER_BYTES + MAX_PAYLOAD + HASH_BYTES;

export interface TraceHeader { deviceId: Uint8Array; bootId: Uint8Array; k: number }

export function encodeTraceHeader(h: TraceHeader): Uint8Array {
  const b = new Uint8Array(TRACE_HEADER_BYTES);
  const dv = new DataView(b.buffer);
  b.set(TRACE_MAGIC, 0);
  dv.setUint16(8, TRACE_VERSION, true);
  dv.setUint16(10, TRACE_HEADER_BYTES, true);
  b.set(h.deviceId.subarray(0, 16), 16);
  b.set(h.bootId.subarray(0, 16), 32);
  dv.setUint32(48, h.k, true);
  b.set(blake3(b.subarray(0, 56)).subarray(0, 8), 56);
  return b;
}

export function decodeTraceHeader(b: Uint8Array): Result<TraceHeader> {
  const e = (reason: AxiomError['reason'], message: string): Result<never> => err({ kind: 'bad-input', reason, message, offset: 0 });
  if (b.length === 0) return e('empty', 'the file is empty: not a trace file (a trace starts with a 64-byte ORBTRACE header)');
  for (let i = 0; i < 8; i++) if (b[i] !== TRACE_MAGIC[i]) return e('not-a-trace', 'not a trace file: it does not start with "ORBTRACE"');
  if (b.length < TRACE_HEADER_BYTES) return e('truncated-tail', `the trace header is cut short (${b.length} of 64 bytes)`);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const version = dv.getUint16(8, true);
  if (version !== TRACE_VERSION) return e('unknown-version', `trace format version ${version} is not supported (this reader knows version ${TRACE_VERSION})`);
  if (dv.getUint16(10, true) !== TRACE_HEADER_BYTES) return e('bad-encoding', `trace header length ${dv.getUint16(10, true)} is not 64`);
  const sum = blake3(b.subarray(0, 56)).subarray(0, 8);
  for (let i = 0; i < 8; i++) if (sum[i] !== b[56 + i]) return e('bad-encoding', 'the trace header checksum does not match: the header is damaged');
  const k = dv.getUint32(48, true);
  if (k < 2) return e('bad-encoding', `checkpoint interval ${k} in the header must be ≥ 2`);
  return ok({ deviceId: b.slice(16, 32), bootId: b.slice(32, 48), k });
}

/** One record: length, entry, stored hash. */
export function encodeRecord(encoded: Uint8Array, hash: Uint8Array): Uint8Array {
  const b = new Uint8Array(4 + encoded.length + HASH_BYTES);
  new DataView(b.buffer).setUint32(0, encoded.length, true);
  b.set(encoded, 4);
  b.set(hash, 4 + encoded.length);
  return b;
}

export interface TraceRecord { entry: Uint8Array; hash: Uint8Array; /** file offset of the record */ offset: number }

/**
 * Streaming record parser. push() chunks in file order (after the header); records come out
 * through `onRecord`. A record length beyond the limit stops parsing with `bad-encoding`;
 * finish() reports a torn tail (the file ended inside a record).
 */
export class RecordParser {
  private buf = new Uint8Array(0);
  private offset: number;
  error: AxiomError | null = null;
  constructor(private readonly onRecord: (r: TraceRecord) => boolean | void, startOffset = TRACE_HEADER_BYTES) { this.offset = startOffset; }
  /** The file offset just after the last whole record. */
  get goodEnd(): number { return this.offset; }
  /** Returns false when parsing stopped (error, or onRecord returned false). */
  push(chunk: Uint8Array): boolean {
    if (this.error) return false;
    let data = chunk, pos = 0;
    if (this.buf.length) { data = new Uint8Array(this.buf.length + chunk.length); data.set(this.buf); data.set(chunk, this.buf.length); }
    const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
    while (data.length - pos >= 4) {
      const L = dv.getUint32(pos, true);
      if (L < ENTRY_HEADER_BYTES || L > ENTRY_HEADER_BYTES + MAX_PAYLOAD) {
        this.error = { kind: 'bad-input', reason: 'bad-encoding', message: `record at offset ${this.offset} claims an entry of ${L} bytes (must be 64..${ENTRY_HEADER_BYTES + MAX_PAYLOAD})`, offset: this.offset };
        this.buf = new Uint8Array(0);
        return false;
      }
      const total = 4 + L + HASH_BYTES;
      if (data.length - pos < total) break;
      const rec: TraceRecord = { entry: data.subarray(pos + 4, pos + 4 + L), hash: data.subarray(pos + 4 + L, pos + total), offset: this.offset };
      pos += total; this.offset += total;
      if (this.onRecord(rec) === false) { this.buf = new Uint8Array(0); return false; }
    }
    this.buf = pos < data.length ? data.slice(pos) : new Uint8Array(0);
    return true;
  }
  /** Bytes left over after the last whole record: a torn tail when non-zero. */
  get pending(): number { return this.buf.length; }
}
