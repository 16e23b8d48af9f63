// The flash pipeline: compare -> write -> sync -> verify. Success is reported only after the target
// was read back through a fresh, uncached handle and every chunk matched what was written.
//
// - Only the bmap's mapped ranges are read, written and verified; each range's checksum is checked
//   as it streams by (a mismatch stops the flash before the head is written).
// - The first MiB (partition table, boot sector) is zeroed before the write and written last, so a
//   target cut off half-way does not look bootable - and a journal marks the flash in progress, so
//   the next run knows it was interrupted and starts clean.
// - Writes go through O_DIRECT in bounded chunks with a few in flight, and the target is synced
//   every 32 MiB: there is never much dirty cache, so a cancel returns in well under a second.
// - BLAKE3 of the written bytes identifies the image (on a worker thread); each chunk also gets an
//   XXH3-128 fingerprint, which the verifier recomputes on the read-back bytes (6+ GB/s in WASM,
//   so verify runs at the speed of the disk, not of the hash) and which names the first bad
//   offset. The verifier reads chunks back through its own O_DIRECT handle as soon as a sync has
//   made them durable, beside the write; the head and the last stretch after the final sync.
import { existsSync, readFileSync, statfsSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { createHash, type Hash } from 'node:crypto';
import { constants } from 'node:fs';
import { createBLAKE3, createXXHash128, type IHasher } from 'hash-wasm';
import { LabError, fromSystemError } from '../errors.ts';
import type { Device } from '../labfile.ts';
import { parseBmap, byteRanges, type Bmap } from './bmap.ts';
import { openSource, type Source } from './source.ts';
import { checkTarget, type SystemView, type Target } from './target.ts';
import { readJournal, writeJournal, type JournalEntry } from './journal.ts';
import { ALIGN, O_DIRECT, alignDown, alignUp, alignedBuffers, newBuffer, readFull, writeFull } from './direct.ts';
import { Worker } from 'node:worker_threads';

export type Phase = 'compare' | 'write' | 'sync' | 'verify';

export interface FlashProgress {
  phase: Phase;
  bytes: number;
  /** Bytes this phase will handle, when known. */
  total: number | null;
  /** Bytes per second in this phase so far. */
  rate: number;
  etaS: number | null;
}

export interface FlashOptions {
  device: Device;
  stateDir: string;
  source: string;
  /** A .bmap path; undefined looks for IMAGE.bmap beside the image; null flashes every byte. */
  bmap?: string | null;
  force?: boolean;
  /** Default true. */
  verify?: boolean;
  /** A path a person named; it must be the lab file's target. */
  requestedTarget?: string;
  signal?: AbortSignal;
  onProgress?: (p: FlashProgress) => void;
  view?: SystemView;
  chunkBytes?: number;
  syncEveryBytes?: number;
}

export interface VerifyReport { method: 'o_direct' | 'dropped-cache' | 'cached'; bytes: number; seconds: number; mbPerS: number }

export interface FlashResult {
  status: 'written' | 'skipped';
  device: string;
  target: { path: string; real: string; type: 'file' | 'block' };
  source: { path: string; format: string; bmap: string | null };
  imageSize: number;
  /** Bytes of the image that carry data (the bmap's mapped ranges, else all). */
  mappedBytes: number;
  bytesWritten: number;
  blake3: string;
  directIo: boolean;
  verify: VerifyReport | null;
  seconds: { compare: number; write: number; sync: number; verify: number; total: number };
  /** The previous flash of this device, when it did not finish. */
  previous: JournalEntry | null;
}

const HEAD = 1 << 20;
const DEFAULT_CHUNK = 4 << 20;
const DEFAULT_SYNC = 32 << 20;
const QD = 3;
const WRITE_QD = 4;

interface Chunk { offset: number; length: number; buf: Buffer }
interface Fingerprint { offset: number; length: number; fp: string }
interface Range { start: number; end: number; checksum?: string }

/** Finds IMAGE.bmap (or the name without .gz/.xz/.zst) beside the image. */
export function findBmap(source: string): string | null {
  // bmaptool's names: os.img.xz -> os.img.bmap or os.bmap.
  const base = source.replace(/\.(gz|xz|zst|zstd)$/, '');
  for (const c of [`${base}.bmap`, `${base.replace(/\.[^./]+$/, '')}.bmap`, `${source}.bmap`]) if (existsSync(c)) return c;
  return null;
}

function loadBmap(path: string): Bmap {
  let bytes: Buffer;
  try { bytes = readFileSync(path); } catch (e) { throw new LabError('bad-input', 'bad-bmap', `cannot read bmap ${path}: ${(e as Error).message}`); }
  const r = parseBmap(bytes);
  if (!r.ok) throw new LabError('bad-input', 'bad-bmap', `${path}:${r.error.line}: ${r.error.message}`);
  return r.bmap;
}

class Pool {
  private free: Buffer[];
  private waiters: Array<(b: Buffer) => void> = [];
  constructor(bufs: Buffer[]) { this.free = [...bufs]; }
  acquire(): Promise<Buffer> {
    const b = this.free.pop();
    return b ? Promise.resolve(b) : new Promise((r) => this.waiters.push(r));
  }
  release(b: Buffer): void {
    const w = this.waiters.shift();
    if (w) w(b); else this.free.push(b);
  }
}

class Progress {
  private t0 = performance.now();
  private last = 0;
  constructor(private phase: Phase, private total: number | null, private cb?: (p: FlashProgress) => void, private fraction?: () => number | null, private startBytes = 0) {}
  tick(bytes: number, force = false): void {
    if (!this.cb) return;
    const now = performance.now();
    if (!force && now - this.last < 250) return;
    this.last = now;
    const secs = (now - this.t0) / 1000;
    const rate = secs > 0 ? (bytes - this.startBytes) / secs : 0;
    let eta: number | null = null;
    const frac = this.fraction?.() ?? (this.total ? bytes / this.total : null);
    if (frac !== null && frac > 0 && secs > 0.2) eta = Math.max(0, secs / frac - secs);
    this.cb({ phase: this.phase, bytes, total: this.total, rate, etaS: eta === null ? null : Math.round(eta * 10) / 10 });
  }
}

function checkCancel(signal?: AbortSignal): void {
  if (signal?.aborted) throw new LabError('timeout', 'cancelled', 'flash cancelled; the target holds an incomplete image and will be rewritten by the next flash', 'lab');
}

/**
 * The image's mapped bytes in chunks, cut at chunk-size multiples, at the head boundary and at range
 * ends, so every chunk lies in one range. Reads ahead one chunk while the caller hashes.
 */
async function* chunksOf(src: Source, ranges: Range[] | null, imageSize: number | null, pool: Pool, chunkBytes: number, onLength: (n: number) => void): AsyncGenerator<Chunk> {
  const cut = (pos: number, end: number) => {
    let next = Math.min(end, (Math.floor(pos / chunkBytes) + 1) * chunkBytes);
    if (pos < HEAD) next = Math.min(next, HEAD);
    return next;
  };
  if (src.seekable && ranges) {
    for (const r of ranges) {
      for (let pos = r.start; pos < r.end;) {
        const end = cut(pos, r.end);
        const buf = await pool.acquire();
        const n = await src.readAt(buf.subarray(0, end - pos), pos);
        if (n < end - pos) { pool.release(buf); throw new LabError('bad-input', 'bmap-mismatch', `image ${src.path} ends at ${pos + n} but the bmap maps bytes up to ${r.end}: the bmap belongs to another image`); }
        yield { offset: pos, length: end - pos, buf };
        pos = end;
      }
    }
    onLength(imageSize!);
    return;
  }
  // A stream: walk it once, copying the mapped bytes into chunk buffers.
  let pos = 0;
  let ri = 0;
  let cur: Chunk | null = null;
  const all: Range[] = ranges ?? [{ start: 0, end: Number.MAX_SAFE_INTEGER }];
  for await (const piece of src.stream()) {
    let i = 0;
    while (i < piece.length) {
      while (ri < all.length && all[ri]!.end <= pos) ri++;
      const r = all[ri];
      if (!r) { pos += piece.length - i; break; }
      if (pos < r.start) { const skip = Math.min(piece.length - i, r.start - pos); i += skip; pos += skip; continue; }
      if (!cur) cur = { offset: pos, length: 0, buf: await pool.acquire() };
      const end = cut(cur.offset, r.end);
      const take = Math.min(piece.length - i, end - pos);
      piece.copy(cur.buf, cur.length, i, i + take);
      cur.length += take; i += take; pos += take;
      if (pos === end) { yield cur; cur = null; }
    }
  }
  if (cur) { yield cur; cur = null; }
  if (imageSize !== null && pos !== imageSize) throw new LabError('bad-input', 'bmap-mismatch', `image ${src.path} holds ${pos} bytes but the bmap says ${imageSize}: the bmap belongs to another image (or the image is cut)`);
  onLength(pos);
}

/** Checks each bmap range's checksum as its bytes stream by. */
class RangeChecker {
  private i = 0;
  private h: Hash | null = null;
  constructor(private ranges: Range[], private type: 'sha1' | 'sha256' | null, private path: string) {}
  feed(c: Chunk): void {
    if (!this.type) return;
    while (this.i < this.ranges.length && this.ranges[this.i]!.end <= c.offset) this.i++;
    const r = this.ranges[this.i];
    if (!r?.checksum) return;
    if (c.offset === r.start) this.h = createHash(this.type);
    this.h?.update(c.buf.subarray(0, c.length));
    if (c.offset + c.length === r.end) {
      const got = this.h?.digest('hex');
      this.h = null;
      if (got !== r.checksum) throw new LabError('bad-input', 'checksum-mismatch', `image ${this.path}: bytes ${r.start}-${r.end} do not match the bmap's ${this.type} (want ${r.checksum}, got ${got}): the image is corrupt or the bmap belongs to another image`, 'lab', { offset: r.start });
    }
  }
}

/** Opens a target for reading around the page cache; says how. */
async function openUncached(t: Target): Promise<{ fh: FileHandle; method: VerifyReport['method'] }> {
  if (O_DIRECT) {
    try { return { fh: await open(t.real, constants.O_RDONLY | O_DIRECT), method: 'o_direct' }; } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EINVAL') throw fromSystemError(e, `target ${t.path}`);
    }
  }
  // No O_DIRECT here (tmpfs, some FUSE): drop the file's cached pages (dd iflag=nocache = posix_fadvise DONTNEED), then read.
  const cmd = t.type === 'block' ? spawnSync('blockdev', ['--flushbufs', t.real]) : spawnSync('dd', [`if=${t.real}`, 'iflag=nocache', 'count=0'], { stdio: 'ignore' });
  const tmpfs = t.type === 'file' && isTmpfs(t.real);
  return { fh: await open(t.real, 'r'), method: cmd.status === 0 && !tmpfs ? 'dropped-cache' : 'cached' };
}

