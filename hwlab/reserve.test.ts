// Reservations (`orbital-lab reserve` / `release`) through the real CLI as child processes, each
// run as a named person (ORBITAL_LAB_OWNER): a device reserved for one person is refused to
// everybody else's jobs - flash, verify, power, pools - while that person's own jobs use it ahead
// of those waiting; a waiter gets it when the reservation is released or runs out; each step is in
// the lab log, which replays with every checkpoint matching.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeWithTools, labCli, poolLab } from '../scripts/testkit.ts';
import { guestArtifacts, GUEST_BOOT } from './testguest.ts';
import { acquireLock } from './lock.ts';

const dirs: string[] = [];
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });
const cli = labCli();
const as = (who: string, args: string[]) => cli.run(args, who);
const startAs = (who: string, args: string[]) => cli.start(args, who);

function lab() {
  const { dir, file, state, x, y } = poolLab('orbital-reserve-', dirs);
  const cli = (who: string, ...args: string[]) => as(who, ['--lab', file, '--json', ...args]);
  const flashArgs = (dev: string, img: 'x' | 'y', ...more: string[]) => ['--lab', file, '--json', 'flash', dev, join(dir, `${img}.img`), '--no-bmap', ...more];
  return { dir, state, x, y, cli, flashArgs };
}

describe('reservations', () => {
  it('keep a device for one person: others are refused it or wait, pools pass it over, and its owner uses it ahead of the waiters', async () => {
    const l = lab();
    const r = l.cli('alice', 'reserve', 'b', '--for', '10m', '--reason', 'bisecting a USB bug');
    expect(r.code, r.stderr).toBe(0);
    expect(r.last).toMatchObject({ ok: true, device: 'b', reservation: { owner: 'alice', reason: 'bisecting a USB bug' } });
    expect(r.last!.reservation.until - Date.now()).toBeGreaterThan(9 * 60_000);

    // Bob: refused b by name, for flash and for the commands that lock a device directly.
    const named = as('bob', l.flashArgs('b', 'x'));
    expect(named.code).toBe(3);
    expect(named.last!.error).toMatchObject({ code: 'device-locked', device: 'b', reservation: { owner: 'alice', reason: 'bisecting a USB bug' } });
    expect(named.stderr).toMatch(/device b is reserved by alice until \S+ \(bisecting a USB bug\); --wait to queue for it, or ask alice to release it/);
    expect(l.cli('bob', 'verify', 'b', join(l.dir, 'x.img')).last!.error).toMatchObject({ code: 'device-locked', reservation: { owner: 'alice' } });
    expect(l.cli('bob', 'power', 'b', 'off').last!.error).toMatchObject({ code: 'device-locked', reservation: { owner: 'alice' } });
    // A pool gives bob the other board; alice's pool job takes her reserved one, though a comes first.
    expect(as('bob', l.flashArgs('@pool', 'x')).last).toMatchObject({ ok: true, device: 'a' });
    expect(as('alice', l.flashArgs('@pool', 'x')).last).toMatchObject({ ok: true, device: 'b' });
    // devices says who has it, until when and why.
    const dv = l.cli('carol', 'devices').last!;
    expect(dv.devices.map((d: { name: string; reservation: unknown }) => [d.name, d.reservation && (d.reservation as { owner: string }).owner])).toEqual([['a', null], ['b', 'alice']]);
    expect(as('carol', ['--lab', join(l.dir, 'lab.yaml'), 'devices']).stdout).toMatch(/^b +qemu +free; RESERVED by alice until \S+ \(bisecting a USB bug\)/m);

    // Bob waits for b; alice's own flash still goes first (bob waits for her reservation, not for a turn).
    const waiter = startAs('bob', l.flashArgs('b', 'y', '--wait', '60s'));
    expect((await waiter.waiting).why).toMatch(/reserved by alice/);
    expect(as('alice', l.flashArgs('b', 'x')).last).toMatchObject({ ok: true, device: 'b' });
    // Only alice (or someone who says --force) releases it.
    const notYours = l.cli('bob', 'release', 'b');
    expect(notYours.code).toBe(2);
    expect(notYours.last!.error).toMatchObject({ code: 'reserved-by-other', reservation: { owner: 'alice' } });
    expect(l.cli('alice', 'release', 'b').last).toMatchObject({ ok: true, released: true, by: 'alice', was: { owner: 'alice' } });
    expect(await waiter.done).toMatchObject({ code: 0, last: { ok: true, device: 'b', status: 'written' } });
    expect(readFileSync(join(l.dir, 'b.img')).equals(l.y)).toBe(true);
    expect(l.cli('alice', 'release', 'b').last).toMatchObject({ ok: true, released: false });

    // Reserving a device somebody is using now fails as busy, naming them.
    const hold = acquireLock(l.state, 'a', 'a long job', 'dave');
    try {
      const busy = l.cli('carol', 'reserve', 'a');
      expect(busy.code).toBe(3);
      expect(busy.stderr).toMatch(/device a is in use by dave/);
    } finally { hold.release(); }

    // Taken back with --force, recorded with the name of who did it.
    expect(l.cli('carol', 'reserve', 'a', '--for', '2h').code).toBe(0);
    expect(l.cli('alice', 'reserve', 'a').last!.error).toMatchObject({ code: 'device-locked', reservation: { owner: 'carol' } });
    expect(l.cli('alice', 'release', 'a', '--force', '--reason', 'needed for the nightly run').last).toMatchObject({ ok: true, released: true, by: 'alice', was: { owner: 'carol' } });
    const h = l.cli('x', 'history').last!;
    expect(h.devices.find((d: { name: string }) => d.name === 'a').reservation).toMatchObject({ state: 'released', owner: 'carol', by: 'alice', reason: 'needed for the nightly run', until: 0 });
    expect(as('x', ['--lab', join(l.dir, 'lab.yaml'), 'history', 'a']).stdout).toMatch(/reservation by carol released at \S+ by alice: needed for the nightly run/);
    // The lab log holds every reservation and replays to the states it recorded.
    const rp = l.cli('x', 'replay', join(l.state, 'lab.orbtrace'));
    expect(rp.code, rp.stdout + rp.stderr).toBe(0);
  });

  it('ends by itself when its time runs out, and reserving again extends it', async () => {
    const l = lab();
    expect(l.cli('alice', 'reserve', 'a', '--for', '5m').code).toBe(0);
    // Its owner is told it is about to end (under 10 min left), while it can still be extended.
    const soon = as('alice', ['--lab', join(l.dir, 'lab.yaml'), 'power', 'a', 'off']);
    expect(soon.stderr).toMatch(/your reservation of a ends in \d+ min .*orbital-lab reserve a --for 1h extends it/);
    expect(as('bob', l.flashArgs('a', 'x')).code).toBe(3);
    const again = l.cli('alice', 'reserve', 'a', '--for', '2h');
    expect(again.last).toMatchObject({ ok: true, was: { reason: '' } });
    expect(again.last!.reservation.until - again.last!.was.until).toBeGreaterThan(100 * 60_000);
    expect(as('alice', ['--lab', join(l.dir, 'lab.yaml'), 'power', 'a', 'off']).stderr).not.toMatch(/your reservation/);
    // A short one runs out: then anybody may use the device, and history says it ended.
    expect(l.cli('alice', 'reserve', 'b', '--for', '1s').code).toBe(0);
    await new Promise((r) => setTimeout(r, 1300));
    expect(as('bob', l.flashArgs('b', 'x')).last).toMatchObject({ ok: true, device: 'b' });
    expect(l.cli('bob', 'devices').last!.devices.map((d: { reservation: { owner: string } | null }) => d.reservation?.owner ?? null)).toEqual(['alice', null]);
    expect(as('x', ['--lab', join(l.dir, 'lab.yaml'), 'history', 'b']).stdout).toMatch(/reserved by alice at \S+ until \S+ \(ended\)/);
    expect(l.cli('bob', 'release', 'b').stdout).toMatch(/"released":false/);
    // Bad usage: exit 2, nothing recorded.
    for (const bad of [['--for', 'soon'], ['--for', '8d'], ['--for', '0s']]) {
      const r = l.cli('alice', 'reserve', 'a', ...bad);
      expect(r.code, bad.join(' ')).toBe(2);
      expect(r.last!.error).toMatchObject({ code: 'bad-usage' });
    }
  });
});

