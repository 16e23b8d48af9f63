// The reference rasterizer: renders a frame's layer list into an RGBA buffer, in pure TypeScript.
// It is the oracle for damage (rendering only damaged rects onto the previous frame must equal a
// full render) and for the renderer's golden images. Simple rules, stated so a GPU renderer can
// match them:
// - A pixel (px, py) is covered by a box when its center (px + .5, py + .5) lies inside it.
// - Every layer is clipped to its own box; a surface's children to the surface; a group's layers
//   to the group's bounds; everything to the clip rect passed in (damage) and the screen.
// - Colors are 0xRRGGBBAA, straight alpha, blended src-over in 8-bit integer arithmetic:
//   out = (src·a + dst·(255−a) + 127) / 255, truncated. The framebuffer stays opaque.
// - Text: glyph i covers (x + gx[i], y + gy[i] − ascent, gw[i], size), inked by glyphPattern(glyphs[i]).
// - Images: nearest pixel, sampled at the pixel center.
import { layerBounds, type Frame, type Layer, type RGBAImage } from '../compositor/layers.ts';
import { intersect, isEmpty, outset, type Rect } from '../compositor/rect.ts';
import { glyphBit, glyphPattern } from './glyphs.ts';

export interface Raster { w: number; h: number; rgba: Uint8Array }

export const createRaster = (w: number, h: number): Raster => ({ w, h, rgba: new Uint8Array(w * h * 4) });
export const copyRaster = (r: Raster): Raster => ({ w: r.w, h: r.h, rgba: r.rgba.slice() });

export interface RenderOptions {
  /** Render only inside this rect (damage). Default: the whole frame. */
  clip?: Rect;
  /**
   * When given (w·h entries), receives for every pixel painted the index + 1 of the group that
   * painted it last (0 = only the clear color). Used to test that hit testing follows paint order.
   */
  owner?: Int32Array;
}

/** Pixel span [a, b) covered by the interval [x, x + w) under the pixel-center rule. */
const lo = (x: number): number => Math.ceil(x - 0.5);
/** The pixels a box covers, as an integer rect. */
const pixels = (r: Rect): Rect => ({ x: lo(r.x), y: lo(r.y), w: lo(r.x + r.w) - lo(r.x), h: lo(r.y + r.h) - lo(r.y) });

class Painter {
  owner: Int32Array | undefined;
  group = 0;
  constructor(readonly t: Raster, readonly images: ReadonlyMap<string, RGBAImage>) {}

  /** Pixel bounds of box ∩ clip as [x0, y0, x1, y1), or null when empty. */
  span(x: number, y: number, w: number, h: number, clip: Rect): [number, number, number, number] | null {
    const x0 = Math.max(lo(x), clip.x), y0 = Math.max(lo(y), clip.y);
    const x1 = Math.min(lo(x + w), clip.x + clip.w), y1 = Math.min(lo(y + h), clip.y + clip.h);
    return x0 < x1 && y0 < y1 ? [x0, y0, x1, y1] : null;
  }

  put(i: number, r: number, g: number, b: number, a: number): void {
    const d = this.t.rgba;
    const p = i * 4;
    if (a === 255) { d[p] = r; d[p + 1] = g; d[p + 2] = b; d[p + 3] = 255; }
    else if (a !== 0) {
      const ia = 255 - a;
      d[p] = ((r * a + d[p]! * ia + 127) / 255) | 0;
      d[p + 1] = ((g * a + d[p + 1]! * ia + 127) / 255) | 0;
      d[p + 2] = ((b * a + d[p + 2]! * ia + 127) / 255) | 0;
      d[p + 3] = 255;
    } else return;
    if (this.owner) this.owner[i] = this.group;
  }

  fill(x: number, y: number, w: number, h: number, color: number, clip: Rect): void {
    const s = this.span(x, y, w, h, clip);
    if (!s) return;
    const r = color >>> 24, g = (color >>> 16) & 255, b = (color >>> 8) & 255, a = color & 255;
    if (a === 0) return;
    const W = this.t.w;
    for (let py = s[1]; py < s[3]; py++) for (let px = s[0]; px < s[2]; px++) this.put(py * W + px, r, g, b, a);
  }

  layer(l: Layer, clip0: Rect): void {
    const clip = intersect(clip0, pixels(layerBounds(l)));
    if (isEmpty(clip)) return;
    switch (l.kind) {
      case 'rect': return this.fill(l.x, l.y, l.w, l.h, l.color, clip);
      case 'border': {
        const b = Math.min(l.width, l.w / 2, l.h / 2);
        this.fill(l.x, l.y, l.w, b, l.color, clip);
        this.fill(l.x, l.y + l.h - b, l.w, b, l.color, clip);
        this.fill(l.x, l.y + b, b, l.h - 2 * b, l.color, clip);
        this.fill(l.x + l.w - b, l.y + b, b, l.h - 2 * b, l.color, clip);
        return;
      }
      case 'surface':
        this.fill(l.x, l.y, l.w, l.h, l.color, clip);
        for (const c of l.children) this.layer(c, clip);
        return;
      case 'clip':
        for (const c of l.children) this.layer(c, clip);
        return;
      case 'text': return this.text(l, clip);
      case 'image': return this.image(l, clip);
    }
  }

