// Flashing onto a target that holds an earlier image: only the chunks that differ are written
// (esptool's changed-sectors write), the rest compared uncached and left as it is. Real files on
// the disk (O_DIRECT), real cuts: the head is zeroed before the first write and written last, a
// cut leaves a journal that makes the next flash rewrite everything, and a target holding another
// image altogether stops being read after the first chunks.
import { afterAll, describe, expect, it } from 'vitest';
import { closeSync, openSync, readFileSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { flash, verifyOnly } from './flash.ts';
import { readJournal } from './journal.ts';
import { LabError } from '../errors.ts';
import { makeBmap, makeImage, makeLab, MiB } from './testimg.ts';

const dirs: string[] = [];
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

const EXTENTS: Array<[number, number]> = [[0, 64 * 1024], [3 * MiB, 3 * MiB], [9 * MiB + 4096, 8192]];
const mapped = EXTENTS.reduce((n, [, len]) => n + len, 0);

function setup(extents = EXTENTS, size = 12 * MiB) {
  const l = makeLab();
  dirs.push(l.dir);
  const img = join(l.dir, 'os.img');
  const whole = makeImage(img, size, extents);
  makeBmap(join(l.dir, 'os.bmap'), whole, extents);
  return { ...l, img, whole, extents };
}
/** Changes `n` bytes of the image file at `at` (and its bmap: a new version of the image). */
function newVersion(s: ReturnType<typeof setup>, at: number, n = 4096): void {
  randomBytes(n).copy(s.whole, at);
  const fd = openSync(s.img, 'r+');
  writeSync(fd, s.whole, at, n, at);
  closeSync(fd);
  makeBmap(join(s.dir, 'os.bmap'), s.whole, s.extents);
}
function head(path: string, n = 64 * 1024): Buffer {
  const fd = openSync(path, 'r');
  try { const b = Buffer.alloc(n); readSync(fd, b, 0, n, 0); return b; } finally { closeSync(fd); }
}

describe('flash onto a target holding an earlier image (delta)', () => {
  it('writes only the chunks that differ, and the head last; the rest is compared uncached and counted as verified', async () => {
    const s = setup();
    const first = await flash({ device: s.dev, stateDir: s.lab.stateDir, source: s.img });
    expect(first.delta).toBeUndefined(); // a new file: written whole
    newVersion(s, 4 * MiB + 100 * 4096);
    let headAtFirstWrite: Buffer | null = null;
    let journalAtFirstWrite: string | undefined;
    const r = await flash({
      device: s.dev, stateDir: s.lab.stateDir, source: s.img,
      afterWrite: () => { if (!headAtFirstWrite) { headAtFirstWrite = head(s.target); journalAtFirstWrite = readJournal(s.lab.stateDir, 'dut')?.status; } },
    });
    expect(r.status).toBe('written');
    // The chunk [4 MiB, 6 MiB) held the change; the head (64 KiB) is rewritten because it was zeroed first.
    expect(r.delta).toEqual({ unchanged: mapped - 2 * MiB, rewritten: 2 * MiB + 64 * 1024, chunks: 4, differed: 1, blindFrom: null });
    expect(r.bytesWritten).toBe(2 * MiB + 64 * 1024);
    expect(r.verify!.bytes).toBe(mapped);
    expect(r.verify!.samples).toBeGreaterThan(0);
    expect(readFileSync(s.target).equals(s.whole)).toBe(true);
    // While the chunk was written the old head was already gone (a cut card does not boot a mix), and the journal said so.
    expect(headAtFirstWrite!.every((b) => b === 0)).toBe(true);
    expect(journalAtFirstWrite).toBe('in-progress');
    expect(readJournal(s.lab.stateDir, 'dut')).toMatchObject({ status: 'ok', blake3: r.blake3 });
    expect(r.blake3).not.toBe(first.blake3);
    expect((await verifyOnly({ device: s.dev, stateDir: s.lab.stateDir, source: s.img })).same).toBe(true);
    // Nothing differs now: skipped, nothing written.
    const again = await flash({ device: s.dev, stateDir: s.lab.stateDir, source: s.img });
    expect(again).toMatchObject({ status: 'skipped', bytesWritten: 0 });
    // --no-delta: a target that differs is rewritten whole.
    newVersion(s, 3 * MiB);
    const whole = await flash({ device: s.dev, stateDir: s.lab.stateDir, source: s.img, delta: false });
    expect(whole.delta).toBeUndefined();
    expect(whole.bytesWritten).toBe(mapped);
    expect(readFileSync(s.target).equals(s.whole)).toBe(true);
  });

  it('a cut mid-write leaves a zeroed head and a failed journal; the next flash rewrites everything', async () => {
    const s = setup();
    await flash({ device: s.dev, stateDir: s.lab.stateDir, source: s.img });
    newVersion(s, 3 * MiB + 4096);
    newVersion(s, 9 * MiB + 4096);
    const e = await flash({ device: s.dev, stateDir: s.lab.stateDir, source: s.img, afterWrite: () => { throw new Error('cable pulled'); } }).then(() => null, (x: unknown) => x);
    expect(e).toBeInstanceOf(Error);
    expect(readJournal(s.lab.stateDir, 'dut')).toMatchObject({ status: 'failed' });
    expect(head(s.target).every((b) => b === 0)).toBe(true);
    const r = await flash({ device: s.dev, stateDir: s.lab.stateDir, source: s.img });
    expect(r.delta).toBeUndefined();
    expect(r.previous).toMatchObject({ status: 'failed' });
    expect(r.bytesWritten).toBe(mapped);
    expect(readFileSync(s.target).equals(s.whole)).toBe(true);
  });

  it('an image that does not match its bmap fails the flash after a write began; nothing is reported written, the head stays zeroed', async () => {
    const s = setup();
    await flash({ device: s.dev, stateDir: s.lab.stateDir, source: s.img });
    newVersion(s, 3 * MiB);
    // Corrupt a later range of the image file after its bmap was made.
    const fd = openSync(s.img, 'r+');
    writeSync(fd, Buffer.from([s.whole[9 * MiB + 5000]! ^ 0xff]), 0, 1, 9 * MiB + 5000);
    closeSync(fd);
    const e = await flash({ device: s.dev, stateDir: s.lab.stateDir, source: s.img }).then(() => null, (x: unknown) => x);
    expect(e).toBeInstanceOf(LabError);
    expect((e as LabError).code).toBe('checksum-mismatch');
    expect(readJournal(s.lab.stateDir, 'dut')).toMatchObject({ status: 'failed' });
    expect(head(s.target).every((b) => b === 0)).toBe(true);
  });

  it('a target holding another image altogether: after the first chunks differ it is no longer read first, and ends up right', async () => {
    const s = setup([[0, 40 * MiB]], 40 * MiB);
    writeFileSync(s.target, randomBytes(40 * MiB));
    const r = await flash({ device: s.dev, stateDir: s.lab.stateDir, source: s.img });
    expect(r.status).toBe('written');
    expect(r.delta).toMatchObject({ unchanged: 0, rewritten: 40 * MiB, differed: r.delta!.chunks });
    // 16 chunks compared ([0, 1 MiB) the head, [1, 2) up to a chunk boundary, then 2 MiB each: to 30 MiB), then written without reading the target.
    expect(r.delta!.blindFrom).toBe(30 * MiB);
    expect(r.verify!.bytes).toBe(40 * MiB);
    expect(readFileSync(s.target).equals(s.whole)).toBe(true);
  });
});
