import { describe, expect, it } from 'vitest';
import { area } from '../compositor/rect.ts';
import { buildDragBench } from './bench-support.ts';

describe('drag benchmark support', () => {
  it('builds 32 windows with about 10k glyphs, and a drag step moves the window and damages only around it', () => {
    const b = buildDragBench();
    expect(b.windows).toBe(32);
    expect(b.state.windows.size).toBe(32);
    expect(b.glyphs).toBeGreaterThanOrEqual(10_000);
    expect(b.glyphs).toBeLessThan(11_000);
    const id = b.state.focused;
    const x0 = b.state.windows.get(id)!.x;
    const before = b.frame;
    const d = b.step();
    expect(b.state.windows.get(id)!.x).toBe(x0 + 1);
    expect(b.frame).not.toBe(before);
    expect(d.length).toBeGreaterThan(0);
    const total = d.reduce((a, r) => a + area(r), 0);
    const w = b.frame.groups.find((g) => g.key === `w${id}`)!.bounds;
    expect(total).toBeLessThanOrEqual((w.w + 1) * w.h);
    // Every other window's group was reused as it was.
    const reused = b.frame.groups.filter((g) => before.groups.includes(g)).length;
    expect(reused).toBe(b.frame.groups.length - 1);
  });
});
