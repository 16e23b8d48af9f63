// Hit testing in reverse paint order: the topmost group first, and within a group the region
// declared last first (regions are declared in paint order next to what they cover, as Flatland
// declares hit regions next to content). A group's regions are clipped to its bounds, as its
// pixels are.
import type { Frame, HitRegion } from '../compositor/layers.ts';
import { containsPoint } from '../compositor/rect.ts';

export interface Hit extends HitRegion {
  /** Index of the group in paint order. */
  group: number;
}

export function hitTest(frame: Frame, x: number, y: number): Hit | null {
  if (!Number.isFinite(x) || !Number.isFinite(y)) return null;
  for (let gi = frame.groups.length - 1; gi >= 0; gi--) {
    const g = frame.groups[gi]!;
    if (!containsPoint(g.bounds, x, y)) continue;
    for (let i = g.hits.length - 1; i >= 0; i--) {
      const h = g.hits[i]!;
      if (containsPoint(h, x, y)) return { ...h, group: gi };
    }
  }
  return null;
}