function isTmpfs(path: string): boolean {
  try { return statfsSync(path).type === 0x01021994; } catch { return false; }
}

/**
 * Reads the target back through its own uncached handle and checks every chunk's fingerprint. It
 * runs beside the write: chunks are handed over only once a sync has made them durable (the head
 * after the final sync), so the disk's read bandwidth is used while the CPU hashes the next
 * chunks. Success still needs every chunk read back and matched after its sync.
 */
class Verifier {
  private queue: Fingerprint[] = [];
  private inflight = 0;
  private error: LabError | null = null;
  private idle: Array<() => void> = [];
  private busySince = 0;
  private busyMs = 0;
  bytes = 0;
  private constructor(private fh: FileHandle, readonly method: VerifyReport['method'], private pool: Pool, private xxh: IHasher, private t: Target, private qd: number, private signal?: AbortSignal) {}

  static async open(t: Target, chunkBytes: number, xxh: IHasher, signal?: AbortSignal): Promise<Verifier> {
    const { fh, method } = await openUncached(t);
    const bufs = method === 'o_direct' ? await alignedBuffers(fh, QD, chunkBytes + 2 * ALIGN, 'read') : Array.from({ length: QD }, () => Buffer.allocUnsafeSlow(chunkBytes + 2 * ALIGN));
    if (!bufs) { await fh.close(); throw new LabError('io', 'io-error', `target ${t.path}: no buffer alignment works for O_DIRECT`); }
    return new Verifier(fh, method, new Pool(bufs), xxh, t, QD, signal);
  }

