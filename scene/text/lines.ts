// Line breaking and glyph placement for text nodes, on top of any TextShaper (HarfBuzz in the
// app, FixedShaper in tests that do not need real fonts). Pure: the same shaped glyphs and the
// same widths give the same lines and positions in every runtime.
import type { SceneNode } from '../tree.ts';

/** One shaped paragraph: parallel arrays, one entry per glyph, in visual (LTR) order. */
export interface ShapedRun {
  glyphs: Uint32Array;
  /** Advances and offsets in points at the requested font size. */
  advances: Float64Array;
  offsetsX: Float64Array;
  offsetsY: Float64Array;
  /** UTF-16 index of the first character of each glyph's cluster. */
  clusters: Uint32Array;
}
export interface FontMetrics { ascent: number; descent: number; lineGap: number }
export interface TextShaper {
  /** Shapes one paragraph (no '\n') with a registered font at `fontSize` points. */
  shape(text: string, font: string, fontSize: number): ShapedRun;
  /** Vertical metrics in points at `fontSize` (descent positive, below the baseline). */
  metrics(font: string, fontSize: number): FontMetrics;
}

/** A text node's glyphs, positioned relative to its content box (y = the glyph's baseline). */
export interface TextLayout {
  /** The longest line's width (trailing spaces excluded) and lines × line height. */
  width: number;
  height: number;
  lineHeight: number;
  fontSize: number;
  font: string;
  glyphs: Uint32Array;
  x: Float64Array;
  y: Float64Array;
  /** Each glyph's advance (for carets, selection and glyph boxes). */
  advances: Float64Array;
  /** UTF-16 index of each glyph's cluster in the node's text (for carets and hit tests). */
  clusters: Uint32Array;
  /** Index of the first glyph of each line; lineStarts.length = number of lines. */
  lineStarts: Uint32Array;
  /** The width the lines were broken at (Infinity = unbounded). */
  maxWidth: number;
  /** Some paragraph was broken into several lines at maxWidth. */
  wrapped: boolean;
}

/** Every character is one glyph (its code point) 0.6 em wide; ascent 0.8 em, descent 0.2 em. */
export class FixedShaper implements TextShaper {
  shape(text: string, _font: string, fontSize: number): ShapedRun {
    const cps: number[] = [], cl: number[] = [];
    for (let i = 0; i < text.length; i++) {
      const c = text.codePointAt(i)!;
      cps.push(c); cl.push(i);
      if (c > 0xffff) i++;
    }
    const n = cps.length, adv = new Float64Array(n).fill(fontSize * 0.6);
    return { glyphs: Uint32Array.from(cps), advances: adv, offsetsX: new Float64Array(n), offsetsY: new Float64Array(n), clusters: Uint32Array.from(cl) };
  }
  metrics(_font: string, fontSize: number): FontMetrics { return { ascent: fontSize * 0.8, descent: fontSize * 0.2, lineGap: 0 }; }
}

/** Per-node cache: shaped paragraphs (width-independent), the last layout and a few measurements. */
interface TextCache {
  paragraphs: ShapedRun[]; starts: number[]; metrics: FontMetrics; last: TextLayout | null;
  /** Ring of 4 measurements: maxWidth, width, lines, wrapped (0/1). */
  meas: number[]; measN: number;
}

const isSpace = (c: number) => c === 0x20 || c === 0x09 || c === 0x3000 || c === 0x200b;

function shapedOf(shaper: TextShaper, n: SceneNode): TextCache {
  let c = n.shaped as TextCache | null;
  if (c) return c;
  const { font, fontSize } = n.textStyle;
  const paragraphs: ShapedRun[] = [], starts: number[] = [];
  let start = 0;
  for (const p of n.text.split('\n')) { paragraphs.push(shaper.shape(p, font, fontSize)); starts.push(start); start += p.length + 1; }
  c = { paragraphs, starts, metrics: shaper.metrics(font, fontSize), last: null, meas: [0.5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], measN: 0 };
  n.shaped = c;
  return c;
}

// Slack for widths that went through flex arithmetic (or float32, as in yoga-layout): a line
// measured at w must still fit when handed back w rounded a few ulps down. 1/1000 px is invisible.
const FIT_EPS = 1e-3;

/** Width, height and wrapping of the node's text at maxWidth, without placing glyphs. */
export interface TextMeasure { width: number; height: number; wrapped: boolean }
const measOut: TextMeasure = { width: 0, height: 0, wrapped: false };

/** Ink width of the line breakLine found last (its trailing spaces hang, so they do not count). */
let lineInk = 0;

/**
 * One line of a paragraph from glyph `start`, greedy: the end of the line (exclusive), with its
 * ink width in `lineInk`. Breaks after spaces and hyphens; a word longer than the line overflows.
 * Measuring and placing both use this, so they cannot disagree on where lines break.
 */
