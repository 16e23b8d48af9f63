// The flash pipeline: compare -> write -> sync -> verify. Success is reported only after the target
// was read back through a fresh, uncached handle and every byte matched what was written.
//
// - Only the bmap's mapped ranges are read, written and verified; each range's checksum is checked
//   as it streams by (a mismatch stops the flash before the head is written).
// - The first MiB (partition table, boot sector) is zeroed before the write and written last, so a
//   target cut off half-way does not look bootable - and a journal marks the flash in progress, so
//   the next run knows it was interrupted and starts clean.
// - Writes go through O_DIRECT in bounded chunks with a few in flight, from page-aligned buffers:
//   no dirty cache, so a cancel returns in well under a second, and two syncs (before and after the
//   head) make it durable. Through the page cache (no O_DIRECT) the target is synced every 32 MiB.
// - The image is hashed once, on a worker thread, as it is written: the bmap's per-range SHA-256
//   (native, checked against the bmap) and the image's BLAKE3 id taken over that checked range
//   table; without SHA-256 range checksums, BLAKE3 over the bytes (WebAssembly, ~1 GB/s). A compare
//   (verify, or the check whether the target already holds the image) also hashes ranges on its own
//   thread while the worker starts or is busy.
// - Verify compares byte for byte: a written chunk's buffer - the very bytes that were checksummed
//   and written - stays in memory until the verifier, on its own O_DIRECT handle, has read the
//   target's copy back and compared the two (memcmp, tens of GB/s: verify runs at the disk's speed
//   and names the first bad byte). Chunks (2 MiB) are read back in 4 MiB batches once their O_DIRECT writes
//   completed (through the page cache: once a sync made them durable), beside the write, so only one
//   batch of chunks is ever held; the head after the final sync.
import { existsSync, readFileSync, statfsSync } from 'node:fs';
import { IoWatch } from './stall.ts';
import { open, type FileHandle } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { createHash, type Hash } from 'node:crypto';
import { constants } from 'node:fs';
import { blake3 } from '@noble/hashes/blake3.js';
import { bytesToHex as toHex } from '@noble/hashes/utils.js';
import { LabError, fromSystemError } from '../errors.ts';
import type { Device } from '../labfile.ts';
import { parseBmap, byteRanges, type Bmap } from './bmap.ts';
import { openSource, STDIN, type Source } from './source.ts';
import { isOrbimg, openOrbimg, streamOrbimg, type OrbimgInfo } from './orbimg.ts';
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
  /**
   * A signed Orbital image (.orbimg, detected by its magic) must be signed by one of these raw
   * 32-byte Ed25519 public keys; it is refused before anything is written otherwise.
   */
  trust?: Uint8Array[];
  /** The .orbimg part to flash; default: the one part named `disk` or ending in `.img`. */
  part?: string;
  signal?: AbortSignal;
  onProgress?: (p: FlashProgress) => void;
  view?: SystemView;
  chunkBytes?: number;
  syncEveryBytes?: number;
  /**
   * false: never O_DIRECT - write through the page cache (synced every `syncEveryBytes`) and read
   * back after dropping the synced pages, as where the file system refuses O_DIRECT. Default: O_DIRECT
   * where it works.
   */
  directIo?: boolean;
  /** Called when a chunk's write has completed, before it is read back (tests alter the target in between). */
  afterWrite?: (offset: number, length: number) => void;
  /** Called when a chunk's read-back has matched (tests alter the target after that). */
  afterReadBack?: (offset: number, length: number) => void;
  /** A target operation not completed for this long fails the flash with `flash-stalled` (default: the device's timeouts.flash-stall; 0: never). */
  stallMs?: number;
  /** A flash (or verify) taking longer than this is cancelled and fails with `flash-timeout` (default: the device's timeouts.flash; 0: never). */
  timeoutMs?: number;
  /** (internal) the watchdog every target handle goes through; set by flash() and verifyOnly(). */
  watch?: IoWatch;
  /** false: a target that differs is rewritten whole, never only where it differs (default: only the chunks that differ). */
  delta?: boolean;
  /** Opens the image (default openSource); a multi-device flash passes one decoder's reader (shared.ts). */
  openSource?: (path: string) => Promise<Source>;
}

export interface VerifyReport {
  method: 'o_direct' | 'dropped-cache' | 'cached';
  bytes: number;
  seconds: number;
  mbPerS: number;
  /** A flash: how many 4 KiB samples of written chunks were read back a second time after the final sync (fake-capacity check). */
  samples?: number;
}

export interface FlashResult {
  status: 'written' | 'skipped';
  device: string;
  target: { path: string; real: string; type: 'file' | 'block' };
  source: { path: string; format: string; bmap: string | null };
  imageSize: number;
  /** Bytes of the image that carry data (the bmap's mapped ranges, else all). */
  mappedBytes: number;
  bytesWritten: number;
  /** Names the image: BLAKE3 of its mapped bytes, or of its range table with each range's checked SHA-256 (`blake3Of`). */
  blake3: string;
  blake3Of: Blake3Of;
  directIo: boolean;
  verify: VerifyReport | null;
  /** Phases; a delta write compares, writes and reads back in one pass, all counted in `compare`. */
  seconds: { compare: number; write: number; sync: number; verify: number; total: number };
  /** The previous flash of this device, when it did not finish. */
  previous: JournalEntry | null;
  /** A signed Orbital image: its id, name, version, signer key and the part flashed (whose BLAKE3 is `blake3`). */
  orbimg?: OrbimgInfo;
  /** Only the chunks that differed were written (the target held an earlier image): see deltaWrite. */
  delta?: DeltaReport;
}

export interface DeltaReport {
  /** Mapped bytes the target already held (read back uncached and matched: not written). */
  unchanged: number;
  /** Mapped bytes written (the chunks that differed, and the head). */
  rewritten: number;
  /** Chunks compared, and of those, how many differed. */
  chunks: number;
  differed: number;
  /** Most of the first chunks differed: the rest was written without reading the target first. */
  blindFrom: number | null;
}

/** The journal's record of a signed image (only written once its part's BLAKE3 was checked). */
const signedOf = (i: OrbimgInfo | null): Pick<JournalEntry, 'signed'> => (i ? { signed: { id: i.id, name: i.name, version: i.version, key: i.key, part: i.part.name } } : {});

/**
 * The image to read: a signed .orbimg (checked, one part chosen; a file is read in place, a stream -
 * a pipe or a compressed file - is checked as its header arrives) or a raw/compressed image with an
 * optional bmap. Throws before anything is written.
 */

async function openImageSource(o: FlashOptions): Promise<{ src: Source; bmapPath: string | null; bmap: Bmap | null; orbimg: OrbimgInfo | null }> {
  if (isOrbimg(o.source)) {
    if (o.bmap) throw new LabError('bad-input', 'bad-usage', `${o.source} is a signed Orbital image: its parts carry their own BLAKE3, a bmap does not apply (drop --bmap)`);
    const { source, info } = openOrbimg(o.source, o.trust ?? [], o.part);
    return { src: source, bmapPath: null, bmap: null, orbimg: info };
  }
  let src = await (o.openSource ?? openSource)(o.source);
  if (!src.seekable) {
    // A pipe, or a compressed file: a signed image inside shows itself by its first bytes.
    const s = await streamOrbimg(src, o.trust ?? [], o.part, o.source === STDIN ? 'stdin' : o.source);
    src = s.source;
    if (s.info) {
      if (o.bmap) { await src.close(); throw new LabError('bad-input', 'bad-usage', `${o.source} holds a signed Orbital image: its parts carry their own BLAKE3, a bmap does not apply (drop --bmap)`); }
      return { src, bmapPath: null, bmap: null, orbimg: s.info };
    }
  }
  try {
    if (o.part !== undefined) throw new LabError('bad-input', 'bad-usage', `--part picks a part of a signed Orbital image (.orbimg); ${o.source} is not one`);
    const bmapPath = o.bmap === null ? null : o.bmap ?? findBmap(o.source);
    const bmap = bmapPath ? loadBmap(bmapPath) : null;
    return { src, bmapPath, bmap, orbimg: null };
  } catch (e) { await src.close(); throw e; }
}

