import { describe, expect, it, afterAll } from 'vitest';
import { readFileSync, rmSync, writeFileSync, openSync, writeSync, closeSync, symlinkSync, statSync, existsSync, statfsSync } from 'node:fs';
import { spawnSync, spawn } from 'node:child_process';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { describeWithTools } from '../../scripts/testkit.ts';
import { flash, verifyOnly, imageIdOfTable, HashWorker, ImageHasher } from './flash.ts';
import { blake3 } from '@noble/hashes/blake3.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { createHash } from 'node:crypto';
import { checkBlock, type SystemView } from './target.ts';
import { readJournal } from './journal.ts';
import { LabError } from '../errors.ts';
import { makeImage, makeBmap, makeLab, MiB } from './testimg.ts';

const dirs: string[] = [];
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

// 12 MiB image: data in the head, a 4 MiB-crossing extent, a small one, the rest holes.
const EXTENTS: Array<[number, number]> = [[0, 64 * 1024], [3 * MiB, 3 * MiB], [9 * MiB + 4096, 8192]];
function setup() {
  const l = makeLab();
  dirs.push(l.dir);
  const img = join(l.dir, 'os.img');
  const whole = makeImage(img, 12 * MiB, EXTENTS);
  makeBmap(join(l.dir, 'os.bmap'), whole, EXTENTS);
  return { ...l, img, whole, bmap: join(l.dir, 'os.bmap') };
}
/** Runs f while counting datasync calls on every FileHandle (the target's included). */
async function countingSyncs<T>(target: string, f: () => Promise<T>): Promise<{ r: T; syncs: number }> {
  const probe = await open(target, 'w');
  const proto = Object.getPrototypeOf(probe) as { datasync: () => Promise<void> };
  await probe.close();
  const real = proto.datasync;
  let syncs = 0;
  proto.datasync = function (this: unknown) { syncs++; return real.call(this); };
  try { return { r: await f(), syncs }; } finally { proto.datasync = real; }
}
const mapped = EXTENTS.reduce((n, [, len]) => n + len, 0);

async function code(p: Promise<unknown>): Promise<string> {
  try { await p; return 'ok'; } catch (e) { if (!(e instanceof LabError)) throw e; return e.code; }
}

