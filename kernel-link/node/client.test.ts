import { beforeAll, describe, expect, it } from 'vitest';
import { entryHash } from '../../axiom/entry.ts';
import { initAxiom, equalBytes } from '../../axiom/hash.ts';
import { verifyChain } from '../../axiom/verify.ts';
import type { ClientEvent } from '../core/client.ts';
import type { ConsoleLine } from '../core/console.ts';
import { isLinkError, LinkError } from '../core/errors.ts';
import { FaultyTransport, seededRng, type Faults } from '../core/faulty.ts';
import { encodeFrame, FrameDecoder, stuffText } from '../core/frame.ts';
import { decodeMessage, encodeMessage, type Message } from '../core/messages.ts';
import { MemoryDevice } from '../core/memory-device.ts';
import { serveLink } from '../core/server.ts';
import { memoryPair, type Transport } from '../core/transport.ts';
import { createClient, nodeClock } from './client.ts';

beforeAll(() => initAxiom());

/** A connect factory: each call is a fresh in-memory connection served by `dev`. */
function serveMemory(dev: MemoryDevice, faults?: { send?: Faults; receive?: Faults }, seed = 1) {
  const rng = seededRng(seed);
  const conns: Transport[] = [];
  const connect = async () => {
    const [host, side] = memoryPair();
    serveLink(side, dev);
    const t = faults ? new FaultyTransport(host, faults, rng, nodeClock) : host;
    conns.push(t);
    return t;
  };
  return { connect, conns };
}

/** A device end driven by hand: `reply` gets each host message and the raw end to write to. */
function scripted(reply: (m: Message, end: Transport) => void, preamble?: Uint8Array) {
  return async () => {
    const [host, side] = memoryPair();
    const dec = new FrameDecoder();
    side.attach({ data: (c) => dec.push(c, { text: () => {}, drop: () => {}, frame: (t, p) => { const d = decodeMessage(t, p); if (d.ok) reply(d.msg, side); } }), close: () => {} });
    if (preamble) side.write(preamble);
    return host;
  };
}
const frameOf = (m: Message) => { const { type, payload } = encodeMessage(m); return encodeFrame(type, payload); };
const welcomeFor = (rid: number, version = 1): Message => ({ t: 'welcome', rid, version, device: new Uint8Array(16), boot: new Uint8Array(16).fill(1), os: 'scripted', head: 0, maxFrame: 4096, maxRequests: 1, caps: [] });
const until = async (cond: () => boolean, ms = 10_000) => {
  const t0 = Date.now();
  while (!cond()) { if (Date.now() - t0 > ms) throw new Error('condition not met in time'); await new Promise((r) => setTimeout(r, 5)); }
};

