// Trace files on disk (docs/axiom.md section 9): streaming reads with bounded memory, a
// verifier, and the append-only writer that recovers a torn tail and fsyncs before it returns.
import { closeSync, fdatasyncSync, fstatSync, fsyncSync, ftruncateSync, openSync, readSync, writeSync, existsSync } from 'node:fs';
import { open as openAsync } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ChainVerifier, type VerifyFailure } from '../verify.ts';
import { MAX_RECORD, RecordParser, TRACE_HEADER_BYTES, decodeTraceHeader, encodeRecord, encodeTraceHeader, type TraceHeader, type TraceRecord } from '../trace.ts';
import type { AxiomError } from '../types.ts';

const CHUNK = 1 << 20;

export class TraceError extends Error {
  constructor(readonly error: AxiomError) { super(error.message); this.name = 'TraceError'; }
  get kind() { return this.error.kind; }
  get reason() { return this.error.reason; }
}

function readHeaderSync(fd: number, path: string): TraceHeader {
  const b = new Uint8Array(TRACE_HEADER_BYTES);
  const n = readSync(fd, b, 0, TRACE_HEADER_BYTES, 0);
  const h = decodeTraceHeader(b.subarray(0, n));
  if (!h.ok) throw new TraceError({ ...h.error, message: `${path}: ${h.error.message}` });
  return h.value;
}

export interface ScanResult {
  header: TraceHeader;
  /** Records read (whole ones). */
  records: number;
  /** Offset just after the last whole record. */
  goodEnd: number;
  size: number;
  /** Bytes after goodEnd that do not form a whole record. */
  tornBytes: number;
  parseError: AxiomError | null;
}

/**
 * Reads every whole record of a trace file in order, with bounded memory. `onRecord` sees
 * views that are valid only during the call (copy what you keep); returning false stops.
 */
export function scanTraceSync(path: string, onRecord: (r: TraceRecord) => boolean | void, start = TRACE_HEADER_BYTES): ScanResult {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const header = readHeaderSync(fd, path);
    let records = 0, stopped = false;
    const parser = new RecordParser((r) => { records++; const go = onRecord(r); if (go === false) stopped = true; return go; }, start);
    const buf = new Uint8Array(CHUNK);
    let pos = start;
    while (pos < size) {
      const n = readSync(fd, buf, 0, CHUNK, pos);
      if (n <= 0) break;
      pos += n;
      if (!parser.push(buf.subarray(0, n))) break;
    }
    const tornBytes = stopped ? 0 : size - parser.goodEnd;
    return { header, records, goodEnd: parser.goodEnd, size, tornBytes: parser.error ? 0 : tornBytes, parseError: parser.error };
  } finally { closeSync(fd); }
}

/** Async streaming read of records (copies), for consumers that await per record. */
export async function* readTrace(path: string): AsyncGenerator<{ entry: Uint8Array; hash: Uint8Array; offset: number }, TraceHeader | undefined> {
  const fh = await openAsync(path, 'r');
  try {
    const hb = new Uint8Array(TRACE_HEADER_BYTES);
    const { bytesRead } = await fh.read(hb, 0, TRACE_HEADER_BYTES, 0);
    const h = decodeTraceHeader(hb.subarray(0, bytesRead));
    if (!h.ok) throw new TraceError({ ...h.error, message: `${path}: ${h.error.message}` });
    const out: { entry: Uint8Array; hash: Uint8Array; offset: number }[] = [];
    const parser = new RecordParser((r) => { out.push({ entry: r.entry.slice(), hash: r.hash.slice(), offset: r.offset }); });
    const buf = new Uint8Array(CHUNK);
    let pos = TRACE_HEADER_BYTES;
    for (;;) {
      const { bytesRead: n } = await fh.read(buf, 0, CHUNK, pos);
      if (n <= 0) break;
      pos += n;
      const more = parser.push(buf.subarray(0, n));
      while (out.length) yield out.shift()!;
      if (!more) throw new TraceError(parser.error!);
    }
    return h.value;
  } finally { await fh.close(); }
}

