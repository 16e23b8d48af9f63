// Taking a board out of service (LAVA's maintenance/Bad): `orbital-lab disable`/`enable`, the lab
// doing it itself after health.max-lab-failures lab-side failures in a row, and what a device out
// of service means to flash, boot, run and a pool - all through the real CLI as a child process,
// and the lab log replayed after. The streak rules are checked on the reducer directly.
import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import fc from 'fast-check';
import { initAxiom, Sequencer, systemReducer, labReducer, Replayer, decodeEntry, Domain, type ValueMap } from '../axiom/index.ts';
import { makeBmap, makeImage, MiB } from './flash/testimg.ts';
import { applyHealth, labHealthReducer, type HealthState } from './health.ts';
import { readEvents, readHistory } from './history.ts';
import { describeWithTools } from '../scripts/testkit.ts';
import { guestArtifacts, GUEST_BOOT } from './testguest.ts';

const BIN = resolve(import.meta.dirname, '../bin/orbital-lab.mjs');
const dirs: string[] = [];
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

function run(args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, ORBITAL_LAB_OWNER: 'ann@lab' } });
  const lines = r.stdout.trim().split('\n');
  let last: Record<string, any> | null = null;
  try { last = JSON.parse(lines[lines.length - 1]!); } catch { /* not json */ }
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, last };
}

/** Boards whose console is not plugged in (every boot fails on the lab's side), and two qemu devices with file targets. */
function lab(extra = '') {
  const dir = mkdtempSync(join(tmpdir(), 'orbital-service-'));
  dirs.push(dir);
  const board = (n: string, more = '') => `  ${n}:\n    kind: serial-board\n    console: { port: ${join(dir, `tty-${n}`)} }\n    power: { kind: command, on: "true", off: "true" }\n    tags: [pool]\n${more}`;
  writeFileSync(join(dir, 'lab.yaml'), `version: 1\ndevices:\n${board('b1')}${board('b2', '    health: { max-lab-failures: 0 }\n')}  v1:\n    kind: qemu\n    flash: { target: ${join(dir, 'v1.img')} }\n    tags: [vms]\n  v2:\n    kind: qemu\n    flash: { target: ${join(dir, 'v2.img')} }\n    tags: [vms]\n${extra}`);
  const extents: Array<[number, number]> = [[0, 64 * 1024], [MiB, 2 * MiB]];
  const whole = makeImage(join(dir, 'os.img'), 3 * MiB, extents);
  makeBmap(join(dir, 'os.bmap'), whole, extents);
  return { dir, file: join(dir, 'lab.yaml'), img: join(dir, 'os.img'), state: join(dir, '.orbital', 'lab') };
}