const HEAD = 1 << 20;
const DEFAULT_CHUNK = 2 << 20;
const DEFAULT_SYNC = 32 << 20;
/** With O_DIRECT, chunks are handed to the verifier in batches of this many bytes (at most the sync interval). */
const DIRECT_BATCH = 4 << 20;
const QD = 3;
/** Target reads in flight ahead of a compare (the skip check and the verify command). */
const COMPARE_QD = 3;
/** Chunks queued on the hash worker beyond which a new range is hashed on the calling thread. */
const HASH_BACKLOG = 2;
const WRITE_QD = 4;
/** libuv's threadpool, where every positional read and write runs (UV_THREADPOOL_SIZE, default 4). */
const THREADS = Math.max(1, Number(process.env.UV_THREADPOOL_SIZE) || 4);

interface Chunk { offset: number; length: number; buf: Buffer }
interface Range { start: number; end: number; checksum?: string }

/** Finds IMAGE.bmap (or the name without .gz/.xz/.zst) beside the image. */
export function findBmap(source: string): string | null {
  if (source === STDIN) return null;
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

/**
 * Turns for the libuv threadpool (4 threads): a positional read or write holds a thread for its
 * whole duration, so more requests than threads only queue, first come first served. Read-backs
 * go before writes: a chunk read back soon frees its buffer for the next one.
 */
export class Slots {
  private waiting: Array<{ first: boolean; go: () => void }> = [];
  constructor(private free: number) {}
  async use<T>(first: boolean, f: () => Promise<T>): Promise<T> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((go) => { if (first) { const i = this.waiting.findIndex((w) => !w.first); this.waiting.splice(i < 0 ? this.waiting.length : i, 0, { first, go }); } else this.waiting.push({ first, go }); });
    try { return await f(); } finally {
      const next = this.waiting.shift();
      if (next) next.go(); else this.free++;
    }
  }
}

class Progress {
  private t0 = performance.now();
  private last = 0;
  constructor(public phase: Phase, private total: number | null, private cb?: (p: FlashProgress) => void, private fraction?: () => number | null, private startBytes = 0) {}
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

/**
 * Hashes the image's mapped bytes once as they stream by, and names the image:
 * - with a bmap that has a SHA-256 for every range (bmaptool's default), each range's SHA-256 is
 *   checked against the bmap, and the image's BLAKE3 id is taken over its range table (image size,
 *   each range's bytes and SHA-256): one hash pass, the one bmaptool makes too;
 * - otherwise BLAKE3 runs over the mapped bytes (the whole image without a bmap: what `b3sum IMAGE`
 *   prints), and whatever range checksums the bmap has (SHA-1 in bmap 1.x) are checked beside it.
 * A BLAKE3 stream runs on the worker, and so do range checksums during a write (the main thread
 * keeps the disk busy). During a compare (`shared`), whose thread has little else to do, a range's
 * checksum runs where it is cheapest when the range starts: on the worker if it is up and has at
 * most HASH_BACKLOG chunks queued, else on this thread, in `feed`. So no hash waits for the worker's
 * start-up (~40 ms of wall and CPU time here, 15% of a 256 MiB verify), and the two threads share
 * the hashing when the worker falls behind (SHA-256 runs at ~1.7 GB/s per thread here: the longest
 * job of a verify). (Shared during a write, the flash bench got slower: a 1 ms hash on the main
 * thread holds back the next write.)
 * `feed` resolves `hashed` once the chunk's buffer is free (at once when hashed here); at a range's
 * last chunk `verdict` settles with the range's check (it rejects on a mismatch).
 */
export class ImageHasher {
  readonly of: Blake3Of;
  /** Ranges whose checksum ran on this thread / on the worker. */
  readonly placed = { here: 0, worker: 0 };
  private b3: number | null = null;
  private i = 0;
  /** The open range's checksum: a stream on the worker (its id), or a hash on this thread. */
  private stream: number | Hash | null = null;
  private table: Promise<string>[] = [];
  private idP: Promise<string> | null = null;
  /**
   * `expect`: the BLAKE3 the bytes must have (a signed image's part hash); `id()` then throws
   * checksum-mismatch when they do not.
   */
  constructor(private w: HashWorker, private ranges: Range[], private type: 'sha1' | 'sha256' | null, private imageSize: number | null, private path: string, readonly expect: OrbimgInfo | null = null, private shared = false) {
    this.of = imageIdOf(ranges, type);
    if (this.of === 'bytes') this.b3 = w.open('blake3');
  }

  feed(c: Chunk): { hashed: Promise<void>; verdict: Promise<void> | null } {
    const streams = this.b3 === null ? [] : [this.b3];
    let r: Range | undefined;
    if (this.type) {
      while (this.i < this.ranges.length && this.ranges[this.i]!.end <= c.offset) this.i++;
      r = this.ranges[this.i];
      if (r?.checksum && r.start <= c.offset) {
        if (c.offset === r.start) {
          const there = !this.shared || (this.w.ready && this.w.backlog <= HASH_BACKLOG);
          this.stream = there ? this.w.open(this.type) : createHash(this.type);
          this.placed[there ? 'worker' : 'here']++;
        }
        if (typeof this.stream === 'number') streams.push(this.stream);
        else this.stream?.update(c.buf.subarray(0, c.length));
      } else r = undefined;
    }
    const hashed = streams.length ? this.w.update(streams, c.buf, c.length) : Promise.resolve();
    if (!r || this.stream === null || c.offset + c.length !== r.end) return { hashed, verdict: null };
    const range = r;
    const type = this.type!;
    const digest = typeof this.stream === 'number' ? this.w.digest(this.stream) : Promise.resolve(this.stream.digest('hex'));
    const got = digest.then((hex) => {
      if (hex !== range.checksum) throw new LabError('bad-input', 'checksum-mismatch', `image ${this.path}: bytes ${range.start}-${range.end} do not match the bmap's ${type} (want ${range.checksum}, got ${hex}): the image is corrupt or the bmap belongs to another image`, 'lab', { offset: range.start });
      return `${range.start}-${range.end} ${hex}\n`;
    });
    this.stream = null;
    this.table.push(got);
    return { hashed, verdict: got.then(() => {}) };
  }

  /** The image's BLAKE3 id (every range must have been fed; throws a range's mismatch, or a signed part's). */
  id(): Promise<string> { return (this.idP ??= this.computeId()); }
  private async computeId(): Promise<string> {
    if (this.b3 !== null) {
      const hex = await this.w.digest(this.b3);
      const e = this.expect;
      if (e && hex !== e.part.blake3) throw new LabError('bad-input', 'checksum-mismatch', `image ${this.path}: part '${e.part.name}' does not match the BLAKE3 in its signed manifest (want ${e.part.blake3}, got ${hex}): the file is damaged or was altered after signing`, 'lab', { part: e.part.name });
      return hex;
    }
    const lines = await Promise.all(this.table);
    return imageIdOfTable(this.imageSize!, lines);
  }
}

/** How a flash names its image (see ImageHasher). */
export type Blake3Of = 'bytes' | 'bmap-sha256';

function imageIdOf(ranges: Range[], type: 'sha1' | 'sha256' | null): Blake3Of {
  return type === 'sha256' && ranges.length > 0 && ranges.every((r) => r.checksum) ? 'bmap-sha256' : 'bytes';
}

/** BLAKE3 of an image's range table: "orbital-image 1 SIZE\n", then "START-END SHA256\n" per range (byte offsets, end exclusive). */
export function imageIdOfTable(imageSize: number, lines: string[]): string {
  return toHex(blake3(new TextEncoder().encode(`orbital-image 1 ${imageSize}\n${lines.join('')}`)));
}

/** open(2) of the target, timed by the watchdog: opening a hung disk (or creating a file on a frozen file system) can block too. */
function timedOpen(watch: IoWatch | undefined, path: string, flags: number | string, mode?: number): Promise<FileHandle> {
  const p = open(path, flags, mode);
  return watch ? watch.open(p) : p;
}

/** Opens a target for reading around the page cache; says how. */
async function openUncached(t: Target, direct = true, watch?: IoWatch): Promise<{ fh: FileHandle; method: VerifyReport['method'] }> {
  const r = await openUncachedRaw(t, direct, watch);
  return watch ? { ...r, fh: watch.wrap(r.fh) } : r;
}

async function openUncachedRaw(t: Target, direct: boolean, watch?: IoWatch): Promise<{ fh: FileHandle; method: VerifyReport['method'] }> {
  if (O_DIRECT && direct) {
    try { return { fh: await timedOpen(watch, t.real, constants.O_RDONLY | O_DIRECT), method: 'o_direct' }; } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EINVAL') throw fromSystemError(e, `target ${t.path}`);
    }
  }
  // No O_DIRECT here (tmpfs, some FUSE): drop the file's cached pages (dd iflag=nocache = posix_fadvise DONTNEED), then read.
  const tmpfs = t.type === 'file' && isTmpfs(t.real);
  return { fh: await timedOpen(watch, t.real, 'r'), method: dropCached(t) && !tmpfs ? 'dropped-cache' : 'cached' };
}