describe('flash to a file target', () => {
  it('writes only the mapped ranges of a sparse bmap image, verifies, then skips a second time', async () => {
    const s = setup();
    const phases = new Set<string>();
    const r = await flash({ device: s.dev, stateDir: s.lab.stateDir, source: s.img, onProgress: (p) => phases.add(p.phase) });
    expect(r.status).toBe('written');
    expect(r.source.bmap).toBe(s.bmap);
    expect(r.bytesWritten).toBe(mapped);
    expect(r.verify!.bytes).toBe(mapped);
    expect(['o_direct', 'dropped-cache']).toContain(r.verify!.method);
    expect([...phases]).toEqual(['write', 'sync', 'verify']);
    expect(readFileSync(s.target).equals(s.whole)).toBe(true);
    // The target stays sparse: far fewer blocks allocated than its size.
    expect(statSync(s.target).blocks * 512).toBeLessThan(8 * MiB);
    expect(readJournal(s.lab.stateDir, 'dut')!.status).toBe('ok');
    const again = await flash({ device: s.dev, stateDir: s.lab.stateDir, source: s.img });
    expect(again.status).toBe('skipped');
    expect(again.blake3).toBe(r.blake3);
    const forced = await flash({ device: s.dev, stateDir: s.lab.stateDir, source: s.img, force: true });
    expect(forced.status).toBe('written');
  });

  it('flashes every byte without a bmap, and a changed image is not skipped', async () => {
    const s = setup();
    const r = await flash({ device: s.dev, stateDir: s.lab.stateDir, source: s.img, bmap: null });
    expect(r.mappedBytes).toBe(12 * MiB);
    expect(readFileSync(s.target).equals(s.whole)).toBe(true);
    const fd = openSync(s.img, 'r+'); writeSync(fd, Buffer.from('changed'), 0, 7, 10 * MiB); closeSync(fd);
    const r2 = await flash({ device: s.dev, stateDir: s.lab.stateDir, source: s.img, bmap: null });
    expect(r2.status).toBe('written');
    expect(readFileSync(s.target).subarray(10 * MiB, 10 * MiB + 7).toString()).toBe('changed');
  });

  it('catches a corrupted source through the bmap range checksum and never reports success', async () => {
    const s = setup();
    await flash({ device: s.dev, stateDir: s.lab.stateDir, source: s.img });
    const fd = openSync(s.img, 'r+'); writeSync(fd, Buffer.from([0xff ^ s.whole[4 * MiB]!]), 0, 1, 4 * MiB); closeSync(fd);
    expect(await code(flash({ device: s.dev, stateDir: s.lab.stateDir, source: s.img, force: true }))).toBe('checksum-mismatch');
    const j = readJournal(s.lab.stateDir, 'dut')!;
    expect(j.status).toBe('failed');
    // The head is written last, so the half-flashed target does not start with the image's head.
    expect(readFileSync(s.target).subarray(0, 4096).equals(s.whole.subarray(0, 4096))).toBe(false);
    // And it is not taken as holding the image.
    expect((await verifyOnly({ device: s.dev, stateDir: s.lab.stateDir, source: s.img, bmap: null })).same).toBe(false);
  });

  it('catches a target that does not hold what was written (read back uncached)', async () => {
    const s = setup();
    let tampered = false;
    const at = 5 * MiB + 1234;
    const p = flash({
      device: s.dev, stateDir: s.lab.stateDir, source: s.img,
      afterWrite: (offset, length) => {
        // Between a chunk's write and its read-back, something else scribbles on the target.
        if (offset <= at && at < offset + length && !tampered) { tampered = true; const fd = openSync(s.target, 'r+'); writeSync(fd, Buffer.from([0x55 ^ s.whole[at]!]), 0, 1, at); closeSync(fd); }
      },
    });
    const err = await p.then(() => null, (e: LabError) => e);
    expect(tampered).toBe(true);
    expect(err?.code).toBe('verify-mismatch');
    // The read-back is compared byte for byte with what was written: the very byte is named.
    expect(err?.detail.offset).toBe(at);
    expect(readJournal(s.lab.stateDir, 'dut')!.status).toBe('failed');
  });

  it.each([['O_DIRECT', true], ['the page cache', false]] as const)('catches a chunk overwritten after its read-back matched, as a fake-capacity card does (through %s)', async (_, directIo) => {
    const s = setup();
    // A card that holds less than it reports maps a later address onto an earlier one: the later
    // write lands on a chunk that was already read back and matched. Here the first chunk of the
    // 3 MiB extent gets the last extent's bytes once its read-back matched.
    const victim = 3 * MiB;
    const later = s.whole.subarray(9 * MiB + 4096, 9 * MiB + 4096 + 8192);
    let overwritten = false;
    const err = await flash({
      device: s.dev, stateDir: s.lab.stateDir, source: s.img, directIo,
      afterReadBack: (offset) => {
        if (offset === victim && !overwritten) { overwritten = true; const fd = openSync(s.target, 'r+'); writeSync(fd, later, 0, later.length, victim); closeSync(fd); }
      },
    }).then(() => null, (e: LabError) => e);
    expect(overwritten).toBe(true);
    expect(err?.code).toBe('verify-mismatch');
    expect(err?.message).toMatch(/changed at byte \d+ after it was written and read back correctly.*fake-capacity/);
    let first = 0;
    while (later[first] === s.whole[victim + first]) first++;
    expect(err?.detail.offset).toBe(victim + first);
    expect(readJournal(s.lab.stateDir, 'dut')!.status).toBe('failed');
  });

  it('reads a sample of every written chunk a second time after the final sync, at most 1024 of them spread over the image', async () => {
    const s = setup();
    // 2 MiB chunks: the 3 MiB extent is cut at 4 MiB (2 chunks), then the small extent (1); the head is not sampled.
    const r = await flash({ device: s.dev, stateDir: s.lab.stateDir, source: s.img, force: true });
    expect(r.verify!.samples).toBe(3);
    expect(r.verify!.bytes).toBe(mapped);
    // 1 KiB chunks: 3080 written chunks past the head; past 1024 samples every 2nd, then every 4th is kept.
    const small = await flash({ device: s.dev, stateDir: s.lab.stateDir, source: s.img, force: true, chunkBytes: 1024 });
    expect(small.verify!.samples).toBe(Math.ceil(3080 / 4));
    expect(readFileSync(s.target).equals(s.whole)).toBe(true);
  });

  it('with O_DIRECT, syncs once before the head and once after it, and still reads back every byte', async () => {
    const s = setup();
    const { r, syncs } = await countingSyncs(s.target, () => flash({ device: s.dev, stateDir: s.lab.stateDir, source: s.img, bmap: null, force: true, chunkBytes: 256 * 1024, syncEveryBytes: 512 * 1024 }));
    expect(r.verify!.bytes).toBe(12 * MiB);
    expect(readFileSync(s.target).equals(s.whole)).toBe(true);
    if (!r.directIo || r.verify!.method !== 'o_direct') { console.warn(`SKIP: no O_DIRECT where ${s.target} lives`); return; }
    // Through the page cache it would sync every 512 KiB (24 times); O_DIRECT leaves no dirty cache to bound.
    expect(syncs).toBe(2);
  });

  it('reads back every chunk when verify runs beside the write (many sync points)', async () => {
    const s = setup();
    const r = await flash({ device: s.dev, stateDir: s.lab.stateDir, source: s.img, bmap: null, chunkBytes: 256 * 1024, syncEveryBytes: 512 * 1024 });
    expect(r.verify!.bytes).toBe(12 * MiB);
    expect(r.mappedBytes).toBe(12 * MiB);
    expect(readFileSync(s.target).equals(s.whole)).toBe(true);
  });

  it('names the image by BLAKE3 of its bytes without a bmap, and of its checked SHA-256 range table with one', async () => {
    const s = setup();
    const raw = await flash({ device: s.dev, stateDir: s.lab.stateDir, source: s.img, bmap: null });
    expect(raw.blake3Of).toBe('bytes');
    expect(raw.blake3).toBe(bytesToHex(blake3(s.whole)));
    const withMap = await flash({ device: s.dev, stateDir: s.lab.stateDir, source: s.img, force: true });
    expect(withMap.blake3Of).toBe('bmap-sha256');
    const lines = [...EXTENTS].sort((a, b) => a[0] - b[0]).map(([off, len]) => `${off}-${off + len} ${createHash('sha256').update(s.whole.subarray(off, off + len)).digest('hex')}\n`);
    expect(withMap.blake3).toBe(imageIdOfTable(12 * MiB, lines));
    expect(readJournal(s.lab.stateDir, 'dut')).toMatchObject({ status: 'ok', blake3: withMap.blake3, blake3Of: 'bmap-sha256' });
    // The compare (skip) and the verify command name it the same way.
    const again = await flash({ device: s.dev, stateDir: s.lab.stateDir, source: s.img });
    expect(again.status).toBe('skipped');
    expect(again.blake3).toBe(withMap.blake3);
    const v = await verifyOnly({ device: s.dev, stateDir: s.lab.stateDir, source: s.img });
    expect(v).toMatchObject({ same: true, blake3: withMap.blake3, blake3Of: 'bmap-sha256' });
  });

  it('does not skip a target that matches a source corrupted the same way: the range checksum fails the compare', async () => {
    const s = setup();
    await flash({ device: s.dev, stateDir: s.lab.stateDir, source: s.img });
    for (const f of [s.img, s.target]) { const fd = openSync(f, 'r+'); writeSync(fd, Buffer.from([0xff ^ s.whole[4 * MiB + 7]!]), 0, 1, 4 * MiB + 7); closeSync(fd); }
    expect(await code(flash({ device: s.dev, stateDir: s.lab.stateDir, source: s.img }))).toBe('checksum-mismatch');
  });

  it('syncs by chunk count when many small ranges would fill the pool, and reads every one back', async () => {
    const l = makeLab();
    dirs.push(l.dir);
    const img = join(l.dir, 'many.img');
    // 96 ranges of 4 KiB, one every 64 KiB: each is its own small chunk, far below the sync size.
    const many: Array<[number, number]> = Array.from({ length: 96 }, (_, i) => [MiB + i * 64 * 1024, 4096]);
    const whole = makeImage(img, 8 * MiB, many);
    makeBmap(join(l.dir, 'many.bmap'), whole, many);
    const r = await flash({ device: l.dev, stateDir: l.lab.stateDir, source: img, chunkBytes: MiB, syncEveryBytes: 8 * MiB });
    expect(r.verify!.bytes).toBe(96 * 4096);
    expect(readFileSync(l.target).equals(whole)).toBe(true);
  });

  it('refuses a bmap that belongs to another image', async () => {
    const s = setup();
    const other = join(s.dir, 'other.img');
    makeImage(other, 8 * MiB, [[0, 4096]]);
    expect(await code(flash({ device: s.dev, stateDir: s.lab.stateDir, source: other, bmap: s.bmap }))).toBe('bmap-mismatch');
  });

  it('cancels quickly between chunks and the next flash starts clean', async () => {
    const s = setup();
    const ac = new AbortController();
    const p = flash({ device: s.dev, stateDir: s.lab.stateDir, source: s.img, bmap: null, chunkBytes: 256 * 1024, onProgress: (ev) => { if (ev.phase === 'write') ac.abort(); }, signal: ac.signal });
    expect(await code(p)).toBe('cancelled');
    expect(readJournal(s.lab.stateDir, 'dut')!.status).toBe('cancelled');
    const r = await flash({ device: s.dev, stateDir: s.lab.stateDir, source: s.img, bmap: null });
    expect(r.status).toBe('written');
    expect(r.previous?.status).toBe('cancelled');
    expect(readFileSync(s.target).equals(s.whole)).toBe(true);
  });
});

