// O_DIRECT buffers: accepted by the kernel is not enough, they must start pages. A buffer that is
// only 512-aligned (the first offset a malloc'd buffer's probe finds, 16 bytes into its pages)
// makes a virtual disk write several times slower.
import { describe, expect, it, afterAll } from 'vitest';
import { open } from 'node:fs/promises';
import { constants, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ALIGN, O_DIRECT, alignedBuffers, pageAligned } from './direct.ts';

const dirs: string[] = [];
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

describe('O_DIRECT buffers', () => {
  it('start at the first byte of a page-aligned shared memory', () => {
    const b = pageAligned(3 * ALIGN + 5)!;
    expect(b).not.toBeNull();
    expect(b.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(b.byteOffset).toBe(0);
    expect(b.length).toBe(3 * ALIGN + 5);
  });

  it('are cut at page multiples from it, the probe taking offset 0', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'orbital-direct-'));
    dirs.push(dir);
    let fh;
    try { fh = await open(join(dir, 'f.img'), constants.O_RDWR | constants.O_CREAT | O_DIRECT, 0o644); } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EINVAL') throw e;
      console.warn(`SKIP: ${tmpdir()} refuses O_DIRECT`);
      return;
    }
    try {
      const bufs = (await alignedBuffers(fh, 3, (1 << 20) + 100, 'write', true))!;
      expect(bufs).toHaveLength(3);
      for (const b of bufs) {
        expect(b.buffer).toBeInstanceOf(SharedArrayBuffer);
        expect(b.byteOffset % ALIGN).toBe(0);
      }
      // Each is usable for an O_DIRECT write and read of whole blocks.
      bufs[1]!.fill(0xa5, 0, 1 << 20);
      await fh.write(bufs[1]!, 0, 1 << 20, 1 << 20);
      const { bytesRead } = await fh.read(bufs[2]!, 0, 1 << 20, 1 << 20);
      expect(bytesRead).toBe(1 << 20);
      expect(bufs[2]!.subarray(0, 1 << 20).equals(bufs[1]!.subarray(0, 1 << 20))).toBe(true);
    } finally { await fh.close(); }
  });
});