describe('devices out of service', () => {
  it('the lab takes a board out after 3 lab failures in a row; jobs refuse it (not recorded), a pool skips it, --use-disabled and enable bring it back', async () => {
    const l = lab();
    const boot = (dev: string, ...more: string[]) => run(['--lab', l.file, '--json', 'boot', dev, '--timeout', '2s', ...more]);
    for (let i = 1; i <= 2; i++) {
      const r = boot('b1');
      expect(r.code).toBe(3);
      expect(r.last!.error).toMatchObject({ code: 'console-missing', blame: 'lab' });
      expect(r.last!.error.outOfService).toBeUndefined();
    }
    // The third: the failure itself, and the lab's decision with it (stderr says what to do).
    const third = boot('b1');
    expect(third.code).toBe(3);
    expect(third.last!.error.outOfService).toEqual([{ device: 'b1', reason: expect.stringMatching(/^3 lab failures in a row \(console-missing, console-missing, console-missing\)/), seq: expect.any(Number) }]);
    expect(third.stderr).toMatch(/b1 is now OUT OF SERVICE: 3 lab failures in a row .*orbital-lab enable b1/);
    // Now refused before anything is done to it, and that refusal is not recorded.
    const refused = boot('b1');
    expect(refused.code).toBe(3);
    expect(refused.last!.error).toMatchObject({ code: 'out-of-service', blame: 'lab', device: 'b1', service: { state: 'out', by: 'orbital-lab' } });
    expect(refused.stderr).toMatch(/b1 is out of service: since \S+, by orbital-lab: 3 lab failures in a row.*orbital-lab enable b1 \(or --use-disabled/);
    let h = await readHistory(l.state);
    const b1 = h.devices.find((d) => d.name === 'b1')!;
    expect(b1).toMatchObject({ boots: 3, bootFailuresLab: 3, service: { state: 'out', by: 'orbital-lab' } });
    expect(b1.labFailStreak.n).toBe(0); // the service record ends the streak: out of service, it is not counted again
    // A pool skips it: b2 is picked (and fails its own boot; max-lab-failures 0 never takes it out).
    for (let i = 0; i < 4; i++) expect(boot('@pool').last!.error).toMatchObject({ code: 'console-missing', device: 'b2' });
    h = await readHistory(l.state);
    expect(h.devices.find((d) => d.name === 'b2')).toMatchObject({ boots: 4, service: null, labFailStreak: { n: 4 } });
    // devices shows both: b1 out of service and why, b2's streak.
    const dv = run(['--lab', l.file, 'devices']);
    expect(dv.stdout).toMatch(/b1 +serial-board OUT OF SERVICE \(since \S+, by orbital-lab: 3 lab failures in a row/);
    expect(dv.stdout).toMatch(/4 lab failure\(s\) in a row \(console-missing, console-missing, console-missing, console-missing; out of service at never\)/);
    const dj = run(['--lab', l.file, '--json', 'devices']).last!;
    expect(dj.devices.map((d: any) => [d.name, d.inService])).toEqual([['b1', false], ['b2', true], ['v1', true], ['v2', true]]);
    // A person takes b2 out too: the pool has nothing left to give, and says why for each.
    expect(run(['--lab', l.file, 'disable', 'b2']).code).toBe(2); // a reason is required
    expect(run(['--lab', l.file, 'disable', 'b2', '--reason', 'fan dead; ask ann']).stdout).toMatch(/b2: out of service: fan dead; ask ann/);
    const none = boot('@pool');
    expect(none.code).toBe(3);
    expect(none.last!.error).toMatchObject({ code: 'out-of-service', tag: 'pool' });
    expect(none.last!.error.message).toMatch(/b1 \(since .*by orbital-lab: 3 lab failures.*b2 \(since .*by ann@lab: fan dead; ask ann\)/);
    // --wait does not wait for a device out of service: nobody is going to free it.
    expect(run(['--lab', l.file, 'boot', '@pool', '--wait', '10m']).code).toBe(3);
    // The person fixing it may still use it, and that boot is recorded.
    const fixing = boot('b1', '--use-disabled');
    expect(fixing.last!.error).toMatchObject({ code: 'console-missing' });
    // enable puts it back; the streak starts again from 0.
    expect(run(['--lab', l.file, 'enable', 'b1', '--reason', 'reseated the cable']).stdout).toMatch(/b1: in service again \(was out since \S+: 3 lab failures/);
    expect(run(['--lab', l.file, 'enable', 'b1']).stdout).toMatch(/b1: in service \(it already was\)/);
    for (let i = 0; i < 2; i++) expect(boot('@pool').last!.error).toMatchObject({ code: 'console-missing', device: 'b1' });
    expect(boot('@pool').last!.error.outOfService).toMatchObject([{ device: 'b1' }]);
    h = await readHistory(l.state);
    expect(h.devices.find((d) => d.name === 'b1')).toMatchObject({ boots: 7, service: { state: 'out', by: 'orbital-lab' } });
    // history says it; the lab log's chain and checkpoints hold.
    expect(run(['--lab', l.file, 'history', 'b2']).stdout).toMatch(/OUT OF SERVICE since \S+, by ann@lab: fan dead; ask ann/);
    const rp = run(['--lab', l.file, '--json', 'replay', join(l.state, 'lab.orbtrace')]);
    expect(rp.code).toBe(0);
    expect(rp.last).toMatchObject({ ok: true });
    expect(rp.last!.checkpoints).toBeGreaterThan(0);
  });

  it('flash: a device out of service fails alone in a multi-device flash (not recorded), is refused alone, and @TAG skips it', async () => {
    const l = lab();
    expect(run(['--lab', l.file, 'disable', 'v1', '--reason', 'disk swap']).code).toBe(0);
    const both = run(['--lab', l.file, '--json', 'flash', 'v1', 'v2', l.img]);
    expect(both.code).toBe(3);
    expect(both.last).toMatchObject({ ok: false, flashes: [{ device: 'v1', ok: false, error: { code: 'out-of-service' } }, { device: 'v2', ok: true, status: 'written' }] });
    expect(() => readFileSync(join(l.dir, 'v1.img'))).toThrow();
    expect(run(['--lab', l.file, '--json', 'flash', 'v1', l.img]).last!.error).toMatchObject({ code: 'out-of-service', device: 'v1' });
    expect(run(['--lab', l.file, '--json', 'flash', '@vms', l.img, '--force']).last).toMatchObject({ ok: true, device: 'v2', status: 'written' });
    expect(run(['--lab', l.file, '--json', 'flash', 'v1', l.img, '--use-disabled']).last).toMatchObject({ ok: true, device: 'v1', status: 'written' });
    const h = await readHistory(l.state);
    // v1: only the --use-disabled flash; the refused ones did nothing to it.
    expect(h.devices.find((d) => d.name === 'v1')).toMatchObject({ flashes: 1, flashFailures: 0, service: { state: 'out', reason: 'disk swap', by: 'ann@lab' } });
    expect(h.devices.find((d) => d.name === 'v2')).toMatchObject({ flashes: 2, flashFailures: 0 });
  });

  it('health.max-lab-failures is validated with line and field', () => {
    const l = lab('  v3:\n    kind: qemu\n    health: { max-lab-failures: -1 }\n  v4:\n    kind: qemu\n    health: 3\n  v5:\n    kind: qemu\n    health: { max-failures: 3 }\n');
    const r = run(['--lab', l.file, 'devices']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/lab\.yaml:\d+:\d+: devices\.v3\.health\.max-lab-failures: /);
    expect(r.stderr).toMatch(/lab\.yaml:\d+:\d+: devices\.v4\.health: must be a mapping/);
    expect(r.stderr).toMatch(/lab\.yaml:\d+:\d+: devices\.v5\.health.*max-failures/);
  });
});

/** A directory holding a zeroed 1 MiB disk image (wiped.img): a qemu device booting it never comes up. */
function l0(): string {
  const d = mkdtempSync(join(tmpdir(), 'orbital-wiped-'));
  dirs.push(d);
  writeFileSync(join(d, 'wiped.img'), Buffer.alloc(MiB));
  return d;
}

describeWithTools(['qemu-system-x86_64'], 'enable --check: a health-check boot before a device goes back (guest kernel in QEMU)', () => {
  it('puts back a device whose check boot comes up; one whose check fails stays out, and the boot is recorded', async () => {
    const g = guestArtifacts();
    dirs.push(g.dir);
    const l = lab(`  vm:\n    kind: qemu\n    qemu: { kernel: ${g.elf} }\n${GUEST_BOOT}    timeouts: { boot: 60s }\n`);
    expect(run(['--lab', l.file, 'disable', 'vm', '--reason', 'new RAM']).code).toBe(0);
    expect(run(['--lab', l.file, 'disable', 'b1', '--reason', 'relay']).code).toBe(0);
    const ok = run(['--lab', l.file, '--json', 'enable', 'vm', '--check']);
    expect(ok.code).toBe(0);
    expect(ok.last).toMatchObject({ ok: true, device: 'vm', was: 'out', service: { state: 'in', reason: expect.stringMatching(/^health-check boot ok in \d+\.\d{3} s$/) }, check: { ok: true, stage: 'axiom' } });
    expect(readFileSync(ok.last!.check.log, 'utf8')).toMatch(/ready: head/);
    const bad = run(['--lab', l.file, '--json', 'enable', 'b1', '--check', '--timeout', '5s']);
    expect(bad.code).toBe(3);
    expect(bad.last).toMatchObject({ ok: false, device: 'b1', was: 'out', check: { ok: false, failure: { blame: 'lab', code: 'console-missing' } } });
    expect(bad.stdout + bad.stderr).not.toMatch(/in service again/);
    const h = await readHistory(l.state);
    expect(h.devices.find((d) => d.name === 'vm')).toMatchObject({ boots: 1, service: { state: 'in' }, lastBoot: { ok: true } });
    expect(h.devices.find((d) => d.name === 'b1')).toMatchObject({ boots: 1, bootFailuresLab: 1, service: { state: 'out', reason: 'relay' } });
    expect(run(['--lab', l.file, 'disable', 'b1', '--reason', 'x', '--check']).code).toBe(2);
  }, 180_000);

  it('check: a scheduled health check of a device in service; one that fails takes it out', async () => {
    const g = guestArtifacts();
    dirs.push(g.dir);
    const l = lab(`  vm:\n    kind: qemu\n    qemu: { kernel: ${g.elf} }\n${GUEST_BOOT}    timeouts: { boot: 60s }\n    health:\n      check:\n        - { run: "set color blue", expect: "^color=blue$" }\n  wiped:\n    kind: qemu\n    flash: { target: ${join(l0(), 'wiped.img')} }\n${GUEST_BOOT}    health: { max-lab-failures: 1 }\n`);
    const ok = run(['--lab', l.file, '--json', 'check', 'vm']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.last).toMatchObject({ ok: true, device: 'vm', check: { ok: true, commands: [{ cmd: 'set color blue', ok: true }] } });
    const bad = run(['--lab', l.file, '--json', 'check', 'wiped', '--timeout', '3s']);
    expect(bad.code).toBe(3);
    expect(bad.last).toMatchObject({ ok: false, outOfService: true, check: { failure: { blame: 'lab', code: 'boot-timeout' } } });
    const h = await readHistory(l.state);
    expect(h.devices.find((d) => d.name === 'vm')).toMatchObject({ boots: 1, runs: 1 });
    expect(h.devices.find((d) => d.name === 'vm')!.service).toBeNull();
    expect(h.devices.find((d) => d.name === 'wiped')).toMatchObject({ boots: 1, service: { state: 'out', reason: expect.stringMatching(/^health check failed \(the lab: boot-timeout\)/) } });
    // Its failed boot was also its max-lab-failures-th lab failure in a row: still one service record, the check's.
    const services = (await readEvents(l.state, { device: 'wiped' })).events.filter((e) => e.action === 'service');
    expect(services.map((e) => e.args.reason)).toEqual([expect.stringMatching(/^health check failed \(the lab: boot-timeout\)/)]);
    // Out of service now: jobs (and another check) are refused it until enable.
    expect(run(['--lab', l.file, '--json', 'check', 'wiped']).last!.error).toMatchObject({ code: 'out-of-service' });
  }, 180_000);

  it('with health.check commands, the check is the boot and then their answers: one that answers wrong keeps the device out', async () => {
    const g = guestArtifacts();
    dirs.push(g.dir);
    const dev = (name: string, check: string) => `  ${name}:\n    kind: qemu\n    qemu: { kernel: ${g.elf} }\n${GUEST_BOOT}    timeouts: { boot: 60s, console: 5s }\n    health:\n      check:\n${check}`;
    const l = lab(dev('good', '        - { run: "set color blue", expect: "^color=blue$" }\n        - { run: "get color", expect: ["^blue$"] }\n')
      + dev('wrong', '        - { run: "set color blue", expect: "^color=red$" }\n'));
    for (const d of ['good', 'wrong']) expect(run(['--lab', l.file, 'disable', d, '--reason', 'new RAM']).code).toBe(0);
    const ok = run(['--lab', l.file, '--json', 'enable', 'good', '--check']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.last).toMatchObject({ ok: true, was: 'out', service: { state: 'in', reason: expect.stringMatching(/^health check ok: booted in \d+\.\d{3} s, 2 command\(s\) answered$/) }, check: { ok: true, commands: [{ cmd: 'set color blue', ok: true }, { cmd: 'get color', ok: true }] } });
    const bad = run(['--lab', l.file, '--json', 'enable', 'wrong', '--check']);
    expect(bad.code).toBe(1);
    expect(bad.last).toMatchObject({ ok: false, was: 'out', check: { ok: false, commands: [{ cmd: 'set color blue', ok: false }], failure: { blame: 'os', code: 'expect-timeout' } } });
    const h = await readHistory(l.state);
    expect(h.devices.find((d) => d.name === 'good')).toMatchObject({ boots: 1, runs: 1, runFailures: 0, service: { state: 'in' } });
    expect(h.devices.find((d) => d.name === 'wrong')).toMatchObject({ boots: 1, runs: 1, runFailures: 1, service: { state: 'out', reason: 'new RAM' } });
    const text = run(['--lab', l.file, 'enable', 'wrong', '--check']);
    expect(text.code).toBe(1);
    expect(text.stdout + text.stderr).toMatch(/wrong: health check \(boot, then 1 command\(s\)\) FAILED - the OS failed \(expect-timeout\)[^]*stays out of service/);
  }, 180_000);
});

describe('lab-failure streaks (health.ts)', () => {
  const bootRec = (ok: boolean, blame = '', code = ''): ValueMap => ({ device: 'd', boot_id: '', ok: ok ? 1 : 0, stage: '', blame, code, boot_ms: 0 });
  it('counts the lab\'s failures since the last boot that came up, an OS failure or a service change', () => {
    const h: HealthState = { streaks: new Map() };
    const n = () => h.streaks.get('d')!.n;
    applyHealth(h, 'boot', bootRec(false, 'lab', 'boot-timeout')); expect(n()).toBe(1);
    applyHealth(h, 'power', { device: 'd', action: 'on', ok: 0, code: 'power-failed' }); expect(n()).toBe(2);
    applyHealth(h, 'flash', { device: 'd', image: 'x', status: 'failed', blake3: '', bytes: 0, code: 'checksum-mismatch' }); expect(n()).toBe(2); // the image's fault
    applyHealth(h, 'flash', { device: 'd', image: 'x', status: 'failed', blake3: '', bytes: 0, code: 'flash-stalled' }); expect(n()).toBe(3);
    applyHealth(h, 'flash', { device: 'd', image: 'x', status: 'written', blake3: 'ab', bytes: 1, code: '' }); expect(n()).toBe(3); // a flash that works says nothing of the boot
    applyHealth(h, 'run', { device: 'd', ok: 0, commands: 1, blame: 'lab', code: 'no-echo' }); expect(n()).toBe(3);
    expect(h.streaks.get('d')!.codes).toEqual(['boot-timeout', 'power-failed', 'flash-stalled']);
    applyHealth(h, 'boot', bootRec(false, 'os', 'os-fatal')); expect(n()).toBe(0); // the lab's part worked
    applyHealth(h, 'boot', bootRec(false, 'lab', 'console-gone'));
    applyHealth(h, 'boot', bootRec(true)); expect(n()).toBe(0);
    applyHealth(h, 'boot', bootRec(false, 'lab', 'console-gone'));
    applyHealth(h, 'service', { device: 'd', state: 'in', reason: '', by: '' }); expect(n()).toBe(0);
  });

  it('the reducer replays to the streaks applyHealth gives, and ignores malformed commits without throwing', async () => {
    await initAxiom();
    const rec = fc.oneof(
      fc.record({ action: fc.constant('boot'), args: fc.record({ device: fc.constantFrom('a', 'b'), boot_id: fc.constant(''), ok: fc.integer({ min: 0, max: 1 }), stage: fc.constant(''), blame: fc.constantFrom('', 'lab', 'os'), code: fc.constantFrom('', 'boot-timeout'), boot_ms: fc.constant(0) }) }),
      fc.record({ action: fc.constant('power'), args: fc.record({ device: fc.constantFrom('a', 'b'), action: fc.constant('on'), ok: fc.integer({ min: 0, max: 1 }), code: fc.constant('') }) }),
      fc.record({ action: fc.constant('service'), args: fc.record({ device: fc.constantFrom('a', 'b'), state: fc.constantFrom('in', 'out', 'bad'), reason: fc.string(), by: fc.constant('x') }) }),
      fc.record({ action: fc.constant('boot'), args: fc.dictionary(fc.string({ maxLength: 8 }), fc.oneof(fc.string(), fc.integer())) }),
    );
    fc.assert(fc.property(fc.array(rec, { maxLength: 30 }), (recs) => {
      const seq = new Sequencer({ deviceId: new Uint8Array(16).fill(1), bootId: new Uint8Array(16).fill(2), os: 'orbital-lab', k: 4, reducers: [systemReducer, labReducer] });
      const all = [...seq.boot()];
      const model: HealthState = { streaks: new Map() };
      recs.forEach((r, i) => {
        const p = seq.propose({ actor: 1, id: seq.next, domain: Domain.Lab, action: r.action, args: r.args as ValueMap, time: 1000 + i });
        all.push(...p.entries);
        if (p.status === 'committed') applyHealth(model, r.action, r.args as ValueMap);
      });
      const rep = new Replayer([labHealthReducer]);
      for (const a of all) { const d = decodeEntry(a.encoded); if (!d.ok) throw new Error(d.error.message); rep.apply(d.value); }
      expect(labHealthReducer.toValue(rep.states[0] as HealthState)).toEqual(labHealthReducer.toValue(model));
    }), { numRuns: 200 });
  });
});
