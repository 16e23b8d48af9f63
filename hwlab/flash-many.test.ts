// `orbital-lab flash DEVICE DEVICE... IMAGE` / `flash --tag T IMAGE` as a real child process: the
// same image onto several file targets at once; a device held by someone else, or whose disk fills
// up mid-write (a real 1 MiB tmpfs), fails alone while the others are written and verified; what
// would make two writes meet on one disk is refused before anything is written; a compressed image
// is decompressed once for all of them.
import { afterAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { inCI } from '../scripts/testkit.ts';
import { makeBmap, makeImage, MiB } from './flash/testimg.ts';
import { acquireLock } from './lock.ts';
import { readHistory, recordLab } from './history.ts';

const BIN = resolve(import.meta.dirname, '../bin/orbital-lab.mjs');
const dirs: string[] = [];
const mounts: string[] = [];
afterAll(() => { for (const m of mounts) spawnSync('umount', [m]); for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

function run(args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 120_000 });
  const lines = r.stdout.trim().split('\n');
  let last: Record<string, any> | null = null;
  try { last = JSON.parse(lines[lines.length - 1]!); } catch { /* not json */ }
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, last };
}

function labOf(devices: Record<string, { target: string; tags?: string[] }>) {
  const dir = mkdtempSync(join(tmpdir(), 'orbital-flash-many-'));
  dirs.push(dir);
  const text = `version: 1\ndevices:\n${Object.entries(devices).map(([n, d]) => `  ${n}:\n    kind: qemu\n    flash: { target: ${d.target.startsWith('/') ? d.target : join(dir, d.target)} }\n${d.tags ? `    tags: [${d.tags.join(', ')}]\n` : ''}`).join('')}`;
  writeFileSync(join(dir, 'lab.yaml'), text);
  const extents: Array<[number, number]> = [[0, 64 * 1024], [MiB, 3 * MiB]];
  const whole = makeImage(join(dir, 'os.img'), 6 * MiB, extents);
  makeBmap(join(dir, 'os.bmap'), whole, extents);
  return { dir, lab: join(dir, 'lab.yaml'), img: join(dir, 'os.img'), whole };
}

