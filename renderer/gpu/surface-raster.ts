// CPU rasterization of window surfaces into their slot of the surface page, only inside damaged
// rects. The rules are the reference rasterizer's (scene/raster/raster.ts): pixel-center coverage,
// every layer clipped to its box, src-over in 8-bit integer arithmetic; only the glyph bitmaps
// come from a GlyphSource, so with ReferenceGlyphs the pixels equal the reference exactly.
import type { Layer, SurfaceLayer, RGBAImage } from '../../scene/compositor/layers.ts';
import type { GlyphBitmap } from './glyph-source.ts';

export interface IRect { x: number; y: number; w: number; h: number }

/** First pixel covered by an edge at x (pixel-center rule). */
export const lo = (x: number): number => Math.ceil(x - 0.5);

/** The integer pixel rect a box covers. */
export const pixelRect = (x: number, y: number, w: number, h: number): IRect => ({ x: lo(x), y: lo(y), w: lo(x + w) - lo(x), h: lo(y + h) - lo(y) });

export function intersectI(a: IRect, b: IRect): IRect {
  const x = Math.max(a.x, b.x), y = Math.max(a.y, b.y);
  return { x, y, w: Math.max(0, Math.min(a.x + a.w, b.x + b.w) - x), h: Math.max(0, Math.min(a.y + a.h, b.y + b.h) - y) };
}

export interface RasterTarget {
  data: Uint8Array;
  /** Row length of `data` in pixels. */
  stride: number;
  /** Where screen pixel (ox, oy) of the surface lands in `data`. */
  slotX: number; slotY: number;
  /** The surface's pixel origin on screen. */
  ox: number; oy: number;
}

/**
 * The pixels a layer may paint. Real glyphs drawn 1:1 may reach a pixel or two past the box the
 * shaper gave them (a low underscore, a wide W): text gets 2 px of slack then (4 below).
 */
export function layerPixels(l: Layer, pixelGlyphs: boolean): IRect {
  if (l.kind !== 'text') return pixelRect(l.x, l.y, l.w, l.h);
  const r = pixelRect(l.x + l.bx, l.y + l.by, l.w, l.h);
  return pixelGlyphs ? { x: r.x - 2, y: r.y - 2, w: r.w + 4, h: r.h + 6 } : r;
}

export type GlyphLookup = ((id: number, font: string, size: number, boxW: number) => GlyphBitmap) & { fit?: 'box' | 'pixel' };

class CpuPainter {
  constructor(readonly t: RasterTarget, readonly glyph: GlyphLookup, readonly images: ReadonlyMap<string, RGBAImage>) {}

  private put(px: number, py: number, r: number, g: number, b: number, a: number): void {
    const t = this.t;
    const p = ((py - t.oy + t.slotY) * t.stride + (px - t.ox + t.slotX)) * 4;
    const d = t.data;
    if (a === 255) { d[p] = r; d[p + 1] = g; d[p + 2] = b; d[p + 3] = 255; return; }
    if (a === 0) return;
    const ia = 255 - a;
    d[p] = ((r * a + d[p]! * ia + 127) / 255) | 0;
    d[p + 1] = ((g * a + d[p + 1]! * ia + 127) / 255) | 0;
    d[p + 2] = ((b * a + d[p + 2]! * ia + 127) / 255) | 0;
    d[p + 3] = Math.max(d[p + 3]!, a);
  }

  fill(x: number, y: number, w: number, h: number, color: number, clip: IRect): void {
    const s = intersectI(pixelRect(x, y, w, h), clip);
    const a = color & 255;
    if (s.w <= 0 || s.h <= 0 || a === 0) return;
    const r = color >>> 24, g = (color >>> 16) & 255, b = (color >>> 8) & 255;
    for (let py = s.y; py < s.y + s.h; py++) for (let px = s.x; px < s.x + s.w; px++) this.put(px, py, r, g, b, a);
  }

  /** Overwrites (no blending): the surface background under everything. */
  clear(clip: IRect, color: number): void {
    const t = this.t, d = t.data;
    const r = color >>> 24, g = (color >>> 16) & 255, b = (color >>> 8) & 255, a = color & 255;
    for (let py = clip.y; py < clip.y + clip.h; py++) {
      let p = ((py - t.oy + t.slotY) * t.stride + (clip.x - t.ox + t.slotX)) * 4;
      for (let i = 0; i < clip.w; i++, p += 4) { d[p] = r; d[p + 1] = g; d[p + 2] = b; d[p + 3] = a; }
    }
  }