  push(fps: Fingerprint[]): void { this.queue.push(...fps); this.pump(); }

  /** The first mismatch or read error so far (the write stops at once instead of finishing). */
  get failed(): LabError | null { return this.error && this.error.code !== 'cancelled' ? this.error : null; }

  private pump(): void {
    if (this.signal?.aborted && !this.error) this.error = new LabError('timeout', 'cancelled', 'flash cancelled during verify; the target is not known to hold the image', 'lab');
    while (!this.error && this.inflight < this.qd && this.queue.length) this.start(this.queue.shift()!);
    if (this.inflight === 0 && (this.queue.length === 0 || this.error)) for (const f of this.idle.splice(0)) f();
  }

  private start(f: Fingerprint): void {
    if (this.inflight === 0) this.busySince = performance.now();
    this.inflight++;
    void (async () => {
      const buf = await this.pool.acquire();
      try {
        const direct = this.method === 'o_direct';
        const a = direct ? alignDown(f.offset) : f.offset;
        const len = direct ? alignUp(f.offset + f.length) - a : f.length;
        const n = (await readFull(this.fh, buf, len, a)) - (f.offset - a);
        if (n < f.length) throw new LabError('io', 'verify-mismatch', `verify: target ${this.t.path} ends at ${f.offset + Math.max(0, n)}, before the image's byte ${f.offset + f.length}`, 'lab', { offset: f.offset + Math.max(0, n) });
        this.xxh.init();
        this.xxh.update(buf.subarray(f.offset - a, f.offset - a + f.length));
        if (this.xxh.digest('hex') !== f.fp) throw new LabError('io', 'verify-mismatch', `verify: target ${this.t.path} differs from the image in bytes ${f.offset}-${f.offset + f.length} (read back through ${this.method}): the target is failing or something else wrote to it`, 'lab', { offset: f.offset });
        this.bytes += f.length;
      } catch (e) {
        this.error ??= e instanceof LabError ? e : fromSystemError(e, `verify: reading back ${this.t.path}`);
      } finally {
        this.pool.release(buf);
        this.inflight--;
        if (this.inflight === 0) this.busyMs += performance.now() - this.busySince;
        this.pump();
      }
    })();
  }

