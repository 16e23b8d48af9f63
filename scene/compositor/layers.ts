// The layer list: what the renderer draws and the reference rasterizer renders, in paint order
// (first = bottom). Coordinates are screen pixels; colors are 0xRRGGBBAA (straight alpha).
// Layers are immutable once built: the compositor reuses a layer object when its input did not
// change, so `===` means "unchanged" and damage can skip it without looking inside.
import type { Rect } from './rect.ts';

/** A filled box. */
export interface RectLayer { kind: 'rect'; key: string; x: number; y: number; w: number; h: number; color: number }
/** A box outline of `width` pixels drawn inside the box. */
export interface BorderLayer { kind: 'border'; key: string; x: number; y: number; w: number; h: number; width: number; color: number }
/**
 * A run of glyphs. `x, y` is the run's origin; glyph i's baseline starts at (x + gx[i], y + gy[i])
 * and its box is (x + gx[i], y + gy[i] − ascent, gw[i], size). Positions are relative, so moving
 * a window moves its runs without touching the glyph arrays (they are shared between frames).
 * Whitespace glyphs are left out. `w, h` bound every glyph box (relative to x, y).
 */
export interface TextLayer {
  kind: 'text'; key: string; x: number; y: number; w: number; h: number; color: number;
  /** The shaper's font key and size in px; glyph ids are that font's. */
  font: string; size: number;
  /** Distance from a glyph box's top to its baseline. */
  ascent: number;
  glyphs: Uint32Array;
  gx: Float32Array; gy: Float32Array; gw: Float32Array;
  /** Offset of the bounds from the origin: bounds = (x + bx, y + by, w, h). */
  bx: number; by: number;
}
/** An image from the image table (`images` in the frame), scaled to the box (nearest pixel). */
export interface ImageLayer { kind: 'image'; key: string; x: number; y: number; w: number; h: number; image: string }
/**
 * A window surface: a background and its content layers (screen coordinates), clipped to the
 * surface box. `window` is the session window id.
 */
export interface SurfaceLayer {
  kind: 'surface'; key: string; window: number; x: number; y: number; w: number; h: number;
  color: number; children: readonly Layer[];
}
/** Clips its children (screen coordinates) to its box: a node with overflow hidden or scroll. */
export interface ClipLayer { kind: 'clip'; key: string; x: number; y: number; w: number; h: number; children: readonly Layer[] }
export type Layer = RectLayer | BorderLayer | TextLayer | ImageLayer | SurfaceLayer | ClipLayer;

/** A region that input can hit, declared next to the content it belongs to. */
export interface HitRegion {
  x: number; y: number; w: number; h: number;
  /** The window it belongs to, 0 for the session layout (desktop, panel). */
  window: number;
  part: HitPart;
}
export type HitPart =
  | 'desktop' | 'panel' | 'panel-button' | 'title' | 'close' | 'maximize' | 'minimize' | 'content'
  | 'resize-n' | 'resize-s' | 'resize-e' | 'resize-w' | 'resize-ne' | 'resize-nw' | 'resize-se' | 'resize-sw';

/**
 * One top-level group: everything one window (or one piece of the session layout) paints, with
 * its hit regions. Groups are the unit of z-order and of reuse between frames.
 */
export interface Group {
  key: string;
  window: number;
  /** Everything the group paints lies inside `bounds`. */
  bounds: Rect;
  layers: readonly Layer[];
  hits: readonly HitRegion[];
}

export interface RGBAImage { w: number; h: number; rgba: Uint8Array }

export interface Frame {
  width: number; height: number;
  /** The clear color under everything. */
  clear: number;
  /** Paint order: first is bottom. */
  groups: readonly Group[];
  /** Images referenced by image layers, by name. */
  images: ReadonlyMap<string, RGBAImage>;
}

/** Bounds of a layer in screen coordinates. */
export function layerBounds(l: Layer): Rect {
  if (l.kind === 'text') return { x: l.x + l.bx, y: l.y + l.by, w: l.w, h: l.h };
  return { x: l.x, y: l.y, w: l.w, h: l.h };
}

/** The layers of a frame flattened in paint order (surfaces stay as one layer). */
export function* paintOrder(f: Frame): Generator<Layer> {
  for (const g of f.groups) yield* g.layers;
}