/** Drops a target's clean cached pages (synced ones): the next read comes from the disk. */
function dropCached(t: Target): boolean {
  const cmd = t.type === 'block' ? spawnSync('blockdev', ['--flushbufs', t.real]) : spawnSync('dd', [`if=${t.real}`, 'iflag=nocache', 'count=0'], { stdio: 'ignore' });
  return cmd.status === 0;
}

function isTmpfs(path: string): boolean {
  try { return statfsSync(path).type === 0x01021994; } catch { return false; }
}

/**
 * A written chunk waiting for its read-back: the very bytes that were checksummed, hashed and
 * written stay in memory (`data`; null for a chunk of zeros) until the target's copy has been read
 * back and compared with them byte for byte; `done` then gives the buffer back.
 */
interface Written { offset: number; length: number; data: Buffer | null; done: () => void; sample?: true }

/** Bytes kept of each sampled chunk, and the most samples kept (4 MiB). */
const SAMPLE_BYTES = 4096;
const MAX_SAMPLES = 1024;

/**
 * The first 4 KiB of written chunks, read back once more after the final sync. A chunk is read back
 * soon after its own write, while later chunks are still to come; a fake-capacity card (a device
 * that reports more than it holds and maps the addresses beyond onto earlier ones) overwrites an
 * earlier chunk only then, so the first read-back matched. The second read catches it. Every chunk
 * is sampled until MAX_SAMPLES, then every second one of those kept and of those to come, and so on
 * (the stride doubles), so the samples stay spread over the whole image whatever its length.
 */
class Samples {
  private kept: Array<{ i: number; w: Written }> = [];
  private stride = 1;
  private n = 0;
  add(offset: number, data: Buffer): void {
    const i = this.n++;
    if (i % this.stride !== 0) return;
    const len = Math.min(SAMPLE_BYTES, data.length);
    this.kept.push({ i, w: { offset, length: len, data: Buffer.from(data.subarray(0, len)), done: () => {}, sample: true } });
    if (this.kept.length > MAX_SAMPLES) {
      this.stride *= 2;
      this.kept = this.kept.filter((k) => k.i % this.stride === 0);
    }
  }
  get all(): Written[] { return this.kept.map((k) => k.w); }
}

/** The first offset at which `a` and `b` differ (they are known to differ). */
function firstDifference(a: Buffer, b: Buffer): number {
  let lo = 0;
  // Narrow down in 4 KiB steps with memcmp, then byte by byte.
  while (lo + 4096 <= a.length && a.subarray(lo, lo + 4096).equals(b.subarray(lo, lo + 4096))) lo += 4096;
  while (lo < a.length && a[lo] === b[lo]) lo++;
  return lo;
}

/**
 * Reads the target back through its own uncached handle and compares every chunk, byte for byte,
 * with the bytes that were written. It runs beside the write: chunks are handed over only once a
 * sync has made them durable (the head after the final sync), so the disk's read bandwidth is used
 * while the write goes on. Success still needs every chunk read back and matched after its sync.
 */
class Verifier {
  private queue: Written[] = [];
  private inflight = 0;
  private error: LabError | null = null;
  private idle: Array<() => void> = [];
  private busySince = 0;
  private busyMs = 0;
  private zeros: Buffer;
  bytes = 0;
  samples = 0;
  slots: Slots | null = null;
  onMatched: ((offset: number, length: number) => void) | null = null;
  private constructor(private fh: FileHandle, readonly method: VerifyReport['method'], private pool: Pool, private t: Target, private qd: number, chunkBytes: number, private signal?: AbortSignal) {
    this.zeros = Buffer.alloc(chunkBytes);
  }

  static async open(t: Target, chunkBytes: number, signal?: AbortSignal, direct = true, watch?: IoWatch): Promise<Verifier> {
    const { fh, method } = await openUncached(t, direct, watch);
    const bufs = method === 'o_direct' ? await alignedBuffers(fh, QD, chunkBytes + 2 * ALIGN, 'read') : Array.from({ length: QD }, () => Buffer.allocUnsafeSlow(chunkBytes + 2 * ALIGN));
    if (!bufs) { await fh.close(); throw new LabError('io', 'io-error', `target ${t.path}: no buffer alignment works for O_DIRECT`); }
    return new Verifier(fh, method, new Pool(bufs), t, QD, chunkBytes, signal);
  }

  push(ws: Written[]): void {
    if (ws.length === 0) return;
    // Without O_DIRECT the synced pages are still cached: drop them so they are read from the disk.
    if (this.method === 'dropped-cache') dropCached(this.t);
    this.queue.push(...ws);
    this.pump();
  }

  /** The first mismatch or read error so far (the write stops at once instead of finishing). */
  get failed(): LabError | null { return this.error && this.error.code !== 'cancelled' ? this.error : null; }

  private pump(): void {
    if (this.signal?.aborted && !this.error) this.error = new LabError('timeout', 'cancelled', 'flash cancelled during verify; the target is not known to hold the image', 'lab');
    // After a failure nothing more is read; queued chunks give their buffers back so a writer waiting for one wakes up and sees the failure.
    if (this.error) for (const w of this.queue.splice(0)) w.done();
    while (!this.error && this.inflight < this.qd && this.queue.length) this.start(this.queue.shift()!);
    if (this.inflight === 0 && this.queue.length === 0) for (const f of this.idle.splice(0)) f();
  }