export interface VerifyFileResult {
  ok: boolean;
  header?: TraceHeader;
  /** Entries that verified. */
  count: number;
  head?: Uint8Array;
  failure?: VerifyFailure;
  /** A file-level error (not a trace, unknown version, damaged header, unreadable). */
  error?: AxiomError;
}

/** Verifies a trace file: header, every record's stored hash, the chain, and the tail. */
export function verifyTraceFile(path: string, onProgress?: (bytes: number, total: number) => void): VerifyFileResult {
  const v = new ChainVerifier();
  let scan: ScanResult;
  let lastReport = 0;
  try {
    scan = scanTraceSync(path, (r) => {
      if (onProgress && r.offset - lastReport > 64 << 20) { lastReport = r.offset; onProgress(r.offset, 0); }
      return v.push(r.entry, r.hash, r.offset) === null;
    });
  } catch (e) {
    if (e instanceof TraceError) return { ok: false, count: 0, error: e.error };
    return { ok: false, count: 0, error: { kind: 'bad-input', reason: 'io', message: `${path}: ${(e as Error).message}` } };
  }
  if (v.failure) return { ok: false, header: scan.header, count: v.next, head: v.head, failure: v.failure };
  if (scan.parseError) return { ok: false, header: scan.header, count: v.next, head: v.head, failure: { seq: v.next, reason: 'bad-encoding', message: scan.parseError.message, offset: scan.goodEnd } };
  if (scan.tornBytes > 0) return { ok: false, header: scan.header, count: v.next, head: v.head, failure: { seq: v.next, reason: 'truncated-tail', message: `the file ends ${scan.tornBytes} bytes into the record of entry ${v.next} (a torn write): everything before it verifies`, offset: scan.goodEnd } };
  return { ok: true, header: scan.header, count: v.next, head: v.head };
}

export type FsyncPolicy = 'always' | 'never';

export interface OpenResult {
  writer: TraceWriter; header: TraceHeader; recovered: number; cutBytes: number;
  /** The verifier that checked the file, at its end (absent for a new file). */
  verifier?: ChainVerifier;
}

/**
 * The append-only writer. open() creates the file, or verifies an existing one, passing every
 * valid entry to `onEntry` (to restore a sequencer), and cuts a torn or damaged last record.
 * Damage before the last record is refused: that needs a person, not a silent cut.
 */
export class TraceWriter {
  private constructor(private fd: number, private end: number, readonly policy: FsyncPolicy) {}

  /**
   * `from`: go on from a point verified before - the file offset just after a record, and the
   * verifier as it stood there (ChainVerifier.resume): only the records after it are read, checked
   * and passed to `onEntry`. The caller vouches that the file still holds what was verified there
   * (recordEndsWith checks the last hash); `recovered` is then the verifier's count.
   */
  static open(path: string, create: TraceHeader, onEntry?: (entry: Uint8Array, hash: Uint8Array) => void, policy: FsyncPolicy = 'always', from?: { offset: number; verifier: ChainVerifier }): OpenResult {
    if (!existsSync(path) || fstatSizeOf(path) === 0) {
      if (from) throw new TraceError({ kind: 'bad-input', reason: 'io', message: `${path}: empty, but asked to go on from offset ${from.offset}` });
      const fd = openSync(path, 'w+');
      const hb = encodeTraceHeader(create);
      writeSync(fd, hb, 0, hb.length, 0);
      fsyncSync(fd);
      syncDir(path);
      return { writer: new TraceWriter(fd, TRACE_HEADER_BYTES, policy), header: create, recovered: 0, cutBytes: 0 };
    }
    if (from && fstatSizeOf(path) < from.offset) throw new TraceError({ kind: 'bad-input', reason: 'truncated-tail', message: `${path}: shorter than offset ${from.offset}, where it was asked to go on from` });
    const v = from?.verifier ?? new ChainVerifier();
    let badOffset = -1;
    const scan = scanTraceSync(path, (r) => {
      if (v.push(r.entry, r.hash, r.offset)) { badOffset = r.offset; return false; }
      onEntry?.(r.entry.slice(), r.hash.slice());
    }, from?.offset);
    let cutAt = scan.size;
    if (badOffset >= 0) {
      const badEnd = nextRecordEnd(path, badOffset);
      if (badEnd < scan.size) throw new TraceError({ kind: 'bad-input', reason: v.failure!.reason, seq: v.failure!.seq, message: `${path}: entry ${v.failure!.seq} is damaged (${v.failure!.message}) and entries follow it; refusing to cut a log in the middle — verify it with \`orbital-os verify ${path}\`` });
      cutAt = badOffset;
    } else if (scan.parseError) {
      // A record length that cannot be. At the end of the file that is a torn last write; with
      // more than one record's worth of bytes after it, it is damage in the middle.
      if (scan.size - scan.goodEnd > MAX_RECORD) throw new TraceError({ ...scan.parseError, message: `${path}: ${scan.parseError.message}, with ${scan.size - scan.goodEnd} bytes after it; refusing to cut a log in the middle` });
      cutAt = scan.goodEnd;
    } else if (scan.tornBytes > 0) cutAt = scan.goodEnd;
    const fd = openSync(path, 'r+');
    let cutBytes = 0;
    if (cutAt < scan.size) { cutBytes = scan.size - cutAt; ftruncateSync(fd, cutAt); fsyncSync(fd); }
    return { writer: new TraceWriter(fd, cutAt, policy), header: scan.header, recovered: v.next, cutBytes, verifier: v };
  }

