// Test helpers: a small sparse image with random extents, and a lab with one device whose flash
// target is a file in a temp dir. Real files, real compressors - nothing mocked.
import { mkdtempSync, openSync, writeSync, ftruncateSync, closeSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { parseLab, type Lab, type Device } from '../labfile.ts';
import { formatBmap } from './bmap.ts';

export const MiB = 1 << 20;

/** Writes a sparse image of `size` bytes with data at the given [offset, length] extents (4 KiB aligned). */
export function makeImage(path: string, size: number, extents: Array<[number, number]>): Buffer {
  const fd = openSync(path, 'w');
  ftruncateSync(fd, size);
  const whole = Buffer.alloc(size);
  for (const [off, len] of extents) {
    const b = randomBytes(len);
    writeSync(fd, b, 0, len, off);
    b.copy(whole, off);
  }
  closeSync(fd);
  return whole;
}

/** A bmap for the extents (as bmaptool would write it), with sha256 range checksums. */
export function makeBmap(path: string, whole: Buffer, extents: Array<[number, number]>, blockSize = 4096): void {
  const sorted = [...extents].sort((a, b) => a[0] - b[0]);
  const ranges = sorted.map(([off, len]) => {
    const first = off / blockSize;
    const last = (off + len) / blockSize - 1;
    return { first, last, checksum: createHash('sha256').update(whole.subarray(off, Math.min(off + len, whole.length))).digest('hex') };
  });
  writeFileSync(path, formatBmap({ imageSize: whole.length, blockSize, blocksCount: Math.ceil(whole.length / blockSize), ranges }));
}

export function makeLab(extra = ''): { dir: string; lab: Lab; dev: Device; target: string; labFile: string } {
  const dir = mkdtempSync(join(tmpdir(), 'orbital-hwlab-'));
  const target = join(dir, 'target.img');
  const text = `version: 1\ndevices:\n  dut:\n    kind: qemu\n    flash: { target: target.img }\n${extra}`;
  const labFile = join(dir, 'lab.yaml');
  writeFileSync(labFile, text);
  const r = parseLab(text, labFile);
  if (!r.ok) throw new Error(JSON.stringify(r.issues));
  return { dir, lab: r.lab, dev: r.lab.devices.get('dut')!, target, labFile };
}
