// Text shaping with HarfBuzz (harfbuzzjs: HarfBuzz compiled to WebAssembly). Pure: font bytes come
// in as arguments (Node tests read scene/fonts/*.ttf, the browser fetches them), and the shaping
// engine is the same WASM binary everywhere, so glyph ids and positions are identical in Node,
// Chromium and Electron.
//
// Why HarfBuzz over fontkit and opentype.js: it is the shaper browsers, Android and most desktop
// toolkits use (complete GSUB/GPOS, every script's shaping model, kerning and marks done right);
// fontkit and opentype.js are JavaScript reimplementations with partial shaping. It computes in
// integer font units, so results do not depend on the host's floating point. The cost is a
// ~450 KB WASM module, loaded once by harfbuzzjs (top-level await in its module: Node reads it
// from the package, a browser fetches `harfbuzzjs/dist/harfbuzz.wasm` next to the module).
//
// Limits: each paragraph is shaped left to right with its script guessed by HarfBuzz; there is no
// bidi reordering (right-to-left runs come out in logical order) and no font fallback (missing
// glyphs shape to glyph 0, the font's .notdef box).
import * as hb from 'harfbuzzjs';
import { SceneError } from '../tree.ts';
import type { FontMetrics, ShapedRun, TextShaper } from './lines.ts';

interface LoadedFont { font: hb.Font; upem: number; ascent: number; descent: number; lineGap: number }

export class HarfBuzzShaper implements TextShaper {
  private fonts = new Map<string, LoadedFont>();
  private buffer = new hb.Buffer();

  /**
   * Registers a font under `key` ('' is the default font text styles get unless they name one).
   * Throws SceneError('bad-input') when the bytes are not a font HarfBuzz can read.
   */
  addFont(key: string, bytes: Uint8Array): void {
    const blob = new hb.Blob(bytes);
    const face = new hb.Face(blob, 0);
    if (!(face.upem > 0) || face.collectUnicodes().length === 0) throw new SceneError('bad-input', `font "${key}": not a TrueType/OpenType font HarfBuzz can read (${bytes.length} bytes)`);
    const font = new hb.Font(face);
    font.setScale(face.upem, face.upem); // shape in font units: integers, scaled by us
    const ext = font.hExtents();
    this.fonts.set(key, { font, upem: face.upem, ascent: ext.ascender, descent: -ext.descender, lineGap: ext.lineGap });
  }

  has(key: string): boolean { return this.fonts.has(key); }

  private get(key: string): LoadedFont {
    const f = this.fonts.get(key) ?? this.fonts.get('');
    if (!f) throw new SceneError('bad-input', `no font "${key}" (and no default font) registered with the shaper`);
    return f;
  }

  /**
   * Shaped runs by (font, size, text): UIs repeat their labels, and shaping is the costliest
   * step of measuring text. Runs are immutable; the memo is dropped when it holds 20k runs.
   */
  private memo = new Map<string, ShapedRun>();

  shape(text: string, fontKey: string, fontSize: number): ShapedRun {
    const key = fontKey + '\u0000' + fontSize + '\u0000' + text;
    let run = this.memo.get(key);
    if (run) return run;
    run = this.shapeUncached(text, fontKey, fontSize);
    if (this.memo.size >= 20_000) this.memo.clear();
    this.memo.set(key, run);
    return run;
  }

  private shapeUncached(text: string, fontKey: string, fontSize: number): ShapedRun {
    const f = this.get(fontKey);
    const scale = fontSize / f.upem;
    const buf = this.buffer;
    buf.reset();
    // UTF-16 in, so clusters are UTF-16 indices into `text` (what line breaking and carets use).
    const cps: number[] = [];
    for (let i = 0; i < text.length; i++) {
      const c = text.codePointAt(i)!;
      cps.push(c);
      if (c > 0xffff) i++;
    }
    let u = 0;
    for (let i = 0; i < cps.length; i++) { buf.add(cps[i]!, u); u += cps[i]! > 0xffff ? 2 : 1; }
    buf.guessSegmentProperties();
    buf.setDirection(hb.Direction.LTR);
    hb.shape(f.font, buf);
    const infos = buf.getGlyphInfos(), pos = buf.getGlyphPositions();
    const n = infos.length;
    const out: ShapedRun = { glyphs: new Uint32Array(n), advances: new Float64Array(n), offsetsX: new Float64Array(n), offsetsY: new Float64Array(n), clusters: new Uint32Array(n) };
    for (let i = 0; i < n; i++) {
      out.glyphs[i] = infos[i]!.codepoint;
      out.clusters[i] = infos[i]!.cluster;
      out.advances[i] = pos[i]!.xAdvance * scale;
      out.offsetsX[i] = pos[i]!.xOffset * scale;
      out.offsetsY[i] = pos[i]!.yOffset * scale;
    }
    return out;
  }

  metrics(fontKey: string, fontSize: number): FontMetrics {
    const f = this.get(fontKey);
    const s = fontSize / f.upem;
    return { ascent: f.ascent * s, descent: f.descent * s, lineGap: f.lineGap * s };
  }
}