  /** Appends records and (policy 'always') makes them durable before returning. */
  append(records: { encoded: Uint8Array; hash: Uint8Array }[]): void {
    if (records.length === 0) return;
    const parts = records.map((r) => encodeRecord(r.encoded, r.hash));
    const total = parts.reduce((n, p) => n + p.length, 0);
    const b = new Uint8Array(total);
    let o = 0;
    for (const p of parts) { b.set(p, o); o += p.length; }
    let done = 0;
    while (done < b.length) done += writeSync(this.fd, b, done, b.length - done, this.end + done);
    this.end += b.length;
    if (this.policy === 'always') fdatasyncSync(this.fd);
  }

  sync(): void { fdatasyncSync(this.fd); }
  get size(): number { return this.end; }
  close(): void { if (this.fd >= 0) { closeSync(this.fd); this.fd = -1; } }
}

/**
 * Whether the record that ends at `offset` (a record boundary, past the header) carries `hash`:
 * the check that a log still ends, at that point, where it ended when a snapshot of it was taken.
 */
export function recordEndsWith(path: string, offset: number, hash: Uint8Array): boolean {
  if (!Number.isSafeInteger(offset) || offset < TRACE_HEADER_BYTES + 4 + 64 + 32 || hash.length !== 32) return false;
  let fd: number;
  try { fd = openSync(path, 'r'); } catch { return false; }
  try {
    if (fstatSync(fd).size < offset) return false;
    const b = new Uint8Array(32);
    if (readSync(fd, b, 0, 32, offset - 32) !== 32) return false;
    for (let i = 0; i < 32; i++) if (b[i] !== hash[i]) return false;
    return true;
  } catch { return false; } finally { closeSync(fd); }
}

function fstatSizeOf(path: string): number { const fd = openSync(path, 'r'); try { return fstatSync(fd).size; } finally { closeSync(fd); } }

/** End offset of the record starting at `offset` (by its length field), or Infinity. */
function nextRecordEnd(path: string, offset: number): number {
  const fd = openSync(path, 'r');
  try {
    const b = new Uint8Array(4);
    if (readSync(fd, b, 0, 4, offset) < 4) return Infinity;
    return offset + 4 + new DataView(b.buffer).getUint32(0, true) + 32;
  } finally { closeSync(fd); }
}

function syncDir(path: string): void {
  try { const d = openSync(dirname(path), 'r'); try { fsyncSync(d); } finally { closeSync(d); } } catch { /* some filesystems refuse directory fsync */ }
}
