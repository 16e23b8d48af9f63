// Layout invariants on random trees, and the semantics that matter to the shell spelled out.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SceneTree, type NodeId, type StyleInput } from '../tree.ts';
import { FixedShaper } from '../text/lines.ts';
import { prng, randomTree } from './gen.ts';
import { buildOurs } from './yoga-ref.bench.ts';

const shaper = new FixedShaper();

describe('layout invariants', () => {
  it('every box is finite, with no negative size, on any random tree of the supported styles', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 2 ** 31 - 1 }), fc.integer({ min: 0, max: 600 }), fc.integer({ min: 0, max: 600 }), (seed, w, h) => {
      const t = new SceneTree({ text: shaper });
      const ids: NodeId[] = [];
      buildOurs(t, randomTree(seed, 30, { flexBasis: true, autoMargins: true, density: 0.4 }), null, ids);
      t.layout(w, h);
      for (const id of ids) {
        const b = t.box(id);
        expect([b.x, b.y, b.width, b.height].every(Number.isFinite)).toBe(true);
        expect(b.width).toBeGreaterThanOrEqual(0);
        expect(b.height).toBeGreaterThanOrEqual(0);
      }
    }), { numRuns: 200 });
  });

  it('children stay inside their parent\'s content box when their sizes fit it', () => {
    // Children's main-axis percents add up to at most 100%, cross sizes at most 100% (or
    // stretch), no grow/shrink, margins, insets, paddings below the root (a padding is a floor
    // on a box's size, so a small percent box could not shrink to fit) or text: whatever the justification and
    // alignment, every child lies in its parent's content box. (Shrinking below the content
    // size and wrapped lines may overflow by design, as in Yoga and CSS.)
    fc.assert(fc.property(fc.integer({ min: 0, max: 2 ** 31 - 1 }), (seed) => {
      const r = prng(seed);
      const pick = <T,>(xs: readonly T[]) => xs[Math.floor(r() * xs.length)]!;
      const t = new SceneTree({ text: shaper });
      const all: NodeId[] = [t.root];
      const budget = new Map<NodeId, number>([[t.root, 100]]);
      t.setStyle(t.root, { padding: 5, border: 1 });
      for (let i = 0; i < 40; i++) {
        const parent = pick(all);
        const left = budget.get(parent)!;
        if (left <= 0) continue;
        const main = Math.floor(r() * left);
        budget.set(parent, left - main);
        const row = t.style(parent).flexDirection.startsWith('row');
        const cross = r() < 0.3 ? 'auto' : `${Math.floor(r() * 100)}%` as const;
        const s: StyleInput = {
          flexDirection: pick(['row', 'column', 'row-reverse', 'column-reverse'] as const),
          justifyContent: pick(['flex-start', 'center', 'flex-end', 'space-between', 'space-around', 'space-evenly'] as const),
          alignItems: pick(['flex-start', 'center', 'flex-end', 'stretch'] as const),
          [row ? 'width' : 'height']: `${main}%`, [row ? 'height' : 'width']: cross,
        };
        const id = t.create('container', s);
        t.appendChild(parent, id);
        all.push(id);
        budget.set(id, 100);
      }
      t.layout(400, 300);
      for (const id of all) {
        const p = t.parent(id);
        if (p === null) continue;
        const pb = t.box(p), ps = t.style(p), b = t.box(id);
        const left = (ps.paddingLeft as number) + ps.borderLeft, top = (ps.paddingTop as number) + ps.borderTop;
        const right = pb.width - (ps.paddingRight as number) - ps.borderRight, bottom = pb.height - (ps.paddingBottom as number) - ps.borderBottom;
        expect(b.x).toBeGreaterThanOrEqual(left - 1e-3);
        expect(b.y).toBeGreaterThanOrEqual(top - 1e-3);
        expect(b.x + b.width).toBeLessThanOrEqual(right + 1e-3);
        expect(b.y + b.height).toBeLessThanOrEqual(bottom + 1e-3);
      }
    }), { numRuns: 200 });
  });

  it('percent sizes resolve against the parent content box on the matching axis; percent paddings against the width', () => {
    const t = new SceneTree({ text: shaper });
    t.setStyle(t.root, { width: 400, height: 200, padding: 10, flexDirection: 'row', alignItems: 'flex-start' });
    const a = t.create('container', { width: '50%', height: '50%', paddingTop: '10%' });
    t.appendChild(t.root, a);
    t.layout(1000, 1000);
    expect(t.box(a)).toEqual({ x: 10, y: 10, width: 190, height: 90 });
    const inner = t.create('container', { height: 5 });
    t.appendChild(a, inner);
    t.layout(1000, 1000);
    expect(t.box(inner).y).toBe(38); // 10% of the containing block's width (380), as in CSS: not its height
  });

  it('absolute children are placed by insets in the padding box and ignore the flow', () => {
    const t = new SceneTree({ text: shaper });
    t.setStyle(t.root, { width: 300, height: 200, border: 2, padding: 8 });
    const flow = t.create('container', { height: 50 });
    const abs = t.create('container', { position: 'absolute', right: 10, bottom: '10%', width: 40, height: 30 });
    t.appendChild(t.root, abs); t.appendChild(t.root, flow);
    t.layout(1000, 1000);
    expect(t.box(flow)).toEqual({ x: 10, y: 10, width: 280, height: 50 });
    // Padding box 296 x 196 inside the border: right edge at 298 - 10, bottom at 198 - 19.6.
    const b = t.box(abs);
    expect(b.x).toBe(298 - 10 - 40);
    expect(b.y).toBeCloseTo(198 - 19.6 - 30, 3); // boxes are reported to 1/4096 px
    expect([b.width, b.height]).toEqual([40, 30]);
  });

  it('an explicit flex-basis is honoured even while the parent size is unknown (yoga-layout may keep a stale basis)', () => {
    const t = new SceneTree({ text: shaper });
    const scroll = t.create('container', { overflow: 'scroll' });
    const col = t.create('container');
    const text = t.createText('ipsum window', { fontSize: 12 }, { flexBasis: 12 });
    t.appendChild(t.root, scroll); t.appendChild(scroll, col); t.appendChild(col, text);
    t.layout(0, 0);
    expect(t.box(text).height).toBe(12);
  });

  it('display none lays out nothing and leaves zero boxes; showing again restores the layout', () => {
    const t = new SceneTree({ text: shaper });
    const a = t.create('container', { width: 50, height: 20 }), b = t.create('container', { width: 60, height: 30 });
    t.appendChild(t.root, a); t.appendChild(t.root, b);
    t.layout(500, 500);
    const before = t.box(b);
    t.setStyle(a, { display: 'none' });
    t.layout(500, 500);
    expect(t.box(a)).toEqual({ x: 0, y: 0, width: 0, height: 0 });
    expect(t.box(b).y).toBe(0);
    t.setStyle(a, { display: 'flex' });
    t.layout(500, 500);
    expect(t.box(b)).toEqual(before);
  });
});
