// The lab's own Axiom log: what the CLI records, concurrent writers from separate processes, and
// the log checked by `orbital-lab replay` like any device trace.
import { describe, expect, it, afterAll } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { closeSync, existsSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { makeBmap, makeImage, makeLab, MiB } from './flash/testimg.ts';
import { labLogPath, readEvents, readHistory, recordLab, type LabRecord } from './history.ts';
import { labSnapshotPath, loadLabSnapshot } from './lab-snapshot.ts';
import { replayTrace } from './traces/replay.ts';

const BIN = resolve(import.meta.dirname, '../bin/orbital-lab.mjs');
const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
const dirs: string[] = [];
const labIdOf = (stateDir: string) => Uint8Array.from(Buffer.from(readFileSync(join(stateDir, 'lab-id'), 'utf8').trim(), 'hex'));
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });
function cli(args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, last: (() => { try { return JSON.parse(r.stdout.trim().split('\n').pop()!); } catch { return null; } })() };
}

describe('the lab log', () => {
  it('records what flash did - written, skipped, failed - and history and replay read it back', async () => {
    const l = makeLab(); dirs.push(l.dir);
    const img = join(l.dir, 'os.img');
    makeImage(img, 2 * MiB, [[0, 8192], [MiB, 4096]]);
    expect(cli(['--lab', l.labFile, 'flash', 'dut', img]).code).toBe(0);
    // A flag and its value before the device: still recorded for the device (skipped: already there).
    makeBmap(join(l.dir, 'os.bmap'), readFileSync(img), [[0, 8192], [MiB, 4096]]);
    expect(cli(['--lab', l.labFile, 'flash', '--bmap', join(l.dir, 'os.bmap'), 'dut', img]).code).toBe(0);
    // A corrupted image (its bytes no longer match the bmap's SHA-256): the flash fails as the lab's
    // failure, and that is recorded too.
    const img2 = join(l.dir, 'os2.img');
    const whole = makeImage(img2, 2 * MiB, [[0, 8192], [MiB, 4096]]);
    makeBmap(join(l.dir, 'os2.bmap'), whole, [[0, 8192], [MiB, 4096]]);
    const fd = openSync(img2, 'r+'); writeSync(fd, Buffer.from([whole[MiB + 7]! ^ 0xff]), 0, 1, MiB + 7); closeSync(fd);
    const bad = cli(['--lab', l.labFile, 'flash', 'dut', img2, '--force']);
    expect(bad.code).not.toBe(0);
    // Bad usage changes nothing on the device and is not recorded.
    expect(cli(['--lab', l.labFile, 'flash', 'dut', join(l.dir, 'missing.img')]).code).toBe(2);
    const h = cli(['--lab', l.labFile, '--json', 'history', 'dut']);
    expect(h.code).toBe(0);
    const d = h.last.devices[0];
    expect(d).toMatchObject({ name: 'dut', flashes: 3, flashFailures: 1 });
    expect(d.lastFlash).toMatchObject({ status: 'failed', image: img2, code: 'checksum-mismatch' });
    const rep = await replayTrace(labLogPath(l.lab.stateDir));
    expect(rep.ok).toBe(true);
    expect(Object.keys(rep.final)).toContain('lab');
    expect(cli(['--lab', l.labFile, 'replay', labLogPath(l.lab.stateDir)]).code).toBe(0);

    // A byte flipped in the middle of the log: history says so (exit 3) and shows what came
    // before; a command still works and warns that it was not recorded; the log is not cut.
    const log = labLogPath(l.lab.stateDir);
    const bytes = readFileSync(log);
    bytes[Math.floor(bytes.length / 2)]! ^= 0xff;
    writeFileSync(log, bytes);
    const dh = cli(['--lab', l.labFile, '--json', 'history']);
    expect(dh.code).toBe(3);
    expect(dh.last).toMatchObject({ ok: false, damaged: { reason: expect.any(String) } });
    expect(dh.last.entries).toBe(dh.last.damaged.seq);
    const again = cli(['--lab', l.labFile, 'flash', 'dut', img]);
    expect(again.code).toBe(0);
    expect(again.stderr).toMatch(/warning: not recorded in the lab log .*move .* aside/);
    expect(readFileSync(log).equals(bytes)).toBe(true);
  });

  it('lists every event, oldest first, by device, the last N or since a time; a damaged log gives those before the damage', async () => {
    const l = makeLab(`  b1:\n    kind: serial-board\n    console: { port: /dev/null }\n`); dirs.push(l.dir);
    const state = l.lab.stateDir;
    const t0 = Date.now() - 3 * 3600_000;
    const recs: Array<[number, LabRecord]> = [
      [t0, { action: 'flash', args: { device: 'dut', image: '/img/os.img', status: 'written', blake3: 'ab'.repeat(32), bytes: 2 * MiB, code: '' } }],
      [t0 + 1000, { action: 'boot', args: { device: 'dut', boot_id: '00', ok: 0, stage: 'cpu', blame: 'lab', code: 'boot-timeout', boot_ms: 0 } }],
      [t0 + 2000, { action: 'reserve', args: { device: 'b1', state: 'held', owner: 'ann', until: t0 + 3600_000, reason: 'bisect', by: 'ann' } }],
      [Date.now() - 60_000, { action: 'service', args: { device: 'dut', state: 'out', reason: 'dead relay', by: 'bob' } }],
      [Date.now() - 30_000, { action: 'run', args: { device: 'dut', ok: 1, commands: 2, blame: '', code: '' } }],
    ];
    for (const [time, r] of recs) await recordLab(state, [r], { time });
    const all = await readEvents(state);
    expect(all.events.map((e) => [e.action, e.args.device])).toEqual([['flash', 'dut'], ['boot', 'dut'], ['reserve', 'b1'], ['service', 'dut'], ['run', 'dut']]);
    expect(all.events[0]!.time).toBe(t0);
    expect((await readEvents(state, { device: 'b1' })).events.map((e) => e.action)).toEqual(['reserve']);
    expect((await readEvents(state, { limit: 2 })).events.map((e) => e.action)).toEqual(['service', 'run']);
    expect((await readEvents(state, { since: Date.now() - 3600_000 })).events.map((e) => e.action)).toEqual(['service', 'run']);
    const text = cli(['--lab', l.labFile, 'history', 'dut', '--events']);
    expect(text.code).toBe(0);
    expect(text.stdout.trim().split('\n').map((x) => x.replace(/^\S+ +seq \d+ +/, ''))).toEqual([
      'dut            flash    written /img/os.img, blake3 abababababababab…, 2.0 MiB written',
      'dut            boot     FAILED (the lab: boot-timeout) at stage cpu',
      'dut            service  OUT OF SERVICE by bob: dead relay',
      'dut            run      2 command(s) ok',
    ]);
    expect(cli(['--lab', l.labFile, '--json', 'history', '--events', '--since', '2h']).last!.events.map((e: { action: string }) => e.action)).toEqual(['service', 'run']);
    expect(cli(['--lab', l.labFile, 'history', '--limit', '3']).code).toBe(2);
    expect(cli(['--lab', l.labFile, 'history', '--events', '--since', 'soon']).code).toBe(2);
    // A byte changed two thirds of the way in: the events before the damaged entry, and exit 3.
    const log = labLogPath(state);
    const bytes = readFileSync(log);
    bytes[Math.floor(bytes.length * 2 / 3)] ^= 0xff;
    writeFileSync(log, bytes);
    const dmg = await readEvents(state);
    expect(dmg.damaged).toBeDefined();
    const before = all.events.filter((e) => e.seq < dmg.damaged!.seq);
    expect(before.length).toBeGreaterThan(0);
    expect(before.length).toBeLessThan(all.events.length);
    expect(dmg.events).toEqual(before);
    const dcli = cli(['--lab', l.labFile, 'history', '--events']);
    expect(dcli.code).toBe(3);
    expect(dcli.stdout).toMatch(/DAMAGED at entry \d+/);
  });

  it('takes writers from several processes one at a time: every record kept, the chain whole', async () => {
    const l = makeLab(); dirs.push(l.dir);
    const script = `import { recordLab } from ${JSON.stringify(pathToFileURL(join(import.meta.dirname, 'history.ts')).href)};
      for (let i = 0; i < 15; i++) await recordLab(process.argv[1], [{ action: 'power', args: { device: process.argv[2], action: i % 2 ? 'off' : 'on', ok: 1, code: '' } }]);`;
    const kids = ['a', 'b', 'c'].map((name) => spawn(process.execPath, ['--import', TSX_LOADER, '--input-type=module', '-e', script, l.lab.stateDir, name], { stdio: ['ignore', 'ignore', 'pipe'] }));
    const codes = await Promise.all(kids.map((k) => new Promise<number | null>((r) => { let e = ''; k.stderr!.on('data', (b) => { e += b; }); k.once('exit', (c) => { if (c) console.error(e); r(c); }); })));
    expect(codes).toEqual([0, 0, 0]);
    await recordLab(l.lab.stateDir, [{ action: 'run', args: { device: 'a', ok: 1, commands: 3, blame: '', code: '' } }]);
    const h = await readHistory(l.lab.stateDir);
    expect(h.devices.map((d) => [d.name, d.power, d.runs])).toEqual([['a', 'on', 1], ['b', 'on', 0], ['c', 'on', 0]]);
    expect(h.errors).toBe(0);
    // 46 commands, each a boot of the lab's sequencer with its commit and receipt: 138 entries plus checkpoints.
    const rep = await replayTrace(labLogPath(l.lab.stateDir));
    expect(rep.ok).toBe(true);
    expect(rep.verify.count).toBeGreaterThanOrEqual(138);
    expect(rep.checkpoints).toBeGreaterThanOrEqual(8);
  });
});