  /** Waits until everything pushed is checked; throws the first mismatch or read error. */
  async drain(onProgress?: (p: FlashProgress) => void, total?: number): Promise<VerifyReport> {
    // Most chunks were read back beside the write; the rate shown is for what is left.
    const prog = new Progress('verify', total ?? null, onProgress, undefined, this.bytes);
    const tick = setInterval(() => prog.tick(this.bytes), 250);
    try {
      if (this.inflight > 0 || (this.queue.length > 0 && !this.error)) await new Promise<void>((r) => this.idle.push(r));
    } finally { clearInterval(tick); }
    if (this.error) throw this.error;
    prog.tick(this.bytes, true);
    const seconds = this.busyMs / 1000;
    return { method: this.method, bytes: this.bytes, seconds, mbPerS: seconds > 0 ? this.bytes / 1e6 / seconds : 0 };
  }

  async close(): Promise<void> {
    if (this.inflight > 0) await new Promise<void>((r) => this.idle.push(r));
    await this.fh.close().catch(() => {});
  }
}

/** Flashes an image onto the device's target. Throws a LabError on anything short of a verified image. */
export async function flash(o: FlashOptions): Promise<FlashResult> {
  const tStart = performance.now();
  const chunkBytes = o.chunkBytes ?? DEFAULT_CHUNK;
  const syncEvery = o.syncEveryBytes ?? DEFAULT_SYNC;
  const verify = o.verify ?? true;
  const t = checkTarget(o.device, { requested: o.requestedTarget, sourcePath: o.source, view: o.view });
  const bmapPath = o.bmap === null ? null : o.bmap ?? findBmap(o.source);
  const bmap = bmapPath ? loadBmap(bmapPath) : null;
  let src = await openSource(o.source);
  const b3w = new Blake3Worker();
  const previous = readJournal(o.stateDir, o.device.name);
  const prevUnfinished = previous && previous.status !== 'ok' ? previous : null;
  const [b3, xxh] = await Promise.all([createBLAKE3(), createXXHash128()]);
  const seconds = { compare: 0, write: 0, sync: 0, verify: 0, total: 0 };
  try {
    let imageSize: number | null = bmap?.imageSize ?? (src.seekable ? src.storedSize : null);
    if (bmap && src.seekable && src.storedSize !== bmap.imageSize) throw new LabError('bad-input', 'bmap-mismatch', `image ${o.source} is ${src.storedSize} bytes but bmap ${bmapPath} describes ${bmap.imageSize}: the bmap belongs to another image`);
    const ranges: Range[] | null = bmap ? byteRanges(bmap) : imageSize !== null ? [{ start: 0, end: imageSize }] : null;
    const mappedKnown = ranges ? ranges.reduce((n, r) => n + r.end - r.start, 0) : null;
    if (t.type === 'block' && imageSize !== null && t.size < imageSize) throw new LabError('refused', 'target-too-small', `${o.device.name}: target ${t.path} holds ${t.size} bytes, the image needs ${imageSize}`, 'lab');
    if (t.type === 'file' && mappedKnown !== null) {
      try { const fsst = statfsSync(t.exists ? t.real : t.real.replace(/\/[^/]*$/, '') || '/'); const free = fsst.bavail * fsst.bsize + (t.exists ? t.size : 0); if (free < mappedKnown) throw new LabError('io', 'target-full', `${o.device.name}: ${free} bytes free where ${t.path} lives, the image needs ${mappedKnown}`, 'lab'); } catch (e) { if (e instanceof LabError) throw e; }
    }

    // Compare first: a target that already holds the image is not rewritten (unless forced).
    // (a compressed file is compared while it streams, then read again for the write if it differs;
    // a pipe cannot be read twice, so it is always written)
    const canCompare = !o.force && t.exists && src.storedSize !== null && prevUnfinished === null && (imageSize === null || (t.type === 'block' ? t.size >= imageSize : t.size === imageSize));
    if (canCompare) {
      const tc = performance.now();
      const same = await compareTarget(src, t, ranges, imageSize, chunkBytes, b3, o);
      if (same && imageSize === null) imageSize = same.bytes;
      seconds.compare = (performance.now() - tc) / 1000;
      if (same) {
        const blake3 = b3.digest('hex');
        writeJournal(o.stateDir, { device: o.device.name, target: t.path, source: o.source, status: 'ok', pid: process.pid, pidStart: null, started: new Date().toISOString(), ended: new Date().toISOString(), blake3 });
        seconds.total = (performance.now() - tStart) / 1000;
        const v: VerifyReport = same;
        return { status: 'skipped', device: o.device.name, target: { path: t.path, real: t.real, type: t.type }, source: { path: o.source, format: src.format, bmap: bmapPath }, imageSize: imageSize!, mappedBytes: mappedKnown ?? v.bytes, bytesWritten: 0, blake3, directIo: v.method === 'o_direct', verify: v, seconds, previous: null };
      }
    }

    if (canCompare && !src.seekable) { await src.close(); src = await openSource(o.source); }

    // Write.
    const started = new Date().toISOString();
    const journal: JournalEntry = { device: o.device.name, target: t.path, source: o.source, status: 'in-progress', pid: process.pid, pidStart: pidStart(), started };
    writeJournal(o.stateDir, journal);
    const tw = performance.now();
    let result: { written: number; fps: Fingerprint[]; imageLen: number; direct: boolean; blake3: string; verify: VerifyReport | null };
    try {
      result = await writeImage(src, t, ranges, bmap, imageSize, chunkBytes, syncEvery, xxh, b3w, verify, o, seconds);
    } catch (e) {
      const le = e instanceof LabError ? e : fromSystemError(e, `target ${t.path}`);
      writeJournal(o.stateDir, { ...journal, status: le.code === 'cancelled' ? 'cancelled' : 'failed', ended: new Date().toISOString(), error: le.message });
      throw le;
    }
    seconds.write = (performance.now() - tw) / 1000 - seconds.sync - seconds.verify;
    imageSize ??= result.imageLen;
    const blake3 = result.blake3;
    const v = result.verify;
    writeJournal(o.stateDir, { ...journal, status: 'ok', ended: new Date().toISOString(), blake3 });
    seconds.total = (performance.now() - tStart) / 1000;
    const mappedBytes = result.fps.reduce((n, f) => n + f.length, 0);
    return { status: 'written', device: o.device.name, target: { path: t.path, real: t.real, type: t.type }, source: { path: o.source, format: src.format, bmap: bmapPath }, imageSize, mappedBytes, bytesWritten: result.written, blake3, directIo: result.direct, verify: v, seconds, previous: prevUnfinished };
  } finally {
    b3w.close();
    await src.close();
  }
}

