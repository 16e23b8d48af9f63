// The device side, driven by hand-made frames (no client): each rule of docs/kernel-link.md
// sections 4 and 6 that a device must follow.
import { beforeAll, describe, expect, it } from 'vitest';
import { initAxiom } from '../../axiom/hash.ts';
import { decodeEntry, entryHash, GENESIS } from '../../axiom/entry.ts';
import { encodeFrame, FrameDecoder, FRAME_OVERHEAD, stuffText } from './frame.ts';
import { decodeMessage, encodeMessage, type Message } from './messages.ts';
import { MemoryDevice } from './memory-device.ts';
import { serveLink } from './server.ts';
import { memoryPair } from './transport.ts';

beforeAll(() => initAxiom());

/** A scripted host: sends messages, collects what the device sends back. */
function rig(opts: Parameters<typeof serveLink>[2] = {}) {
  const dev = new MemoryDevice();
  const [host, side] = memoryPair();
  const server = serveLink(side, dev, opts);
  const got: Message[] = [];
  const text: Uint8Array[] = [];
  const drops: string[] = [];
  const dec = new FrameDecoder();
  host.attach({
    data: (c) => dec.push(c, {
      text: (b) => text.push(b.slice()),
      frame: (t, p) => { const d = decodeMessage(t, p); if (d.ok) got.push(d.msg); else drops.push(d.error.code); },
      drop: (i) => drops.push(i.reason),
    }),
    close: () => {},
  });
  const send = (m: Message) => { const { type, payload } = encodeMessage(m); host.write(encodeFrame(type, payload)); };
  const tick = async (n = 20) => { for (let i = 0; i < n; i++) await Promise.resolve(); };
  const hello = (rid = 1, extra: Partial<Extract<Message, { t: 'hello' }>> = {}) => send({ t: 'hello', rid, min: 1, max: 1, client: 'test', maxFrame: 2_097_152, consoleWindow: 0, caps: [], ...extra });
  return { dev, host, server, got, text, drops, send, tick, hello, sideTransport: side };
}