describeWithTools(['qemu-system-x86_64'], 'release --check (guest kernel in QEMU)', () => {
  it('runs a health check before anyone else gets the device; a board left broken goes out of service', async () => {
    const g = guestArtifacts();
    dirs.push(g.dir);
    const dir = mkdtempSync(join(tmpdir(), 'orbital-release-check-'));
    dirs.push(dir);
    writeFileSync(join(dir, 'broken.img'), Buffer.alloc(1 << 20));
    writeFileSync(join(dir, 'lab.yaml'), `version: 1\ndevices:\n  vm:\n    kind: qemu\n    qemu: { kernel: ${g.elf} }\n${GUEST_BOOT}    timeouts: { boot: 60s }\n  broken:\n    kind: qemu\n    flash: { target: ${join(dir, 'broken.img')} }\n${GUEST_BOOT}`);
    const cli = (who: string, ...args: string[]) => as(who, ['--lab', join(dir, 'lab.yaml'), '--json', ...args]);
    for (const d of ['vm', 'broken']) expect(cli('alice', 'reserve', d).code).toBe(0);
    const ok = cli('alice', 'release', 'vm', '--check');
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.last).toMatchObject({ ok: true, released: true, check: { ok: true, stage: 'axiom' } });
    // Someone wiped the disk it boots from: the check after the reservation finds it, and takes it out.
    const bad = cli('bob', 'release', 'broken', '--force', '--check', '--timeout', '3s', '--reason', 'the nightly run needs it');
    expect(bad.code).toBe(3);
    expect(bad.last).toMatchObject({ ok: false, released: true, outOfService: true, check: { ok: false, failure: { blame: 'lab', code: 'boot-timeout' } } });
    const dv = cli('carol', 'devices').last!;
    expect(dv.devices.find((d: { name: string }) => d.name === 'broken')).toMatchObject({ inService: false, reservation: null, service: { state: 'out', by: 'bob', reason: expect.stringMatching(/^health check after alice's reservation failed \(the lab: boot-timeout\)/) } });
    expect(dv.devices.find((d: { name: string }) => d.name === 'vm')).toMatchObject({ inService: true, reservation: null });
    expect(cli('x', 'release', 'vm', '--timeout', '3s').code).toBe(2);
  }, 180_000);
});