  private start(w: Written): void {
    if (this.inflight === 0) this.busySince = performance.now();
    this.inflight++;
    void (async () => {
      const buf = await this.pool.acquire();
      try {
        const direct = this.method === 'o_direct';
        const a = direct ? alignDown(w.offset) : w.offset;
        const len = direct ? alignUp(w.offset + w.length) - a : w.length;
        const n = (await (this.slots ? this.slots.use(true, () => readFull(this.fh, buf, len, a)) : readFull(this.fh, buf, len, a))) - (w.offset - a);
        if (n < w.length) throw new LabError('io', 'verify-mismatch', `verify: target ${this.t.path} ends at ${w.offset + Math.max(0, n)}, before the image's byte ${w.offset + w.length}`, 'lab', { offset: w.offset + Math.max(0, n) });
        const got = buf.subarray(w.offset - a, w.offset - a + w.length);
        const want = w.data ?? this.zeros.subarray(0, w.length);
        if (!got.equals(want)) {
          const at = w.offset + firstDifference(got, want);
          if (w.sample) throw new LabError('io', 'verify-mismatch', `verify: target ${this.t.path} changed at byte ${at} after it was written and read back correctly: a later write landed there. The device is probably smaller than it reports (a fake-capacity card maps addresses past its real size onto earlier ones), or something else wrote to it. Check its real capacity (e.g. f3probe) before using it`, 'lab', { offset: at });
          throw new LabError('io', 'verify-mismatch', `verify: target ${this.t.path} differs from the image at byte ${at} (in bytes ${w.offset}-${w.offset + w.length}, read back through ${this.method}): the target is failing or something else wrote to it`, 'lab', { offset: at });
        }
        if (w.sample) this.samples++;
        else { this.bytes += w.length; this.onMatched?.(w.offset, w.length); }
      } catch (e) {
        this.error ??= e instanceof LabError ? e : fromSystemError(e, `verify: reading back ${this.t.path}`);
      } finally {
        this.pool.release(buf);
        w.done();
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
      if (this.inflight > 0 || this.queue.length > 0) await new Promise<void>((r) => this.idle.push(r));
    } finally { clearInterval(tick); }
    if (this.error) throw this.error;
    prog.tick(this.bytes, true);
    const seconds = this.busyMs / 1000;
    return { method: this.method, bytes: this.bytes, seconds, mbPerS: seconds > 0 ? this.bytes / 1e6 / seconds : 0, ...(this.samples ? { samples: this.samples } : {}) };
  }

  /** Stops reading (a failed or cancelled flash), gives every buffer back and closes the handle. */
  async close(): Promise<void> {
    this.error ??= new LabError('timeout', 'cancelled', 'verify stopped', 'lab');
    this.pump();
    if (this.inflight > 0) await new Promise<void>((r) => this.idle.push(r));
    await this.fh.close().catch(() => {});
  }
}

/** Flashes an image onto the device's target. Throws a LabError on anything short of a verified image. */
async function flashOnce(o: FlashOptions): Promise<FlashResult> {
  const tStart = performance.now();
  const chunkBytes = o.chunkBytes ?? DEFAULT_CHUNK;
  const syncEvery = o.syncEveryBytes ?? DEFAULT_SYNC;
  const verify = o.verify ?? true;
  const t = checkTarget(o.device, { requested: o.requestedTarget, sourcePath: o.source, view: o.view });
  const opened = await openImageSource(o);
  const { bmapPath, bmap, orbimg } = opened;
  let src = opened.src;
  const checksumType = bmap?.checksumType ?? null;
  const bmapRanges: Range[] = bmap ? byteRanges(bmap) : [];
  // Started now so its start-up overlaps the checks below; BLAKE3's WebAssembly is loaded only if the bytes are hashed with it.
  const hw = new HashWorker(imageIdOf(bmapRanges, checksumType) === 'bytes' ? ['blake3'] : []);
  const previous = readJournal(o.stateDir, o.device.name);
  const prevUnfinished = previous && previous.status !== 'ok' ? previous : null;
  const seconds = { compare: 0, write: 0, sync: 0, verify: 0, total: 0 };
  try {
    let imageSize: number | null = bmap?.imageSize ?? (src.seekable ? src.storedSize : null);
    if (bmap && src.seekable && src.storedSize !== bmap.imageSize) throw new LabError('bad-input', 'bmap-mismatch', `image ${o.source} is ${src.storedSize} bytes but bmap ${bmapPath} describes ${bmap.imageSize}: the bmap belongs to another image`);
    const ranges: Range[] | null = bmap ? bmapRanges : imageSize !== null ? [{ start: 0, end: imageSize }] : null;
    const mappedKnown = ranges ? ranges.reduce((n, r) => n + r.end - r.start, 0) : null;
    if (t.type === 'block' && imageSize !== null && t.size < imageSize) throw new LabError('refused', 'target-too-small', `${o.device.name}: target ${t.path} holds ${t.size} bytes, the image needs ${imageSize}`, 'lab');
    if (t.type === 'file' && mappedKnown !== null) {
      try { const fsst = statfsSync(t.exists ? t.real : t.real.replace(/\/[^/]*$/, '') || '/'); const free = fsst.bavail * fsst.bsize + (t.exists ? t.size : 0); if (free < mappedKnown) throw new LabError('io', 'target-full', `${o.device.name}: ${free} bytes free where ${t.path} lives, the image needs ${mappedKnown}`, 'lab'); } catch (e) { if (e instanceof LabError) throw e; }
    }
    const hasher = (shared = false) => new ImageHasher(hw, bmapRanges, checksumType, bmap?.imageSize ?? null, o.source, orbimg, shared);

    // Compare first: a target that already holds the image is not rewritten (unless forced).
    // (a compressed file is compared while it streams, then read again for the write if it differs;
    // a pipe cannot be read twice, so it is always written)
    const canCompare = !o.force && t.exists && src.storedSize !== null && prevUnfinished === null && (imageSize === null || (t.type === 'block' ? t.size >= imageSize : t.size === imageSize));
    // A target that holds most of the image already (an earlier version) gets only the chunks that
    // differ (esptool's changed-sectors write): compared, rewritten where they differ, read back.
    // Where O_DIRECT does not work, or the image's length is unknown, the whole image is written.
    if (canCompare && imageSize !== null && o.directIo !== false && O_DIRECT && o.delta !== false) {
      const tc = performance.now();
      const h = hasher(true);
      const started = new Date().toISOString();
      const journal: JournalEntry = { device: o.device.name, target: t.path, source: o.source, status: 'in-progress', pid: process.pid, pidStart: pidStart(), started };
      let begun = false;
      try {
        const d = await deltaWrite(src, t, ranges!, imageSize, chunkBytes, h, hw, verify, o, () => { begun = true; writeJournal(o.stateDir, journal); });
        if (d) {
          seconds.compare = (performance.now() - tc) / 1000;
          const blake3 = await h.id();
          const when = new Date().toISOString();
          writeJournal(o.stateDir, { ...(begun ? journal : { device: o.device.name, target: t.path, source: o.source, status: 'ok', pid: process.pid, pidStart: null, started: when }), status: 'ok', ended: when, blake3, blake3Of: h.of, ...signedOf(orbimg) });
          seconds.total = (performance.now() - tStart) / 1000;
          return { status: d.written ? 'written' : 'skipped', device: o.device.name, target: { path: t.path, real: t.real, type: t.type }, source: { path: o.source, format: src.format, bmap: bmapPath }, imageSize, mappedBytes: mappedKnown!, bytesWritten: d.written, blake3, blake3Of: h.of, directIo: true, verify: d.verify, seconds, previous: null, delta: d.delta, ...(orbimg ? { orbimg } : {}) };
        }
      } catch (e) {
        const le = e instanceof LabError ? e : fromSystemError(e, `target ${t.path}`);
        if (begun) writeJournal(o.stateDir, { ...journal, status: le.code === 'cancelled' ? 'cancelled' : 'failed', ended: new Date().toISOString(), error: le.message });
        throw le;
      }
    }
    if (canCompare) {
      const tc = performance.now();
      const h = hasher(true);
      const same = await compareTarget(src, t, ranges, imageSize, chunkBytes, h, hw, o);
      if (same && imageSize === null) imageSize = same.bytes;
      seconds.compare = (performance.now() - tc) / 1000;
      if (same) {
        const blake3 = await h.id();
        writeJournal(o.stateDir, { device: o.device.name, target: t.path, source: o.source, status: 'ok', pid: process.pid, pidStart: null, started: new Date().toISOString(), ended: new Date().toISOString(), blake3, blake3Of: h.of, ...signedOf(orbimg) });
        seconds.total = (performance.now() - tStart) / 1000;
        const v: VerifyReport = same;
        return { status: 'skipped', device: o.device.name, target: { path: t.path, real: t.real, type: t.type }, source: { path: o.source, format: src.format, bmap: bmapPath }, imageSize: imageSize!, mappedBytes: mappedKnown ?? v.bytes, bytesWritten: 0, blake3, blake3Of: h.of, directIo: v.method === 'o_direct', verify: v, seconds, previous: null, ...(orbimg ? { orbimg } : {}) };
      }
    }

    if (canCompare && !src.seekable) { await src.close(); src = await (o.openSource ?? openSource)(o.source); }

    // Write.
    const started = new Date().toISOString();
    const journal: JournalEntry = { device: o.device.name, target: t.path, source: o.source, status: 'in-progress', pid: process.pid, pidStart: pidStart(), started };
    writeJournal(o.stateDir, journal);
    const tw = performance.now();
    let result: Awaited<ReturnType<typeof writeImage>>;
    try {
      result = await writeImage(src, t, ranges, bmap, imageSize, chunkBytes, syncEvery, hw, hasher(), verify, o, seconds);
    } catch (e) {
      const le = e instanceof LabError ? e : fromSystemError(e, `target ${t.path}`);
      writeJournal(o.stateDir, { ...journal, status: le.code === 'cancelled' ? 'cancelled' : 'failed', ended: new Date().toISOString(), error: le.message });
      throw le;
    }
    seconds.write = (performance.now() - tw) / 1000 - seconds.sync - seconds.verify;
    imageSize ??= result.imageLen;
    const { blake3, blake3Of } = result;
    writeJournal(o.stateDir, { ...journal, status: 'ok', ended: new Date().toISOString(), blake3, blake3Of, ...signedOf(orbimg) });
    seconds.total = (performance.now() - tStart) / 1000;
    return { status: 'written', device: o.device.name, target: { path: t.path, real: t.real, type: t.type }, source: { path: o.source, format: src.format, bmap: bmapPath }, imageSize, mappedBytes: result.mapped, bytesWritten: result.written, blake3, blake3Of, directIo: result.direct, verify: result.verify, seconds, previous: prevUnfinished, ...(orbimg ? { orbimg } : {}) };
  } finally {
    hw.close();
    await src.close();
  }
}

function pidStart(): number | null {
  try { const s = readFileSync(`/proc/${process.pid}/stat`, 'utf8'); return Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[19]); } catch { return null; }
}

/**
 * Byte-compares the image's mapped ranges with the target, read uncached, hashing the image as it
 * goes (a range whose checksum does not match the bmap fails the compare with checksum-mismatch).
 * Returns a report when all match; the image's id is then `hasher.id()`.
 */
async function compareTarget(src: Source, t: Target, ranges: Range[] | null, imageSize: number | null, chunkBytes: number, hasher: ImageHasher, hw: HashWorker, o: FlashOptions): Promise<VerifyReport | null> {
  const t0 = performance.now();
  const { fh, method } = await openUncached(t, o.directIo !== false, o.watch);
  const hashing = new Set<Promise<void>>();
  let failure: unknown = null;
  const track = (p: Promise<void>) => { const q: Promise<void> = p.catch((e) => { failure ??= e; }).finally(() => hashing.delete(q)); hashing.add(q); };
  try {
    // The target is read COMPARE_QD chunks ahead of the compare (its reads run on libuv's threads
    // while this thread reads the image), so a compare runs at the disk's read speed, not one
    // request at a time.
    const tbs = method === 'o_direct' ? await alignedBuffers(fh, COMPARE_QD, chunkBytes + 2 * ALIGN, 'read') : Array.from({ length: COMPARE_QD }, () => Buffer.allocUnsafeSlow(chunkBytes + 2 * ALIGN));
    if (!tbs) return null;
    const tpool = new Pool(tbs);
    const bufs = Array.from({ length: COMPARE_QD + 3 }, () => newBuffer(chunkBytes, true));
    hw.setBuffers(bufs);
    const pool = new Pool(bufs);
    const total = ranges ? ranges.reduce((n, r) => n + r.end - r.start, 0) : null;
    const prog = new Progress('compare', total, o.onProgress, total === null && src.storedSize ? () => src.consumed() / src.storedSize! : undefined);
    let done = 0;
    let length = -1;
    const it = chunksOf(src, ranges, ranges ? imageSize : null, pool, chunkBytes, (n) => { length = n; });
    interface Ahead { c: Chunk; tb: Buffer; skew: number; read: Promise<number | null> }
    const ahead: Ahead[] = [];
    /** Compares the oldest chunk read ahead; false when the target differs (or cannot be read there). */
    const settle = async (x: Ahead): Promise<boolean> => {
      const n = await x.read;
      const same = n !== null && n - x.skew >= x.c.length && x.tb.subarray(x.skew, x.skew + x.c.length).equals(x.c.buf.subarray(0, x.c.length));
      tpool.release(x.tb);
      if (!same) { pool.release(x.c.buf); return false; }
      const { hashed, verdict } = hasher.feed(x.c);
      track(hashed.finally(() => pool.release(x.c.buf)));
      if (verdict) track(verdict);
      done += x.c.length;
      prog.tick(done);
      return true;
    };
    try {
      for await (const c of it) {
        const a = method === 'o_direct' ? alignDown(c.offset) : c.offset;
        const len = method === 'o_direct' ? alignUp(c.offset + c.length) - a : c.length;
        const tb = await tpool.acquire();
        // A read error here (EINVAL from an alignment probe that met a hole) only means: write.
        ahead.push({ c, tb, skew: c.offset - a, read: readFull(fh, tb, len, a).catch(() => null) });
        if (ahead.length >= COMPARE_QD && !(await settle(ahead.shift()!))) return null;
        if (failure) throw failure;
        checkCancel(o.signal);
      }
      while (ahead.length) if (!(await settle(ahead.shift()!))) return null;
    } finally {
      // Reads still in flight use the handle and buffers: let them finish before the handle closes.
      for (const x of ahead.splice(0)) { await x.read; pool.release(x.c.buf); }
      await it.return(undefined);
    }
    await Promise.all(hashing);
    if (failure) throw failure;
    // A stream of unknown length: the target must be exactly as long (a file) or longer (a disk).
    if (imageSize === null && (t.type === 'file' ? length !== t.size : length > t.size)) return null;
    prog.tick(done, true);
    const seconds = (performance.now() - t0) / 1000;
    return { method, bytes: done, seconds, mbPerS: seconds > 0 ? done / 1e6 / seconds : 0 };
  } finally {
    // The worker may still read the buffers of a compare that stopped early.
    await Promise.allSettled(hashing);
    await fh.close().catch(() => {});
  }
}

/**
 * Hashing on a worker thread over the pool's shared buffers (see hash-worker.mjs): BLAKE3 of the
 * written bytes and the bmap's range checksums. Started at the beginning of a flash so its start-up
 * overlaps the safety checks; messages queue until it is up (the worker handles them strictly in
 * order, which streaming hashes need).
 */
export class HashWorker {
  private waiting = new Map<number, { res: (hex: string) => void; rej: (e: Error) => void }>();
  private next = 0;
  private streams = 0;
  private failed: Error | null = null;
  private index = new Map<ArrayBufferLike, number>();
  private w: Worker;
  /** Whether the thread is up (it says so once its module has loaded); `up` resolves then. */
  ready = false;
  readonly up: Promise<void>;
  private wentUp!: () => void;
  /** Requests sent and not yet answered. */
  get backlog(): number { return this.waiting.size; }
  constructor(preload: Array<'blake3'> = []) {
    this.up = new Promise((res) => { this.wentUp = res; });
    // Plain JS: it needs no TypeScript loader, and inheriting one (tsx's --require/--import in
    // execArgv, as under `npm run lab`) costs ~0.13 s of CPU and ~0.15 s before the first hash.
    this.w = new Worker(new URL('./hash-worker.mjs', import.meta.url), { workerData: { preload }, execArgv: [] });
    this.w.on('message', (m: { t: string; id?: number; hex?: string; message?: string }) => {
      if (m.t === 'ready') { this.ready = true; this.wentUp(); return; }
      if (m.t === 'error') { this.fail(new Error(`hash worker: ${m.message}`)); return; }
      const f = this.waiting.get(m.id!);
      this.waiting.delete(m.id!);
      f?.res(m.hex ?? '');
    });
    this.w.on('error', (e) => this.fail(e));
  }
  private fail(e: Error): void {
    this.failed ??= e;
    for (const f of this.waiting.values()) f.rej(this.failed);
    this.waiting.clear();
  }
  private ask(msg: Record<string, unknown>): Promise<string> {
    if (this.failed) return Promise.reject(this.failed);
    const id = this.next++;
    return new Promise<string>((res, rej) => { this.waiting.set(id, { res, rej }); this.w.postMessage({ ...msg, id }); });
  }
  setBuffers(bufs: Buffer[]): void {
    const sabs = [...new Set(bufs.map((b) => b.buffer))];
    this.index = new Map(sabs.map((s, i) => [s, i]));
    this.w.postMessage({ t: 'buffers', sabs });
  }
  /** Opens a hash stream; returns its id. */
  open(alg: 'blake3' | 'sha256' | 'sha1'): number {
    const id = this.streams++;
    this.w.postMessage({ t: 'open', id, alg });
    return id;
  }
  /** Feeds buf[0, len) to the streams; resolves once the worker is done with the buffer. */
  update(streams: number[], buf: Buffer, len: number): Promise<void> {
    return this.ask({ t: 'data', streams, buf: this.index.get(buf.buffer), off: buf.byteOffset, len }).then(() => {});
  }
  /** Closes a stream; resolves with its hex digest. */
  digest(stream: number): Promise<string> { return this.ask({ t: 'digest', stream }); }
  close(): void { void this.w.terminate(); }
}

/** Chunks compared before deciding whether the target is mostly another image (then read no more of it first). */
const BLIND_AFTER = 16;

/**
 * Writes only what differs: each chunk of the image is compared with the target, read uncached
 * (as the compare-first does); a chunk that matches is not written - it was just read from the
 * disk and matched, so it counts as verified - and one that differs is written (O_DIRECT) and read
 * back. The first write zeroes the head and the journal says in-progress from then on, so a cut
 * leaves a disk that will not boot and the next flash rewrites it whole; the head is written last,
 * after every range checksum matched, as in a full write. Samples of every chunk are read again
 * after the final sync (the fake-capacity check). When more than 3/4 of the first BLIND_AFTER
 * chunks differ, the target holds another image: the rest is written without reading it first
 * (reading it would only add time). Returns null, having read nothing from the source, where
 * O_DIRECT does not work on the target (the caller then takes the full write); the report's
 * `written` is 0 when the target already held the image.
 */
async function deltaWrite(src: Source, t: Target, ranges: Range[], imageSize: number, chunkBytes: number, hasher: ImageHasher, hw: HashWorker, verify: boolean, o: FlashOptions, begin: () => void): Promise<{ written: number; delta: DeltaReport; verify: VerifyReport } | null> {
  const t0 = performance.now();
  let fh: FileHandle;
  try { fh = await timedOpen(o.watch, t.real, constants.O_RDWR | O_DIRECT | (t.type === 'block' ? constants.O_EXCL : 0)); } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EINVAL') return null;
    throw fromSystemError(e, `target ${t.path}`);
  }
  if (o.watch) fh = o.watch.wrap(fh);
  // Opened by the first write (a holder: TypeScript would narrow `let`s assigned only in a closure to null).
  const late: { bfh: FileHandle | null; verifier: Verifier | null } = { bfh: null, verifier: null };
  const writes = new Set<Promise<void>>();
  const hashing = new Set<Promise<void>>();
  const checks = new Set<Promise<void>>();
  let failure: unknown = null;
  const track = (set: Set<Promise<void>>, p: Promise<void>) => { const q: Promise<void> = p.catch((e) => { failure ??= e; }).finally(() => set.delete(q)); set.add(q); };
  try {
    const NT = COMPARE_QD + WRITE_QD + QD + 2;
    const tbs = await alignedBuffers(fh, NT, chunkBytes + 2 * ALIGN, 'read');
    if (!tbs) return null;
    const tpool = new Pool(tbs);
    const bufs = Array.from({ length: COMPARE_QD + 3 }, () => newBuffer(chunkBytes, true));
    hw.setBuffers(bufs);
    const pool = new Pool(bufs);
    const total = ranges.reduce((n, r) => n + r.end - r.start, 0);
    const prog = new Progress('compare', total, o.onProgress);
    const delta: DeltaReport = { unchanged: 0, rewritten: 0, chunks: 0, differed: 0, blindFrom: null };
    const samples = new Samples();
    const head: Array<{ offset: number; data: Buffer }> = [];
    let begun = false;
    let done = 0;
    let headSame = 0;
    /** Read back after the final sync, unless the whole image matched: samples, and the head once written. */
    const start = async () => {
      if (begun) return;
      begun = true;
      begin();
      // The old head goes first, so a disk cut off from here on does not boot a mix of two images.
      // (no O_EXCL: the O_DIRECT handle holds the disk exclusively already, and a second claim would fail EBUSY)
      const bfh = await timedOpen(o.watch, t.real, constants.O_RDWR).catch((e) => { throw fromSystemError(e, `target ${t.path}`); });
      late.bfh = o.watch ? o.watch.wrap(bfh) : bfh;
      await writeFull(late.bfh, Buffer.alloc(HEAD), Math.min(HEAD, imageSize), 0);
      await late.bfh.datasync();
      if (verify) { late.verifier = await Verifier.open(t, chunkBytes, o.signal, true, o.watch); late.verifier.onMatched = o.afterReadBack ?? null; }
      prog.phase = 'write';
    };
    const it = chunksOf(src, ranges, imageSize, pool, chunkBytes, () => {});
    interface Ahead { c: Chunk; tb: Buffer; skew: number; read: Promise<number | null> }
    const ahead: Ahead[] = [];
    const settle = async (x: Ahead) => {
      const n = await x.read;
      const { c, tb, skew } = x;
      const data = c.buf.subarray(0, c.length);
      const same = n !== null && n - skew >= c.length && tb.subarray(skew, skew + c.length).equals(data);
      delta.chunks++;
      if (!same) delta.differed++;
      if (delta.blindFrom === null && delta.chunks === BLIND_AFTER && delta.differed * 4 > BLIND_AFTER * 3) delta.blindFrom = c.offset + c.length;
      const aligned = c.offset % ALIGN === 0 && c.length % ALIGN === 0;
      if (c.offset < HEAD) {
        // The head: kept, and written last if anything is written at all.
        head.push({ offset: c.offset, data: Buffer.from(data) });
        if (same) { delta.unchanged += c.length; headSame += c.length; } else await start();
        tpool.release(tb);
      } else if (same) {
        delta.unchanged += c.length;
        if (verify) samples.add(c.offset, data);
        tpool.release(tb);
      } else {
        await start();
        if (verify) samples.add(c.offset, data);
        let w: Written;
        let p: Promise<void>;
        if (aligned) {
          data.copy(tb, 0);
          w = { offset: c.offset, length: c.length, data: tb.subarray(0, c.length), done: () => tpool.release(tb) };
          p = writeFull(fh, tb, c.length, c.offset);
        } else {
          // An unaligned tail: through the page cache (an O_DIRECT read-back writes it back first).
          const copy = Buffer.from(data);
          tpool.release(tb);
          w = { offset: c.offset, length: c.length, data: copy, done: () => {} };
          p = writeFull(late.bfh!, copy, c.length, c.offset);
        }
        delta.rewritten += c.length;
        track(writes, p.then(() => { o.afterWrite?.(c.offset, c.length); if (late.verifier) late.verifier.push([w]); else w.done(); }, (e) => { w.done(); throw e; }));
      }
      // Hashed once the compare is done with the buffer (a range's checksum must match before the head is written).
      const { hashed, verdict } = hasher.feed(c);
      track(hashing, hashed.finally(() => pool.release(c.buf)));
      if (verdict) track(checks, verdict);
      done += c.length;
      prog.tick(done);
    };
    try {
      for await (const c of it) {
        const a = alignDown(c.offset);
        const len = alignUp(c.offset + c.length) - a;
        const tb = await tpool.acquire();
        const blind = delta.blindFrom !== null;
        ahead.push({ c, tb, skew: c.offset - a, read: blind ? Promise.resolve(null) : readFull(fh, tb, len, a).catch(() => null) });
        if (ahead.length >= COMPARE_QD) await settle(ahead.shift()!);
        if (failure) throw failure;
        const vf = late.verifier?.failed;
        if (vf) throw vf;
        if (writes.size >= WRITE_QD) await Promise.race(writes);
        checkCancel(o.signal);
      }
      while (ahead.length) await settle(ahead.shift()!);
    } finally {
      for (const x of ahead.splice(0)) { await x.read; pool.release(x.c.buf); }
      await it.return(undefined);
    }
    await Promise.allSettled(writes);
    await Promise.all(hashing);
    if (failure) throw failure;
    prog.tick(done, true);
    if (!begun) {
      // The target already held the image: nothing was written (its id still needs every range checked).
      await Promise.all(checks);
      if (failure) throw failure;
      const seconds = (performance.now() - t0) / 1000;
      return { written: 0, delta, verify: { method: 'o_direct', bytes: done, seconds, mbPerS: seconds > 0 ? done / 1e6 / seconds : 0 } };
    }
    const sp = new Progress('sync', null, o.onProgress);
    sp.tick(0, true);
    await fh.datasync();
    // The head last, once every range checksum has matched (and a signed part its BLAKE3).
    await Promise.all(checks);
    if (failure) throw failure;
    if (hasher.expect) await hasher.id();
    for (const h of head) { await writeFull(late.bfh!, h.data, h.data.length, h.offset); delta.rewritten += h.data.length; }
    await fh.datasync();
    let report: VerifyReport = { method: 'o_direct', bytes: delta.unchanged, seconds: 0, mbPerS: 0 };
    const v = late.verifier;
    if (v) {
      v.push(head.map((h) => ({ offset: h.offset, length: h.data.length, data: h.data, done: () => {} })));
      await v.drain(o.onProgress, done);
      v.push(samples.all);
      const r = await v.drain();
      // Matched: what was read back after its write (the head included), and what was compared and left as it was.
      report = { ...r, bytes: r.bytes + delta.unchanged - headSame };
    }
    return { written: delta.rewritten, delta, verify: report };
  } finally {
    await Promise.allSettled(writes);
    await late.verifier?.close();
    await Promise.allSettled(hashing);
    await fh.close().catch(() => {});
    await late.bfh?.close().catch(() => {});
  }
}

