// App icons, generated from the app name: 16×16 RGBA, a colored tile with a 4×4 pattern. Pure
// integer arithmetic, so the renderer and the reference rasterizer get the very same pixels.
import type { RGBAImage } from './layers.ts';

export const ICON_SIZE = 16;

function hash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

export const iconName = (app: string): string => `icon:${app}`;

export function makeIcon(app: string): RGBAImage {
  const h = hash(app);
  const r = 64 + (h & 127), g = 64 + ((h >>> 7) & 127), b = 64 + ((h >>> 14) & 127);
  const rgba = new Uint8Array(ICON_SIZE * ICON_SIZE * 4);
  for (let y = 0; y < ICON_SIZE; y++) {
    for (let x = 0; x < ICON_SIZE; x++) {
      const p = (y * ICON_SIZE + x) * 4;
      const edge = x === 0 || y === 0 || x === ICON_SIZE - 1 || y === ICON_SIZE - 1;
      const inner = x >= 4 && x < 12 && y >= 4 && y < 12 && ((h >>> (((y - 4) >> 1) * 4 + ((x - 4) >> 1))) & 1) === 1;
      const k = edge ? 0.6 : inner ? 1.6 : 1;
      rgba[p] = Math.min(255, Math.round(r * k)); rgba[p + 1] = Math.min(255, Math.round(g * k)); rgba[p + 2] = Math.min(255, Math.round(b * k)); rgba[p + 3] = 255;
    }
  }
  return { w: ICON_SIZE, h: ICON_SIZE, rgba };
}
