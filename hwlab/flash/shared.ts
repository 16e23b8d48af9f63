// One decoder for several flashes: a compressed image (gzip / xz / zstd, or a signed image inside
// one) flashed onto several devices at once is decompressed once, and every device's flash reads
// the same decoded bytes - as Etcher does for a multi-card write. Without it each device ran its own
// decoder, and on a two-core lab host two xz decoders took the CPU the hashing and the writes need.
//
// A flash may read its source more than once (a compare first, then the write when the target
// differs): its k-th read is a "pass". Pass k has one decoder for every device that reads a k-th
// time; it starts once every device still flashing has asked for its k-th read or finished, so a
// device that must write waits for the others' compares to end (they read the same stream, at the
// same pace). Within a pass the devices go at the pace of the slowest: a device that has more than
// `maxAhead` bytes queued holds back the decoder. A device that finishes, fails, or whose flash was
// given up on (a stalled target: `leave`) stops holding anything back. A decoder error (a cut or
// corrupt file) reaches every device of the pass.
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { detectFormat, openSource, type Source, type SourceFormat } from './source.ts';

interface Reader {
  queue: Buffer[];
  /** Bytes queued and not yet taken by the device. */
  queued: number;
  ended: boolean;
  error: unknown;
  wake: (() => void) | null;
  attached: boolean;
  detach: () => void;
}

interface Member {
  /** Reads asked for so far: the k-th is pass k. */
  opens: number;
  left: boolean;
  waiting: { k: number; res: (s: Source) => void; rej: (e: unknown) => void } | null;
  readers: Set<Reader>;
}

const MiB = 1 << 20;

export class SharedDecode {
  /** Decoders started (one a pass), for the result and the tests. */
  passes = 0;
  private members = new Map<string, Member>();

  constructor(readonly path: string, names: string[], private maxAhead = 32 * MiB, private open: (path: string) => Promise<Source> = openSource) {
    for (const n of names) this.members.set(n, { opens: 0, left: false, waiting: null, readers: new Set() });
  }

  /** The `openSource` a device's flash uses: its next pass's reader, once every device has asked or finished. */
  opener(name: string): (path: string) => Promise<Source> {
    return () => {
      const m = this.members.get(name);
      if (!m || m.left) return Promise.reject(new Error(`${name} is not reading the shared image`));
      const k = ++m.opens;
      return new Promise<Source>((res, rej) => { m.waiting = { k, res, rej }; this.check(k); });
    };
  }

  /** The device's flash has ended (however): it reads no more and holds nothing back. */
  leave(name: string): void {
    const m = this.members.get(name);
    if (!m || m.left) return;
    m.left = true;
    for (const r of m.readers) r.detach();
    m.readers.clear();
    if (m.waiting) { m.waiting.rej(new Error(`${name} stopped before its read started`)); m.waiting = null; }
    // The device gone may be the one a pass was waiting for.
    const k = [...this.members.values()].find((x) => x.waiting)?.waiting?.k;
    if (k !== undefined) this.check(k);
  }

  /** Pass k starts when every device still flashing has asked for its k-th read. */
  private check(k: number): void {
    const live = [...this.members.values()].filter((m) => !m.left);
    if (live.length && live.every((m) => m.waiting?.k === k)) void this.start(live);
  }

  private async start(group: Member[]): Promise<void> {
    const waits = group.map((m) => { const w = m.waiting!; m.waiting = null; return w; });
    let src: Source;
    try { src = await this.open(this.path); } catch (e) { for (const w of waits) w.rej(e); return; }
    this.passes++;
    let pumpWake: (() => void) | null = null;
    const wakePump = () => { const w = pumpWake; pumpWake = null; w?.(); };
    const notify = (r: Reader) => { const w = r.wake; r.wake = null; w?.(); };
    const readers: Reader[] = group.map(() => {
      const r: Reader = { queue: [], queued: 0, ended: false, error: null, wake: null, attached: true, detach: () => { r.attached = false; r.queue = []; r.queued = 0; wakePump(); } };
      return r;
    });
    const attached = () => readers.filter((r) => r.attached);
    const pump = async () => {
      const it = src.stream()[Symbol.asyncIterator]();
      try {
        for (;;) {
          // Back-pressure: wait while a device still reading has maxAhead bytes it has not taken.
          while (attached().some((r) => r.queued >= this.maxAhead)) await new Promise<void>((res) => { pumpWake = res; });
          if (!attached().length) break;
          const { value, done } = await it.next();
          if (done) break;
          for (const r of attached()) { r.queue.push(value); r.queued += value.length; notify(r); }
        }
        for (const r of readers) { r.ended = true; notify(r); }
      } catch (e) {
        for (const r of readers) { r.error = e; r.ended = true; notify(r); }
      } finally {
        await it.return?.(undefined)?.catch(() => {});
        await src.close();
      }
    };
    const sources = group.map((m, i): Source => {
      const r = readers[i]!;
      m.readers.add(r);
      let streamed = false;
      return {
        path: src.path,
        format: src.format,
        storedSize: src.storedSize,
        seekable: false,
        consumed: () => src.consumed(),
        readAt: (buf, pos) => src.readAt(buf, pos),
        stream: () => {
          if (streamed) throw new Error('a shared source is read once a pass');
          streamed = true;
          return (async function* () {
            try {
              for (;;) {
                const b = r.queue.shift();
                if (b) { r.queued -= b.length; wakePump(); yield b; continue; }
                if (r.ended) { if (r.error) throw r.error; return; }
                await new Promise<void>((res) => { r.wake = res; });
              }
            } finally { r.detach(); }
          })();
        },
        close: async () => { r.detach(); m.readers.delete(r); },
      };
    });
    for (let i = 0; i < waits.length; i++) waits[i]!.res(sources[i]!);
    void pump();
  }
}

/** A compressed image file's format (gzip, xz, zstd), else null: a raw file is read in place by each device, which costs nothing to share. */
export function compressedFormat(path: string): SourceFormat | null {
  // (only a regular file: opening a FIFO to peek would block until a writer comes)
  try { if (!statSync(path).isFile()) return null; } catch { return null; }
  let fd: number;
  try { fd = openSync(path, 'r'); } catch { return null; }
  try {
    const head = Buffer.alloc(6);
    const f = detectFormat(head.subarray(0, readSync(fd, head, 0, 6, 0)));
    return f === 'raw' ? null : f;
  } catch { return null; } finally { closeSync(fd); }
}