async function writeImage(src: Source, t: Target, ranges: Range[] | null, bmap: Bmap | null, imageSize: number | null, chunkBytes: number, syncEvery: number, hw: HashWorker, hasher: ImageHasher, verify: boolean, o: FlashOptions, seconds: FlashResult['seconds']) {
  // A file target starts empty and sparse (holes read as zeros, as with bmaptool); a disk is claimed
  // exclusively (O_EXCL on a block device fails while it is mounted or claimed elsewhere).
  let fresh = false;
  let bfh: FileHandle;
  try {
    const watched = (fh: FileHandle) => o.watch?.wrap(fh) ?? fh;
    if (t.type === 'file') {
      bfh = watched(await timedOpen(o.watch, t.real, constants.O_RDWR | constants.O_CREAT, 0o644));
      await bfh.truncate(0);
      await bfh.truncate(Math.max(imageSize ?? 0, ALIGN));
      fresh = true;
    } else {
      bfh = watched(await timedOpen(o.watch, t.real, constants.O_RDWR | constants.O_EXCL));
    }
  } catch (e) { throw fromSystemError(e, `target ${t.path}`); }
  // Written chunks stay in memory until they are read back, so the pool holds one read-back batch
  // beside the chunks being read, hashed and written. With O_DIRECT a chunk can be read back as soon
  // as its write completed, so the batch is short; through the page cache it is a sync interval's
  // worth. Every buffer is fresh memory whose first touch page-faults (~11 us a page on the VMs we
  // measured, ~0.2 s for 80 MiB), so the pool is kept as small as the pipeline allows.
  const direct = o.directIo !== false;
  const batchEvery = Math.min(syncEvery, DIRECT_BATCH);
  const chunksIn = (bytes: number) => Math.max(1, Math.ceil(bytes / chunkBytes));
  const nbufOf = (held: number) => (verify ? chunksIn(held) + WRITE_QD + QD + 2 : WRITE_QD + 4);
  let dfh: FileHandle | null = null;
  let dbufs: Buffer[] | null = null;
  if (O_DIRECT && direct) {
    try {
      dfh = await timedOpen(o.watch, t.real, constants.O_RDWR | O_DIRECT);
      if (o.watch) dfh = o.watch.wrap(dfh);
      dbufs = await alignedBuffers(dfh, nbufOf(batchEvery), chunkBytes, 'write', true);
      if (!dbufs) { await dfh.close(); dfh = null; }
    } catch { dfh = null; dbufs = null; }
  }
  const maxUnsynced = chunksIn(dbufs ? batchEvery : syncEvery);
  const bufs = dbufs ?? Array.from({ length: nbufOf(syncEvery) }, () => newBuffer(chunkBytes, true));
  const pool = new Pool(bufs);
  hw.setBuffers(bufs);
  // Its own handle, opened after the probe above wrote offset 0 (an O_DIRECT alignment probe must meet allocated blocks).
  let verifier: Verifier | null = null;
  if (verify) {
    try { verifier = await Verifier.open(t, chunkBytes, o.signal, direct, o.watch); } catch (e) { await bfh.close().catch(() => {}); if (dfh) await dfh.close().catch(() => {}); throw e; }
  }
  const zero = Buffer.alloc(chunkBytes);
  /** Written since the last sync; zeros left to holes (no sync needed); the head, read back at the very end. */
  let unsynced: Written[] = [];
  let holes: Written[] = [];
  /**
   * Holes of an image of unknown length (a compressed stream): the file is only as long as the
   * writes so far made it, and the last ones may still be in flight, so these are read back after
   * the final truncate gave the file its length.
   */
  const lateHoles: Written[] = [];
  const head: Written[] = [];
  const held: Array<{ offset: number; data: Buffer }> = [];
  const total = ranges ? ranges.reduce((n, r) => n + r.end - r.start, 0) : null;
  const prog = new Progress('write', total, o.onProgress, total === null && src.storedSize ? () => src.consumed() / src.storedSize! : undefined);
  let imageLen = 0;
  let written = 0;
  let done = 0;
  let sinceSync = 0;
  /** Writes in flight (a sync waits for these), hashing in flight, and range checksum verdicts to come. */
  const writes = new Set<Promise<void>>();
  const hashing = new Set<Promise<void>>();
  const checks = new Set<Promise<void>>();
  let failure: unknown = null;
  const track = (set: Set<Promise<void>>, p: Promise<void>) => {
    const q: Promise<void> = p.catch((e) => { failure ??= e; }).finally(() => set.delete(q));
    set.add(q);
  };
  /** Gives a chunk's buffer back to the pool once `n` holders (hash, write, read-back) are done with it. */
  const holders = (buf: Buffer, n: number) => { let left = n; return () => { if (--left === 0) pool.release(buf); }; };
  const slots = new Slots(THREADS);
  if (verifier) { verifier.slots = slots; verifier.onMatched = o.afterReadBack ?? null; }
  const samples = new Samples();
  const put = (buf: Buffer, len: number, pos: number) => {
    const direct = dfh !== null && pos % ALIGN === 0 && len % ALIGN === 0;
    return slots.use(false, () => writeFull(direct ? dfh! : bfh, buf, len, pos));
  };
  const datasync = async () => {
    const ts = performance.now();
    await Promise.all(writes);
    // One inode: a datasync through either handle makes both handles' writes durable.
    await (dfh ?? bfh).datasync();
    seconds.sync += (performance.now() - ts) / 1000;
  };
  /**
   * Written (and read back) with O_DIRECT: there is no dirty cache to bound, so nothing is synced
   * on the way - once before the head, once after it. Chunks whose writes have completed are read
   * back in small batches (DIRECT_BATCH, 4 MiB), without a sync: the device holds them, and no page
   * cache can answer the read (an O_DIRECT read writes back any dirty cached page of its range
   * first, as for an unaligned tail written through the cache). A batch, not each chunk: read-backs
   * take the threads before waiting writes (Slots), so a batch runs at the disk's read speed
   * instead of each read queueing behind writes. Success still needs both syncs and every byte
   * read back and matched.
   * Through the page cache (the fallback), chunks are read back after the sync that makes them
   * durable, so their cached pages can be dropped; a sync comes at the latest when `holdMax`
   * chunks wait for one (small chunks at range ends would otherwise use up the pool).
   */
  const pipelined = dfh !== null && (!verifier || verifier.method === 'o_direct');
  const holdMax = verifier ? Math.max(1, Math.min(maxUnsynced, bufs.length - WRITE_QD - QD - 2)) : maxUnsynced;
  /** Written (O_DIRECT) and not yet handed to the verifier. */
  let batch: Written[] = [];
  let batchBytes = 0;
  const readBack = (w: Written | null) => {
    if (w) { batch.push(w); batchBytes += w.length; }
    if (batch.length && (!w || batchBytes >= batchEvery || batch.length >= holdMax)) { verifier?.push(batch); batch = []; batchBytes = 0; }
  };
  /** Makes what was written durable, then hands it to the verifier (read back beside the write). */
  const sync = async () => {
    const batch = unsynced.concat(holes);
    unsynced = [];
    holes = [];
    sinceSync = 0;
    await datasync();
    if (failure) throw failure;
    verifier?.push(batch);
  };
  try {
    // A disk keeps its old head until the new one is written last: zero it now.
    if (!fresh) { await writeFull(bfh, Buffer.alloc(HEAD), Math.min(HEAD, t.size), 0); await bfh.datasync(); }
    const it = chunksOf(src, ranges, bmap ? bmap.imageSize : null, pool, chunkBytes, (n) => { imageLen = n; });
    // The next chunk is read while this one is written. When the write fails first, the flash
    // ends without awaiting that read; it is marked handled so its own failure (a source cut
    // off as the flash stops) cannot surface later as an unhandled rejection that kills the process.
    const next = () => { const p = it.next(); p.catch(() => {}); return p; };
    let pending = next();
    for (;;) {
      const r = await pending;
      if (r.done) break;
      pending = next();
      const c = r.value;
      const data = c.buf.subarray(0, c.length);
      done += c.length;
      const { hashed, verdict } = hasher.feed(c);
      if (verdict) track(checks, verdict);
      if (c.offset < HEAD) {
        // The head is written last, from its own copy (which its read-back is compared with).
        const copy = Buffer.from(data);
        held.push({ offset: c.offset, data: copy });
        head.push({ offset: c.offset, length: c.length, data: copy, done: () => {} });
        track(hashing, hashed.finally(() => pool.release(c.buf)));
      } else if (fresh && zero.subarray(0, c.length).equals(data)) {
        // Zeros on a new sparse file: a hole already holds them (read back all the same).
        (imageSize === null ? lateHoles : holes).push({ offset: c.offset, length: c.length, data: null, done: () => {} });
        track(hashing, hashed.finally(() => pool.release(c.buf)));
      } else {
        const release = holders(c.buf, verifier ? 3 : 2);
        track(hashing, hashed.finally(release));
        const w: Written = { offset: c.offset, length: c.length, data, done: release };
        if (verifier) samples.add(c.offset, data);
        track(writes, put(c.buf, c.length, c.offset).then(() => { written += c.length; o.afterWrite?.(c.offset, c.length); if (pipelined) readBack(w); }).finally(release));
        if (!pipelined) unsynced.push(w);
        sinceSync += c.length;
      }
      if (pipelined && holes.length) { verifier?.push(holes); holes = []; }
      if (failure) throw failure;
      if (verifier?.failed) throw verifier.failed;
      if (writes.size >= WRITE_QD) await Promise.race(writes);
      if (!pipelined && (sinceSync >= syncEvery || unsynced.length >= holdMax)) await sync();
      prog.tick(done);
      if (o.signal?.aborted) { await Promise.allSettled(writes); await datasync().catch(() => {}); checkCancel(o.signal); }
    }
    await Promise.allSettled(writes);
    if (pipelined) readBack(null);
    if (failure) throw failure;
    prog.tick(done, true);
    // The head goes last, after everything else is on the disk.
    const sp = new Progress('sync', null, o.onProgress);
    sp.tick(0, true);
    await sync();
    // ...and only once every range checksum has matched (and a signed image's part its BLAKE3).
    await Promise.all(checks);
    if (failure) throw failure;
    if (hasher.expect) await hasher.id();
    for (const h of held) { await writeFull(bfh, h.data, h.data.length, h.offset); written += h.data.length; }
    if (t.type === 'file') await bfh.truncate(imageSize ?? imageLen);
    if (imageSize === null && t.type === 'block' && imageLen > t.size) throw new LabError('io', 'target-full', `target ${t.path} holds ${t.size} bytes, the image ${imageLen}`);
    // The final sync: then the head, and whatever the verifier has not had yet, is read back.
    await datasync();
    let report: VerifyReport | null = null;
    if (verifier) {
      verifier.push(lateHoles.concat(head));
      const tv = performance.now();
      await verifier.drain(o.onProgress, done);
      // Every chunk matched once; now that nothing more is written, its samples must still match.
      verifier.push(samples.all);
      report = await verifier.drain();
      seconds.verify = (performance.now() - tv) / 1000;
    }
    await Promise.all(hashing);
    if (failure) throw failure;
    const blake3 = await hasher.id();
    return { written, mapped: done, imageLen: imageSize ?? imageLen, direct: dfh !== null, blake3, blake3Of: hasher.of, verify: report };
  } finally {
    await Promise.allSettled(writes);
    await verifier?.close();
    // The worker may still be reading buffers of a flash that stopped early.
    await Promise.allSettled(hashing);
    await bfh.close().catch(() => {});
    if (dfh) await dfh.close().catch(() => {});
  }
}