describe('client against a memory device', () => {
  it('handshakes, proposes, gets the receipt from the stream, and holds a verifying chain', async () => {
    const dev = new MemoryDevice();
    const c = createClient(serveMemory(dev).connect);
    const got: Uint8Array[] = [];
    c.onEntry((e) => got.push(e.encoded));
    await c.connect();
    expect(c.device?.os).toBe(dev.os);
    const r = await c.propose({ id: 1, domain: 1, action: 'echo', args: { text: 'hi' } });
    expect(r).toMatchObject({ status: 'committed', duplicate: false });
    const receipt = await c.receipt(r.seq);
    expect(receipt.outcome).toBe('ok');
    expect(new TextDecoder().decode(receipt.result)).toBe('hi');
    const rej = await c.propose({ actor: 9, id: 1, domain: 1, action: 'kv.set', args: { key: 'a', value: 'b' } });
    expect(rej).toMatchObject({ status: 'rejected', reason: 'missing-capability' });
    await until(() => got.length === dev.log.length);
    expect(verifyChain(got).ok).toBe(true);
    expect(got.map((e) => [...e])).toEqual(dev.log.map((e) => [...e]));
    c.close();
  });

  it('survives a listener that throws: the error becomes an event, the stream carries on', async () => {
    const dev = new MemoryDevice();
    const c = createClient(serveMemory(dev).connect);
    const got: number[] = [];
    const events: ClientEvent[] = [];
    c.onEntry((e) => { if (e.seq === 0) throw new Error('listener bug'); got.push(e.seq); });
    c.onEvent((e) => events.push(e));
    await c.connect();
    await c.propose({ id: 1, domain: 1, action: 'echo', args: { text: 'x' } });
    await until(() => got.length === dev.log.length - 1);
    expect(c.stats.listenerErrors).toBe(1);
    expect(events.some((e) => e.t === 'listener-error')).toBe(true);
    c.close();
  });

  it('delivers console lines byte-exact with receive times, and flushes a pending line after a pause', async () => {
    const dev = new MemoryDevice();
    const c = createClient(serveMemory(dev).connect);
    const lines: ConsoleLine[] = [];
    c.onConsole((l) => lines.push(l));
    await c.connect();
    dev.print(Uint8Array.of(0x6f, 0x6b, 0xff, 0x0d, 0x0a, 0x70, 0x72, 0x6f, 0x6d, 0x70, 0x74, 0x3e));
    await until(() => lines.some((l) => l.text === 'prompt>'));
    const ok = lines.find((l) => l.bytes[0] === 0x6f)!;
    expect([...ok.bytes]).toEqual([0x6f, 0x6b, 0xff, 0x0d]);
    expect(ok.partial).toBe(false);
    expect(lines.at(-1)).toMatchObject({ text: 'prompt>', partial: true });
    expect(Math.abs(ok.t - Date.now())).toBeLessThan(60_000); // a wall-clock receive time
    c.close();
  });

  it('reports a version mismatch as a typed error and closes with reason version', async () => {
    const closes: Message[] = [];
    const c = createClient(scripted((m, end) => {
      if (m.t === 'hello') end.write(frameOf({ t: 'error', rid: m.rid, code: 'version', detail: 'device speaks 2..2' }));
      if (m.t === 'close') closes.push(m);
    }));
    const e = await c.connect().catch((x) => x);
    expect(isLinkError(e)).toBe(true);
    expect(e).toMatchObject({ kind: 'protocol', code: 'version-mismatch' });
    expect((e as LinkError).message).toContain('device speaks 2..2');
    await until(() => closes.length > 0);
    expect(closes[0]).toMatchObject({ reason: 'version' });
  });

  it('rejects a WELCOME of another version', async () => {
    const c = createClient(scripted((m, end) => { if (m.t === 'hello') end.write(frameOf(welcomeFor(m.rid, 2))); }));
    await expect(c.connect()).rejects.toMatchObject({ code: 'version-mismatch' });
  });

  it('times out a handshake with nothing on the other end, as a typed timeout', async () => {
    const c = createClient(scripted(() => {}), { handshakeTimeoutMs: 300, maxReconnects: 0 });
    await expect(c.connect()).rejects.toMatchObject({ kind: 'timeout', code: 'handshake' });
  });

  it('fails connect as disconnected when the device cannot be reached', async () => {
    const c = createClient(async () => { throw new LinkError('disconnected', 'connect', 'unix:/nowhere: ENOENT'); }, { maxReconnects: 1, reconnectDelayMs: 5 });
    await expect(c.connect()).rejects.toMatchObject({ kind: 'disconnected' });
  });

  it('keeps garbage and boot text before the handshake as console text, ignores unknown frames', async () => {
    const lines: string[] = [];
    const events: ClientEvent[] = [];
    const garbage = Uint8Array.of(0x00, 0x80, 0xfe, 0xff, 0x41, 0x0a);
    const c = createClient(scripted((m, end) => {
      if (m.t === 'hello') { end.write(frameOf(welcomeFor(m.rid))); end.write(encodeFrame(0x7f, new Uint8Array([8, 0, 0, 0, 0]))); end.write(stuffText(new TextEncoder().encode('after\n'))); }
    }, new Uint8Array([...garbage, ...new TextEncoder().encode('booting\n')])), { subscribe: false });
    c.onConsole((l) => lines.push(l.text));
    c.onEvent((e) => events.push(e));
    await c.connect();
    await until(() => lines.includes('after'));
    expect(lines[0]).toBe('\u0000\ufffd\ufffd\ufffdA');
    expect(lines[1]).toBe('booting');
    expect(events.some((e) => e.t === 'bad-message')).toBe(true);
    c.close();
  });

  it('declares a silent device dead (keepalive timeout), fails pending proposals when not reconnecting', async () => {
    const c = createClient(scripted((m, end) => { if (m.t === 'hello') end.write(frameOf(welcomeFor(m.rid))); }), { subscribe: false, keepaliveMs: 50, deadAfterMs: 300, reconnect: false, requestTimeoutMs: 100 });
    const events: ClientEvent[] = [];
    c.onEvent((e) => events.push(e));
    await c.connect();
    const p = c.propose({ id: 1, domain: 1, action: 'echo', args: { text: 'x' } });
    await expect(p).rejects.toMatchObject({ kind: 'timeout', code: 'keepalive' });
    expect(events.find((e) => e.t === 'disconnected')).toMatchObject({ error: { kind: 'timeout', code: 'keepalive' } });
  });

  it('gives up a proposal after its deadline with a typed timeout that says what to do', async () => {
    const c = createClient(scripted((m, end) => { if (m.t === 'hello') end.write(frameOf(welcomeFor(m.rid))); if (m.t === 'ping') end.write(frameOf({ t: 'pong', rid: m.rid, head: 0 })); }), { subscribe: false, requestTimeoutMs: 50 });
    await c.connect();
    const e = await c.propose({ id: 1, domain: 1, action: 'echo', args: { text: 'x' } }, 300).catch((x) => x);
    expect(e).toMatchObject({ kind: 'timeout', code: 'request' });
    expect((e as Error).message).toContain('same id');
    c.close();
  });

  it('rejects a proposal larger than the device accepts, before sending it', async () => {
    const c = createClient(scripted((m, end) => { if (m.t === 'hello') end.write(frameOf(welcomeFor(m.rid))); }), { subscribe: false });
    await c.connect();
    await expect(c.propose({ id: 1, domain: 1, action: 'echo', args: { text: 'x'.repeat(5000) } })).rejects.toMatchObject({ kind: 'bad-input', code: 'too-large' });
    c.close();
  });

  it('resumes after a cut: no gap, no duplicate; a reboot is reported as a new boot', async () => {
    const dev = new MemoryDevice();
    const { connect, conns } = serveMemory(dev);
    const c = createClient(connect, { reconnectDelayMs: 5 });
    const got: Uint8Array[] = [];
    const events: ClientEvent[] = [];
    c.onEntry((e) => got.push(e.encoded));
    c.onEvent((e) => events.push(e));
    await c.connect();
    for (let i = 0; i < 5; i++) await c.propose({ id: i, domain: 1, action: 'echo', args: { text: `m${i}` } });
    await until(() => got.length === dev.log.length);
    conns.at(-1)!.close();
    dev.boot(); // the device restarts: same log, a new BOOT entry, new boot id
    for (let i = 5; i < 10; i++) await c.propose({ id: i, domain: 1, action: 'echo', args: { text: `m${i}` } });
    await until(() => got.length === dev.log.length);
    expect(events.some((e) => e.t === 'boot')).toBe(true);
    expect(got.map((e) => [...e])).toEqual(dev.log.map((e) => [...e]));
    expect(verifyChain(got).ok).toBe(true);
    c.close();
  });

  it('sees a device that lost its log as a new log and starts again from 0', async () => {
    const dev = new MemoryDevice();
    const { connect, conns } = serveMemory(dev);
    const c = createClient(connect, { reconnectDelayMs: 5 });
    let got: Uint8Array[] = [];
    const events: ClientEvent[] = [];
    c.onEntry((e) => { if (e.seq === 0) got = []; got.push(e.encoded); });
    c.onEvent((e) => events.push(e));
    await c.connect();
    for (let i = 0; i < 3; i++) await c.propose({ id: i, domain: 1, action: 'echo', args: { text: 'x' } });
    await until(() => got.length === dev.log.length);
    conns.at(-1)!.close();
    dev.wipe();
    await until(() => events.some((e) => e.t === 'new-log'));
    await c.propose({ id: 100, domain: 1, action: 'echo', args: { text: 'y' } });
    await until(() => got.length === dev.log.length && equalBytes(entryHash(got.at(-1)!), entryHash(dev.log.at(-1)!)));
    expect(verifyChain(got).ok).toBe(true);
    c.close();
  });

  it('re-handshakes when the device announces a reboot on the same connection (serial-style)', async () => {
    const dev = new MemoryDevice();
    const [host, side] = memoryPair();
    let server = serveLink(side, dev, { announce: false });
    const c = createClient(async () => host);
    const events: ClientEvent[] = [];
    c.onEvent((e) => events.push(e));
    await c.connect();
    // The kernel reboots: its server state is gone, it sends the unsolicited WELCOME.
    void server;
    dev.boot();
    server = serveLink(side, dev, { announce: true });
    await until(() => events.filter((e) => e.t === 'connected').length === 2);
    expect(events.some((e) => e.t === 'boot')).toBe(true);
    const r = await c.propose({ id: 1, domain: 1, action: 'echo', args: { text: 'after reboot' } });
    expect(r.status).toBe('committed');
    c.close();
  });
});

