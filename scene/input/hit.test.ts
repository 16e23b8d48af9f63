import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { renderFull } from '../raster/raster.ts';
import { hitTest } from './hit.ts';
import { randomActions, type ActionSpec } from '../session/random.ts';
import { applyCommit, sessionReducer } from '../session/reducer.ts';
import { SessionScene } from '../compositor/compose.ts';
import type { Frame, Group, HitRegion } from '../compositor/layers.ts';

// Small screens keep full renders cheap; the random sizes are scaled into them.
const small = (a: ActionSpec): ActionSpec => {
  if (a.action === 'screen.resize') return { action: a.action, args: { w: 320 + ((a.args.w as number) % 80), h: 320 + ((a.args.h as number) % 60) } };
  const args = { ...a.args };
  for (const k of ['x', 'y'] as const) if (typeof args[k] === 'number' && Number.isFinite(args[k])) args[k] = Math.round((args[k] as number) / 4);
  if (args.bounds && typeof args.bounds === 'object' && !Array.isArray(args.bounds) && !(args.bounds instanceof Uint8Array)) {
    const b = args.bounds as Record<string, number>;
    args.bounds = { x: Math.round(b.x! / 4), y: Math.round(b.y! / 4), w: Math.round(b.w! / 3), h: Math.round(b.h! / 3) };
  }
  return { action: a.action, args };
};

function* frames(seed: number, n: number): Generator<{ frame: Frame; action: ActionSpec }> {
  const s = sessionReducer.init();
  applyCommit(s, 0, { action: 'screen.resize', args: { w: 360, h: 320 } });
  const scene = new SessionScene();
  yield { frame: scene.update(s), action: { action: 'start', args: {} } };
  let seq = 1;
  for (const a of randomActions(seed, n, 0.05).map(small)) {
    applyCommit(s, seq++, { action: a.action, args: a.args });
    yield { frame: scene.update(s), action: a };
  }
}

describe('hit testing', () => {
  it('matches paint order: the group hit at a pixel center is the group that painted the pixel last', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 2 ** 31 - 1 }), (seed) => {
      let last: Frame | null = null;
      for (const { frame } of frames(seed, 25)) last = frame;
      const f = last!;
      const owner = new Int32Array(f.width * f.height);
      renderFull(f, owner);
      for (let y = 0; y < f.height; y += 2) {
        for (let x = 0; x < f.width; x += 2) {
          const h = hitTest(f, x + 0.5, y + 0.5);
          const o = owner[y * f.width + x]!;
          if ((h ? h.group + 1 : 0) !== o) throw new Error(`seed ${seed}: pixel (${x}, ${y}) painted by group ${o - 1} (${f.groups[o - 1]?.key}), hit ${h ? `${h.group} ${f.groups[h.group]!.key} ${h.part}` : 'nothing'}`);
        }
      }
    }), { numRuns: 10 });
  });
});

describe('hitTest on hand-built frames', () => {
  const g = (key: string, x: number, hits: HitRegion[]): Group => ({ key, window: 1, bounds: { x, y: 0, w: 10, h: 10 }, layers: [], hits });
  const f = (...groups: Group[]): Frame => ({ width: 40, height: 10, clear: 0, groups, images: new Map() });

  it('takes the topmost group, and within it the region declared last; regions outside the group bounds do not count', () => {
    const a = g('a', 0, [{ x: 0, y: 0, w: 10, h: 10, window: 1, part: 'content' }, { x: 0, y: 0, w: 10, h: 3, window: 1, part: 'title' }]);
    const b = g('b', 5, [{ x: 5, y: 0, w: 10, h: 10, window: 2, part: 'content' }, { x: 0, y: 0, w: 40, h: 10, window: 2, part: 'close' }]);
    expect(hitTest(f(a, b), 2, 1)).toMatchObject({ window: 1, part: 'title', group: 0 });
    expect(hitTest(f(a, b), 2, 5)).toMatchObject({ window: 1, part: 'content' });
    expect(hitTest(f(a, b), 6, 1)).toMatchObject({ window: 2, part: 'close', group: 1 });
    expect(hitTest(f(b, a), 6, 1)).toMatchObject({ window: 1, part: 'title', group: 1 });
    expect(hitTest(f(a, b), 30, 1)).toBeNull();
    expect(hitTest(f(a, b), NaN, 1)).toBeNull();
    // Half-open boxes, like the rasterizer's pixel-center rule: x = 10 is outside a.
    expect(hitTest(f(a), 10, 1)).toBeNull();
    expect(hitTest(f(a), 9.99, 1)).not.toBeNull();
  });
});