function breakLine(text: string, base: number, adv: ArrayLike<number>, cl: ArrayLike<number>, start: number, len: number, max: number): number {
  let i = start, x = 0, inkW = 0, brk = -1, brkW = 0;
  for (; i < len; i++) {
    if (i > start && cl[i] !== cl[i - 1]) {
      const prev = text.charCodeAt(base + cl[i - 1]!), cur = text.charCodeAt(base + cl[i]!);
      if ((isSpace(prev) || prev === 0x2d) && !isSpace(cur)) { brk = i; brkW = inkW; }
    }
    const c = text.charCodeAt(base + cl[i]!);
    const nx = x + adv[i]!;
    if (!isSpace(c) && nx > max + FIT_EPS && brk > start) { lineInk = brkW; return brk; }
    x = nx;
    if (!isSpace(c)) inkW = x;
  }
  lineInk = inkW;
  return i;
}

/**
 * Measures like layoutText would lay out (same greedy breaking), allocating nothing; the last
 * four widths are cached per node. The returned object is reused: read it before the next call.
 */
export function measureText(shaper: TextShaper, n: SceneNode, maxWidth: number): TextMeasure {
  const cache = shapedOf(shaper, n);
  const max = !n.textStyle.wrap || !(maxWidth >= 0) ? Infinity : maxWidth;
  const { ascent, descent, lineGap } = cache.metrics;
  const lineHeight = n.textStyle.lineHeight > 0 ? n.textStyle.lineHeight : ascent + descent + lineGap;
  const m = cache.meas;
  for (let k = 0; k < 4 && k < cache.measN; k++) {
    if (m[k * 4] === max) { measOut.width = m[k * 4 + 1]!; measOut.height = m[k * 4 + 2]! * lineHeight; measOut.wrapped = m[k * 4 + 3] === 1; return measOut; }
  }
  const l = cache.last;
  if (l && l.maxWidth === max) { measOut.width = l.width; measOut.height = l.height; measOut.wrapped = l.wrapped; return measOut; }
  const text = n.text;
  let lines = 0, widest = 0;
  for (let pi = 0; pi < cache.paragraphs.length; pi++) {
    const run = cache.paragraphs[pi]!, base = cache.starts[pi]!;
    const adv = run.advances, cl = run.clusters, len = run.glyphs.length;
    let i = 0;
    do {
      i = breakLine(text, base, adv, cl, i, len, max);
      if (lineInk > widest) widest = lineInk;
      lines++;
    } while (i < len);
  }
  const slot = (cache.measN++ % 4) * 4;
  const wrapped = lines > cache.paragraphs.length;
  m[slot] = max; m[slot + 1] = widest; m[slot + 2] = lines; m[slot + 3] = wrapped ? 1 : 0;
  measOut.width = widest; measOut.height = lines * lineHeight; measOut.wrapped = wrapped;
  return measOut;
}

/**
 * Breaks the node's text into lines no wider than maxWidth (NaN or Infinity: unbounded) and
 * places its glyphs. Breaks after spaces and hyphens; '\n' forces a break; a word longer than
 * the line overflows (CSS `overflow-wrap: normal`). Trailing spaces hang.
 */
export function layoutText(shaper: TextShaper, n: SceneNode, maxWidth: number): TextLayout {
  const cache = shapedOf(shaper, n);
  const wrap = n.textStyle.wrap;
  const max = !wrap || !(maxWidth >= 0) ? Infinity : maxWidth;
  if (cache.last && cache.last.maxWidth === max) return cache.last;
  const { ascent, descent, lineGap } = cache.metrics;
  const lineHeight = n.textStyle.lineHeight > 0 ? n.textStyle.lineHeight : ascent + descent + lineGap;
  const baseline0 = (lineHeight - (ascent + descent)) / 2 + ascent;
  let total = 0;
  for (const p of cache.paragraphs) total += p.glyphs.length;
  const glyphs = new Uint32Array(total), xs = new Float64Array(total), ys = new Float64Array(total), clusters = new Uint32Array(total), advs = new Float64Array(total);
  const lineStarts: number[] = [];
  const text = n.text;
  let out = 0, line = 0, widest = 0;
  for (let pi = 0; pi < cache.paragraphs.length; pi++) {
    const run = cache.paragraphs[pi]!, base = cache.starts[pi]!;
    const g = run.glyphs, adv = run.advances, cl = run.clusters, len = g.length;
    let i = 0;
    do {
      const lineStart = i;
      i = breakLine(text, base, adv, cl, i, len, max);
      const inkW = lineInk;
      // Place glyphs lineStart..i-1.
      lineStarts.push(out);
      const by = line * lineHeight + baseline0;
      let px = 0;
      for (let j = lineStart; j < i; j++) {
        glyphs[out] = g[j]!; xs[out] = px + run.offsetsX[j]!; ys[out] = by - run.offsetsY[j]!; clusters[out] = base + cl[j]!; advs[out] = adv[j]!;
        px += adv[j]!; out++;
      }
      if (inkW > widest) widest = inkW;
      line++;
    } while (i < len);
  }
  const result: TextLayout = {
    width: widest, height: line * lineHeight, lineHeight, fontSize: n.textStyle.fontSize, font: n.textStyle.font,
    glyphs, x: xs, y: ys, advances: advs, clusters, lineStarts: Uint32Array.from(lineStarts), maxWidth: max,
    wrapped: line > cache.paragraphs.length,
  };
  cache.last = result;
  return result;
}
