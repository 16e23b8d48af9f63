// Integer-friendly axis-aligned rectangles and the damage merge rule.
// A rect is half-open: it covers x <= px < x + w, y <= py < y + h. Empty when w <= 0 or h <= 0.

export interface Rect { x: number; y: number; w: number; h: number }

export const rect = (x: number, y: number, w: number, h: number): Rect => ({ x, y, w, h });
export const isEmpty = (r: Rect): boolean => !(r.w > 0 && r.h > 0);
export const area = (r: Rect): number => (isEmpty(r) ? 0 : r.w * r.h);

export function intersect(a: Rect, b: Rect): Rect {
  const x = Math.max(a.x, b.x), y = Math.max(a.y, b.y);
  const r = Math.min(a.x + a.w, b.x + b.w), btm = Math.min(a.y + a.h, b.y + b.h);
  return { x, y, w: Math.max(0, r - x), h: Math.max(0, btm - y) };
}

export const overlaps = (a: Rect, b: Rect): boolean =>
  a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h && !isEmpty(a) && !isEmpty(b);

/** The bounding box of two rects (an empty rect contributes nothing). */
export function bbox(a: Rect, b: Rect): Rect {
  if (isEmpty(a)) return { ...b };
  if (isEmpty(b)) return { ...a };
  const x = Math.min(a.x, b.x), y = Math.min(a.y, b.y);
  return { x, y, w: Math.max(a.x + a.w, b.x + b.w) - x, h: Math.max(a.y + a.h, b.y + b.h) - y };
}

export const containsPoint = (r: Rect, px: number, py: number): boolean =>
  px >= r.x && px < r.x + r.w && py >= r.y && py < r.y + r.h;

export const containsRect = (outer: Rect, inner: Rect): boolean =>
  isEmpty(inner) || (inner.x >= outer.x && inner.y >= outer.y && inner.x + inner.w <= outer.x + outer.w && inner.y + inner.h <= outer.y + outer.h);

/** Smallest integer rect covering `r` (damage is in whole pixels). */
export function outset(r: Rect): Rect {
  const x = Math.floor(r.x), y = Math.floor(r.y);
  return { x, y, w: Math.ceil(r.x + r.w) - x, h: Math.ceil(r.y + r.h) - y };
}

export const equalRect = (a: Rect, b: Rect): boolean => a.x === b.x && a.y === b.y && a.w === b.w && a.h === b.h;

/**
 * The damage merge rule (Redox Orbital's): two rects are replaced by their bounding box only when
 * that box is no larger than their summed areas — so merging never repaints much that is clean,
 * and a rect contained in another always disappears. Repeats until no pair merges; the result
 * covers every input pixel. Rects are first snapped out to whole pixels and clipped to `clip`.
 * O(n²) per pass; damage lists are short (tens), and long ones collapse fast.
 */
export function mergeDamage(rects: readonly Rect[], clip?: Rect): Rect[] {
  let list: Rect[] = [];
  for (const r0 of rects) {
    const r = clip ? intersect(outset(r0), clip) : outset(r0);
    if (!isEmpty(r)) list.push(r);
  }
  let merged = true;
  while (merged) {
    merged = false;
    outer: for (let i = 0; i < list.length; i++) {
      for (let j = i + 1; j < list.length; j++) {
        const a = list[i]!, b = list[j]!;
        const u = bbox(a, b);
        if (area(u) <= area(a) + area(b)) {
          list[i] = u;
          list.splice(j, 1);
          merged = true;
          break outer;
        }
      }
    }
  }
  // Canonical order, so equal damage compares equal.
  list = list.sort((a, b) => a.y - b.y || a.x - b.x || a.w - b.w || a.h - b.h);
  return list;
}
