// A flash target that stops answering, for real: the target file lives on an ext4 filesystem (a
// loop mount) that the test freezes (`fsfreeze -f`) mid-write, so the flash's next write blocks in
// the kernel with no error - what a hung USB card reader does. The watchdog must give up after the
// lab file's timeouts.flash-stall with `flash-stalled` naming the stuck write, mark the journal
// failed, and never report success. Also: timeouts.flash stops a flash that goes on too long.
import { afterAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { inCI, missing } from '../../scripts/testkit.ts';
import { readJournal } from './journal.ts';
import { readLock } from '../lock.ts';
import { parseLab } from '../labfile.ts';
import { flash } from './flash.ts';
import { LabError } from '../errors.ts';
import { IoWatch } from './stall.ts';

const BIN = resolve(import.meta.dirname, '../../bin/orbital-lab.mjs');
const MiB = 1 << 20;
const dirs: string[] = [];
const mounts: string[] = [];
afterAll(() => {
  for (const m of mounts) { spawnSync('fsfreeze', ['-u', m]); spawnSync('umount', [m]); }
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('IoWatch', () => {
  it('rejects with flash-stalled once an operation has been in flight past the limit, and not before', async () => {
    const w = new IoWatch(1000, 'dut: flash');
    let settled = false;
    w.stalled.catch(() => { settled = true; });
    await w.track(new Promise((r) => setTimeout(r, 20)), 'write', 0);
    await new Promise((r) => setTimeout(r, 250));
    expect(settled).toBe(false);
    void w.track(new Promise(() => {}), 'write', 4 * MiB);
    const e = await w.stalled.catch((x: unknown) => x);
    expect(e).toBeInstanceOf(LabError);
    expect((e as LabError).code).toBe('flash-stalled');
    expect((e as LabError).message).toMatch(/a write at byte 4194304 on the target has not completed for \d+\.\d s \(stall limit 1 s/);
    w.stop();
  });
});

const why = process.getuid?.() !== 0 ? 'needs root (a loop mount and fsfreeze)' : missing(['mkfs.ext4', 'fsfreeze', 'mount']);
if (why) {
  if (inCI) throw new Error(`flash stall tests: ${why}; under CI=true they must run`);
  console.warn(`SKIP flash stall tests: ${why}`);
}

(why ? describe.skip : describe)('a flash target that stops answering (a frozen filesystem)', () => {
  function frozenLab(extra: string) {
    const dir = mkdtempSync(join(tmpdir(), 'orbital-stall-'));
    dirs.push(dir);
    const fsimg = join(dir, 'fs.img');
    writeFileSync(fsimg, '');
    expect(spawnSync('truncate', ['-s', '96M', fsimg]).status).toBe(0);
    expect(spawnSync('mkfs.ext4', ['-q', '-F', fsimg]).status).toBe(0);
    const mnt = join(dir, 'mnt');
    mkdirSync(mnt);
    const m = spawnSync('mount', ['-o', 'loop', fsimg, mnt], { encoding: 'utf8' });
    if (m.status !== 0) throw new Error(`mount -o loop failed: ${m.stderr}`);
    mounts.push(mnt);
    const text = `version: 1\ndevices:\n  dut:\n    kind: qemu\n    flash: { target: ${join(mnt, 'target.img')} }\n    timeouts: { ${extra} }\n`;
    writeFileSync(join(dir, 'lab.yaml'), text);
    return { dir, mnt, labFile: join(dir, 'lab.yaml'), state: join(dir, '.orbital', 'lab') };
  }

  it('fails with flash-stalled when a write has not completed for timeouts.flash-stall; the journal says failed; exit 3', async () => {
    const l = frozenLab('flash-stall: 1500ms');
    const fifo = join(l.dir, 'feed');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const child = spawn(process.execPath, [BIN, '--lab', l.labFile, '--json', 'flash', 'dut', fifo, '--no-bmap'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stderr!.on('data', (d: Buffer) => { err += d; });
    child.stdout!.on('data', (d: Buffer) => { out += d; });
    const seen = async (re: RegExp) => {
      for (const t0 = performance.now(); !re.test(out);) {
        if (performance.now() - t0 > 20_000) throw new Error(`no ${re} within 20 s; stdout: ${out.slice(-2000)}; stderr: ${err.slice(-2000)}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    const closed = new Promise<number | null>((r) => child.once('close', (code) => r(code)));
    const feed = createWriteStream(fifo);
    feed.on('error', () => {});
    const data = randomBytes(24 * MiB);
    feed.write(data.subarray(0, 8 * MiB));
    // The write has begun; let the first 8 MiB land (the source then runs dry until fed again).
    await seen(/"phase":"write"/);
    await new Promise((r) => setTimeout(r, 700));
    // Freeze: every write to the filesystem now blocks in the kernel, without an error.
    expect(spawnSync('fsfreeze', ['-f', l.mnt]).status).toBe(0);
    try {
      feed.write(data.subarray(8 * MiB));
      await seen(/"code":"flash-stalled"/);
    } finally {
      spawnSync('fsfreeze', ['-u', l.mnt]);
      feed.destroy();
    }
    const code = await closed;
    expect(code).toBe(3);
    const last = JSON.parse(out.trim().split('\n').pop()!);
    expect(last).toMatchObject({ ok: false, error: { code: 'flash-stalled', blame: 'lab' } });
    expect(last.error.message).toMatch(/on the target has not completed for \d+\.\d s \(stall limit 1\.5 s, timeouts\.flash-stall\)/);
    expect(out).not.toMatch(/"ok":true/);
    expect(err).toMatch(/orbital-lab: dut: flash: a (write|datasync|truncate)/);
    // The stuck write could still land: the lock stayed with the stalled process (it was alive
    // until the thaw), so it is stale only now, and the next user takes it over.
    expect(err).toMatch(/dut stays locked by pid \d+ until its stuck request ends/);
    expect(readLock(l.state, 'dut').state).toBe('stale');
    const j = readJournal(l.state, 'dut')!;
    expect(j.status).toBe('failed');
    expect(j.error).toMatch(/has not completed/);
  }, 60_000);

  it('an open that blocks (creating the target file on a frozen file system) is a stall too', async () => {
    const l = frozenLab('flash-stall: 1s');
    const lab = parseLab(readFileSync(l.labFile, 'utf8').replace('version: 1\n', `version: 1\nstate: ${l.state}\n`), l.labFile);
    if (!lab.ok) throw new Error(JSON.stringify(lab.issues));
    writeFileSync(join(l.dir, 'os.img'), randomBytes(2 * MiB));
    expect(spawnSync('fsfreeze', ['-f', l.mnt]).status).toBe(0);
    try {
      const e = await flash({ device: lab.lab.devices.get('dut')!, stateDir: lab.lab.stateDir, source: join(l.dir, 'os.img'), bmap: null }).then(() => null, (x: unknown) => x);
      expect(e).toBeInstanceOf(LabError);
      expect((e as LabError).code).toBe('flash-stalled');
      expect((e as LabError).message).toMatch(/dut: flash: an open on the target has not completed for \d+\.\d s \(stall limit 1 s/);
    } finally { spawnSync('fsfreeze', ['-u', l.mnt]); }
    // Thawed, the open completes (creating the file): given up, the flash must not go on through it
    // (no truncate to the image's size, no write) and must not keep the descriptor.
    const target = join(l.mnt, 'target.img');
    const held = () => readdirSync('/proc/self/fd').some((fd) => { try { return readlinkSync(`/proc/self/fd/${fd}`) === target; } catch { return false; } });
    for (const t0 = performance.now(); !existsSync(target) || held();) {
      if (performance.now() - t0 > 10_000) throw new Error(`the late open's descriptor is still held (target exists: ${existsSync(target)})`);
      await new Promise((r) => setTimeout(r, 20));
    }
    await new Promise((r) => setTimeout(r, 300));
    expect(statSync(target).size).toBe(0);
    expect(held()).toBe(false);
  }, 30_000);

  it('in a multi-device flash of a compressed image (one decoder), a stalled device holds the others back only until its watchdog gives up', async () => {
    const l = frozenLab('flash-stall: 1500ms');
    // A second device whose target is not on the frozen filesystem.
    writeFileSync(l.labFile, `${readFileSync(l.labFile, 'utf8')}  other:\n    kind: qemu\n    flash: { target: ${join(l.dir, 'other.img')} }\n`);
    // 128 MiB (a few random bytes every MiB, so it gzips small and decodes fast): more than the
    // 32 MiB a device may leave untaken plus what its flash holds in buffers.
    const image = Buffer.alloc(128 * MiB);
    for (let i = 0; i < 128; i++) randomBytes(4096).copy(image, i * MiB);
    writeFileSync(join(l.dir, 'os.img.gz'), gzipSync(image, { level: 1 }));
    writeFileSync(join(l.mnt, 'target.img'), '');
    // Frozen before the flash starts: dut's first operation on its target (the truncate) blocks.
    expect(spawnSync('fsfreeze', ['-f', l.mnt]).status).toBe(0);
    let out = '';
    let err = '';
    let code: number | null;
    try {
      const child = spawn(process.execPath, [BIN, '--lab', l.labFile, '--json', 'flash', 'dut', 'other', join(l.dir, 'os.img.gz'), '--no-bmap', '--force'], { stdio: ['ignore', 'pipe', 'pipe'] });
      child.stderr!.on('data', (d: Buffer) => { err += d; });
      child.stdout!.on('data', (d: Buffer) => { out += d; });
      const closed = new Promise<number | null>((r) => child.once('close', (c) => r(c)));
      // The result comes while dut's truncate is still stuck in the kernel (the process stays until then).
      for (const t0 = performance.now(); !/"flashes":/.test(out);) {
        if (performance.now() - t0 > 30_000) throw new Error(`no result within 30 s; stdout: ${out.slice(-2000)}; stderr: ${err.slice(-2000)}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      spawnSync('fsfreeze', ['-u', l.mnt]);
      code = await closed;
    } finally { spawnSync('fsfreeze', ['-u', l.mnt]); }
    expect(code).toBe(3);
    const last = JSON.parse(out.trim().split('\n').pop()!);
    expect(last).toMatchObject({ ok: false, decoded: { format: 'gzip', passes: 1 }, flashes: [{ device: 'dut', ok: false, error: { code: 'flash-stalled' } }, { device: 'other', ok: true, status: 'written' }] });
    expect(readFileSync(join(l.dir, 'other.img')).equals(image)).toBe(true);
  }, 60_000);

  it('timeouts.flash cancels a flash that goes on too long (flash-timeout); the journal does not say ok', async () => {
    const l = frozenLab('flash: 1s');
    const lab = parseLab(`version: 1\nstate: ${l.state}\ndevices:\n  dut:\n    kind: qemu\n    flash: { target: ${join(l.mnt, 'target.img')} }\n    timeouts: { flash: 1s }\n`, l.labFile);
    if (!lab.ok) throw new Error(JSON.stringify(lab.issues));
    const dev = lab.lab.devices.get('dut')!;
    expect(dev.timeouts.flash).toBe(1000);
    expect(dev.timeouts.flashStall).toBe(60_000);
    // A source that trickles: 1 MiB every 300 ms, far slower than the limit allows for 16 MiB.
    const fifo = join(l.dir, 'slow');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    // Fed by a child process: a writer in this process would hold libuv's threads in blocked FIFO writes.
    const feeder = spawn('sh', ['-c', `while :; do head -c 1048576 /dev/urandom || exit; sleep 0.3; done > '${fifo}'`], { stdio: 'ignore' });
    try {
      const e = await flash({ device: dev, stateDir: lab.lab.stateDir, source: fifo, bmap: null }).then(() => null, (x: unknown) => x);
      expect(e).toBeInstanceOf(LabError);
      expect((e as LabError).code).toBe('flash-timeout');
      expect((e as LabError).message).toMatch(/took longer than 1 s \(timeouts\.flash\)/);
      expect(readJournal(lab.lab.stateDir, 'dut')!.status).not.toBe('ok');
    } finally { feeder.kill('SIGKILL'); }
  }, 30_000);
});
