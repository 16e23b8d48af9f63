// SharedDecode (one decoder for a multi-device flash) against a counted stand-in decoder: every
// device gets the same bytes, a device that stops reading holds the decoder back only until it is
// given up on, a decoder's error reaches every device, and a second pass waits for the first.
import { describe, expect, it } from 'vitest';
import { SharedDecode } from './shared.ts';
import type { Source } from './source.ts';

const KiB = 1024;

/** A source of `n` chunks of `size` bytes (chunk i filled with i), failing after `failAt` chunks when given. */
function fakeOpen(n: number, size: number, failAt?: number) {
  const stats = { opens: 0, pulled: 0, closed: 0 };
  const open = async (path: string): Promise<Source> => {
    stats.opens++;
    return {
      path, format: 'zstd', storedSize: n * size, seekable: false,
      consumed: () => stats.pulled * size,
      readAt: async () => { throw new Error('not seekable'); },
      async *stream() {
        for (let i = 0; i < n; i++) {
          if (i === failAt) throw new Error('decoder: corrupt input');
          stats.pulled++;
          await new Promise((r) => setImmediate(r));
          yield Buffer.alloc(size, i & 0xff);
        }
      },
      close: async () => { stats.closed++; },
    };
  };
  return { open, stats };
}

async function readAll(s: Source): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const b of s.stream()) parts.push(b);
  return Buffer.concat(parts);
}

describe('SharedDecode', () => {
  it('decodes once for every device, each getting every byte in order', async () => {
    const f = fakeOpen(50, 64 * KiB);
    const sd = new SharedDecode('os.img.zst', ['a', 'b', 'c'], 256 * KiB, f.open);
    const got = await Promise.all(['a', 'b', 'c'].map(async (n) => readAll(await sd.opener(n)('os.img.zst'))));
    const want = Buffer.concat(Array.from({ length: 50 }, (_, i) => Buffer.alloc(64 * KiB, i)));
    for (const g of got) expect(g.equals(want)).toBe(true);
    expect(f.stats).toEqual({ opens: 1, pulled: 50, closed: 1 });
    expect(sd.passes).toBe(1);
  });

  it('a device that stops reading holds the decoder back (bounded memory) until it is given up on', async () => {
    const f = fakeOpen(100, 64 * KiB);
    const sd = new SharedDecode('x', ['fast', 'stuck'], 256 * KiB, f.open);
    const [fast, stuck] = await Promise.all([sd.opener('fast')('x'), sd.opener('stuck')('x')]);
    void stuck!.stream()[Symbol.asyncIterator]();
    const all = readAll(fast!);
    await new Promise((r) => setTimeout(r, 100));
    // At most maxAhead (4 chunks) queued for the stuck device, plus the chunk in flight.
    expect(f.stats.pulled).toBeLessThanOrEqual(5);
    sd.leave('stuck');
    expect((await all).length).toBe(100 * 64 * KiB);
    expect(f.stats.pulled).toBe(100);
    expect(f.stats.closed).toBe(1);
  });

  it('a decoder error reaches every device reading the pass', async () => {
    const f = fakeOpen(20, 4 * KiB, 7);
    const sd = new SharedDecode('x', ['a', 'b'], 64 * KiB, f.open);
    const rs = await Promise.allSettled(['a', 'b'].map(async (n) => readAll(await sd.opener(n)('x'))));
    expect(rs.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    for (const r of rs) expect(String((r as PromiseRejectedResult).reason)).toMatch(/corrupt input/);
    expect(f.stats.opens).toBe(1);
  });

  it('a second pass (a write after a failed compare) starts when every other device has asked for one or finished', async () => {
    const f = fakeOpen(30, 4 * KiB);
    const sd = new SharedDecode('x', ['same', 'differs', 'gone'], 64 * KiB, f.open);
    // gone fails before it reads at all (its device was locked): it must not hold the others up.
    sd.leave('gone');
    const [s1, d1] = await Promise.all([sd.opener('same')('x'), sd.opener('differs')('x')]);
    // differs: its compare stops at the first chunk, and it asks for the bytes again to write them.
    const it = d1!.stream()[Symbol.asyncIterator]();
    await it.next();
    await it.return!(undefined);
    await d1!.close();
    let second: Source | null = null;
    const p2 = sd.opener('differs')('x').then((s) => { second = s; return s; });
    // same is still comparing: no second pass yet.
    const first = await readAll(s1!);
    expect(first.length).toBe(30 * 4 * KiB);
    await new Promise((r) => setTimeout(r, 20));
    expect(second).toBe(null);
    expect(sd.passes).toBe(1);
    sd.leave('same');
    const again = await readAll(await p2);
    expect(again.equals(first)).toBe(true);
    expect(sd.passes).toBe(2);
    expect(f.stats).toMatchObject({ opens: 2, closed: 2 });
    await expect(sd.opener('same')('x')).rejects.toThrow(/not reading/);
  });
});
