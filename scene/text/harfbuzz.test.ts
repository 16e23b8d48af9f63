import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SceneError, SceneTree } from '../tree.ts';
import { HarfBuzzShaper } from './harfbuzz.ts';

const fontBytes = new Uint8Array(readFileSync(new URL('../fonts/DejaVuSans.ttf', import.meta.url)));
const shaper = new HarfBuzzShaper();
shaper.addFont('', fontBytes);

describe('HarfBuzz shaping with the shipped DejaVu Sans', () => {
  it('gives the golden glyph ids and advances (same numbers in every runtime)', () => {
    const r = shaper.shape('Hello', '', 16);
    expect(Array.from(r.glyphs)).toEqual([43, 72, 79, 79, 82]);
    // DejaVu Sans: upem 2048; 'H' advances 1540 units = 12.03125 px at 16 px.
    expect(r.advances[0]).toBe(1540 * 16 / 2048);
    expect(Array.from(r.clusters)).toEqual([0, 1, 2, 3, 4]);
  });

  it('applies ligatures and kerning from the font tables', () => {
    const lig = shaper.shape('office', '', 16);
    expect(lig.glyphs.length).toBe(4); // o, ffi ligature, c, e
    expect(Array.from(lig.clusters)).toEqual([0, 1, 4, 5]);
    const av = shaper.shape('AV', '', 100), a = shaper.shape('A', '', 100);
    expect(av.advances[0]).toBeLessThan(a.advances[0]!); // kerned pair
  });

  it('keeps UTF-16 clusters for astral characters', () => {
    const r = shaper.shape('a😀b', '', 16);
    expect(Array.from(r.clusters)).toEqual([0, 1, 3]);
  });

  it('rejects bytes that are not a font', () => {
    const s = new HarfBuzzShaper();
    expect(() => s.addFont('x', new Uint8Array([1, 2, 3, 4]))).toThrow(SceneError);
    expect(() => s.shape('a', 'x', 12)).toThrow(SceneError);
  });

  it('lays text out in the tree: measured width is the sum of advances, wrapping keeps lines within the box', () => {
    const t = new SceneTree({ text: shaper });
    const a = t.createText('Hello world', { fontSize: 16 });
    const row = t.create('container', { flexDirection: 'row', alignItems: 'flex-start' });
    t.appendChild(t.root, row); t.appendChild(row, a);
    t.layout(1000, 500);
    const r = shaper.shape('Hello world', '', 16);
    const width = r.advances.reduce((x, y) => x + y, 0);
    expect(t.box(a).width).toBeCloseTo(width, 9);
    const m = shaper.metrics('', 16);
    expect(t.box(a).height).toBeCloseTo(m.ascent + m.descent + m.lineGap, 9);
    expect(t.textLayout(a)!.lineStarts.length).toBe(1);
    t.setStyle(a, { width: 60 });
    t.layout(1000, 500);
    const tl = t.textLayout(a)!;
    expect(tl.lineStarts.length).toBe(2);
    expect(tl.glyphs.length).toBe(r.glyphs.length);
    expect(tl.x[tl.lineStarts[1]!]).toBe(0);
    expect(tl.y[tl.lineStarts[1]!]! - tl.y[0]!).toBeCloseTo(tl.lineHeight, 9);
  });

  it('every line fits its width unless a single word is wider (property)', () => {
    const words = ['a', 'window', 'terminal', 'Orbital', 'fi', 'AVA', 'x', 'lorem', 'ipsum', 'Ω', 'мир'];
    fc.assert(fc.property(fc.array(fc.constantFrom(...words), { minLength: 1, maxLength: 12 }), fc.integer({ min: 10, max: 300 }), (ws, maxW) => {
      const t = new SceneTree({ text: shaper });
      const id = t.createText(ws.join(' '), { fontSize: 14 }, { width: maxW });
      t.appendChild(t.root, id);
      t.layout(1000, 1000);
      const tl = t.textLayout(id)!;
      const starts = [...tl.lineStarts, tl.glyphs.length];
      const text = ws.join(' ');
      for (let l = 0; l + 1 < starts.length; l++) {
        const s = starts[l]!, e = starts[l + 1]!;
        // Ink extent of the line: the end of its last non-space glyph.
        let ink = 0;
        const run = shaper.shape(text, '', 14);
        for (let g = s; g < e; g++) if (text[tl.clusters[g]!] !== ' ') ink = tl.x[g]! + run.advances[g]!;
        const oneWord = !text.slice(tl.clusters[s]!, e < tl.glyphs.length ? tl.clusters[e]! : text.length).trim().includes(' ');
        expect(ink <= maxW + 1e-3 || oneWord).toBe(true);
      }
    }), { numRuns: 100 });
  });
});