describeWithTools(['xz', 'zstd', 'gzip'], 'flash from compressed sources', () => {
  it.each(['gz', 'xz', 'zst'])('streams a .%s image (with and without its bmap)', async (ext) => {
    const s = setup();
    const tool = { gz: ['gzip', '-kf'], xz: ['xz', '-kf', '-T1'], zst: ['zstd', '-qf'] }[ext]!;
    expect(spawnSync(tool[0]!, [...tool.slice(1), s.img]).status).toBe(0);
    const src = `${s.img}.${ext}`;
    const r = await flash({ device: s.dev, stateDir: s.lab.stateDir, source: src });
    expect(r.source.format).toBe({ gz: 'gzip', xz: 'xz', zst: 'zstd' }[ext]);
    expect(r.source.bmap).toBe(s.bmap);
    expect(r.bytesWritten).toBe(mapped);
    expect(readFileSync(s.target).equals(s.whole)).toBe(true);
    // Same compressed image again: compared while it streams, nothing written.
    const again = await flash({ device: s.dev, stateDir: s.lab.stateDir, source: src });
    expect(again.status).toBe('skipped');
    rmSync(s.target);
    const r2 = await flash({ device: s.dev, stateDir: s.lab.stateDir, source: src, bmap: null });
    expect(r2.imageSize).toBe(12 * MiB);
    expect(readFileSync(s.target).equals(s.whole)).toBe(true);
    const again2 = await flash({ device: s.dev, stateDir: s.lab.stateDir, source: src, bmap: null });
    expect(again2.status).toBe('skipped');
    expect(again2.mappedBytes).toBe(12 * MiB);
    // Small chunks: zero chunks (left to holes) right behind data chunks whose writes may still be in
    // flight, in a file that only the final truncate makes as long as the image. Their read-back
    // must wait for it (it once read them first and failed a good flash: "target ends at ...").
    rmSync(s.target);
    const r2s = await flash({ device: s.dev, stateDir: s.lab.stateDir, source: src, bmap: null, chunkBytes: 256 * 1024 });
    expect(r2s.status).toBe('written');
    expect(r2s.bytesWritten).toBeLessThan(12 * MiB);
    expect(readFileSync(s.target).equals(s.whole)).toBe(true);
    // A different compressed image over it: the compare fails part-way, the source is read again and written.
    const fd = openSync(s.img, 'r+'); writeSync(fd, Buffer.from('different'), 0, 9, 11 * MiB); closeSync(fd);
    const other = join(s.dir, `other.img.${ext}`);
    const tool2 = { gz: 'gzip -c', xz: 'xz -c -T1', zst: 'zstd -q -c' }[ext]!;
    expect(spawnSync('sh', ['-c', `${tool2} "${s.img}" > "${other}"`]).status).toBe(0);
    const r3 = await flash({ device: s.dev, stateDir: s.lab.stateDir, source: other, bmap: null });
    expect(r3.status).toBe('written');
    expect(readFileSync(s.target).subarray(11 * MiB, 11 * MiB + 9).toString()).toBe('different');
  });

  it.each(['xz', 'zst', 'gz'])('fails a cut .%s stream instead of writing a short image', async (ext) => {
    const s = setup();
    const tool = { gz: ['gzip', '-kf'], xz: ['xz', '-kf', '-T1'], zst: ['zstd', '-qf'] }[ext]!;
    spawnSync(tool[0]!, [...tool.slice(1), s.img]);
    const full = readFileSync(`${s.img}.${ext}`);
    const cut = join(s.dir, `cut.img.${ext}`);
    writeFileSync(cut, full.subarray(0, Math.floor(full.length * 0.6)));
    const c = await code(flash({ device: s.dev, stateDir: s.lab.stateDir, source: cut, bmap: null }));
    expect(['source-corrupt', 'bmap-mismatch']).toContain(c);
    expect(readJournal(s.lab.stateDir, 'dut')!.status).toBe('failed');
  });
});

