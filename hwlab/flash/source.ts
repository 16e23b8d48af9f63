// Image sources: a raw image (read at positions, so a bmap skips holes without reading them), or a
// gzip / xz / zstd stream decompressed on the fly - never unpacked to disk. The format is taken
// from the first bytes, not the name.
//
// gzip uses Node's zlib. xz and zstd run as the Debian `xz` / `zstd` binaries in a child process:
// Node 20 has no decoder for either, the native decoders are several times faster than pure-JS
// ports, and a child process decompresses on the second core while this one hashes and writes.
// A decoder that exits non-zero (a cut or corrupt file) fails the flash: the stream's end alone
// never counts as the image's end.
import { spawn, type ChildProcess } from 'node:child_process';
import { createReadStream, openSync, readSync, closeSync, fstatSync, type Stats } from 'node:fs';
import { createGunzip } from 'node:zlib';
import { LabError } from '../errors.ts';

/** `orbimg`: one part of a signed Orbital image, read in place (orbimg.ts). */
export type SourceFormat = 'raw' | 'gzip' | 'xz' | 'zstd' | 'orbimg';

export interface Source {
  path: string;
  format: SourceFormat;
  /** Size of the file as stored (compressed size for compressed sources); null for a pipe. */
  storedSize: number | null;
  /** A raw regular file: readAt works and the source can be read again. */
  seekable: boolean;
  /** Stored bytes consumed so far (for progress and ETA of compressed sources). */
  consumed(): number;
  /** Reads image bytes at a position (seekable sources only). Returns bytes read. */
  readAt(buf: Uint8Array, pos: number): Promise<number>;
  /** The image bytes in order. Ends only after the decoder said the stream was whole. */
  stream(): AsyncIterable<Buffer>;
  close(): Promise<void>;
}

export function detectFormat(head: Uint8Array): SourceFormat {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head[0] === 0xfd && head[1] === 0x37 && head[2] === 0x7a && head[3] === 0x58 && head[4] === 0x5a && head[5] === 0x00) return 'xz';
  if (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  return 'raw';
}

const STREAM_CHUNK = 1 << 20;

/** The source path that means this process's stdin (fd 0, used as it is: a pipe or socket cannot be opened again by name). */
export const STDIN = '-';

