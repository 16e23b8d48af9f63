// Text layers for the session's own windows, placed the way FixedShaper places them (glyph id =
// code point, 0.6 em advance, ascent 0.8 em), so they look like the scene's text next to them.
import type { Layer, TextLayer } from '../../scene/index.ts';

export const FONT = 'mono';
export const advance = (size: number): number => size * 0.6;

/** One line of text with its top-left at (x, y); spaces are skipped; clipped to maxChars. */
export function textLine(key: string, s: string, x: number, y: number, size: number, color: number, maxChars = 1000): TextLayer | null {
  const ids: number[] = [], gx: number[] = [];
  const adv = advance(size);
  let col = 0;
  for (const ch of s) {
    if (col >= maxChars) break;
    const cp = ch.codePointAt(0)!;
    if (cp === 9) { col += 2; continue; }
    if (cp !== 32 && cp >= 32) { ids.push(cp); gx.push(col * adv); }
    col++;
  }
  if (!ids.length) return null;
  const ascent = size * 0.8;
  return {
    kind: 'text', key, x, y: y + ascent, w: col * adv, h: size, color, font: FONT, size, ascent,
    glyphs: Uint32Array.from(ids), gx: Float32Array.from(gx), gy: new Float32Array(ids.length), gw: new Float32Array(ids.length).fill(adv),
    bx: 0, by: -ascent,
  };
}

export function pushText(out: Layer[], key: string, s: string, x: number, y: number, size: number, color: number, maxChars?: number): void {
  const t = textLine(key, s, x, y, size, color, maxChars);
  if (t) out.push(t);
}

/** How many characters fit in `w` px. */
export const charsIn = (w: number, size: number): number => Math.max(0, Math.floor(w / advance(size)));
