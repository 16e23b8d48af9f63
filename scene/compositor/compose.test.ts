import { describe, expect, it } from 'vitest';
import type { FontMetrics, ShapedRun, TextShaper } from '../text/lines.ts';
import { applyCommit, sessionReducer } from '../session/reducer.ts';
import { SessionScene } from './compose.ts';
import type { Frame, Layer, TextLayer } from './layers.ts';

/** Glyph = code point; advance depends on the character, so boxes differ glyph by glyph. */
class VaryingShaper implements TextShaper {
  shape(text: string, _font: string, size: number): ShapedRun {
    const cps = Array.from(text, (c) => c.codePointAt(0)!);
    const cl: number[] = [];
    let i = 0;
    for (const c of text) { cl.push(i); i += c.length; }
    return {
      glyphs: Uint32Array.from(cps), advances: Float64Array.from(cps, (c) => size * (0.3 + (c % 7) / 10)),
      offsetsX: new Float64Array(cps.length), offsetsY: new Float64Array(cps.length), clusters: Uint32Array.from(cl),
    };
  }
  metrics(_f: string, size: number): FontMetrics { return { ascent: size * 0.75, descent: size * 0.25, lineGap: 0 }; }
}

function texts(f: Frame): TextLayer[] {
  const out: TextLayer[] = [];
  const walk = (ls: readonly Layer[]) => { for (const l of ls) { if (l.kind === 'text') out.push(l); if (l.kind === 'surface' || l.kind === 'clip') walk(l.children); } };
  for (const g of f.groups) walk(g.layers);
  return out;
}

describe('SessionScene', () => {
  it('paints desktop, background and normal windows, the panel, then overlay windows; minimized windows not at all', () => {
    const s = sessionReducer.init();
    applyCommit(s, 0, { action: 'window.open', args: { app: 'a', title: 'over', band: 'overlay' } });
    applyCommit(s, 1, { action: 'window.open', args: { app: 'a', title: 'n1' } });
    applyCommit(s, 2, { action: 'window.open', args: { app: 'a', title: 'bg', band: 'background' } });
    applyCommit(s, 3, { action: 'window.open', args: { app: 'a', title: 'min' } });
    applyCommit(s, 4, { action: 'window.minimize', args: { id: 4 } });
    const f = new SessionScene().update(s);
    expect(f.groups.map((g) => g.key)).toEqual(['desktop', 'w3', 'w2', 'panel', 'w1']);
    // The panel has a button for every window, minimized ones included.
    expect(f.groups.find((g) => g.key === 'panel')!.hits.filter((h) => h.part === 'panel-button').map((h) => h.window).sort()).toEqual([1, 2, 3, 4]);
  });

  it("glyph boxes are the shaper's advances, whitespace is left out, and every glyph box lies inside the text bounds", () => {
    const s = sessionReducer.init();
    applyCommit(s, 0, { action: 'window.open', args: { app: 'a', title: 'T', bounds: { x: 10, y: 10, w: 200, h: 200 } } });
    const text = 'abc defg hij\nklm nopq rstu vwxyz abc defg';
    applyCommit(s, 1, { action: 'text.input', args: { id: 1, text } });
    const shaper = new VaryingShaper();
    const f = new SessionScene({ shaper }).update(s);
    const body = texts(f).find((t) => t.glyphs.length > 20)!;
    const want = Array.from(text.replace(/\s/g, ''), (c) => 14 * (0.3 + (c.codePointAt(0)! % 7) / 10));
    expect(Array.from(body.glyphs)).toEqual(Array.from(text.replace(/\s/g, ''), (c) => c.codePointAt(0)));
    expect(Array.from(body.gw)).toEqual(want.map((w) => Math.fround(w)));
    for (let i = 0; i < body.glyphs.length; i++) {
      const x = body.gx[i]!, y = body.gy[i]! - body.ascent;
      expect(x).toBeGreaterThanOrEqual(body.bx);
      expect(y).toBeGreaterThanOrEqual(body.by);
      expect(x + body.gw[i]!).toBeLessThanOrEqual(body.bx + body.w);
      expect(y + body.size).toBeLessThanOrEqual(body.by + body.h);
    }
  });
});