  text(l: Extract<Layer, { kind: 'text' }>, clip: Rect): void {
    const r = l.color >>> 24, g = (l.color >>> 16) & 255, b = (l.color >>> 8) & 255, a = l.color & 255;
    if (a === 0) return;
    const W = this.t.w, size = l.size;
    for (let i = 0; i < l.glyphs.length; i++) {
      const gx = l.x + l.gx[i]!, gy = l.y + l.gy[i]! - l.ascent, gw = l.gw[i]!;
      const s = this.span(gx, gy, gw, size, clip);
      if (!s) continue;
      const pat = glyphPattern(l.glyphs[i]!);
      for (let py = s[1]; py < s[3]; py++) {
        const row = Math.min(6, Math.floor(((py + 0.5 - gy) * 7) / size));
        for (let px = s[0]; px < s[2]; px++) {
          const col = Math.min(4, Math.floor(((px + 0.5 - gx) * 5) / gw));
          if (glyphBit(pat, col, row)) this.put(py * W + px, r, g, b, a);
        }
      }
    }
  }

  image(l: Extract<Layer, { kind: 'image' }>, clip: Rect): void {
    const s = this.span(l.x, l.y, l.w, l.h, clip);
    if (!s) return;
    const img = this.images.get(l.image);
    if (!img || img.w <= 0 || img.h <= 0) {
      // A missing image is drawn as a magenta/black checker, loud on purpose.
      for (let py = s[1]; py < s[3]; py++) for (let px = s[0]; px < s[2]; px++) {
        const on = ((px >> 2) + (py >> 2)) & 1;
        this.put(py * this.t.w + px, on ? 255 : 0, 0, on ? 255 : 0, 255);
      }
      return;
    }
    for (let py = s[1]; py < s[3]; py++) {
      const sy = Math.min(img.h - 1, Math.floor(((py + 0.5 - l.y) * img.h) / l.h));
      for (let px = s[0]; px < s[2]; px++) {
        const sx = Math.min(img.w - 1, Math.floor(((px + 0.5 - l.x) * img.w) / l.w));
        const q = (sy * img.w + sx) * 4;
        this.put(py * this.t.w + px, img.rgba[q]!, img.rgba[q + 1]!, img.rgba[q + 2]!, img.rgba[q + 3]!);
      }
    }
  }
}

/**
 * Renders `frame` into `target` (which must be frame-sized): clears the clip rect to the frame's
 * clear color, then paints every group that reaches into it, bottom first.
 */
export function render(frame: Frame, target: Raster, opts: RenderOptions = {}): void {
  if (target.w !== frame.width || target.h !== frame.height) throw new RangeError(`raster is ${target.w}×${target.h}, frame is ${frame.width}×${frame.height}`);
  const screen = { x: 0, y: 0, w: frame.width, h: frame.height };
  const clip = opts.clip ? intersect(screen, outset(opts.clip)) : screen;
  if (isEmpty(clip)) return;
  const p = new Painter(target, frame.images);
  p.owner = opts.owner;
  p.group = 0;
  p.fill(clip.x, clip.y, clip.w, clip.h, (frame.clear & ~255) | 255, clip);
  for (let gi = 0; gi < frame.groups.length; gi++) {
    const g = frame.groups[gi]!;
    const gc = intersect(clip, pixels(g.bounds));
    if (isEmpty(gc)) continue;
    p.group = gi + 1;
    for (const l of g.layers) p.layer(l, gc);
  }
}

/** A full render into a new raster. */
export function renderFull(frame: Frame, owner?: Int32Array): Raster {
  const r = createRaster(frame.width, frame.height);
  render(frame, r, owner ? { owner } : {});
  return r;
}

/** Renders only `damage` onto `previous` (in place): what a damage-driven renderer does. */
export function renderDamage(frame: Frame, previous: Raster, damage: readonly Rect[]): void {
  for (const d of damage) render(frame, previous, { clip: d });
}

/** Index of the first differing pixel, or -1. */
export function firstDifference(a: Raster, b: Raster): number {
  if (a.w !== b.w || a.h !== b.h) return 0;
  for (let i = 0; i < a.rgba.length; i++) if (a.rgba[i] !== b.rgba[i]) return i >> 2;
  return -1;
}