function pidStart(): number | null {
  try { const s = readFileSync(`/proc/${process.pid}/stat`, 'utf8'); return Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[19]); } catch { return null; }
}

/** Byte-compares the image's mapped ranges with the target, read uncached. Returns a report when all match. */
async function compareTarget(src: Source, t: Target, ranges: Range[] | null, imageSize: number | null, chunkBytes: number, b3: IHasher, o: FlashOptions): Promise<VerifyReport | null> {
  const t0 = performance.now();
  const { fh, method } = await openUncached(t);
  try {
    const tb = method === 'o_direct' ? await alignedBuffers(fh, 1, chunkBytes + 2 * ALIGN, 'read') : [Buffer.allocUnsafeSlow(chunkBytes + 2 * ALIGN)];
    if (!tb) return null;
    const pool = new Pool(Array.from({ length: 2 }, () => Buffer.allocUnsafeSlow(chunkBytes)));
    const total = ranges ? ranges.reduce((n, r) => n + r.end - r.start, 0) : null;
    const prog = new Progress('compare', total, o.onProgress, total === null && src.storedSize ? () => src.consumed() / src.storedSize! : undefined);
    let done = 0;
    let length = -1;
    b3.init();
    const it = chunksOf(src, ranges, ranges ? imageSize : null, pool, chunkBytes, (n) => { length = n; });
    try {
      for await (const c of it) {
        const a = method === 'o_direct' ? alignDown(c.offset) : c.offset;
        const len = method === 'o_direct' ? alignUp(c.offset + c.length) - a : c.length;
        let n: number;
        // A read error here (EINVAL from an alignment probe that met a hole) only means: write.
        try { n = await readFull(fh, tb[0]!, len, a); } catch { pool.release(c.buf); return null; }
        const skew = c.offset - a;
        const same = n - skew >= c.length && tb[0]!.subarray(skew, skew + c.length).equals(c.buf.subarray(0, c.length));
        if (same) b3.update(c.buf.subarray(0, c.length));
        pool.release(c.buf);
        if (!same) return null;
        done += c.length;
        prog.tick(done);
        checkCancel(o.signal);
      }
    } finally { await it.return(undefined); }
    // A stream of unknown length: the target must be exactly as long (a file) or longer (a disk).
    if (imageSize === null && (t.type === 'file' ? length !== t.size : length > t.size)) return null;
    prog.tick(done, true);
    const seconds = (performance.now() - t0) / 1000;
    return { method, bytes: done, seconds, mbPerS: seconds > 0 ? done / 1e6 / seconds : 0 };
  } finally { await fh.close().catch(() => {}); }
}

