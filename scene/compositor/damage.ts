// Damage: the screen regions whose pixels may differ between two frames. Correct by construction
// against the reference rasterizer, which clips every layer to its box and every group to its
// bounds: a region outside every changed box cannot change. Rules:
// - a group that appears or disappears damages its bounds;
// - a group whose layers differ damages, layer by layer, the old and the new box of each layer that
//   differs (surfaces and clips with an unchanged box recurse into their children; a text run at the
//   same origin damages only its glyphs from the first one that differs; a border that only changed
//   color, its four strips); when the layer
//   count or the group bounds differ, the old and the new group bounds;
// - two groups that overlap and swapped paint order damage their overlap;
// - a different screen size or clear color, or an image replaced under its name, damages everything.
// The rects are then merged by mergeDamage's rule (bounding box no larger than the summed areas).
import { layerBounds, type Frame, type Group, type Layer, type TextLayer } from './layers.ts';
import { equalRect, intersect, isEmpty, mergeDamage, overlaps, type Rect } from './rect.ts';

const box = layerBounds;

function sameArray(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Whether two layers paint the same pixels (structural equality). */
export const sameLayer = (a: Layer, b: Layer): boolean => sameShifted(a, b, 0, 0);

/** Whether `b` paints what `a` paints, shifted by (dx, dy) (a moved window's contents). */
export function sameShifted(a: Layer, b: Layer, dx: number, dy: number): boolean {
  if (a === b) return dx === 0 && dy === 0;
  if (a.kind !== b.kind || b.x !== a.x + dx || b.y !== a.y + dy || a.w !== b.w || a.h !== b.h) return false;
  switch (a.kind) {
    case 'rect': return a.color === (b as typeof a).color;
    case 'border': return a.color === (b as typeof a).color && a.width === (b as typeof a).width;
    case 'image': return a.image === (b as typeof a).image;
    case 'text': {
      const t = b as typeof a;
      return a.color === t.color && a.size === t.size && a.ascent === t.ascent && a.font === t.font && a.bx === t.bx && a.by === t.by && sameArray(a.glyphs, t.glyphs) && sameArray(a.gx, t.gx) && sameArray(a.gy, t.gy) && sameArray(a.gw, t.gw);
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

function firstDifferentGlyph(a: TextLayer, b: TextLayer): number {
  const n = Math.min(a.glyphs.length, b.glyphs.length);
  let i = 0;
  while (i < n && a.glyphs[i] === b.glyphs[i] && a.gx[i] === b.gx[i] && a.gy[i] === b.gy[i] && a.gw[i] === b.gw[i]) i++;
  return i;
}

/** The box of glyphs from..end of a run (what the rasterizer inks for them), or null. */
function glyphsBox(t: TextLayer, from: number): Rect | null {
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (let i = from; i < t.glyphs.length; i++) {
    const gx = t.x + t.gx[i]!, gy = t.y + t.gy[i]! - t.ascent;
    if (gx < x0) x0 = gx;
    if (gy < y0) y0 = gy;
    if (gx + t.gw[i]! > x1) x1 = gx + t.gw[i]!;
    if (gy + t.size > y1) y1 = gy + t.size;
  }
  return x0 === Infinity ? null : { x: x0, y: y0, w: x1 - x0, h: y1 - y0 };
}

/** The four strips a border paints (rounded out to whole pixels by the merge). */
function strips(b: { x: number; y: number; w: number; h: number; width: number }): Rect[] {
  const t = Math.ceil(Math.min(b.width, b.w / 2, b.h / 2)) + 1;
  return [
    { x: b.x, y: b.y, w: b.w, h: t }, { x: b.x, y: b.y + b.h - t, w: b.w, h: t },
    { x: b.x, y: b.y, w: t, h: b.h }, { x: b.x + b.w - t, y: b.y, w: t, h: b.h },
  ];
}

function layersDamage(a: readonly Layer[], b: readonly Layer[], out: Rect[], clipA: Rect, clipB: Rect): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!, y = b[i]!;
    if (sameLayer(x, y)) continue;
    if ((x.kind === 'surface' || x.kind === 'clip') && x.kind === y.kind && (x.kind !== 'surface' || x.color === (y as typeof x).color) && equalRect(box(x), box(y)) &&
        layersDamage(x.children, y.children, out, intersect(clipA, box(x)), intersect(clipB, box(y)))) continue;
    if (x.kind === 'text' && y.kind === 'text' && x.x === y.x && x.y === y.y && x.color === y.color && x.size === y.size && x.ascent === y.ascent && x.font === y.font) {
      // Typing changes the tail of a run: damage the glyphs from the first that differs on.
      const i = firstDifferentGlyph(x, y);
      const a = glyphsBox(x, i), b = glyphsBox(y, i);
      if (a) out.push(intersect(a, clipA));
      if (b) out.push(intersect(b, clipB));
      continue;
    }
    if (x.kind === 'border' && y.kind === 'border' && equalRect(box(x), box(y)) && x.width === y.width) {
      // Only the frame's color changed (focus): its four strips, not the whole box.
      for (const r of strips(x)) out.push(intersect(r, clipB));
      continue;
    }
    out.push(intersect(box(x), clipA), intersect(box(y), clipB));
  }
  return true;
}

function groupDamage(a: Group, b: Group, out: Rect[]): void {
  if (a === b) return;
  if (!equalRect(a.bounds, b.bounds) || !layersDamage(a.layers, b.layers, out, a.bounds, b.bounds)) out.push(a.bounds, b.bounds);
}

/** Images may be added between frames; one that changed under the same name repaints everything. */
function imagesKept(prev: Frame, next: Frame): boolean {
  if (prev.images === next.images) return true;
  for (const [k, v] of prev.images) { const n = next.images.get(k); if (n !== undefined && n !== v) return false; }
  return true;
}

/** The damage from `prev` to `next` (null prev = everything), merged and clipped to the screen. */
export function computeDamage(prev: Frame | null, next: Frame): Rect[] {
  const screen = { x: 0, y: 0, w: next.width, h: next.height };
  if (!prev || prev.width !== next.width || prev.height !== next.height || prev.clear !== next.clear || !imagesKept(prev, next)) return [screen];
  const out: Rect[] = [];
  const before = new Map<string, number>();
  prev.groups.forEach((g, i) => before.set(g.key, i));
  const common: { g: Group; prevIndex: number }[] = [];
  const seen = new Set<string>();
  for (const g of next.groups) {
    seen.add(g.key);
    const i = before.get(g.key);
    if (i === undefined) { out.push(g.bounds); continue; }
    groupDamage(prev.groups[i]!, g, out);
    common.push({ g, prevIndex: i });
  }
  for (const g of prev.groups) if (!seen.has(g.key)) out.push(g.bounds);
  // Paint-order swaps: a pair now in the order (i below j) that was the other way round.
  for (let i = 0; i < common.length; i++) {
    for (let j = i + 1; j < common.length; j++) {
      const a = common[i]!, b = common[j]!;
      if (a.prevIndex > b.prevIndex && overlaps(a.g.bounds, b.g.bounds)) out.push(intersect(a.g.bounds, b.g.bounds));
    }
  }
  return mergeDamage(out.filter((r) => !isEmpty(r)), screen);
}