describe('orbital-lab flash onto several devices', () => {
  it('writes and verifies each; a device held by someone else fails alone and is not recorded; --tag picks all, @TAG the first free one', async () => {
    const l = labOf({ a: { target: 'a.img', tags: ['rack1'] }, b: { target: 'b.img', tags: ['rack1'] }, c: { target: 'c.img', tags: ['rack1', 'slow'] }, d: { target: 'd.img' } });
    const both = run(['--lab', l.lab, '--json', 'flash', 'a', 'b', l.img]);
    expect(both.code).toBe(0);
    expect(both.last).toMatchObject({ ok: true, flashes: [{ device: 'a', ok: true, status: 'written' }, { device: 'b', ok: true, status: 'written' }] });
    for (const t of ['a.img', 'b.img']) expect(readFileSync(join(l.dir, t)).equals(l.whole)).toBe(true);
    // Progress as JSON lines naming the device, and one `done` per device.
    const events = both.stdout.trim().split('\n').slice(0, -1).map((x) => JSON.parse(x) as { event: string; device: string; how?: string });
    expect(new Set(events.filter((e) => e.event === 'progress').map((e) => e.device))).toEqual(new Set(['a', 'b']));
    expect(events.filter((e) => e.event === 'done').map((e) => [e.device, e.how]).sort()).toEqual([['a', 'written'], ['b', 'written']]);

    // c is held by a live process (this one): it fails with device-locked, a and b go on (and are skipped: they hold the image).
    const lock = acquireLock(join(l.dir, '.orbital', 'lab'), 'c', 'someone else\'s boot', 'tester');
    try {
      const tagged = run(['--lab', l.lab, 'flash', '--tag', 'rack1', l.img]);
      expect(tagged.code).toBe(3);
      expect(tagged.stdout).toMatch(/onto 3 device\(s\): 2 hold it, 1 FAILED \(c\)/);
      expect(tagged.stdout).toMatch(/a: target .* already holds this image/);
      expect(tagged.stdout).toMatch(/c: FAILED - a lab failure \(device-locked\)/);
      expect(existsSync(join(l.dir, 'c.img'))).toBe(false);
    } finally { lock.release(); }
    // Both tags: only c; it is free now.
    const c = run(['--lab', l.lab, '--json', 'flash', '--tag', 'rack1', '--tag', 'slow', l.img]);
    expect(c.code).toBe(0);
    expect(c.last!.flashes.map((f: { device: string; status: string }) => [f.device, f.status])).toEqual([['c', 'written']]);
    expect(readFileSync(join(l.dir, 'c.img')).equals(l.whole)).toBe(true);

    // @TAG: one device from the pool, the first free one in lab-file order.
    const one = run(['--lab', l.lab, '--json', 'flash', '@rack1', l.img, '--force']);
    expect(one.code).toBe(0);
    expect(one.last).toMatchObject({ ok: true, device: 'a', status: 'written' });
    const la = acquireLock(join(l.dir, '.orbital', 'lab'), 'a', 'a long boot', 'tester');
    const lb = acquireLock(join(l.dir, '.orbital', 'lab'), 'b', 'another job', 'tester');
    try {
      expect(run(['--lab', l.lab, '--json', 'flash', '@rack1', l.img]).last).toMatchObject({ ok: true, device: 'c', status: 'skipped' });
      const lc = acquireLock(join(l.dir, '.orbital', 'lab'), 'c', 'a third job', 'tester');
      try {
        const none = run(['--lab', l.lab, 'flash', '@rack1', l.img]);
        expect(none.code).toBe(3);
        expect(none.stderr).toMatch(/every device tagged rack1 is in use: a \(tester: a long boot\), b \(tester: another job\), c \(tester: a third job\)/);
      } finally { lc.release(); }
    } finally { la.release(); lb.release(); }
    const nosuch = run(['--lab', l.lab, 'flash', '@rack9', l.img]);
    expect(nosuch.code).toBe(2);
    expect(nosuch.stderr).toMatch(/no device in .* has the tag rack9 \(tags: rack1, slow\)/);

    // The lab log: one record per device flashed, none for the one that was held.
    const h = await readHistory(join(l.dir, '.orbital', 'lab'));
    const by = Object.fromEntries(h.devices.map((d) => [d.name, d.flashes]));
    expect(by).toMatchObject({ a: 3, b: 2, c: 2 });
  });

  it('--wait: a busy pool is waited for, and the first device freed is taken; the wait ends in device-locked', async () => {
    const l = labOf({ a: { target: 'a.img', tags: ['pool'] }, b: { target: 'b.img', tags: ['pool'] } });
    const state = join(l.dir, '.orbital', 'lab');
    const la = acquireLock(state, 'a', 'job 1', 'tester');
    const lb = acquireLock(state, 'b', 'job 2', 'tester');
    try {
      const short = run(['--lab', l.lab, 'flash', '@pool', l.img, '--wait', '600ms']);
      expect(short.code).toBe(3);
      expect(short.stderr).toMatch(/waiting up to 0.6 s for @pool: every device tagged pool is in use/);
      expect(short.stderr).toMatch(/still, after waiting \d+\.\d s: --wait/);
      // A longer wait: b is freed while it waits, and taken.
      const child = spawn(process.execPath, [BIN, '--lab', l.lab, '--json', 'flash', '@pool', l.img, '--wait', '60s'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout!.on('data', (d: Buffer) => { out += d; });
      const closed = new Promise<number | null>((r) => child.once('close', (c) => r(c)));
      for (let i = 0; i < 300 && !/"event":"waiting"/.test(out); i++) await new Promise((r) => setTimeout(r, 50));
      expect(out).toMatch(/"event":"waiting","device":"@pool"/);
      lb.release();
      expect(await closed).toBe(0);
      expect(JSON.parse(out.trim().split('\n').pop()!)).toMatchObject({ ok: true, device: 'b', status: 'written' });
    } finally { la.release(); lb.release(); }
    expect(run(['--lab', l.lab, 'flash', '@pool', l.img, '--wait', 'soon']).code).toBe(2);
    // A device whose last boot failed on the lab's side goes to the back of the pool: b is picked before a.
    await recordLab(state, [{ action: 'boot', args: { device: 'a', boot_id: 'x', ok: 0, stage: '', blame: 'lab', code: 'boot-timeout', boot_ms: 0 } }]);
    expect(run(['--lab', l.lab, '--json', 'flash', '@pool', l.img]).last).toMatchObject({ ok: true, device: 'b' });
    // ...but is still used when it is the only one free.
    const hold = acquireLock(state, 'b', 'job 3', 'tester');
    try { expect(run(['--lab', l.lab, '--json', 'flash', '@pool', l.img]).last).toMatchObject({ ok: true, device: 'a' }); } finally { hold.release(); }
    expect(run(['--lab', l.lab, 'flash', 'a', 'b', l.img, '--wait', '1s']).code).toBe(2);
  });

  it('refuses what would make two writes meet, or cannot feed them, before writing anything', () => {
    const l = labOf({ a: { target: 'a.img', tags: ['t'] }, b: { target: 'b.img' } });
    // A third device whose target is a link to a's: the same file once the link is followed.
    writeFileSync(join(l.dir, 'a.img'), '');
    symlinkSync(join(l.dir, 'a.img'), join(l.dir, 'alias.img'));
    const text = readFileSync(l.lab, 'utf8') + `  alias:\n    kind: qemu\n    flash: { target: ${join(l.dir, 'alias.img')} }\n  board:\n    kind: serial-board\n    console: { port: /dev/null-board }\n    tags: [t]\n`;
    writeFileSync(l.lab, text);
    const cases: Array<[string[], RegExp]> = [
      [['a', 'alias'], /devices a and alias write to the same disk/],
      [['a', 'a'], /device a is named twice/],
      [['a', 'nope'], /nope/],
      [['a', 'board'], /device board has no flash target/],
      [['--tag', 'none'], /no device with a flash target has tag none/],
      [['a', 'b', '--target', join(l.dir, 'a.img')], /--target names one device's disk/],
    ];
    for (const [args, msg] of cases) {
      const r = run(['--lab', l.lab, 'flash', ...args, l.img]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(msg);
    }
    const stdin = spawnSync(process.execPath, [BIN, '--lab', l.lab, 'flash', 'a', 'b', '-'], { input: readFileSync(l.img), encoding: 'utf8' });
    expect(stdin.status).toBe(2);
    expect(stdin.stderr).toMatch(/stdin\) can be read only once/);
    // --tag t: a, and board is named as tagged but without a target.
    const t = run(['--lab', l.lab, 'flash', '--tag', 't', l.img]);
    expect(t.code).toBe(0);
    expect(t.stdout).toMatch(/onto 1 device\(s\): 1 hold it; tagged but without a flash target: board/);
    // @t: board has the tag but no flash target, so a is picked.
    expect(run(['--lab', l.lab, '--json', 'flash', '@t', l.img]).last).toMatchObject({ ok: true, device: 'a' });
    // Nothing was written by the refused runs: b's target never came to exist.
    expect(existsSync(join(l.dir, 'b.img'))).toBe(false);
  });

  it('a target whose disk fills up mid-write fails alone (target-full); the other is written and verified', (ctx) => {
    // A real full disk: a 1 MiB tmpfs (needs root, as the lab's loop-device tests do).
    const small = mkdtempSync(join(tmpdir(), 'orbital-small-'));
    dirs.push(small);
    const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', small], { encoding: 'utf8' });
    if (m.status !== 0) {
      const why = `cannot mount a 1 MiB tmpfs (${(m.stderr || m.error?.message || '').trim()}): needs root`;
      if (inCI) throw new Error(`${why}; under CI=true this must run`);
      console.warn(`SKIP ${why}`);
      ctx.skip();
      return;
    }
    mounts.push(small);
    mkdirSync(join(small, 'd'), { recursive: true });
    const l = labOf({ big: { target: 'big.img' }, tiny: { target: join(small, 'd', 'tiny.img') } });
    // A gzip stream without a bmap: its size is unknown until read, so no room check can refuse it
    // up front - the tmpfs runs out under the write.
    writeFileSync(`${l.img}.gz`, gzipSync(l.whole, { level: 1 }));
    const r = run(['--lab', l.lab, '--json', 'flash', 'big', 'tiny', `${l.img}.gz`, '--no-bmap']);
    expect(r.code).toBe(3);
    expect(r.last).toMatchObject({ ok: false, flashes: [{ device: 'big', ok: true, status: 'written' }, { device: 'tiny', ok: false, error: { code: 'target-full', blame: 'lab' } }] });
    expect(readFileSync(join(l.dir, 'big.img')).equals(l.whole)).toBe(true);
    // One gunzip fed both; tiny's failure did not stop it.
    expect(r.last!.decoded).toEqual({ format: 'gzip', passes: 1 });
  });

  it('a compressed image is decompressed once for all the devices: written, compared, and a cut stream fails every one', () => {
    const l = labOf({ a: { target: 'a.img', tags: ['z'] }, b: { target: 'b.img', tags: ['z'] }, c: { target: 'c.img', tags: ['z'] }, held: { target: 'held.img', tags: ['z'] } });
    const z = spawnSync('zstd', ['-q', '-1', '-f', l.img, '-o', `${l.img}.zst`], { encoding: 'utf8' });
    if (z.status !== 0) throw new Error(`zstd: ${z.stderr || z.error?.message} (Debian package zstd)`);
    const bmap = join(l.dir, 'os.bmap');
    // held is locked by a live process: it fails before reading, and must not hold the others up.
    const lock = acquireLock(join(l.dir, '.orbital', 'lab'), 'held', 'a long job', 'tester');
    try {
      const first = run(['--lab', l.lab, '--json', 'flash', '--tag', 'z', `${l.img}.zst`, '--bmap', bmap]);
      expect(first.code).toBe(3);
      expect(first.last).toMatchObject({ decoded: { format: 'zstd', passes: 1 }, flashes: [{ device: 'a', status: 'written' }, { device: 'b', status: 'written' }, { device: 'c', status: 'written' }, { device: 'held', ok: false, error: { code: 'device-locked' } }] });
    } finally { lock.release(); }
    for (const t of ['a.img', 'b.img', 'c.img']) expect(readFileSync(join(l.dir, t)).equals(l.whole)).toBe(true);
    // b's target changes: a and c compare equal (skipped); b gets the chunk that differs, in the same
    // pass (a compare that writes where it differs: one decode for all three).
    const b = readFileSync(join(l.dir, 'b.img'));
    b[MiB + 5] ^= 0xff;
    writeFileSync(join(l.dir, 'b.img'), b);
    const second = run(['--lab', l.lab, '--json', 'flash', 'a', 'b', 'c', `${l.img}.zst`, '--bmap', bmap]);
    expect(second.code).toBe(0);
    expect(second.last).toMatchObject({ ok: true, decoded: { format: 'zstd', passes: 1 }, flashes: [{ device: 'a', status: 'skipped' }, { device: 'b', status: 'written', delta: { differed: 1 } }, { device: 'c', status: 'skipped' }] });
    // (--no-delta: b's compare fails, and a second pass, once the others are done, writes it whole)
    const b2 = readFileSync(join(l.dir, 'b.img'));
    b2[MiB + 5] ^= 0xff;
    writeFileSync(join(l.dir, 'b.img'), b2);
    const whole = run(['--lab', l.lab, '--json', 'flash', 'a', 'b', 'c', `${l.img}.zst`, '--bmap', bmap, '--no-delta']);
    expect(whole.last).toMatchObject({ ok: true, decoded: { format: 'zstd', passes: 2 }, flashes: [{ device: 'a', status: 'skipped' }, { device: 'b', status: 'written' }, { device: 'c', status: 'skipped' }] });
    expect(whole.last!.flashes[1].delta).toBeUndefined();
    expect(readFileSync(join(l.dir, 'b.img')).equals(l.whole)).toBe(true);
    // A cut stream: every device fails with source-corrupt, none reports success.
    const zst = readFileSync(`${l.img}.zst`);
    writeFileSync(join(l.dir, 'cut.img.zst'), zst.subarray(0, Math.floor(zst.length * 0.6)));
    const cut = run(['--lab', l.lab, '--json', 'flash', 'a', 'b', join(l.dir, 'cut.img.zst'), '--bmap', bmap, '--force']);
    expect(cut.code).toBe(3);
    expect(cut.last).toMatchObject({ ok: false, decoded: { passes: 1 }, flashes: [{ device: 'a', ok: false, error: { code: 'source-corrupt' } }, { device: 'b', ok: false, error: { code: 'source-corrupt' } }] });
    expect(cut.stdout).toMatch(/zstd/);
  });
});
