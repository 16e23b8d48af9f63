// What changed inside a window surface between two frames, independent of where the window is.
// Moving a window shifts every child by the same whole-pixel offset: that is no change to the
// surface's pixels, so nothing is re-rasterized or uploaded — only its quad moves.
import type { Layer, SurfaceLayer } from '../../scene/compositor/layers.ts';
import { sameShifted } from '../../scene/compositor/damage.ts';
import { lo, pixelRect, type IRect } from './surface-raster.ts';

const boxOf = (l: Layer): IRect => l.kind === 'text' ? pixelRect(l.x + l.bx, l.y + l.by, l.w, l.h) : pixelRect(l.x, l.y, l.w, l.h);

/**
 * Damage inside surface `next`, in surface-local pixels (0,0 = the surface's top-left pixel):
 * 'all' when it must be painted whole, else a list of rects (empty = unchanged).
 */
export function surfaceDamage(prev: SurfaceLayer | undefined, next: SurfaceLayer): 'all' | IRect[] {
  if (!prev) return 'all';
  const pp = pixelRect(prev.x, prev.y, prev.w, prev.h), np = pixelRect(next.x, next.y, next.w, next.h);
  if (pp.w !== np.w || pp.h !== np.h || prev.color !== next.color || prev.children.length !== next.children.length) return 'all';
  const dx = next.x - prev.x, dy = next.y - prev.y;
  // A fractional shift changes which pixels every edge covers.
  if (!Number.isInteger(dx) || !Number.isInteger(dy) || lo(next.x) - lo(prev.x) !== dx || lo(next.y) - lo(prev.y) !== dy) return 'all';
  const out: IRect[] = [];
  for (let i = 0; i < next.children.length; i++) {
    const a = prev.children[i]!, b = next.children[i]!;
    if (sameShifted(a, b, dx, dy)) continue;
    const ab = boxOf(a), bb = boxOf(b);
    out.push({ x: ab.x - pp.x, y: ab.y - pp.y, w: ab.w, h: ab.h }, { x: bb.x - np.x, y: bb.y - np.y, w: bb.w, h: bb.h });
  }
  return out;
}