describe('serveLink', () => {
  it('announces itself, answers HELLO with WELCOME and PING with PONG', async () => {
    const r = rig();
    r.hello(5); r.send({ t: 'ping', rid: 6 });
    await r.tick();
    expect(r.got[0]).toMatchObject({ t: 'welcome', rid: 0, version: 1 });
    expect(r.got[1]).toMatchObject({ t: 'welcome', rid: 5, head: r.dev.log.length, maxRequests: 16 });
    expect(r.got[2]).toEqual({ t: 'pong', rid: 6, head: r.dev.log.length });
  });

  it('refuses versions it does not speak, and requests before HELLO', async () => {
    const r = rig({ announce: false });
    r.send({ t: 'propose', rid: 2, proposal: { actor: 1, id: 1, domain: 1, action: 'echo', args: { text: 'x' }, time: 0 } });
    r.hello(3, { min: 2, max: 3 });
    await r.tick();
    expect(r.got).toEqual([
      { t: 'error', rid: 2, code: 'no-session', detail: 'send HELLO first' },
      { t: 'error', rid: 3, code: 'version', detail: 'device speaks 1..1, the host 2..3' },
    ]);
  });

  it('commits a proposal, answers a retry as duplicate, and streams the entries within credit', async () => {
    const r = rig({ announce: false });
    r.hello();
    const p = { actor: 1, id: 7, domain: 1, action: 'kv.set', args: { key: 'a', value: 'b' }, time: 0 };
    r.send({ t: 'propose', rid: 2, proposal: p });
    r.send({ t: 'propose', rid: 3, proposal: p });
    await r.tick();
    const res = r.got.filter((m) => m.t === 'result');
    expect(res[0]).toMatchObject({ status: 'committed', seq: 1, receipt: 2 });
    expect(res[1]).toMatchObject({ status: 'duplicate', of: 'committed', seq: 1, receipt: 2 });
    r.send({ t: 'subscribe', rid: 10, from: 0, prev: GENESIS, window: 1 << 16 });
    await r.tick();
    const ents = r.got.filter((m) => m.t === 'entries').flatMap((m) => (m.t === 'entries' ? m.entries : []));
    expect(ents.map((e) => { const d = decodeEntry(e); return d.ok ? d.value.seq : -1; })).toEqual([0, 1, 2]);
  });

  it('waits for the transport to be ready between ENTRIES frames, and finishes the stream once it is', async () => {
    const r = rig({ announce: false, targetFrame: 600 }); // ~2 entries per frame
    r.hello();
    for (let i = 0; i < 20; i++) r.dev.propose({ actor: 1, id: i, domain: 1, action: 'echo', args: { text: 'x'.repeat(200) }, time: 0 });
    await r.tick();
    const frames = () => r.got.filter((m) => m.t === 'entries').length;
    const entries = () => r.got.filter((m) => m.t === 'entries').reduce((n, m) => n + (m.t === 'entries' ? m.entries.length : 0), 0);
    // Hold the device side's ready() until released, one frame at a time.
    const gate: Array<() => void> = [];
    r.sideTransport.ready = () => new Promise<void>((res) => gate.push(res));
    r.send({ t: 'subscribe', rid: 4, from: 0, prev: GENESIS, window: 1 << 20 });
    await r.tick(50);
    expect(frames()).toBe(1); // one frame, then the server waits
    for (let k = 0; k < 200 && entries() < r.dev.log.length; k++) { gate.shift()?.(); await r.tick(); }
    expect(entries()).toBe(r.dev.log.length);
    expect(frames()).toBeGreaterThan(5);
  });

  it('never sends beyond the credit, and resumes when CREDIT grows', async () => {
    const r = rig({ announce: false });
    r.hello();
    for (let i = 0; i < 40; i++) r.dev.propose({ actor: 1, id: i, domain: 1, action: 'echo', args: { text: 'x'.repeat(200) }, time: 0 });
    const window = 2000;
    r.send({ t: 'subscribe', rid: 4, from: 0, prev: GENESIS, window });
    await r.tick();
    const sizes = () => r.got.filter((m) => m.t === 'entries').map((m) => FRAME_OVERHEAD + encodeMessage(m).payload.length);
    const sent1 = sizes().reduce((a, b) => a + b, 0);
    expect(sent1).toBeGreaterThan(0);
    expect(sent1).toBeLessThanOrEqual(window);
    r.send({ t: 'credit', stream: 99, limit: 1 << 20 }); // another stream's credit is ignored
    await r.tick();
    expect(sizes().reduce((a, b) => a + b, 0)).toBe(sent1);
    r.send({ t: 'credit', stream: 4, limit: sent1 + window });
    await r.tick();
    const sent2 = sizes().reduce((a, b) => a + b, 0);
    expect(sent2).toBeGreaterThan(sent1);
    expect(sent2).toBeLessThanOrEqual(sent1 + window);
  });

  it('lets one frame larger than the whole window through when nothing is outstanding', async () => {
    const r = rig({ announce: false });
    r.hello();
    r.dev.propose({ actor: 1, id: 1, domain: 1, action: 'echo', args: { text: 'y'.repeat(3000) }, time: 0 });
    r.send({ t: 'subscribe', rid: 4, from: 1, prev: entryHash(r.dev.log[0]!), window: 100 });
    await r.tick();
    const e = r.got.filter((m) => m.t === 'entries');
    expect(e).toHaveLength(1);
    expect(e[0]).toMatchObject({ seq: 1 });
    expect((e[0] as { entries: unknown[] }).entries).toHaveLength(1);
  });

  it('answers SUBSCRIBE with ahead, diverged and a correct resume', async () => {
    const r = rig({ announce: false });
    r.hello();
    r.dev.propose({ actor: 1, id: 1, domain: 1, action: 'echo', args: { text: 'hi' }, time: 0 });
    const n = r.dev.log.length;
    r.send({ t: 'subscribe', rid: 2, from: n + 1, prev: GENESIS, window: 1 << 16 });
    r.send({ t: 'subscribe', rid: 3, from: 1, prev: new Uint8Array(32).fill(9), window: 1 << 16 });
    r.send({ t: 'subscribe', rid: 4, from: n, prev: entryHash(r.dev.log[n - 1]!), window: 1 << 16 });
    await r.tick();
    expect(r.got.filter((m) => m.t !== 'welcome').map((m) => m.t === 'error' ? m.code : m.t)).toEqual(['ahead', 'diverged']);
    r.dev.propose({ actor: 1, id: 2, domain: 1, action: 'echo', args: { text: 'again' }, time: 0 });
    await r.tick();
    expect(r.got.at(-1)).toMatchObject({ t: 'entries', stream: 4, seq: n });
  });

  it('keeps console text, answers unknown types and bad bodies, skips oversized frames', async () => {
    const r = rig({ announce: false, maxFrame: 4096 });
    r.host.write(stuffText(new TextEncoder().encode('typed\n')));
    r.host.write(encodeFrame(0x7e, new Uint8Array([0x08, 0, 0, 0, 0])));
    r.host.write(encodeFrame(0x03, new Uint8Array([0x01])));
    r.host.write(encodeFrame(0x10, new Uint8Array(5000)));
    r.dev.print('after\n');
    await r.tick();
    expect(new TextDecoder().decode(Buffer.concat(r.dev.input))).toBe('typed\n');
    expect(r.got.map((m) => m.t === 'error' && m.code)).toEqual(['unknown-type', 'bad-message', 'too-large']);
    expect(new TextDecoder().decode(Buffer.concat(r.text))).toContain('after\n');
  });

  it('restarts the stream on a new SUBSCRIBE and ignores credit for the old one', async () => {
    const r = rig({ announce: false });
    r.hello();
    r.send({ t: 'subscribe', rid: 2, from: 0, prev: GENESIS, window: 1 << 16 });
    r.send({ t: 'subscribe', rid: 3, from: 0, prev: GENESIS, window: 1 << 16 });
    await r.tick();
    r.dev.propose({ actor: 1, id: 1, domain: 1, action: 'echo', args: { text: 'hi' }, time: 0 });
    await r.tick();
    const streams = r.got.filter((m) => m.t === 'entries').map((m) => (m.t === 'entries' ? m.stream : 0));
    expect(streams.at(-1)).toBe(3);
    expect(streams.filter((s) => s === 3).length).toBeGreaterThanOrEqual(2);
  });
});