describe('target safety', () => {
  it('refuses a path that is not the lab file target, and the source itself', async () => {
    const s = setup();
    expect(await code(flash({ device: s.dev, stateDir: s.lab.stateDir, source: s.img, requestedTarget: join(s.dir, 'elsewhere.img') }))).toBe('target-not-in-lab');
    const l2 = makeLab(); dirs.push(l2.dir);
    writeFileSync(l2.target, 'x');
    expect(await code(flash({ device: l2.dev, stateDir: l2.lab.stateDir, source: l2.target }))).toBe('target-is-source');
  });

  it('refuses a device without a flash target', async () => {
    const s = setup();
    const dev = { ...s.dev, flashTarget: undefined };
    expect(await code(flash({ device: dev, stateDir: s.lab.stateDir, source: s.img }))).toBe('target-not-in-lab');
  });

  it('refuses a file target another process holds open (a QEMU still running from it)', async () => {
    const s = setup();
    writeFileSync(s.target, 'old');
    const holder = spawn('sh', ['-c', `exec 3<"${s.target}"; echo ready; exec sleep 30`], { stdio: ['ignore', 'pipe', 'ignore'] });
    await new Promise((r) => holder.stdout!.once('data', r));
    try {
      expect(await code(flash({ device: s.dev, stateDir: s.lab.stateDir, source: s.img }))).toBe('target-in-use');
    } finally { holder.kill('SIGKILL'); }
  });

  // A fake /proc and /sys: disk 8:0 with partitions 8:1, 8:2; disk 8:16 with 8:17; / on 8:2.
  const fake = (over: Partial<SystemView> = {}): SystemView => ({
    mountinfo: () => '22 1 8:2 / / rw,relatime shared:1 - ext4 /dev/sda2 rw\n30 22 8:17 / /media/card rw - vfat /dev/sdb1 rw\n',
    swaps: () => 'Filename Type Size Used Priority\n',
    diskOf: (mm) => ({ '8:0': '8:0', '8:1': '8:0', '8:2': '8:0', '8:16': '8:16', '8:17': '8:16', '8:32': '8:32' } as Record<string, string>)[mm] ?? null,
    familyOf: (mm) => ({ '8:0': ['8:0', '8:1', '8:2'], '8:16': ['8:16', '8:17'], '8:32': ['8:32'] } as Record<string, string[]>)[mm] ?? [mm],
    holdersOf: () => [],
    slavesOf: () => [],
    blockSize: () => 1 << 30,
    openers: () => [],
    ...over,
  });
  const codeOf = (f: () => void) => { try { f(); return 'ok'; } catch (e) { return (e as LabError).code; } };

  it('refuses the system disk and any of its partitions', () => {
    expect(codeOf(() => checkBlock('dut', '/dev/disk/by-id/x', '/dev/sda', '8:0', fake()))).toBe('target-system-disk');
    expect(codeOf(() => checkBlock('dut', '/dev/disk/by-id/x-part1', '/dev/sda1', '8:1', fake()))).toBe('target-system-disk');
  });
  it('refuses a disk with a mounted partition, and one under LVM', () => {
    expect(codeOf(() => checkBlock('dut', '/dev/disk/by-id/card', '/dev/sdb', '8:16', fake()))).toBe('target-mounted');
    expect(codeOf(() => checkBlock('dut', '/dev/disk/by-id/lvm', '/dev/sdc', '8:32', fake({ holdersOf: (m) => (m === '8:32' ? ['253:0'] : []) })))).toBe('target-in-use');
    expect(codeOf(() => checkBlock('dut', '/dev/disk/by-id/free', '/dev/sdc', '8:32', fake()))).toBe('ok');
  });
  it('refuses the real disk under / on this machine (through a symlink)', async () => {
    const root = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')).find((f) => f[4] === '/');
    const mm = root?.[2];
    const dev = mm && existsSync(`/sys/dev/block/${mm}`) ? `/dev/${readFileSync(`/sys/dev/block/${mm}/uevent`, 'utf8').match(/DEVNAME=(.*)/)?.[1]}` : null;
    if (!dev || !existsSync(dev)) { console.warn('SKIP: / is not on a block device here (container overlay)'); return; }
    const s = setup();
    symlinkSync(dev, join(s.dir, 'disk-link'));
    const dev2 = { ...s.dev, flashTarget: join(s.dir, 'disk-link') };
    expect(await code(flash({ device: dev2, stateDir: s.lab.stateDir, source: s.img }))).toBe('target-system-disk');
  });
});

