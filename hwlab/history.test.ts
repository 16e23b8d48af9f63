// The lab's own Axiom log: what the CLI records, concurrent writers from separate processes, and
// the log checked by `orbital-lab replay` like any device trace.
import { describe, expect, it, afterAll } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { closeSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { makeBmap, makeImage, makeLab, MiB } from './flash/testimg.ts';
import { labLogPath, readHistory, recordLab } from './history.ts';
import { replayTrace } from './traces/replay.ts';

const BIN = resolve(import.meta.dirname, '../bin/orbital-lab.mjs');
const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
const dirs: string[] = [];
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
