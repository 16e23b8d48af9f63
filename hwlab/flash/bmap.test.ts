import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseBmap, formatBmap, byteRanges } from './bmap.ts';

// A bmap exactly as bmaptool 3.6 writes it (comments trimmed), with its real file checksum.
const real = `<?xml version="1.0" ?>
<!-- This file contains the block map for an image file -->

<bmap version="2.0">
    <!-- Image size in bytes: 8.0 MiB -->
    <ImageSize> 8388608 </ImageSize>
    <BlockSize> 4096 </BlockSize>
    <BlocksCount> 2048 </BlocksCount>
    <MappedBlocksCount> 4    </MappedBlocksCount>
    <ChecksumType> sha256 </ChecksumType>
    <BmapFileChecksum> 0000000000000000000000000000000000000000000000000000000000000000 </BmapFileChecksum>
    <BlockMap>
        <Range chksum="968b70f0b668485342729f56d6495a06c2964c919c2096bfbf907d0783801f74"> 10-12 </Range>
        <Range chksum="a64c4b18c97a1a71e3aca1050a3f29747071db996ac070543332a1dbd2143dfc"> 100 </Range>
    </BlockMap>
</bmap>
`;
import { createHash } from 'node:crypto';
const withSum = (t: string) => t.replace('0'.repeat(64), createHash('sha256').update(t).digest('hex'));

describe('bmap', () => {
  it('reads bmaptool 2.0 files', () => {
    const r = parseBmap(withSum(real));
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.bmap.ranges).toEqual([
      { first: 10, last: 12, checksum: '968b70f0b668485342729f56d6495a06c2964c919c2096bfbf907d0783801f74' },
      { first: 100, last: 100, checksum: 'a64c4b18c97a1a71e3aca1050a3f29747071db996ac070543332a1dbd2143dfc' },
    ]);
    expect(byteRanges(r.bmap)[0]).toMatchObject({ start: 40960, end: 53248 });
  });

  it('catches an edited file through its own checksum, with the line', () => {
    const r = parseBmap(withSum(real).replace('> 100 <', '> 101 <'));
    expect(r.ok).toBe(false);
    if (!r.ok) { expect(r.error.message).toMatch(/own checksum/); expect(r.error.line).toBe(11); }
  });

  it.each([
    ['overlapping ranges', (t: string) => t.replace('> 100 <', '> 11 <'), /overlaps/],
    ['a range past the image', (t: string) => t.replace('> 100 <', '> 4000 <'), /past the image/],
    ['a wrong mapped count', (t: string) => t.replace('<MappedBlocksCount> 4 ', '<MappedBlocksCount> 5 '), /MappedBlocksCount/],
    ['a cut file', (t: string) => t.slice(0, t.indexOf('</BlockMap>')), /truncated/],
    ['a short checksum', (t: string) => t.replace('a64c4b18', 'a64c'), /hex digits/],
    ['version 3', (t: string) => t.replace('version="2.0"', 'version="3.0"'), /not supported/],
  ])('rejects %s', (_w, edit, msg) => {
    const r = parseBmap(withSum(edit(real)));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.message).toMatch(msg);
  });

  it('never throws on arbitrary bytes or cut/mutated files', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), (b) => { parseBmap(b); }), { numRuns: 300 });
    const t = withSum(real);
    fc.assert(fc.property(fc.nat(t.length), fc.string({ minLength: 1, maxLength: 1 }), (i, c) => { parseBmap(t.slice(0, i)); parseBmap(t.slice(0, i) + c + t.slice(i + 1)); }), { numRuns: 300 });
  });

  it('round-trips generated block maps', () => {
    const arb = fc.record({
      blockSize: fc.constantFrom(512, 4096, 65536),
      blocksCount: fc.integer({ min: 1, max: 100_000 }),
      cuts: fc.uniqueArray(fc.nat(99_999), { maxLength: 40 }),
      tail: fc.nat(511),
    });
    fc.assert(fc.property(arb, ({ blockSize, blocksCount, cuts, tail }) => {
      const points = [...new Set(cuts.map((c) => c % blocksCount))].sort((a, b) => a - b);
      const ranges: Array<{ first: number; last: number; checksum: string }> = [];
      for (let i = 0; i + 1 < points.length; i += 2) ranges.push({ first: points[i]!, last: points[i + 1]! - 1 >= points[i]! ? points[i + 1]! - 1 : points[i]!, checksum: createHash('sha256').update(String(i)).digest('hex') });
      const clean = ranges.filter((r, i) => i === 0 || r.first > ranges[i - 1]!.last);
      const imageSize = blocksCount * blockSize - Math.min(tail, blockSize - 1);
      const text = formatBmap({ imageSize, blockSize, blocksCount, ranges: clean });
      const r = parseBmap(text);
      expect(r.ok, r.ok ? '' : r.error.message).toBe(true);
      if (!r.ok) return;
      expect(r.bmap.ranges).toEqual(clean);
      expect(r.bmap.imageSize).toBe(imageSize);
      for (const br of byteRanges(r.bmap)) expect(br.end).toBeLessThanOrEqual(imageSize);
    }), { numRuns: 200 });
  });
});