/** Reads a target back and checks it holds the image (the `verify` command): a compare without writing. */
/**
 * Devices with a target request stuck in this process's kernel since a `flash-stalled`: it may still
 * land on the disk when the device answers, so this process keeps their locks until it exits (the
 * lock then turns stale and the next user takes it over; see releaseUnlessStuck).
 */
export const stuckTargets = new Set<string>();

type VerifyOnlyResult = VerifyReport & { same: boolean; blake3: string | null; blake3Of: Blake3Of | null; orbimg?: OrbimgInfo };

/**
 * Writes the image to the device's target and verifies it (see the top of this file). Watched: a
 * target operation stuck for `stallMs` fails it with `flash-stalled` at once (the stuck request
 * stays behind in the kernel; nothing more is written after it); one taking longer than
 * `timeoutMs` in all is cancelled and fails with `flash-timeout`.
 */
export function flash(o: FlashOptions): Promise<FlashResult> {
  return watched(o, 'flash', flashOnce, (e) => {
    // The stuck flash never gets to its own failure handling: mark its journal here.
    const j = readJournal(o.stateDir, o.device.name);
    if (j && j.status === 'in-progress' && j.pid === process.pid) writeJournal(o.stateDir, { ...j, status: 'failed', ended: new Date().toISOString(), error: e.message });
  });
}