// The page-cache path: where O_DIRECT is refused (some FUSE file systems, older tmpfs) or turned
// off (--no-direct), writes go through the cache with a sync every interval, and each synced batch
// is read back after its cached pages were dropped (dd iflag=nocache), from the disk under it.
describeWithTools(['dd'], 'flash through the page cache (directIo: false)', () => {
  it('writes through the cache, syncs every interval, reads every batch back and says how', async () => {
    const s = setup();
    const { r, syncs } = await countingSyncs(s.target, () => flash({ device: s.dev, stateDir: s.lab.stateDir, source: s.img, bmap: null, force: true, chunkBytes: 256 * 1024, syncEveryBytes: MiB, directIo: false }));
    expect(r.directIo).toBe(false);
    // On a tmpfs temp dir there is no disk under the cache, and the report says so.
    expect(r.verify!.method).toBe(statfsSync(s.dir).type === 0x01021994 ? 'cached' : 'dropped-cache');
    expect(r.verify!.bytes).toBe(12 * MiB);
    expect(readFileSync(s.target).equals(s.whole)).toBe(true);
    // 3 MiB + 8 KiB of written chunks (zeros stay holes) cross a 1 MiB sync interval 3 times, then the
    // syncs before and after the head; with O_DIRECT this flash syncs twice.
    expect(syncs).toBeGreaterThanOrEqual(5);
    const again = await flash({ device: s.dev, stateDir: s.lab.stateDir, source: s.img, bmap: null, directIo: false });
    expect(again.status).toBe('skipped');
    expect(again.verify!.method).not.toBe('o_direct');
  });

  it('catches a byte changed between a chunk\'s write and its read-back', async () => {
    const s = setup();
    const at = 4 * MiB + 777;
    let tampered = false;
    const err = await flash({
      device: s.dev, stateDir: s.lab.stateDir, source: s.img, chunkBytes: 256 * 1024, syncEveryBytes: MiB, directIo: false,
      afterWrite: (offset, length) => {
        if (offset <= at && at < offset + length && !tampered) { tampered = true; const fd = openSync(s.target, 'r+'); writeSync(fd, Buffer.from([0x5a ^ s.whole[at]!]), 0, 1, at); closeSync(fd); }
      },
    }).then(() => null, (e: LabError) => e);
    expect(tampered).toBe(true);
    expect(err?.code).toBe('verify-mismatch');
    expect(err?.detail.offset).toBe(at);
    expect(readJournal(s.lab.stateDir, 'dut')!.status).toBe('failed');
  });
});

