// The kernel-link conformance suite: one set of tests every device kind must pass - the hosted
// OS, the guest kernel in QEMU, a board on a serial port, and kernel-link's own MemoryDevice.
//
//   import { linkConformance } from '../../kernel-link/node/conformance.ts';
//   linkConformance({ name: 'hosted OS', start: async () => ({ connect, stop }) });
//
// `connect()` must return a fresh transport to the SAME running device each time it is called
// (for a device with one pipe, such as a QEMU chardev, wrap the pipe with `shareTransport`).
// Tests use actor 0 (the device's own admin) and distinct proposal ids, so they can run in any
// order on one device, and never assume an empty log.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { entryHash, GENESIS, decodeEntry, prevOf } from '../../axiom/entry.ts';
import { equalBytes, initAxiom } from '../../axiom/hash.ts';
import { decodeValue, getBytes, getInt, isMap } from '../../axiom/value.ts';
import { verifyChain } from '../../axiom/verify.ts';
import { Kind } from '../../axiom/types.ts';
import { FaultyTransport, seededRng, type Faults } from '../core/faulty.ts';
import { encodeFrame, FRAME_OVERHEAD, FrameDecoder, HARD_MAX_PAYLOAD, stuffText, type DropInfo } from '../core/frame.ts';
import { decodeMessage, encodeMessage, type Message } from '../core/messages.ts';
import { BaseTransport, type Transport } from '../core/transport.ts';
import { createClient, nodeClock } from './client.ts';

export interface ConformanceDevice {
  /** A fresh transport to the running device. */
  connect(): Promise<Transport>;
  stop(): Promise<void>;
}

export interface ConformanceTarget {
  name: string;
  start(): Promise<ConformanceDevice>;
  /** Scales every wait (a device under TCG emulation on a serial port is slow). Default 1. */
  slowness?: number;
  /** Run the end-to-end fault test (default true). */
  faults?: boolean;
}

