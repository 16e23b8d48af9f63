// Lent memory on both ends of the entry stream: the client's transientEntries (reused read buffer
// and frame body), a transport that reuses its chunks, and the server's pool of frame buffers.
// Each test checks the bytes that arrive and that the memory really is reused (else the option
// would be doing nothing and the test would prove nothing).
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initAxiom, equalBytes } from '../../axiom/hash.ts';
import { entryHash } from '../../axiom/entry.ts';
import { verifyChain } from '../../axiom/verify.ts';
import { FaultyTransport, seededRng } from '../core/faulty.ts';
import { MemoryDevice } from '../core/memory-device.ts';
import { serveLink } from '../core/server.ts';
import { BaseTransport, memoryPair, type Transport } from '../core/transport.ts';
import { createClient, nodeClock } from './client.ts';
import { nodeCodec } from './crc.ts';
import { listenTransport } from './socket.ts';

beforeAll(() => initAxiom());
const dir = mkdtempSync(join(tmpdir(), 'orb-lent-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A device with `n` echo commits of random text (FF bytes included, so frames get stuffed). */
function filledDevice(n: number, size: number): MemoryDevice {
  const dev = new MemoryDevice();
  for (let i = 0; i < n; i++) {
    const r = dev.propose({ actor: 1, id: i, domain: 1, action: 'echo', args: { text: randomBytes(size).toString('latin1') }, time: 0 });
    if (r.status !== 'committed') throw new Error(`fixture: echo ${i} was ${r.status}`);
  }
  return dev;
}

const until = async (cond: () => boolean, ms = 20_000) => {
  const t0 = Date.now();
  while (!cond()) { if (Date.now() - t0 > ms) throw new Error('condition not met in time'); await new Promise((r) => setTimeout(r, 5)); }
};

/**
 * The host end of an in-memory pipe that lends every chunk: it copies what arrives into one
 * scratch buffer, delivers a view of it, then scribbles over it - what a receiver keeps without
 * copying is destroyed, as it would be with a socket read into a reused buffer.
 */
class LendingTransport extends BaseTransport {
  override readonly reusesChunks = true;
  readonly name = 'lending';
  private readonly scratch = new Uint8Array(1 << 21);
  constructor(private readonly inner: Transport) {
    super();
    inner.attach({
      data: (c) => {
        for (let at = 0; at < c.length; at += 65536) {
          const n = Math.min(65536, c.length - at);
          this.scratch.set(c.subarray(at, at + n));
          this.deliver(this.scratch.subarray(0, n));
          this.scratch.fill(0xa5, 0, n);
        }
      },
      close: (e) => this.closedBy(e),
    });
  }
  write(b: Uint8Array, written?: () => void): boolean { return this.inner.write(b, written); }
  protected doClose(): void { this.inner.close(); }
}

describe('lent entries (transientEntries)', () => {
  it('over a real unix socket: every entry arrives intact while the read and frame memory is reused', async () => {
    const dev = filledDevice(600, 2400);
    const l = await listenTransport({ path: join(dir, 'lent.sock') });
    l.onConnection((t) => serveLink(t, dev, { ...nodeCodec, targetFrame: 32768 }));
    const c = createClient({ path: join(dir, 'lent.sock') }, { transientEntries: true, window: 1 << 20 });
    const got: Uint8Array[] = [];
    const buffers = new Set<ArrayBufferLike>();
    let hashesOk = true;
    c.onEntry((e) => {
      buffers.add(e.encoded.buffer);
      if (!equalBytes(e.hash, entryHash(e.encoded))) hashesOk = false;
      got.push(e.encoded.slice());
    });
    await c.connect();
    await until(() => got.length === dev.log.length);
    c.close(); await l.close();
    expect(got.length).toBe(dev.log.length);
    for (let i = 0; i < got.length; i++) expect(equalBytes(got[i]!, dev.log[i]!)).toBe(true);
    expect(verifyChain(got).ok).toBe(true);
    expect(hashesOk).toBe(true);
    // ~1.8 MB in 32 KiB frames: ~55 frames, yet the entries lived in a handful of buffers (the
    // socket's one read buffer and the decoder's one body buffer).
    expect(c.stats.framesIn).toBeGreaterThan(40);
    expect(buffers.size).toBeLessThanOrEqual(3);
  });

  it('a given-entries client over a lending transport copies: kept entries survive the scribbling', async () => {
    const dev = filledDevice(200, 2000);
    // Frames smaller than the lent chunks, so the decoder hands out views of them (no copy of its own).
    const c = createClient(async () => { const [h, s] = memoryPair(); serveLink(s, dev, { ...nodeCodec, targetFrame: 8192 }); return new LendingTransport(h); }, { window: 1 << 20 });
    const got: Uint8Array[] = [];
    c.onEntry((e) => got.push(e.encoded)); // kept without copying: the client must have copied
    await c.connect();
    await until(() => got.length === dev.log.length);
    c.close();
    for (let i = 0; i < got.length; i++) expect(equalBytes(got[i]!, dev.log[i]!)).toBe(true);
  });

  it('lent entries through a fault injector over a lending transport (delays, duplicates, cuts) arrive once each, in order', async () => {
    const dev = filledDevice(300, 2000);
    const rng = seededRng(11);
    const faults = { delayMs: 3, duplicateChunk: 0.02, flipChunk: 0.01, cutChunk: 0.005 };
    const pipes: FaultyTransport[] = [];
    const c = createClient(async () => {
      // Small frames (~1 entry each), so there are hundreds of chunks for the injector however the
      // server batches under load: with the default 256 KiB frames a run could see too few to hit any.
      const [h, s] = memoryPair(); serveLink(s, dev, { ...nodeCodec, targetFrame: 2048 });
      const f = new FaultyTransport(new LendingTransport(h), { receive: faults }, rng, nodeClock); pipes.push(f); return f;
    }, { transientEntries: true, reconnectDelayMs: 5, stallMs: 300, requestTimeoutMs: 300, maxReconnects: 1000 });
    const got: Uint8Array[] = [];
    c.onEntry((e) => { if (e.seq === got.length) got.push(e.encoded.slice()); });
    await c.connect();
    await until(() => got.length === dev.log.length, 60_000);
    c.close();
    for (let i = 0; i < got.length; i++) expect(equalBytes(got[i]!, dev.log[i]!)).toBe(true);
    const hits = pipes.reduce((n, p) => n + p.stats.duplicated + p.stats.flipped + p.stats.cuts, 0);
    expect(hits).toBeGreaterThan(0);
  }, 90_000);

  it('receipt() still answers for the client\'s own proposals, whichever comes first (RESULT or RECEIPT)', async () => {
    const dev = filledDevice(50, 500);
    const c = createClient(async () => { const [h, s] = memoryPair(); serveLink(s, dev, nodeCodec); return new LendingTransport(h); }, { transientEntries: true });
    await c.connect();
    for (let i = 0; i < 20; i++) {
      const r = await c.propose({ actor: 2, id: 1000 + i, domain: 1, action: 'echo', args: { text: `r${i}` } });
      if (i % 2) await until(() => c.seq >= r.receiptSeq); // the RECEIPT entry is in before we ask
      const rc = await c.receipt(r.seq, 5000);
      expect(rc.outcome).toBe('ok');
      expect(new TextDecoder().decode(rc.result)).toContain(`r${i}`);
    }
    c.close();
  });
});

/** A host end whose write can cut the connection there and then (as a fault injector's cut does). */
class CuttingTransport extends BaseTransport {
  readonly name = 'cutting';
  cutNextWrite = false;
  constructor(private readonly inner: Transport) {
    super();
    inner.attach({ data: (c) => this.deliver(c), close: (e) => this.closedBy(e) });
  }
  write(b: Uint8Array): boolean {
    if (this.cutNextWrite) { this.cutNextWrite = false; this.close(); return false; }
    return this.inner.write(b);
  }
  protected doClose(): void { this.inner.close(); }
}

describe('a connection lost while the client answers an ENTRIES frame', () => {
  for (const transientEntries of [false, true]) {
    it(`takes the frame's entries, reconnects and resumes${transientEntries ? ' (lent entries)' : ''}`, async () => {
      const dev = filledDevice(300, 1000);
      const pipes: CuttingTransport[] = [];
      const c = createClient(async () => { const [h, s] = memoryPair(); serveLink(s, dev, { ...nodeCodec, targetFrame: 4096 }); const t = new CuttingTransport(h); pipes.push(t); return t; },
        { transientEntries, window: 16384, reconnectDelayMs: 5 });
      const got: Uint8Array[] = [];
      // Cut on the CREDIT that the 50th and the 300th entry's frames make the client send.
      c.onEntry((e) => { if (e.seq === got.length) got.push(e.encoded.slice()); if (e.seq === 50 || e.seq === 300) pipes.at(-1)!.cutNextWrite = true; });
      await c.connect();
      await until(() => got.length === dev.log.length);
      c.close();
      expect(c.stats.reconnects).toBeGreaterThanOrEqual(2);
      expect(verifyChain(got).ok).toBe(true);
      for (let i = 0; i < got.length; i++) expect(equalBytes(got[i]!, dev.log[i]!)).toBe(true);
    });
  }
});

describe('the server pools ENTRIES frame buffers', () => {
  it('reuses a frame buffer only after the transport said it was written', async () => {
    const dev = filledDevice(400, 2000);
    const [h, s] = memoryPair();
    // The device end keeps the last 4 frames "in flight": their `written` is called only when a
    // fifth arrives, and a frame must be untouched until then.
    const held: Array<{ frame: Uint8Array; copy: Uint8Array; done: () => void }> = [];
    const seen = new Set<ArrayBufferLike>();
    let reused = 0, intact = true, shared = false;
    const device: Transport = {
      name: 'held', get closed() { return s.closed; }, attach: (x) => s.attach(x), close: () => s.close(),
      write: (b, written) => {
        if (written) { // only ENTRIES frames come with `written`
          if (seen.has(b.buffer)) reused++;
          seen.add(b.buffer);
          if (held.some((x) => x.frame.buffer === b.buffer)) shared = true;
          held.push({ frame: b, copy: b.slice(), done: written });
          while (held.length > 4) { const x = held.shift()!; if (!equalBytes(x.frame, x.copy)) intact = false; x.done(); }
        }
        return s.write(b);
      },
    };
    serveLink(device, dev, { ...nodeCodec, targetFrame: 16384 });
    const c = createClient(async () => h, { reconnect: false });
    const got: Uint8Array[] = [];
    c.onEntry((e) => got.push(e.encoded));
    await c.connect();
    await until(() => got.length === dev.log.length);
    c.close();
    for (let i = 0; i < got.length; i++) expect(equalBytes(got[i]!, dev.log[i]!)).toBe(true);
    expect(shared).toBe(false); // no buffer was handed out again while still in flight
    expect(intact).toBe(true);
    expect(reused).toBeGreaterThan(50); // ~100 frames went through a few buffers
    expect(seen.size).toBeLessThanOrEqual(6);
  });
});
