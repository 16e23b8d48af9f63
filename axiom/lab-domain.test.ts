// The lab domain reducer (docs/lab-domain.md): checks, state, determinism, malformed commits.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { initAxiom, Sequencer, systemReducer, labReducer, Replayer, decodeEntry, toHex, Domain, type LabState, type ValueMap } from './index.ts';
import { stateHash } from './reducers/state-hash.ts';
import { readFileSync } from 'node:fs';
import { labVectors, LAB_VECTOR_STEPS } from '../scripts/gen-lab-vectors.ts';

const V = JSON.parse(readFileSync(new URL('../docs/vectors/lab-domain-v1.json', import.meta.url), 'utf8'));

const dev = new Uint8Array(16).fill(3);
const boot = new Uint8Array(16).fill(4);
const flash = (device: string, status: string, code = ''): ValueMap => ({ device, image: '/img/os.img', status, blake3: status === 'failed' ? '' : 'ab'.repeat(32), bytes: 4096, code });
const bootArgs = (device: string, ok: boolean, blame = '', code = ''): ValueMap => ({ device, boot_id: '00ff', ok: ok ? 1 : 0, stage: ok ? 'axiom' : 'cpu', blame, code, boot_ms: ok ? 67 : 0 });

describe('lab domain', () => {
  it('matches its vectors (docs/vectors/lab-domain-v1.json): statuses, entry hashes, state after every step', async () => {
    await initAxiom();
    expect(toHex(stateHash(labReducer, labReducer.init()))).toBe(V.initial_state);
    expect(V.steps.length).toBe(LAB_VECTOR_STEPS.length);
    const now = labVectors();
    expect(now.steps.map((x) => [x.status, x.lab_state_hash])).toEqual(V.steps.map((x: { status: string; lab_state_hash: string }) => [x.status, x.lab_state_hash]));
    expect(now.steps.map((x) => x.lab_state)).toEqual(V.steps.map((x: { lab_state: unknown }) => x.lab_state));
    expect(now.entry_hashes).toEqual(V.entry_hashes);
    expect(now.head).toBe(V.head);
  });

  it('derives each device\'s history from its commits, and replay gives the same state hash', async () => {
    await initAxiom();
    const seq = new Sequencer({ deviceId: dev, bootId: boot, os: 'orbital-lab', k: 4, reducers: [systemReducer, labReducer] });
    const all = [...seq.boot()];
    let id = 1;
    const p = (action: string, args: ValueMap) => { const r = seq.propose({ actor: 1, id: id++, domain: Domain.Lab, action, args, time: 1000 + id }); all.push(...r.entries); return r; };
    expect(p('flash', flash('vm-1', 'written')).status).toBe('committed');
    p('flash', flash('vm-1', 'failed', 'verify-mismatch'));
    p('boot', bootArgs('vm-1', true));
    p('boot', bootArgs('vm-1', false, 'os', 'os-fatal'));
    p('boot', bootArgs('board-1', false, 'lab', 'boot-timeout'));
    p('power', { device: 'board-1', action: 'off', ok: 1, code: '' });
    p('run', { device: 'vm-1', ok: 0, commands: 2, blame: 'os', code: 'expect-timeout' });
    const s = labReducer.clone(seq.stateOf(labReducer) as LabState);
    const vm = s.devices.get('vm-1')!;
    expect(vm).toMatchObject({ flashes: 2, flashFailures: 1, boots: 2, bootFailuresOs: 1, bootFailuresLab: 0, runs: 1, runFailures: 1 });
    expect(vm.lastFlash).toMatchObject({ status: 'failed', code: 'verify-mismatch' });
    expect(vm.lastBoot).toMatchObject({ ok: false, blame: 'os', code: 'os-fatal' });
    expect(s.devices.get('board-1')).toMatchObject({ boots: 1, bootFailuresLab: 1, power: 'off' });
    // No `service` key before a device's first service commit: logs from before the action keep their hashes.
    const v0 = labReducer.toValue(s) as { devices: Record<string, Record<string, unknown>> };
    expect(Object.keys(v0.devices['vm-1']!)).not.toContain('service');
    p('service', { device: 'vm-1', state: 'out', reason: 'disk swap', by: 'ann@lab' });
    const v1 = labReducer.toValue(seq.stateOf(labReducer) as LabState) as { devices: Record<string, Record<string, unknown>> };
    expect(v1.devices['vm-1']!.service).toMatchObject({ state: 'out', reason: 'disk swap', by: 'ann@lab' });
    expect(Object.keys(v1.devices['board-1']!)).not.toContain('service');
    // Likewise `reservation`, absent until a device's first reserve commit.
    expect(Object.keys(v1.devices['vm-1']!)).not.toContain('reservation');
    p('reserve', { device: 'vm-1', state: 'held', owner: 'ann@lab', until: 5000, reason: 'bisect', by: 'ann@lab' });
    p('reserve', { device: 'vm-1', state: 'released', owner: 'ann@lab', until: 0, reason: '', by: 'bob@lab' });
    const v2 = labReducer.toValue(seq.stateOf(labReducer) as LabState) as { devices: Record<string, Record<string, unknown>> };
    expect(v2.devices['vm-1']!.reservation).toMatchObject({ state: 'released', owner: 'ann@lab', until: 0, by: 'bob@lab' });
    expect(Object.keys(v2.devices['board-1']!)).not.toContain('reservation');
    expect(p('reserve', { device: 'vm-1', state: 'kept', owner: '', until: 0, reason: '', by: '' })).toMatchObject({ status: 'rejected', reason: 'bad-args' });
    // Likewise `idle_fatal`, absent until a device's first console commit; then the count and the last line.
    expect(Object.keys(v2.devices['vm-1']!)).not.toContain('idle_fatal');
    p('console', { device: 'vm-1', event: 'fatal', pattern: 'panic', text: 'Kernel panic', log: '/l/a.log' });
    p('console', { device: 'vm-1', event: 'fatal', pattern: 'oops', text: 'Oops: 0000', log: '/l/a.log' });
    const v3 = labReducer.toValue(seq.stateOf(labReducer) as LabState) as { devices: Record<string, Record<string, unknown>> };
    expect(v3.devices['vm-1']!.idle_fatal).toMatchObject({ n: 2, pattern: 'oops', text: 'Oops: 0000', log: '/l/a.log' });
    expect(Object.keys(v3.devices['board-1']!)).not.toContain('idle_fatal');
    expect(p('console', { device: 'vm-1', event: 'gone', pattern: '', text: '', log: '' })).toMatchObject({ status: 'rejected', reason: 'bad-args' });
    // Replaying the entries gives the very state hash the sequencer's checkpoints recorded.
    const rep = new Replayer([systemReducer, labReducer]);
    for (const a of all) { const d = decodeEntry(a.encoded); if (!d.ok) throw new Error(d.error.message); rep.apply(d.value); }
    expect(toHex(stateHash(labReducer, rep.states[1]))).toBe(toHex(stateHash(labReducer, seq.stateOf(labReducer) as LabState)));
    expect(all.some((a) => a.entry.kind === 5)).toBe(true);
  });

  it('refuses unknown actions and bad arguments, naming them', () => {
    const seq = new Sequencer({ deviceId: dev, bootId: boot, os: 'orbital-lab', reducers: [systemReducer, labReducer] });
    seq.boot();
    const r1 = seq.propose({ actor: 1, id: 1, domain: Domain.Lab, action: 'reflash', args: {}, time: 1 });
    expect(r1).toMatchObject({ status: 'rejected', reason: 'unknown-action' });
    const r2 = seq.propose({ actor: 1, id: 2, domain: Domain.Lab, action: 'flash', args: { ...flash('vm-1', 'maybe') }, time: 1 });
    expect(r2).toMatchObject({ status: 'rejected', reason: 'bad-args' });
    expect((r2 as { detail: string }).detail).toContain("'status' must be one of");
    const r3 = seq.propose({ actor: 1, id: 3, domain: Domain.Lab, action: 'power', args: { device: 'x', action: 'on', ok: 1 }, time: 1 });
    expect((r3 as { detail: string }).detail).toContain("missing argument 'code'");
  });

  it('counts a malformed committed entry in errors and is otherwise unmoved (any args)', () => {
    fc.assert(fc.property(fc.dictionary(fc.constantFrom('device', 'image', 'status', 'ok', 'x'), fc.oneof(fc.string(), fc.integer(), fc.constant(null))), fc.constantFrom('flash', 'boot', 'power', 'run', 'nope'), (args, action) => {
      const s = labReducer.init();
      const e = { version: 1, kind: 2, domain: Domain.Lab, seq: 5, time: 9, actor: 1, prev: new Uint8Array(32), payload: new Uint8Array(0) };
      labReducer.apply(s, e, { id: 1, action, args: args as ValueMap });
      // Either a whole, valid record or an error - never a half-applied one.
      expect(s.errors + s.devices.size).toBe(1);
    }));
  });
});
