// Host services over an in-process sequencer: proposals flow to the device, committed entries
// flow back as events, the host checks the chain, and ids survive a new host on the same device.
import { describe, expect, it } from 'vitest';
import { decodeEntry, decodeValue, fromUtf8, initAxiom, Kind } from '../../axiom/index.ts';
import { fromBase64 } from '../../renderer/bridge.ts';
import { HostServices, jsonToValue } from './services.ts';
import { InProcessDevice } from './inprocess-device.ts';
import { Dispatcher } from './dispatch.ts';

const caps = () => ({ qemu: false, serialPorts: [] });

describe('host services', () => {
  it('proposes sh commands as the session actor and streams the committed entries', async () => {
    await initAxiom();
    const dev = new InProcessDevice();
    const s = new HostServices({ links: { hosted: () => dev }, capabilities: caps, mode: 'web' });
    const seen: Uint8Array[] = [];
    s.subscribe((ch, data) => { if (ch === 'device.entries') for (const b of (data as { entries: string[] }).entries) seen.push(fromBase64(b)!); });
    const info = await s.connect('hosted');
    expect(info.link).toBe('up');
    const d = new Dispatcher(s.handlers(), () => {});
    const r = await d.dispatch('t', 'device.propose', { device: info.id, domain: 1, action: 'sh', args: { line: 'set a 1' } });
    expect(r.ok).toBe(true);
    const res = (r as { value: { status: string; seq: number; receiptSeq: number } }).value;
    expect(res.status).toBe('committed');
    const receipt = decodeEntry(seen[res.receiptSeq]!);
    expect(receipt.ok && receipt.value.kind).toBe(Kind.Receipt);
    const p = decodeValue((receipt as { value: { payload: Uint8Array } }).value.payload);
    expect(p.ok && fromUtf8((p.value as { result: Uint8Array }).result)).toBe('a=1');
    const commit = decodeEntry(seen[res.seq]!);
    expect(commit.ok && commit.value.actor).toBe(1);
    // The host's log equals what it streamed; a second proposal gets the next id.
    expect(s.logOf(info.id)).toEqual(seen);
    const r2 = await s.propose(info.id, 1, 'sh', { line: 'get a' });
    expect(r2.status).toBe('committed');
    const s2 = new HostServices({ links: { hosted: () => dev }, capabilities: caps, mode: 'web' });
    const info2 = await s2.connect('hosted');
    // A new host on the same device learns the ids from the log, so its first proposal is not a duplicate.
    expect((await s2.propose(info2.id, 1, 'sh', { line: 'echo hi' })).status).toBe('committed');
    await s.close(); await s2.close();
  });

  it('pages the log: device.log returns at most count entries, from where asked', async () => {
    await initAxiom();
    const s = new HostServices({ links: { hosted: () => new InProcessDevice() }, capabilities: caps, mode: 'web' });
    const info = await s.connect('hosted');
    for (let i = 0; i < 5; i++) await s.propose(info.id, 1, 'sh', { line: `set k${i} v` });
    const d = new Dispatcher(s.handlers(), () => {});
    const all = s.logOf(info.id);
    const r = await d.dispatch('t', 'device.log', { device: info.id, from: 3, count: 4 });
    expect(r.ok && (r.value as { entries: string[] }).entries.map((b) => fromBase64(b))).toEqual(all.slice(3, 7));
    const end = await d.dispatch('t', 'device.log', { device: info.id, from: all.length, count: 10 });
    expect(end.ok && (end.value as { entries: string[] }).entries).toEqual([]);
    await s.close();
  });

  it('turns bridge JSON into Axiom values, with bytes as $bytes', () => {
    expect(jsonToValue({ a: 1, b: [true, null, 'x'], c: { $bytes: 'AQI=' } })).toEqual({ a: 1, b: [true, null, 'x'], c: new Uint8Array([1, 2]) });
    expect(() => jsonToValue({ $bytes: '!!' })).toThrow('base64');
  });

  it('refuses proposals to unknown devices and unknown targets with typed errors', async () => {
    const s = new HostServices({ links: {}, capabilities: () => ({ qemu: false, qemuWhyNot: 'no guest kernel built', serialPorts: [] }), mode: 'web' });
    const d = new Dispatcher(s.handlers(), () => {});
    const r = await d.dispatch('t', 'device.propose', { device: 'nope', domain: 1, action: 'sh', args: {} });
    expect(r).toEqual({ ok: false, error: { kind: 'bad-input', message: 'no device nope; connect one first' } });
    const q = await d.dispatch('t', 'device.connect', { target: 'qemu' });
    expect(q).toEqual({ ok: false, error: { kind: 'bad-input', message: 'no guest kernel built' } });
  });
});