// "1% corruption" here: 1% of chunks (one write is usually one frame) get a flipped bit, plus a
// per-byte flip rate of 1e-4 (another ~1% of 100-byte frames) and lost bytes (cuts inside frames).
// A flat 1% per byte would damage 99.99% of 1 KiB frames: no framing without FEC survives that.
describe('client through faults (1% corruption, drops, duplicates, delays and cuts)', () => {
  for (const seed of [1, 2, 3]) {
    it(`ends with every committed entry exactly once, in order, and a verifying chain (seed ${seed})`, async () => {
      const dev = new MemoryDevice({ k: 16 });
      const faults: Faults = { flipChunk: 0.01, flipByte: 0.0001, dropByte: 0.0001, duplicateChunk: 0.01, delayMs: 2, cutChunk: 0.003 };
      const { connect } = serveMemory(dev, { send: faults, receive: faults }, seed);
      const c = createClient(connect, { reconnectDelayMs: 5, requestTimeoutMs: 150, stallMs: 200, keepaliveMs: 100, deadAfterMs: 1000, handshakeTimeoutMs: 1000, helloRetryMs: 50, maxReconnects: 1000 });
      const got: Uint8Array[] = [];
      c.onEntry((e) => got.push(e.encoded));
      await c.connect();
      const results = [];
      for (let i = 0; i < 60; i++) results.push(c.propose({ id: i, domain: 1, action: 'kv.set', args: { key: `k${i % 7}`, value: 'v'.repeat(i * 13) } }, 60_000));
      const replies = await Promise.all(results);
      expect(replies.every((r) => r.status === 'committed')).toBe(true);
      // exactly one COMMIT per proposal in the device's log, whatever the retries
      const commits = dev.log.filter((e) => e[1] === 2).length;
      expect(commits).toBe(60);
      await until(() => got.length === dev.log.length, 30_000);
      expect(new Set(got.map((_, i) => i)).size).toBe(got.length);
      expect(got.map((e) => [...e])).toEqual(dev.log.map((e) => [...e]));
      expect(verifyChain(got).ok).toBe(true);
      expect(c.stats.drops + c.stats.reconnects).toBeGreaterThan(0); // the faults really happened
      c.close();
    });
  }
});