describe('the lab log snapshot (lab.snapshot: where the last append left the log)', () => {
  const power = (device: string, i: number): LabRecord => ({ action: 'power', args: { device, action: i % 2 ? 'off' : 'on', ok: i % 5 === 4 ? 0 : 1, code: i % 5 === 4 ? 'power-failed' : '' } });
  const labBoot = (device: string): LabRecord => ({ action: 'boot', args: { device, boot_id: '', ok: 0, stage: '', blame: 'lab', code: 'console-missing', boot_ms: 0 } });
  const opts = { maxLabFailures: () => 3, time: 1_000 };
  /** The same records into two labs: one keeping its snapshot, one made to replay everything each time. */
  async function twoLabs(calls: LabRecord[][]) {
    const a = makeLab(); const b = makeLab(); dirs.push(a.dir, b.dir);
    let first = true;
    for (const recs of calls) {
      // After the first append, each goes on from the snapshot: nothing of the log is restored again.
      await recordLab(a.lab.stateDir, recs, { ...opts, onRestored: (n, fromSnapshot) => { expect([n, fromSnapshot]).toEqual([0, !first]); } });
      first = false;
      rmSync(labSnapshotPath(b.lab.stateDir), { force: true });
      await recordLab(b.lab.stateDir, recs, opts);
    }
    return { a: a.lab.stateDir, b: b.lab.stateDir };
  }
  const calls = (n: number) => Array.from({ length: n }, (_, i) => (i % 7 === 3 ? [labBoot('b1'), labBoot('b1')] : [power(`d${i % 3}`, i), power('b1', i)]));

  it('going on from the snapshot records what a full replay would: same history, every checkpoint matching', async () => {
    const { a, b } = await twoLabs(calls(40));
    expect(existsSync(labSnapshotPath(a))).toBe(true);
    const ha = await readHistory(a), hb = await readHistory(b), fast = await readHistory(a, { fast: true });
    expect(ha.devices).toEqual(hb.devices);
    expect(fast.devices).toEqual(ha.devices);
    expect(fast.entries).toBe(ha.entries);
    expect(ha.entries).toBe(hb.entries);
    // The boots the lab failed took b1 out of service (decided from the health streak the snapshot carries).
    expect(ha.devices.find((d) => d.name === 'b1')!.service).toMatchObject({ state: 'out', by: 'orbital-lab' });
    const rep = await replayTrace(labLogPath(a));
    expect(rep.ok).toBe(true);
    expect(rep.checkpoints).toBeGreaterThanOrEqual(10);
  });

  it('is used only where it fits: garbage, another lab\'s, a log cut short or changed before it, or entries appended after it', async () => {
    const { a, b } = await twoLabs(calls(12));
    const snap = labSnapshotPath(a);
    const want = async () => (await readHistory(b)).devices;
    const check = async (what: string) => {
      const more = [power('d0', 1), power('d9', 0)];
      await recordLab(a, more, opts);
      await recordLab(b, more, opts);
      expect((await readHistory(a)).devices, what).toEqual(await want());
      expect((await readHistory(a, { fast: true })).devices, what).toEqual(await want());
      expect((await replayTrace(labLogPath(a))).ok, what).toBe(true);
    };
    writeFileSync(snap, randomBytes(300));
    await check('garbage');
    writeFileSync(snap, readFileSync(labSnapshotPath(b)));
    await check('another lab\'s snapshot');
    // Entries appended after the snapshot by a writer that did not update it (an older orbital-lab).
    const old = readFileSync(snap);
    await recordLab(a, [power('d1', 0)], opts); await recordLab(b, [power('d1', 0)], opts);
    writeFileSync(snap, old);
    await check('entries after it');
    // The log cut back to an earlier record boundary (a restored backup): shorter than the snapshot's offset.
    const log = labLogPath(a);
    const earlier = readFileSync(log);
    const snapThen = readFileSync(snap);
    await recordLab(a, [power('d2', 0)], opts);
    writeFileSync(log, earlier);
    expect(loadLabSnapshot(a, labIdOf(a), log)).toBeNull();
    writeFileSync(snap, snapThen);
    expect(loadLabSnapshot(a, labIdOf(a), log)).not.toBeNull();
    // A byte changed before the snapshot's offset: not used, so the damage is found as before.
    const bytes = readFileSync(log);
    bytes[200]! ^= 0x01;
    writeFileSync(log, bytes);
    expect(loadLabSnapshot(a, labIdOf(a), log)).toBeNull();
    await expect(recordLab(a, [power('d0', 0)], opts)).rejects.toMatchObject({ code: 'trace-bad' });
    expect((await readHistory(a, { fast: true })).damaged).toBeDefined();
  });
});
