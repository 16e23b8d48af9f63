// What changed inside a window surface between two frames, independent of where the window is.
// Moving a window shifts every child by the same whole-pixel offset: that is no change to the
// surface's pixels, so nothing is re-rasterized or uploaded — only its quad moves.
import type { Layer, SurfaceLayer } from '../../scene/compositor/layers.ts';
import { lo, pixelRect, type IRect } from './surface-raster.ts';

function sameArray(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Whether `b` paints what `a` paints, shifted by (dx, dy). */
export function sameShifted(a: Layer, b: Layer, dx: number, dy: number): boolean {
  if (a === b) return dx === 0 && dy === 0;
  if (a.kind !== b.kind || b.x !== a.x + dx || b.y !== a.y + dy || a.w !== b.w || a.h !== b.h) return false;
  switch (a.kind) {
    case 'rect': return a.color === (b as typeof a).color;
    case 'border': return a.color === (b as typeof a).color && a.width === (b as typeof a).width;
    case 'image': return a.image === (b as typeof a).image;
    case 'text': {
      const t = b as typeof a;
      return a.color === t.color && a.size === t.size && a.ascent === t.ascent && a.font === t.font && a.bx === t.bx && a.by === t.by
        && sameArray(a.glyphs, t.glyphs) && sameArray(a.gx, t.gx) && sameArray(a.gy, t.gy) && sameArray(a.gw, t.gw);
    }
    case 'surface':
    case 'clip': {
      const s = b as typeof a;
      if ((a.kind === 'surface' && a.color !== (s as typeof a).color) || a.children.length !== s.children.length) return false;
      for (let i = 0; i < a.children.length; i++) if (!sameShifted(a.children[i]!, s.children[i]!, dx, dy)) return false;
      return true;
    }
  }
}

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