describe('range checksums on either thread', () => {
  // 3 ranges of 2 chunks; the middle one's bytes do not match the bmap's SHA-256.
  const C = 64 * 1024;
  const bytes = Buffer.alloc(6 * C);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31 + (i >> 9)) & 0xff;
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
  const good = [0, 1, 2].map((k) => ({ start: k * 2 * C, end: (k + 1) * 2 * C, checksum: sha(bytes.subarray(k * 2 * C, (k + 1) * 2 * C)) }));
  const bad = good.map((r, k) => (k === 1 ? { ...r, checksum: sha(Buffer.from('not these bytes')) } : r));
  async function run(ranges: typeof good, waitForWorker: boolean, shared = true) {
    const hw = new HashWorker();
    try {
      const bufs = Array.from({ length: 6 }, () => Buffer.from(new SharedArrayBuffer(C)));
      hw.setBuffers(bufs);
      if (waitForWorker) await hw.up;
      const h = new ImageHasher(hw, ranges, 'sha256', bytes.length, 'test.img', null, shared);
      const verdicts: Array<Promise<string>> = [];
      for (let i = 0; i < 6; i++) {
        bytes.copy(bufs[i]!, 0, i * C, (i + 1) * C);
        const { hashed, verdict } = h.feed({ offset: i * C, length: C, buf: bufs[i]! });
        // One chunk at a time: the worker's backlog stays empty, so once it is up it takes every range.
        await hashed;
        if (verdict) verdicts.push(verdict.then(() => 'ok', (e: LabError) => e.code));
      }
      const failed = await Promise.all(verdicts);
      const id = await h.id().catch((e: LabError) => e.code);
      return { placed: { ...h.placed }, failed, id };
    } finally { hw.close(); }
  }
  it('hashes here before the worker is up and on the worker after, with the same id', async () => {
    const here = await run(good, false);
    const there = await run(good, true);
    expect(here.placed).toEqual({ here: 3, worker: 0 });
    expect(there.placed).toEqual({ here: 0, worker: 3 });
    expect(here.failed).toEqual(['ok', 'ok', 'ok']);
    expect(there.id).toBe(here.id);
    expect(here.id).toBe(imageIdOfTable(bytes.length, good.map((r) => `${r.start}-${r.end} ${r.checksum}\n`)));
  });
  it('hashes on the worker only, up or not, when not shared (a write)', async () => {
    const w = await run(bad, false, false);
    expect(w.placed).toEqual({ here: 0, worker: 3 });
    expect(w.failed).toEqual(['ok', 'checksum-mismatch', 'ok']);
  });
  it('names a range that does not match its checksum, on either thread', async () => {
    for (const wait of [false, true]) {
      const r = await run(bad, wait);
      expect(r.placed[wait ? 'worker' : 'here']).toBe(3);
      expect(r.failed).toEqual(['ok', 'checksum-mismatch', 'ok']);
      expect(r.id).toBe('checksum-mismatch');
    }
  });
});