/** Reads the target back and compares it with the image (`orbital-lab verify`); watched as `flash` is. */
export function verifyOnly(o: FlashOptions): Promise<VerifyOnlyResult> {
  return watched(o, 'verify', verifyOnce);
}

async function watched<T>(o: FlashOptions, what: string, run: (o: FlashOptions) => Promise<T>, onStall?: (e: LabError) => void): Promise<T> {
  const ac = new AbortController();
  const stop = () => ac.abort();
  if (o.signal?.aborted) ac.abort(); else o.signal?.addEventListener('abort', stop, { once: true });
  const limit = o.timeoutMs ?? o.device.timeouts.flash;
  let timedOut = false;
  const timer = limit > 0 ? setTimeout(() => { timedOut = true; ac.abort(); }, limit) : null;
  // A stall also cancels the flash, so that if the device answers after all, nothing more is written.
  const watch = new IoWatch(o.stallMs ?? o.device.timeouts.flashStall, `${o.device.name}: ${what}`, (e) => { stuckTargets.add(o.device.name); onStall?.(e); ac.abort(); });
  const p = run({ ...o, signal: ac.signal, watch });
  p.catch(() => {});
  try {
    return await Promise.race([p, watch.stalled]);
  } catch (e) {
    if (timedOut && e instanceof LabError && e.code === 'cancelled') throw new LabError('timeout', 'flash-timeout', `${o.device.name}: the ${what} took longer than ${limit / 1000} s (timeouts.flash) and was stopped; the target holds an incomplete image. A slow card or USB 2 port? Raise timeouts.flash in the lab file`, 'lab', { limitMs: limit });
    throw e;
  } finally {
    if (timer) clearTimeout(timer);
    watch.stop();
    o.signal?.removeEventListener('abort', stop);
  }
}