/**
 * BLAKE3 on a worker thread over the pool's shared buffers (see blake3-worker.mjs). Started at the
 * beginning of a flash so its start-up overlaps the safety checks; messages queue until it is up
 * (the worker handles them strictly in order, which BLAKE3 needs).
 */
export class Blake3Worker {
  private waiting = new Map<number, () => void>();
  private next = 0;
  private onDigest: ((hex: string) => void) | null = null;
  private failed: Error | null = null;
  private index = new Map<ArrayBufferLike, number>();
  private w: Worker;
  constructor() {
    this.w = new Worker(new URL('./blake3-worker.mjs', import.meta.url));
    this.w.on('message', (m: { t: string; id?: number; hex?: string }) => {
      if (m.t === 'done') { const f = this.waiting.get(m.id!); this.waiting.delete(m.id!); f?.(); }
      else if (m.t === 'digest') this.onDigest?.(m.hex!);
    });
    this.w.on('error', (e) => { this.failed = e; for (const f of this.waiting.values()) f(); this.onDigest?.(''); });
  }
  setBuffers(bufs: Buffer[]): void {
    const sabs = [...new Set(bufs.map((b) => b.buffer))];
    this.index = new Map(sabs.map((s, i) => [s, i]));
    this.w.postMessage({ t: 'buffers', sabs });
  }
  hash(buf: Buffer, len: number): Promise<void> {
    const id = this.next++;
    return new Promise<void>((res, rej) => {
      this.waiting.set(id, () => (this.failed ? rej(this.failed) : res()));
      this.w.postMessage({ t: 'data', id, buf: this.index.get(buf.buffer), off: buf.byteOffset, len });
    });
  }
  digest(): Promise<string> {
    if (this.failed) return Promise.reject(this.failed);
    return new Promise((res, rej) => { this.onDigest = (h) => (this.failed ? rej(this.failed) : res(h)); this.w.postMessage({ t: 'digest' }); });
  }
  close(): void { void this.w.terminate(); }
}