export async function openSource(path: string): Promise<Source> {
  let st: Stats;
  let fd: number;
  const stdin = path === STDIN;
  try { fd = stdin ? 0 : openSync(path, 'r'); st = fstatSync(fd); } catch (e) {
    throw new LabError('bad-input', 'source-missing', `cannot open image ${stdin ? 'stdin' : path}: ${(e as Error).message}`);
  }
  const regular = st.isFile();
  if (!regular && !st.isFIFO() && !st.isCharacterDevice() && !st.isBlockDevice() && !(stdin && st.isSocket())) {
    if (!stdin) closeSync(fd);
    throw new LabError('bad-input', 'source-missing', `image ${path} is not a file`);
  }
  // Peek at the magic. A pipe cannot be re-read, so its peeked bytes are handed on to the stream.
  const head = Buffer.alloc(6);
  let headLen = 0;
  if (regular) headLen = readSync(fd, head, 0, 6, 0);
  else {
    while (headLen < 6) { const n = readSync(fd, head, headLen, 6 - headLen, null); if (n === 0) break; headLen += n; }
  }
  const format = detectFormat(head.subarray(0, headLen));
  let consumed = 0;
  let child: ChildProcess | null = null;
  let closed = false;

  /** The stored bytes in order, counted for progress. */
  async function* stored(): AsyncGenerator<Buffer> {
    if (!regular) { consumed += headLen; yield head.subarray(0, headLen); }
    const rs = regular && !stdin
      ? createReadStream(path, { highWaterMark: STREAM_CHUNK })
      : createReadStream('', { fd, autoClose: false, highWaterMark: STREAM_CHUNK, ...(regular ? { start: 0 } : {}) });
    try {
      for await (const b of rs as AsyncIterable<Buffer>) { consumed += b.length; yield b; }
    } finally { rs.destroy(); }
  }

  async function* viaChild(bin: string, pkg: string): AsyncGenerator<Buffer> {
    const c = spawn(bin, ['-dc'], { stdio: ['pipe', 'pipe', 'pipe'] });
    child = c;
    let stderr = '';
    c.stderr!.on('data', (d: Buffer) => { if (stderr.length < 4000) stderr += d.toString(); });
    const exited = new Promise<{ code: number | null; signal: string | null; error?: Error }>((res) => {
      c.once('error', (error) => res({ code: null, signal: null, error }));
      c.once('close', (code, signal) => res({ code, signal }));
    });
    // Feed the decoder from our own reads so progress counts stored bytes; EPIPE when it quits early is expected.
    c.stdin!.on('error', () => {});
    const feed = (async () => {
      try {
        for await (const b of stored()) { if (!c.stdin!.write(b)) await new Promise((r) => c.stdin!.once('drain', r)); if (closed) break; }
      } catch { /* read error: the decoder sees a short stream and fails */ }
      c.stdin!.end();
    })();
    try {
      for await (const b of c.stdout! as AsyncIterable<Buffer>) yield b;
      const r = await exited;
      await feed;
      if (r.error) {
        const missing = (r.error as NodeJS.ErrnoException).code === 'ENOENT';
        throw new LabError(missing ? 'bad-input' : 'io', missing ? 'missing-tool' : 'decompressor-failed', missing ? `${format} image needs the \`${bin}\` program (Debian package ${pkg})` : `${bin}: ${r.error.message}`, missing ? 'usage' : 'lab');
      }
      if (r.code !== 0) throw new LabError('bad-input', 'source-corrupt', `image ${path} is not a whole ${format} stream: ${bin} ${r.signal ? `was killed (${r.signal})` : `exited ${r.code}`}: ${stderr.trim().split('\n').pop() ?? ''}`, 'lab');
    } finally {
      if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    }
  }

  async function* gunzip(): AsyncGenerator<Buffer> {
    const z = createGunzip({ chunkSize: 256 * 1024 });
    const feed = (async () => {
      try { for await (const b of stored()) { if (!z.write(b)) await new Promise((r) => z.once('drain', r)); if (closed) break; } z.end(); } catch (e) { z.destroy(e as Error); }
    })();
    try {
      for await (const b of z as AsyncIterable<Buffer>) yield b;
    } catch (e) {
      throw new LabError('bad-input', 'source-corrupt', `image ${path} is not a whole gzip stream: ${(e as Error).message}`, 'lab');
    } finally { z.destroy(); await feed.catch(() => {}); }
  }

  return {
    path,
    format,
    storedSize: regular ? st.size : null,
    seekable: regular && format === 'raw',
    consumed: () => consumed,
    async readAt(buf, pos) {
      if (!regular || format !== 'raw') throw new LabError('bug', 'bug', 'readAt on a stream source');
      // Read on this thread, not libuv's: its four threads are taken by the target's O_DIRECT writes
      // and read-backs, behind which an async read of the next chunk (from the page cache, ~3 ms)
      // queued for the length of a disk request; the writes then waited for it.
      let got = 0;
      while (got < buf.length) {
        const n = readSync(fd, buf, got, buf.length - got, pos + got);
        if (n === 0) break;
        got += n;
      }
      consumed = Math.max(consumed, pos + got);
      return got;
    },
    stream() {
      if (format === 'gzip') return gunzip();
      if (format === 'xz') return viaChild('xz', 'xz-utils');
      if (format === 'zstd') return viaChild('zstd', 'zstd');
      return stored();
    },
    async close() {
      closed = true;
      if (child && child.exitCode === null) child.kill('SIGKILL');
      if (!stdin) try { closeSync(fd); } catch { /* closed by a stream */ }
    },
  };
}