async function verifyOnce(o: FlashOptions): Promise<VerifyOnlyResult> {
  const t = checkTarget(o.device, { requested: o.requestedTarget, sourcePath: o.source, view: o.view });
  if (!t.exists) throw new LabError('disconnected', 'target-missing', `target ${t.path} does not exist`, 'lab');
  const { src, bmap, orbimg } = await openImageSource(o);
  const checksumType = bmap?.checksumType ?? null;
  const bmapRanges = bmap ? byteRanges(bmap) : [];
  const hw = new HashWorker(imageIdOf(bmapRanges, checksumType) === 'bytes' ? ['blake3'] : []);
  try {
    if (!src.seekable) throw new LabError('bad-input', 'bad-usage', `verify needs a raw image file (got ${src.format}); decompress it or flash with verify on`);
    const imageSize = bmap?.imageSize ?? src.storedSize!;
    const ranges = bmap ? bmapRanges : [{ start: 0, end: imageSize }];
    const h = new ImageHasher(hw, bmapRanges, checksumType, imageSize, o.source, orbimg, true);
    const r = await compareTarget(src, t, ranges, imageSize, o.chunkBytes ?? DEFAULT_CHUNK, h, hw, o);
    if (!r) return { same: false, blake3: null, blake3Of: null, method: 'o_direct', bytes: 0, seconds: 0, mbPerS: 0 };
    // (method/bytes are only meaningful when same is true)
    return { ...r, same: true, blake3: await h.id(), blake3Of: h.of, ...(orbimg ? { orbimg } : {}) };
  } finally { hw.close(); await src.close(); }
}