async function writeImage(src: Source, t: Target, ranges: Range[] | null, bmap: Bmap | null, imageSize: number | null, chunkBytes: number, syncEvery: number, xxh: IHasher, b3w: Blake3Worker, verify: boolean, o: FlashOptions, seconds: FlashResult['seconds']) {
  // A file target starts empty and sparse (holes read as zeros, as with bmaptool); a disk is claimed
  // exclusively (O_EXCL on a block device fails while it is mounted or claimed elsewhere).
  let fresh = false;
  let bfh: FileHandle;
  try {
    if (t.type === 'file') {
      bfh = await open(t.real, constants.O_RDWR | constants.O_CREAT, 0o644);
      await bfh.truncate(0);
      await bfh.truncate(Math.max(imageSize ?? 0, ALIGN));
      fresh = true;
    } else {
      bfh = await open(t.real, constants.O_RDWR | constants.O_EXCL);
    }
  } catch (e) { throw fromSystemError(e, `target ${t.path}`); }
  let dfh: FileHandle | null = null;
  let dbufs: Buffer[] | null = null;
  const nbuf = WRITE_QD + 4;
  if (O_DIRECT) {
    try {
      dfh = await open(t.real, constants.O_RDWR | O_DIRECT);
      dbufs = await alignedBuffers(dfh, nbuf, chunkBytes, 'write', true);
      if (!dbufs) { await dfh.close(); dfh = null; }
    } catch { dfh = null; dbufs = null; }
  }
  const bufs = dbufs ?? Array.from({ length: nbuf }, () => newBuffer(chunkBytes, true));
  const pool = new Pool(bufs);
  b3w.setBuffers(bufs);
  // Its own handle, opened after the probe above wrote offset 0 (an O_DIRECT alignment probe must meet allocated blocks).
  let verifier: Verifier | null = null;
  if (verify) {
    try { verifier = await Verifier.open(t, chunkBytes, xxh, o.signal); } catch (e) { await bfh.close().catch(() => {}); if (dfh) await dfh.close().catch(() => {}); throw e; }
  }
  let handed = 0;
  /** Hands chunks that a sync made durable to the verifier (the held head waits for the end). */
  const handOver = (all: boolean) => {
    if (!verifier) return;
    verifier.push(all ? fps.filter((f, i) => i >= handed || f.offset < HEAD) : fps.slice(handed).filter((f) => f.offset >= HEAD));
    handed = fps.length;
  };
  const zero = Buffer.alloc(chunkBytes);
  const fps: Fingerprint[] = [];
  const held: Array<{ offset: number; data: Buffer }> = [];
  const checker = new RangeChecker(ranges ?? [], bmap?.checksumType ?? null, src.path);
  const total = ranges ? ranges.reduce((n, r) => n + r.end - r.start, 0) : null;
  const prog = new Progress('write', total, o.onProgress, total === null && src.storedSize ? () => src.consumed() / src.storedSize! : undefined);
  let imageLen = 0;
  let written = 0;
  let done = 0;
  let sinceSync = 0;
  const inflight = new Set<Promise<void>>();
  let failure: unknown = null;
  const put = (buf: Buffer, len: number, pos: number) => {
    const direct = dfh !== null && pos % ALIGN === 0 && len % ALIGN === 0;
    return writeFull(direct ? dfh! : bfh, buf, len, pos);
  };
  const sync = async () => {
    const ts = performance.now();
    await Promise.all(inflight);
    await bfh.datasync();
    if (dfh) await dfh.datasync();
    seconds.sync += (performance.now() - ts) / 1000;
    sinceSync = 0;
    handOver(false);
  };
  try {
    // A disk keeps its old head until the new one is written last: zero it now.
    if (!fresh) { await writeFull(bfh, Buffer.alloc(HEAD), Math.min(HEAD, t.size), 0); await bfh.datasync(); }
    const it = chunksOf(src, ranges, bmap ? bmap.imageSize : null, pool, chunkBytes, (n) => { imageLen = n; });
    let pending = it.next();
    for (;;) {
      const r = await pending;
      if (r.done) break;
      pending = it.next();
      const c = r.value;
      checker.feed(c);
      const data = c.buf.subarray(0, c.length);
      const hashed = b3w.hash(c.buf, c.length);
      xxh.init(); xxh.update(data);
      fps.push({ offset: c.offset, length: c.length, fp: xxh.digest('hex') });
      done += c.length;
      let p: Promise<void>;
      if (c.offset < HEAD) { held.push({ offset: c.offset, data: Buffer.from(data) }); p = hashed; }
      else if (fresh && zero.subarray(0, c.length).equals(data)) p = hashed;
      else {
        p = Promise.all([put(c.buf, c.length, c.offset).then(() => { written += c.length; }), hashed]).then(() => {});
        sinceSync += c.length;
      }
      // The buffer goes back to the pool once it is both written and hashed.
      const q: Promise<void> = p.then(() => pool.release(c.buf), (e) => { failure ??= e; pool.release(c.buf); }).finally(() => inflight.delete(q));
      inflight.add(q);
      if (failure) throw failure;
      if (verifier?.failed) throw verifier.failed;
      if (inflight.size >= WRITE_QD) await Promise.race(inflight);
      if (sinceSync >= syncEvery) await sync();
      prog.tick(done);
      if (o.signal?.aborted) { await Promise.allSettled(inflight); await sync().catch(() => {}); checkCancel(o.signal); }
    }
    await Promise.allSettled(inflight);
    if (failure) throw failure;
    prog.tick(done, true);
    // The head goes last, after everything else is on the disk.
    const sp = new Progress('sync', null, o.onProgress);
    sp.tick(0, true);
    await sync();
    for (const h of held) { await writeFull(bfh, h.data, h.data.length, h.offset); written += h.data.length; }
    if (t.type === 'file') await bfh.truncate(imageSize ?? imageLen);
    if (imageSize === null && t.type === 'block' && imageLen > t.size) throw new LabError('io', 'target-full', `target ${t.path} holds ${t.size} bytes, the image ${imageLen}`);
    const sv = performance.now();
    const blake3P = b3w.digest();
    // The final sync: then the head, and whatever the verifier has not had yet, is read back.
    const ts = performance.now();
    await Promise.all(inflight);
    await bfh.datasync();
    if (dfh) await dfh.datasync();
    seconds.sync += (performance.now() - ts) / 1000;
    let report: VerifyReport | null = null;
    if (verifier) {
      handOver(true);
      const tv = performance.now();
      report = await verifier.drain(o.onProgress, fps.reduce((n, f) => n + f.length, 0));
      seconds.verify = (performance.now() - tv) / 1000;
    }
    void sv;
    const blake3 = await blake3P;
    return { written, fps, imageLen: imageSize ?? imageLen, direct: dfh !== null, blake3, verify: report };
  } finally {
    await Promise.allSettled(inflight);
    await verifier?.close();
    await bfh.close().catch(() => {});
    if (dfh) await dfh.close().catch(() => {});
  }
}