/** A scripted host at the frame level: send messages, wait for answers. */
export class RawHost {
  readonly messages: Message[] = [];
  readonly text: number[] = [];
  readonly drops: DropInfo[] = [];
  readonly badMessages: string[] = [];
  private readonly decoder = new FrameDecoder();
  private waiters: Array<() => void> = [];
  private rid = 1000 + Math.floor(Math.random() * 1_000_000);
  constructor(readonly t: Transport, private readonly slowness = 1) {
    t.attach({
      data: (c) => {
        this.decoder.push(c, {
          text: (b) => { for (const x of b) this.text.push(x); },
          frame: (type, p) => { const d = decodeMessage(type, p); if (d.ok) this.messages.push(d.msg); else this.badMessages.push(d.error.detail); },
          drop: (i) => this.drops.push(i),
        });
        const w = this.waiters; this.waiters = []; for (const f of w) f();
      },
      close: () => { const w = this.waiters; this.waiters = []; for (const f of w) f(); },
    });
  }
  nextRid(): number { return ++this.rid; }
  send(m: Message): void { const { type, payload } = encodeMessage(m); this.t.write(encodeFrame(type, payload)); }
  raw(b: Uint8Array): void { this.t.write(b); }
  /** Waits until a message matches (searching from index `from`). */
  async wait<T extends Message>(match: (m: Message) => m is T, what: string, ms?: number, from?: number): Promise<T>;
  async wait(match: (m: Message) => boolean, what: string, ms?: number, from?: number): Promise<Message>;
  async wait(match: (m: Message) => boolean, what: string, ms = 5000, from = 0): Promise<Message> {
    const deadline = Date.now() + ms * this.slowness;
    for (;;) {
      const found = this.messages.slice(from).find(match);
      if (found) return found;
      if (this.t.closed) throw new Error(`${what}: the transport closed`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${what}: nothing matched within ${ms * this.slowness} ms (got ${this.messages.map((m) => m.t).join(', ') || 'no messages'})`);
      await new Promise<void>((r) => { const timer = setTimeout(r, Math.min(left, 50)); this.waiters.push(() => { clearTimeout(timer); r(); }); });
    }
  }
  async hello(extra: Partial<Extract<Message, { t: 'hello' }>> = {}): Promise<Extract<Message, { t: 'welcome' }>> {
    // Retransmit as the contract says (a booting device misses bytes).
    const rids: number[] = [];
    const from = this.messages.length;
    for (let attempt = 0; attempt < 20 * this.slowness; attempt++) {
      const rid = this.nextRid(); rids.push(rid);
      this.send({ t: 'hello', rid, min: 1, max: 1, client: 'conformance', maxFrame: 2_097_152, consoleWindow: 0, caps: [], ...extra });
      try {
        return await this.wait((m): m is Extract<Message, { t: 'welcome' }> => m.t === 'welcome' && rids.includes(m.rid), 'WELCOME', 500, from);
      } catch { /* retry */ }
    }
    throw new Error('no WELCOME after 20 HELLOs');
  }
  close(): void { this.t.close(); }
}

/**
 * One pipe, many sequential users: each lease is a Transport whose close() only detaches it, so a
 * suite can "reconnect" to a device that has a single pipe (a QEMU chardev, a serial port).
 */
export function shareTransport(pipe: Transport): () => Promise<Transport> {
  let current: Lease | null = null;
  class Lease extends BaseTransport {
    readonly name = `lease(${pipe.name})`;
    write(b: Uint8Array): boolean { return this.isClosed ? false : pipe.write(b); }
    feed(b: Uint8Array): void { this.deliver(b); }
    end(): void { this.closedBy(); }
    protected doClose(): void { if (current === this) current = null; }
  }
  pipe.attach({ data: (c) => current?.feed(c), close: () => { current?.end(); current = null; } });
  return async () => { current?.close(); current = new Lease(); return current; };
}

const isType = <K extends Message['t']>(t: K, rid?: number) => (m: Message): m is Extract<Message, { t: K }> => m.t === t && (rid === undefined || ('rid' in m && m.rid === rid));
const errorFor = (rid: number) => (m: Message): m is Extract<Message, { t: 'error' }> => m.t === 'error' && m.rid === rid;

/** Registers the conformance tests for `target` with vitest. */
export function linkConformance(target: ConformanceTarget): void {
  const slow = target.slowness ?? 1;
  describe(`kernel-link conformance: ${target.name}`, () => {
    let dev: ConformanceDevice;
    const ids = { next: Date.now() % 1_000_000_000 * 10 }; // distinct proposal ids per run
    const hosts: RawHost[] = [];
    const host = async () => { const h = new RawHost(await dev.connect(), slow); hosts.push(h); return h; };

    beforeAll(async () => { await initAxiom(); dev = await target.start(); }, 120_000 * slow);
    afterAll(async () => { for (const h of hosts) h.close(); await dev?.stop(); });

    /** All entries from 0 (raw subscribe with generous credit). */
    const allEntries = async (h: RawHost) => {
      const w = await h.hello();
      const rid = h.nextRid();
      h.send({ t: 'subscribe', rid, from: 0, prev: GENESIS, window: 1 << 20 });
      const got: Uint8Array[] = [];
      let consumed = 0;
      const deadline = Date.now() + 10_000 * slow;
      let seen = 0;
      while (got.length < w.head) {
        if (Date.now() > deadline) throw new Error(`only ${got.length} of ${w.head} entries arrived`);
        await new Promise((r) => setTimeout(r, 5));
        for (; seen < h.messages.length; seen++) {
          const m = h.messages[seen]!;
          if (m.t === 'entries' && m.stream === rid) {
            consumed += FRAME_OVERHEAD + encodeMessage(m).payload.length;
            m.entries.forEach((e, i) => { if (m.seq + i === got.length) got.push(e); });
            h.send({ t: 'credit', stream: rid, limit: consumed + (1 << 20) });
          }
        }
      }
      return { welcome: w, entries: got, rid };
    };

    it('answers HELLO with a sane WELCOME and PING with PONG', async () => {
      const h = await host();
      const w = await h.hello();
      expect(w.version).toBe(1);
      expect(w.device).toHaveLength(16);
      expect(w.boot).toHaveLength(16);
      expect(w.maxFrame).toBeGreaterThanOrEqual(4096);
      expect(w.maxRequests).toBeGreaterThanOrEqual(1);
      expect(w.caps).toEqual(expect.arrayContaining(['entries', 'propose']));
      expect(w.head).toBeGreaterThanOrEqual(1);
      const rid = h.nextRid();
      h.send({ t: 'ping', rid });
      const pong = await h.wait(isType('pong', rid), 'PONG');
      expect(pong.head).toBeGreaterThanOrEqual(w.head);
    });

    it('streams its whole log from 0: a verifying chain whose last BOOT names this device and boot', async () => {
      const h = await host();
      const { welcome, entries } = await allEntries(h);
      expect(verifyChain(entries).ok).toBe(true);
      const boots = entries.filter((e) => e[1] === Kind.Boot);
      expect(boots.length).toBeGreaterThanOrEqual(1);
      const last = decodeValue(boots.at(-1)!.subarray(64));
      expect(last.ok && isMap(last.value)).toBe(true);
      if (last.ok && isMap(last.value)) {
        expect([...getBytes(last.value, 'device')!]).toEqual([...welcome.device]);
        expect([...getBytes(last.value, 'boot')!]).toEqual([...welcome.boot]);
      }
    });

    it('commits a proposal, closes it with a receipt, and answers a retry as a duplicate', async () => {
      const h = await host();
      await h.hello();
      const id = ids.next++;
      const p = { actor: 0, id, domain: 1, action: 'echo', args: { text: 'conformance' }, time: 0 };
      const r1 = h.nextRid();
      h.send({ t: 'propose', rid: r1, proposal: p });
      const res = await h.wait(isType('result', r1), 'RESULT');
      expect(res).toMatchObject({ status: 'committed', of: 'committed' });
      const r2 = h.nextRid();
      h.send({ t: 'propose', rid: r2, proposal: p });
      const dup = await h.wait(isType('result', r2), 'RESULT of the retry');
      expect(dup).toMatchObject({ status: 'duplicate', of: 'committed', seq: res.seq });
      // the receipt is in the log
      const { entries } = await allEntries(await host());
      const commit = decodeEntry(entries[res.seq]!);
      expect(commit.ok && commit.value.kind).toBe(Kind.Commit);
      const receipt = entries.slice(res.seq + 1).find((e) => { if (e[1] !== Kind.Receipt) return false; const v = decodeValue(e.subarray(64)); return v.ok && isMap(v.value) && getInt(v.value, 'commit') === res.seq; });
      expect(receipt).toBeDefined();
      if (res.receipt >= 0) expect(decodeEntry(entries[res.receipt]!).ok && entries[res.receipt]![1]).toBe(Kind.Receipt);
    });

    it('rejects with the reason codes of docs/axiom.md', async () => {
      const h = await host();
      await h.hello();
      const cases: Array<[Record<string, unknown>, string]> = [
        [{ actor: 4242, action: 'kv.set', args: { key: 'k', value: 'v' } }, 'missing-capability'],
        [{ actor: 0, action: 'no.such.action', args: {} }, 'unknown-action'],
        [{ actor: 0, action: 'echo', args: { nope: 1 } }, 'bad-args'],
      ];
      for (const [c, reason] of cases) {
        const rid = h.nextRid();
        h.send({ t: 'propose', rid, proposal: { actor: c.actor as number, id: ids.next++, domain: 1, action: c.action as string, args: c.args as never, time: 0 } });
        const res = await h.wait(isType('result', rid), `RESULT (${reason})`);
        expect(res).toMatchObject({ status: 'rejected', reason, receipt: -1 });
      }
    });

    it('never sends entries beyond the credit it was granted', async () => {
      const h = await host();
      const w = await h.hello();
      // Make sure there is more than one window of entries.
      for (let i = 0; i < 6; i++) {
        const rid = h.nextRid();
        h.send({ t: 'propose', rid, proposal: { actor: 0, id: ids.next++, domain: 1, action: 'echo', args: { text: 'c'.repeat(300) }, time: 0 } });
        await h.wait(isType('result', rid), 'RESULT');
      }
      const window = 1024;
      const rid = h.nextRid();
      const start = h.messages.length;
      h.send({ t: 'subscribe', rid, from: 0, prev: GENESIS, window });
      await h.wait(isType('entries'), 'ENTRIES', 5000, start);
      await new Promise((r) => setTimeout(r, 300 * slow));
      const frames = h.messages.slice(start).filter((m): m is Extract<Message, { t: 'entries' }> => m.t === 'entries' && m.stream === rid);
      const sizes = frames.map((m) => FRAME_OVERHEAD + encodeMessage(m).payload.length);
      const total = sizes.reduce((a, b) => a + b, 0);
      // Within the window - or exactly one frame larger than it, sent alone.
      expect(total <= window || sizes.length === 1).toBe(true);
      const got = frames.reduce((n, m) => n + m.entries.length, 0);
      expect(got).toBeLessThan(w.head + 6);
      // More credit: more entries.
      h.send({ t: 'credit', stream: rid, limit: total + (1 << 20) });
      await h.wait((m) => m.t === 'entries' && m.stream === rid && m.seq >= got, 'ENTRIES after CREDIT', 5000, start);
    });

    it('resumes from a seq with the right prev; says ahead or diverged otherwise', async () => {
      const h = await host();
      const { welcome, entries } = await allEntries(h);
      const n = Math.max(1, Math.floor(welcome.head / 2));
      const r1 = h.nextRid();
      h.send({ t: 'subscribe', rid: r1, from: n, prev: entryHash(entries[n - 1]!), window: 1 << 20 });
      const first = await h.wait((m): m is Extract<Message, { t: 'entries' }> => m.t === 'entries' && m.stream === r1, 'ENTRIES from n');
      expect(first.seq).toBe(n);
      expect(equalBytes(prevOf(first.entries[0]!), entryHash(entries[n - 1]!))).toBe(true);
      const r2 = h.nextRid();
      h.send({ t: 'subscribe', rid: r2, from: n, prev: new Uint8Array(32).fill(0xab), window: 1 << 20 });
      expect((await h.wait(errorFor(r2), 'ERROR diverged')).code).toBe('diverged');
      const r3 = h.nextRid();
      h.send({ t: 'subscribe', rid: r3, from: welcome.head + 1000, prev: GENESIS, window: 1 << 20 });
      expect((await h.wait(errorFor(r3), 'ERROR ahead')).code).toBe('ahead');
    });

    it('survives bad input: garbage, unknown types, bad bodies, oversized frames, wrong versions', async () => {
      const h = await host();
      h.raw(Uint8Array.of(0x00, 0x13, 0xfe, 0xff, 0x41, 0xff, 0x4c, 0x01, 0x02, 0x0a));
      h.raw(stuffText(new TextEncoder().encode('garbage before the handshake\n')));
      const w = await h.hello();
      const u = h.nextRid();
      h.raw(encodeFrame(0x7e, encodeMessage({ t: 'ping', rid: u }).payload));
      expect((await h.wait(errorFor(u), 'ERROR unknown-type')).code).toBe('unknown-type');
      const b = h.nextRid();
      h.raw(encodeFrame(0x03, encodeMessage({ t: 'close', reason: 'x', detail: String(b) }).payload)); // PING without rid
      await h.wait((m) => m.t === 'error' && m.code === 'bad-message', 'ERROR bad-message');
      if (w.maxFrame < HARD_MAX_PAYLOAD) {
        // Only the header of an oversized frame and a few payload bytes: the device answers
        // too-large at the header and skips; the next frame's marker ends the skip (a cut), so a
        // slow serial line need not carry max_frame bytes for this.
        const from = h.messages.length;
        h.raw(encodeFrame(0x10, new Uint8Array(w.maxFrame + 1)).subarray(0, 40));
        await h.wait((m) => m.t === 'error' && m.code === 'too-large', 'ERROR too-large', 10_000, from);
      }
      const v = h.nextRid();
      h.send({ t: 'hello', rid: v, min: 7, max: 9, client: 'future', maxFrame: 2_097_152, consoleWindow: 0, caps: [] });
      expect((await h.wait(errorFor(v), 'ERROR version')).code).toBe('version');
      const p = h.nextRid();
      h.send({ t: 'ping', rid: p });
      await h.wait(isType('pong', p), 'PONG after all that');
    });

    it('answers requests outside a session with no-session', async () => {
      const h = await host();
      await h.hello();
      h.send({ t: 'close', reason: 'normal', detail: 'conformance' });
      const rid = h.nextRid();
      h.send({ t: 'propose', rid, proposal: { actor: 0, id: ids.next++, domain: 1, action: 'echo', args: { text: 'x' }, time: 0 } });
      expect((await h.wait(errorFor(rid), 'ERROR no-session')).code).toBe('no-session');
    });

    // Each client test runs twice: entries given to the listener, and lent (transientEntries: the
    // listener copies what it keeps, and the client reuses its frame memory).
    for (const transientEntries of [false, true]) {
      const mode = transientEntries ? ' (lent entries)' : '';
      const keep = (e: { encoded: Uint8Array }) => (transientEntries ? e.encoded.slice() : e.encoded);
      it(`lets a client resume after reconnecting: no gap, no duplicate${mode}`, async () => {
        const c1 = createClient(() => dev.connect(), { reconnect: false, handshakeTimeoutMs: 10_000 * slow, transientEntries });
        const got: Uint8Array[] = [];
        c1.onEntry((e) => got.push(keep(e)));
        await c1.connect();
        const r = await c1.propose({ actor: 0, id: ids.next++, domain: 1, action: 'echo', args: { text: 'before' } });
        await c1.receipt(r.seq, 10_000 * slow);
        const head1 = got.length;
        c1.close();
        const c2 = createClient(() => dev.connect(), { reconnect: false, resume: { lastSeq: head1 - 1, lastHash: entryHash(got[head1 - 1]!) }, handshakeTimeoutMs: 10_000 * slow, transientEntries });
        c2.onEntry((e) => got.push(keep(e)));
        await c2.connect();
        const r2 = await c2.propose({ actor: 0, id: ids.next++, domain: 1, action: 'echo', args: { text: 'after' } });
        await c2.receipt(r2.seq, 10_000 * slow);
        c2.close();
        expect(got.length).toBeGreaterThan(head1);
        expect(verifyChain(got).ok).toBe(true);
      });

      if (target.faults ?? true) {
        it(`through 1% corrupted frames, lost bytes and cuts, a client ends with every entry once, in order${mode}`, async () => {
          // Per-byte rates, so the damage does not depend on how the transport chunks its bytes (a
          // serial line delivers a few bytes at a time): a bit flip every ~10 KB damages ~1% of
          // 100-byte frames (~3% of 300-byte ones); a lost byte every ~100 KB; a cut every ~100 KB.
          const faults: Faults = { flipByte: 1e-4, dropByte: 1e-5, duplicateChunk: 0.002, cutByte: 1e-5 };
          const rng = seededRng(7);
          const pipes: FaultyTransport[] = [];
          const c = createClient(async () => { const f = new FaultyTransport(await dev.connect(), { send: faults, receive: faults }, rng, nodeClock); pipes.push(f); return f; }, {
            reconnectDelayMs: 10, requestTimeoutMs: 300 * slow, stallMs: 300 * slow, keepaliveMs: 200 * slow, deadAfterMs: 3000 * slow, handshakeTimeoutMs: 3000 * slow, helloRetryMs: 100 * slow, maxReconnects: 1000, transientEntries,
          });
          const got: Uint8Array[] = [];
          c.onEntry((e) => got.push(keep(e)));
          await c.connect();
          const replies = await Promise.all(Array.from({ length: 40 }, () => c.propose({ actor: 0, id: ids.next++, domain: 1, action: 'kv.set', args: { key: 'conf', value: 'v'.repeat(1000) } }, 60_000 * slow)));
          expect(replies.every((r) => r.status === 'committed')).toBe(true);
          const last = Math.max(...replies.map((r) => Math.max(r.seq, r.receiptSeq)));
          const t0 = Date.now();
          while (got.length <= last) { if (Date.now() - t0 > 30_000 * slow) throw new Error(`stream stuck at ${got.length}, need ${last + 1}`); await new Promise((r) => setTimeout(r, 10)); }
          c.close();
          expect(got.map((e) => decodeEntry(e).ok && decodeEntry(e).ok)).not.toContain(false);
          expect(verifyChain(got).ok).toBe(true);
          // each proposal committed exactly once in the log
          const commits = new Map<number, number>();
          for (const e of got) if (e[1] === Kind.Commit) { const v = decodeValue(e.subarray(64)); if (v.ok && isMap(v.value)) { const id = getInt(v.value, 'id')!; commits.set(id, (commits.get(id) ?? 0) + 1); } }
          for (const r of replies) expect(r.seq).toBeGreaterThanOrEqual(0);
          expect([...commits.values()].every((n) => n === 1)).toBe(true);
          // the faults really happened (else this test proves nothing)
          const hits = pipes.reduce((n, p) => n + p.stats.flipped + p.stats.dropped + p.stats.cuts, 0);
          expect(hits).toBeGreaterThan(0);
        }, 120_000 * slow);
      }
    }
  });
}
