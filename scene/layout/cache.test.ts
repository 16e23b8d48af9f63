// Cached vs fresh: after random edit sequences, the incremental layout (dirty paths, layout and
// measurement caches) gives the boxes and glyph positions of a fresh tree built in the final state
// - bit for bit in all but about 1 in 6,000 random cases, and never more than one reported quantum
// (1/4096 px) apart. Those few come from Yoga's cache tolerance, which this engine keeps to agree
// with yoga-layout: a measurement is reused for an available size up to 1e-4 away, and the
// incremental and the fresh layout hold different entries, so a result can round to the next
// quantum. Layout caches are where Yoga and Taffy had their worst bugs (Taffy #243, #911, #1186):
// anything beyond one quantum is one of those, and fails here.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SceneTree, type NodeId } from '../tree.ts';
import { FixedShaper } from '../text/lines.ts';
import { randomTree } from './gen.ts';
import { apply, diffFresh, randomEdits } from './edits.bench.ts';
import { buildOurs } from './yoga-ref.bench.ts';

const shaper = new FixedShaper();

/** One reported quantum (scene/layout/flex.ts QUANTUM). */
const QUANTUM = 1 / 4096;

function assertSame(t: SceneTree, w: number, h: number, context: () => string, tol = QUANTUM) {
  const d = diffFresh(t, w, h, tol);
  if (d) throw new Error(`${d}\n${context()}`);
}

describe('incremental layout equals fresh layout', () => {
  it('after random edit sequences (style, text, insert, remove, move, viewport), every box and glyph matches', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 2 ** 31 - 1 }), fc.integer({ min: 0, max: 2 ** 31 - 1 }), fc.integer({ min: 1, max: 4 }), (treeSeed, editSeed, batch) => {
      const t = new SceneTree({ text: shaper });
      buildOurs(t, randomTree(treeSeed, 25, { flexBasis: true, autoMargins: true }), null, []);
      const vp = { w: 300, h: 200 };
      t.layout(vp.w, vp.h);
      const edits = randomEdits(editSeed, 24);
      for (let i = 0; i < edits.length; i++) {
        apply(t, edits[i]!, vp);
        if (i % batch === batch - 1) {
          t.layout(vp.w, vp.h);
          assertSame(t, vp.w, vp.h, () => `tree ${treeSeed} edits ${editSeed} batch ${batch} after edit ${i}`);
        }
      }
    }), {
      numRuns: Number(process.env.SCENE_FUZZ_RUNS ?? 150),
      // A case that comes out one quantum apart (found by a CI run): always run.
      examples: [[1301037929, 639536577, 1]],
    });
  });

  it('an unchanged tree re-lays out nothing, and one text edit re-lays out only its ancestors', () => {
    const t = new SceneTree({ text: shaper });
    t.setStyle(t.root, { flexDirection: 'row', flexWrap: 'wrap', alignItems: 'flex-start' });
    const leaves: NodeId[] = [];
    for (let i = 0; i < 30; i++) {
      const col = t.create('container', { width: 120, padding: 4, gap: 2 });
      t.appendChild(t.root, col);
      for (let j = 0; j < 30; j++) { const x = t.createText(`item ${i} ${j} lorem ipsum`, { fontSize: 12 }); t.appendChild(col, x); leaves.push(x); }
    }
    t.layout(1200, 800);
    expect(t.layout(1200, 800).computed).toBe(0);
    t.setText(leaves[400]!, 'a much longer label that wraps over more lines than before did');
    const stats = t.layout(1200, 800);
    // The text, its column and the root (each measured and laid out a few times), and the
    // column's siblings only as cache hits: nowhere near the 931 nodes.
    expect(stats.computed).toBeGreaterThan(0);
    expect(stats.computed).toBeLessThan(20);
    assertSame(t, 1200, 800, () => 'single text edit', 0);
  });
});
