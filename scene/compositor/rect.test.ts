import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { area, bbox, containsPoint, mergeDamage, type Rect } from './rect.ts';

const rectArb = fc.record({ x: fc.integer({ min: -20, max: 120 }), y: fc.integer({ min: -20, max: 120 }), w: fc.integer({ min: 0, max: 60 }), h: fc.integer({ min: 0, max: 60 }) });
const clip = { x: 0, y: 0, w: 100, h: 100 };
const covered = (rs: Rect[], px: number, py: number) => rs.some((r) => containsPoint(r, px, py));

describe('mergeDamage', () => {
  it('covers every input pixel inside the clip, stays inside the clip, and leaves no pair that the rule would merge', () => {
    fc.assert(fc.property(fc.array(rectArb, { maxLength: 12 }), (rs) => {
      const m = mergeDamage(rs, clip);
      for (let y = 0; y < 100; y += 3) for (let x = 0; x < 100; x += 3) if (covered(rs, x, y)) expect(covered(m, x, y)).toBe(true);
      for (const r of m) { expect(r.x).toBeGreaterThanOrEqual(0); expect(r.y).toBeGreaterThanOrEqual(0); expect(r.x + r.w).toBeLessThanOrEqual(100); expect(r.y + r.h).toBeLessThanOrEqual(100); expect(area(r)).toBeGreaterThan(0); }
      for (let i = 0; i < m.length; i++) for (let j = i + 1; j < m.length; j++) expect(area(bbox(m[i]!, m[j]!))).toBeGreaterThan(area(m[i]!) + area(m[j]!));
    }));
  });

  it('merges a contained rect and adjacent halves, keeps far-apart rects separate', () => {
    expect(mergeDamage([{ x: 0, y: 0, w: 10, h: 10 }, { x: 2, y: 2, w: 3, h: 3 }])).toEqual([{ x: 0, y: 0, w: 10, h: 10 }]);
    expect(mergeDamage([{ x: 0, y: 0, w: 5, h: 10 }, { x: 5, y: 0, w: 5, h: 10 }])).toEqual([{ x: 0, y: 0, w: 10, h: 10 }]);
    expect(mergeDamage([{ x: 0, y: 0, w: 5, h: 5 }, { x: 50, y: 50, w: 5, h: 5 }])).toHaveLength(2);
  });

  it('snaps fractional rects out to whole pixels', () => {
    expect(mergeDamage([{ x: 0.5, y: 1.25, w: 2, h: 2 }])).toEqual([{ x: 0, y: 1, w: 3, h: 3 }]);
  });
});