/** Reads a target back and checks it holds the image (the `verify` command): a compare without writing. */
export async function verifyOnly(o: FlashOptions): Promise<VerifyReport & { same: boolean; blake3: string | null }> {
  const t = checkTarget(o.device, { requested: o.requestedTarget, sourcePath: o.source, view: o.view });
  if (!t.exists) throw new LabError('disconnected', 'target-missing', `target ${t.path} does not exist`, 'lab');
  const bmapPath = o.bmap === null ? null : o.bmap ?? findBmap(o.source);
  const bmap = bmapPath ? loadBmap(bmapPath) : null;
  const src = await openSource(o.source);
  try {
    if (!src.seekable) throw new LabError('bad-input', 'bad-usage', `verify needs a raw image file (got ${src.format}); decompress it or flash with verify on`);
    const imageSize = bmap?.imageSize ?? src.storedSize!;
    const ranges = bmap ? byteRanges(bmap) : [{ start: 0, end: imageSize }];
    const b3 = await createBLAKE3();
    const r = await compareTarget(src, t, ranges, imageSize, o.chunkBytes ?? DEFAULT_CHUNK, b3, o);
    if (!r) return { same: false, blake3: null, method: 'o_direct', bytes: 0, seconds: 0, mbPerS: 0 };
    // (method/bytes are only meaningful when same is true)
    return { ...r, same: true, blake3: b3.digest('hex') };
  } finally { await src.close(); }
}