  layer(l: Layer, clip0: IRect): void {
    const clip = intersectI(clip0, layerPixels(l, this.glyph.fit === 'pixel'));
    if (clip.w <= 0 || clip.h <= 0) return;
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

  text(l: Extract<Layer, { kind: 'text' }>, clip: IRect): void {
    const ca = l.color & 255;
    if (ca === 0) return;
    const r = l.color >>> 24, g = (l.color >>> 16) & 255, b = (l.color >>> 8) & 255;
    const size = l.size;
    for (let i = 0; i < l.glyphs.length; i++) {
      const gx = l.x + l.gx[i]!, gy = l.y + l.gy[i]! - l.ascent, gw = l.gw[i]!;
      if (this.glyph.fit === 'pixel') {
        const bm = this.glyph(l.glyphs[i]!, l.font, size, gw);
        const x0 = Math.round(gx), y0 = Math.round(gy);
        const s = intersectI({ x: x0, y: y0, w: bm.w, h: bm.h }, clip);
        for (let py = s.y; py < s.y + s.h; py++) for (let px = s.x; px < s.x + s.w; px++) {
          const cov = bm.alpha[(py - y0) * bm.w + (px - x0)]!;
          if (cov) this.put(px, py, r, g, b, cov === 255 ? ca : ((ca * cov + 127) / 255) | 0);
        }
        continue;
      }
      const s = intersectI(pixelRect(gx, gy, gw, size), clip);
      if (s.w <= 0 || s.h <= 0) continue;
      const bm = this.glyph(l.glyphs[i]!, l.font, size, gw);
      for (let py = s.y; py < s.y + s.h; py++) {
        const row = Math.min(bm.h - 1, Math.floor(((py + 0.5 - gy) * bm.h) / size));
        for (let px = s.x; px < s.x + s.w; px++) {
          const col = Math.min(bm.w - 1, Math.floor(((px + 0.5 - gx) * bm.w) / gw));
          const cov = bm.alpha[row * bm.w + col]!;
          if (cov === 0) continue;
          this.put(px, py, r, g, b, cov === 255 ? ca : ((ca * cov + 127) / 255) | 0);
        }
      }
    }
  }

  image(l: Extract<Layer, { kind: 'image' }>, clip: IRect): void {
    const s = intersectI(pixelRect(l.x, l.y, l.w, l.h), clip);
    if (s.w <= 0 || s.h <= 0) return;
    const img = this.images.get(l.image);
    for (let py = s.y; py < s.y + s.h; py++) {
      for (let px = s.x; px < s.x + s.w; px++) {
        if (!img || img.w <= 0 || img.h <= 0) { const on = ((px >> 2) + (py >> 2)) & 1; this.put(px, py, on ? 255 : 0, 0, on ? 255 : 0, 255); continue; }
        const sy = Math.min(img.h - 1, Math.floor(((py + 0.5 - l.y) * img.h) / l.h));
        const sx = Math.min(img.w - 1, Math.floor(((px + 0.5 - l.x) * img.w) / l.w));
        const q = (sy * img.w + sx) * 4;
        this.put(px, py, img.rgba[q]!, img.rgba[q + 1]!, img.rgba[q + 2]!, img.rgba[q + 3]!);
      }
    }
  }
}

/**
 * Paints `damage` (screen pixels, inside the surface's pixel rect) of surface `s` into the target.
 * Returns the number of pixels painted.
 */
export function rasterSurface(s: SurfaceLayer, damage: IRect, t: RasterTarget, glyph: GlyphLookup, images: ReadonlyMap<string, RGBAImage>): number {
  const clip = intersectI(damage, pixelRect(s.x, s.y, s.w, s.h));
  if (clip.w <= 0 || clip.h <= 0) return 0;
  const p = new CpuPainter(t, glyph, images);
  p.clear(clip, s.color);
  for (const c of s.children) p.layer(c, clip);
  return clip.w * clip.h;
}
