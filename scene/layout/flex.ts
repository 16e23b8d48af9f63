// The flex layout engine: Yoga's algorithm and semantics (CalculateLayout.cpp: flex basis, lines,
// two-pass flexible lengths, justify, stretch, align-content, absolute children, its layout and
// measurement caches), reimplemented over SceneNode's compiled style. Left-to-right only, no pixel
// rounding (yoga-layout with pointScaleFactor 0 gives the same boxes; see flex.yoga.test.ts).
//
// Incremental: a node's first visit in a pass after it was dirtied drops its caches; clean
// subtrees hit the per-node layout cache (one entry) or measurement cache (8 entries) and are
// not descended into. Text nodes are measured through their TextLayout (scene/text/lines.ts).
//
// Everything runs on module-level state set by computeLayout (one pass at a time; the code is
// synchronous), with no closures or per-node allocations in the hot path beyond flex-line
// bookkeeping on a shared stack.
import type { SceneNode, SceneTree } from '../tree.ts';
import {
  A_AROUND, A_AUTO, A_BASELINE, A_BETWEEN, A_CENTER, A_END, A_EVENLY, A_START, A_STRETCH,
  DIR_COLUMN, DIR_COLUMN_REV, DIR_ROW, DIR_ROW_REV, J_AROUND, J_BETWEEN, J_CENTER, J_END, J_EVENLY,
  K_IMAGE, K_TEXT, S_BASIS, S_BORDER, S_H, S_INSET, S_MARGIN, S_MAXH, S_MAXW, S_MINH, S_MINW, S_PAD, S_W,
  U_AUTO, U_PCT, U_PT, WRAP_NO, WRAP_REV,
} from '../tree.ts';

// Sizing modes (Yoga's SizingMode): MaxContent = undefined, FitContent = at most, StretchFit = exactly.
const MAX = 0, FIT = 1, EXACT = 2;
const FLT_MAX = 3.4028234663852886e38;
const L = 0, T = 1, R = 2, B = 3;
// Edges by flex direction (index = DIR_*): column, column-reverse, row, row-reverse.
const START = [T, B, L, R];
const END = [B, T, R, L];
const CACHE_SLOTS = 8;
/** Floats per measurement-cache entry: available w/h, modes w/h, result w/h, generation, owner
 * w/h, unclamped content w/h (leaves; NaN = unknown), wrapped (0/1). */
export const SLOT = 12;
// Yoga computes in float32, where a size that had margins added and then subtracted comes back
// as exactly what it was; in doubles it can come back 1e-14 off, which flips "<= 0" and "does
// the next item still fit" decisions. Those comparisons allow this much slack.
const EPS = 1e-7;
/** Decisions that hinged on a rounding residue (x != 0 but |x| <= EPS) or on Yoga's
 * zero-total-shrink branch, where float32 Yoga and this float64 engine can part ways. */
let sensitive = 0;
const near = (x: number) => { if (x !== 0 && x === x && Math.abs(x) <= EPS) sensitive++; };
/** Like near, but an exact tie counts too (float32 would likely not tie exactly). */
const nearOrTie = (x: number) => { if (x === x && Math.abs(x) <= EPS) sensitive++; };

let tree: SceneTree;
let generation = 0;
let stackItems: SceneNode[] = [];
let stackTop = 0;

const isRow = (d: number) => d >= DIR_ROW;
const isDef = (x: number) => x === x;
const maxOrDef = (a: number, b: number) => (a === a && b === b ? (a > b ? a : b) : a === a ? a : b);
const minOrDef = (a: number, b: number) => (a === a && b === b ? (a < b ? a : b) : a === a ? a : b);
/**
 * Yoga's cache keys leave out the owner size, which percent paddings, margins and min/max
 * resolve against, so Yoga can reuse a result with a percent resolved against an old owner
 * size. For nodes with such percents the owner size is part of the key.
 */
const sameOwner = (n: SceneNode, ow: number, oh: number, eow: number, eoh: number, _entryGen: number) =>
  (!n.pctDep && n.kidsMinMaxPct === 0) || ((ow === eow || (ow !== ow && eow !== eow)) && (oh === eoh || (oh !== oh && eoh !== eoh)));
/**
 * Cache keys match within 1e-4, as in Yoga: sizes that went through different arithmetic carry
 * float noise, and exact keys would turn that noise into cache misses that multiply down deep
 * trees (exponential work, Taffy #243). A reuse across such noise changes results only at the
 * noise level; layout() quantizes the boxes it reports (see QUANTUM) so that noise never shows.
 */
const sameSize = (a: number, b: number, _entryGen: number) => inexactEq(a, b);
const inexactEq = (a: number, b: number) => (a === a && b === b ? Math.abs(a - b) < 0.0001 : a !== a && b !== b);

function resolve(n: SceneNode, slot: number, ref: number): number {
  const u = n.lu[slot];
  if (u === U_PT) return n.lv[slot]!;
  if (u === U_PCT) return n.lv[slot]! * ref * 0.01;
  return NaN;
}
function pad(n: SceneNode, e: number, w: number): number {
  const v = resolve(n, S_PAD + e, w);
  return v > 0 ? v : 0;
}
const border = (n: SceneNode, e: number) => n.lv[S_BORDER + e]!;
function margin(n: SceneNode, e: number, w: number): number {
  const v = resolve(n, S_MARGIN + e, w);
  return v === v ? v : 0;
}
function insetAt(n: SceneNode, e: number, ref: number): number {
  const v = resolve(n, S_INSET + e, ref);
  return v === v ? v : 0;
}
const isAutoMargin = (n: SceneNode, e: number) => n.lu[S_MARGIN + e] === U_AUTO;
function marginAxis(n: SceneNode, axis: number, w: number): number {
  const fx = axis >= DIR_ROW ? n.fxMRow : n.fxMCol;
  if (fx === fx) return fx;
  return isRow(axis) ? margin(n, L, w) + margin(n, R, w) : margin(n, T, w) + margin(n, B, w);
}
function padBorderAxis(n: SceneNode, axis: number, w: number): number {
  const fx = axis >= DIR_ROW ? n.fxPbRow : n.fxPbCol;
  if (fx === fx) return fx;
  return isRow(axis) ? pad(n, L, w) + pad(n, R, w) + border(n, L) + border(n, R) : pad(n, T, w) + pad(n, B, w) + border(n, T) + border(n, B);
}
const measured = (n: SceneNode, axis: number) => (isRow(axis) ? n.measuredW : n.measuredH);
function setMeasured(n: SceneNode, axis: number, v: number): void { if (isRow(axis)) n.measuredW = v; else n.measuredH = v; }
/** Yoga's processed dimension: max when min == max, else the dimension. */
function dimSlot(n: SceneNode, rowDim: boolean): number {
  const d = rowDim ? S_W : S_H, mx = rowDim ? S_MAXW : S_MAXH, mn = rowDim ? S_MINW : S_MINH;
  const u = n.lu[mx];
  if ((u === U_PT || u === U_PCT) && n.lu[mn] === u && Math.abs(n.lv[mx]! - n.lv[mn]!) < 0.0001) return mx;
  return d;
}
const resolvedDim = (n: SceneNode, rowDim: boolean, ref: number) => resolve(n, dimSlot(n, rowDim), ref);
function hasDefiniteLength(n: SceneNode, rowDim: boolean, ownerSize: number): boolean {
  const v = resolvedDim(n, rowDim, ownerSize);
  return v === v && v >= 0;
}
function boundWithin(n: SceneNode, axis: number, value: number, axisSize: number): number {
  if (!n.hasMinMax) return value;
  const row = isRow(axis);
  const mn = resolve(n, row ? S_MINW : S_MINH, axisSize), mx = resolve(n, row ? S_MAXW : S_MAXH, axisSize);
  // Conflicting bounds (min > max): which one wins depends on the order Yoga happens to apply
  // them along each path; not comparable with yoga-layout (an authoring error anyway).
  if (mn > mx && mx >= 0) sensitive++;
  if (mx >= 0 && value > mx + EPS) return mx;
  if (mn >= 0 && value < mn - EPS) return mn;
  return value;
}
function boundAxis(n: SceneNode, axis: number, value: number, axisSize: number, widthSize: number): number {
  return maxOrDef(boundWithin(n, axis, value, axisSize), padBorderAxis(n, axis, widthSize));
}
function gapForAxis(n: SceneNode, axis: number): number { return isRow(axis) ? n.colGap : n.rowGap; }
function alignOf(parent: SceneNode, child: SceneNode): number {
  const a = child.alignSelf === A_AUTO ? parent.alignItems : child.alignSelf;
  if (a === A_BASELINE && !isRow(parent.dir)) return A_START;
  return a;
}
const growOf = (n: SceneNode) => (n.parent === null ? 0 : n.grow);
const shrinkOf = (n: SceneNode) => (n.parent === null ? 0 : n.shrink);
const isFlexible = (n: SceneNode) => !n.absolute && (growOf(n) !== 0 || shrinkOf(n) !== 0);
const isLeaf = (n: SceneNode) => n.kind === K_TEXT || n.kind === K_IMAGE;

let cmMode = 0, cmSize = 0;
function constrainMax(n: SceneNode, axis: number, ownerAxisSize: number, ownerW: number, mode: number, size: number): void {
  const mx = resolve(n, isRow(axis) ? S_MAXW : S_MAXH, ownerAxisSize) + marginAxis(n, axis, ownerW);
  cmMode = mode; cmSize = size;
  if (mode === EXACT || mode === FIT) { if (mx === mx && !(size < mx)) cmSize = mx; }
  else if (mx === mx) { cmMode = FIT; cmSize = mx; }
}

/** Initial position of a child (margins + relative insets), Yoga's Node::setPosition, LTR. */
function setPosition(n: SceneNode, ownerW: number, ownerH: number): void {
  let rx = 0, ry = 0;
  if (n.lu[S_INSET + L] === U_PT || n.lu[S_INSET + L] === U_PCT) rx = resolve(n, S_INSET + L, ownerW);
  else { const r = resolve(n, S_INSET + R, ownerW); rx = r === r ? -r : 0; }
  if (n.lu[S_INSET + T] === U_PT || n.lu[S_INSET + T] === U_PCT) ry = resolve(n, S_INSET + T, ownerH);
  else { const b = resolve(n, S_INSET + B, ownerH); ry = b === b ? -b : 0; }
  if (rx !== rx) rx = 0;
  if (ry !== ry) ry = 0;
  const p = n.pos;
  p[L] = margin(n, L, ownerW) + rx; p[R] = margin(n, R, ownerW) + rx;
  p[T] = margin(n, T, ownerW) + ry; p[B] = margin(n, B, ownerW) + ry;
}

function zeroOut(n: SceneNode): void {
  if (n.zeroed) return;
  n.zeroed = true;
  n.measuredW = NaN; n.measuredH = NaN; n.flexBasis = NaN;
  n.cLayout = false; n.cN = 0; n.gen = -1;
  n.pos[0] = 0; n.pos[1] = 0; n.pos[2] = 0; n.pos[3] = 0;
  setBox(n, 0, 0, 0, 0);
  if (n.textWidth === n.textWidth) { n.textWidth = NaN; tree.noteLayoutChanged(n); }
  for (const c of n.children) zeroOut(c);
}

/**
 * Reported boxes (and text widths) are rounded to 1/4096 px: the caches reuse results across
 * float noise (see sameSize), so an incremental layout can come out 1e-14 away from a fresh
 * one; rounding makes them the same numbers, bit for bit (the scene hashes them).
 */
const QUANTUM = 4096;
const quantize = (v: number) => Math.round(v * QUANTUM) / QUANTUM;

function setBox(n: SceneNode, x: number, y: number, w: number, h: number): void {
  x = quantize(x); y = quantize(y); w = quantize(w); h = quantize(h);
  if (n.x !== x || n.y !== y || n.w !== w || n.h !== h) { n.x = x; n.y = y; n.w = w; n.h = h; tree.noteLayoutChanged(n); }
}

// ---- leaves (text, images): Yoga's measure-function path ----

let msW = 0, msH = 0, textW = 0, textH = 0;
/** What the last layoutImpl measured for a leaf: unclamped content + padding (NaN = not measured). */
let natW = NaN, natH = NaN, natWrapped = true;
function measureLeafContent(n: SceneNode, w: number, wm: number, h: number, hm: number): void {
  if (n.kind === K_TEXT) {
    const tl = tree.measureText(n, wm === MAX ? Infinity : w);
    msW = wm === EXACT ? w : wm === FIT ? Math.min(tl.width, w) : tl.width;
    msH = hm === EXACT ? h : hm === FIT ? Math.min(tl.height, h) : tl.height;
    natWrapped = tl.wrapped;
    textW = tl.width; textH = tl.height;
    return;
  }
  natWrapped = true;
  // Images: intrinsic size, keeping the aspect ratio when one side is fixed or too big.
  const iw = n.intrinsicW, ih = n.intrinsicH;
  let rw = iw, rh = ih;
  if (wm === EXACT && hm !== EXACT) { rw = w; rh = iw > 0 ? (w * ih) / iw : ih; }
  else if (hm === EXACT && wm !== EXACT) { rh = h; rw = ih > 0 ? (h * iw) / ih : iw; }
  else if (wm === EXACT && hm === EXACT) { rw = w; rh = h; }
  else {
    let s = 1;
    if (wm === FIT && iw > w && iw > 0) s = Math.min(s, w / iw);
    if (hm === FIT && ih > h && ih > 0) s = Math.min(s, h / ih);
    rw = iw * s; rh = ih * s;
  }
  if (wm === FIT && rw > w) rw = w;
  if (hm === FIT && rh > h) rh = h;
  msW = rw; msH = rh;
}

function measureLeaf(n: SceneNode, aw: number, ah: number, wm: number, hm: number, ownerW: number, ownerH: number): void {
  if (wm === MAX) aw = NaN;
  if (hm === MAX) ah = NaN;
  const pbRow = padBorderAxis(n, DIR_ROW, ownerW), pbCol = padBorderAxis(n, DIR_COLUMN, ownerW);
  const innerW = aw === aw ? maxOrDef(0, aw - pbRow) : aw;
  const innerH = ah === ah ? maxOrDef(0, ah - pbCol) : ah;
  natW = NaN; natH = NaN; natWrapped = true;
  if (wm === EXACT && hm === EXACT) {
    n.measuredW = boundAxis(n, DIR_ROW, aw, ownerW, ownerW);
    n.measuredH = boundAxis(n, DIR_COLUMN, ah, ownerH, ownerW);
    return;
  }
  tree.stats.measured++;
  measureLeafContent(n, innerW, wm, innerH, hm);
  const mw = msW < 0 || msW !== msW ? 0 : msW, mh = msH < 0 || msH !== msH ? 0 : msH;
  if (n.kind === K_TEXT) {
    // Unclamped: a result cut down to the available size (an overflowing word) is no
    // "natural" size and must not be reused for other sizes.
    if (wm !== EXACT) natW = textW + pbRow;
    if (hm !== EXACT) natH = textH + pbCol;
  }
  n.measuredW = boundAxis(n, DIR_ROW, wm === MAX || wm === FIT ? mw + pbRow : aw, ownerW, ownerW);
  n.measuredH = boundAxis(n, DIR_COLUMN, hm === MAX || hm === FIT ? mh + pbCol : ah, ownerH, ownerW);
}

function availableInner(n: SceneNode, row: boolean, availDim: number, pb: number, ownerDim: number): number {
  let inner = availDim - pb;
  near(inner);
  if (inner === inner) {
    const mn = resolve(n, row ? S_MINW : S_MINH, ownerDim), mx = resolve(n, row ? S_MAXW : S_MAXH, ownerDim);
    const minInner = mn === mn ? mn - pb : 0;
    const maxInner = mx === mx ? mx - pb : FLT_MAX;
    inner = maxOrDef(minOrDef(inner, maxInner), minInner);
  }
  return inner;
}

function computeFlexBasisForChild(n: SceneNode, child: SceneNode, width: number, wMode: number, height: number, ownerW: number, ownerH: number, hMode: number): void {
  const main = n.dir, mainRow = isRow(main);
  const mainSize = mainRow ? width : height, mainOwner = mainRow ? ownerW : ownerH;
  const basis = resolve(child, S_BASIS, mainOwner);
  const rowDef = hasDefiniteLength(child, true, ownerW), colDef = hasDefiniteLength(child, false, ownerH);
  if (basis === basis && mainSize === mainSize) {
    child.flexBasis = maxOrDef(basis, padBorderAxis(child, main, ownerW));
  } else if (mainRow && rowDef) {
    child.flexBasis = maxOrDef(resolvedDim(child, true, ownerW), padBorderAxis(child, DIR_ROW, ownerW));
  } else if (!mainRow && colDef) {
    child.flexBasis = maxOrDef(resolvedDim(child, false, ownerH), padBorderAxis(child, DIR_COLUMN, ownerW));
  } else {
    let cw = NaN, ch = NaN, cwm = MAX, chm = MAX;
    const mRow = marginAxis(child, DIR_ROW, ownerW), mCol = marginAxis(child, DIR_COLUMN, ownerW);
    if (rowDef) { cw = resolvedDim(child, true, ownerW) + mRow; cwm = EXACT; }
    if (colDef) { ch = resolvedDim(child, false, ownerH) + mCol; chm = EXACT; }
    const scroll = n.overflow === 2;
    if ((!mainRow && scroll) || !scroll) { if (cw !== cw && width === width) { cw = width; cwm = FIT; } }
    if ((mainRow && scroll) || !scroll) { if (ch !== ch && height === height) { ch = height; chm = FIT; } }
    const ar = child.aspect;
    if (ar === ar) {
      if (!mainRow && cwm === EXACT) { ch = mCol + (cw - mRow) / ar; chm = EXACT; }
      else if (mainRow && chm === EXACT) { cw = mRow + (ch - mCol) * ar; cwm = EXACT; }
    }
    const stretch = alignOf(n, child) === A_STRETCH;
    if (!mainRow && !rowDef && width === width && wMode === EXACT && stretch && cwm !== EXACT) {
      cw = width; cwm = EXACT;
      if (ar === ar) { ch = (cw - mRow) / ar; chm = EXACT; }
    }
    if (mainRow && !colDef && height === height && hMode === EXACT && stretch && chm !== EXACT) {
      ch = height; chm = EXACT;
      if (ar === ar) { cw = (ch - mCol) * ar; cwm = EXACT; }
    }
    constrainMax(child, DIR_ROW, ownerW, ownerW, cwm, cw); cwm = cmMode; cw = cmSize;
    constrainMax(child, DIR_COLUMN, ownerH, ownerW, chm, ch); chm = cmMode; ch = cmSize;
    layoutNode(child, cw, ch, cwm, chm, ownerW, ownerH, false);
    child.flexBasis = maxOrDef(measured(child, main), padBorderAxis(child, main, ownerW));
  }
}

function calculateBaseline(n: SceneNode): number {
  let bc: SceneNode | null = null;
  for (const c of n.children) {
    if (c.lineIndex > 0) break;
    if (c.absolute) continue;
    if (alignOf(n, c) === A_BASELINE) { bc = c; break; }
    if (bc === null) bc = c;
  }
  if (bc === null) return n.measuredH;
  return calculateBaseline(bc) + bc.pos[T]!;
}
function isBaselineLayout(n: SceneNode): boolean {
  if (!isRow(n.dir)) return false;
  if (n.alignItems === A_BASELINE) return true;
  for (const c of n.children) if (!c.absolute && c.alignSelf === A_BASELINE) return true;
  return false;
}

// A flex line: items on stackItems[start, end).
let lnStart = 0, lnEnd = 0, lnNextIndex = 0, lnSizeConsumed = 0, lnGrow = 0, lnShrink = 0, lnAutoMargins = 0;
let lnRemaining = 0, lnMainDim = 0, lnCrossDim = 0;

function collectLine(n: SceneNode, startIndex: number, lineCount: number, ownerW: number, mainOwner: number, availInnerW: number, availInnerMain: number): void {
  const main = n.dir, wrap = n.wrap !== WRAP_NO, gap = gapForAxis(n, main);
  const kids = n.children;
  let consumed = 0, grow = 0, shrink = 0, autos = 0;
  lnStart = stackTop;
  let i = startIndex;
  for (; i < kids.length; i++) {
    const c = kids[i]!;
    if (c.none || c.absolute) continue;
    if (isAutoMargin(c, START[main]!)) autos++;
    if (isAutoMargin(c, END[main]!)) autos++;
    const first = stackTop === lnStart;
    c.lineIndex = lineCount;
    const m = marginAxis(c, main, availInnerW);
    const lead = first ? 0 : gap;
    const basis = boundWithin(c, main, c.flexBasis, mainOwner);
    if (wrap && !first) nearOrTie(consumed + basis + m + lead - availInnerMain);
    if (consumed + basis + m + lead > availInnerMain + EPS && wrap && !first) break;
    consumed += basis + m + lead;
    if (isFlexible(c)) { grow += growOf(c); shrink += -shrinkOf(c) * c.flexBasis; }
    stackItems[stackTop++] = c;
  }
  if (grow > 0 && grow < 1) grow = 1;
  if (shrink > 0 && shrink < 1) shrink = 1;
  lnEnd = stackTop; lnNextIndex = i; lnSizeConsumed = consumed; lnGrow = grow; lnShrink = shrink; lnAutoMargins = autos;
  lnRemaining = 0; lnMainDim = 0; lnCrossDim = 0;
}

/** Returns the line's remaining free space. Nested layouts clobber the ln* globals: use locals. */
function resolveFlexibleLength(n: SceneNode, s: number, e: number, remaining: number, totalGrow: number, totalShrink: number, mainOwner: number, availInnerMain: number, availInnerCross: number, availInnerW: number, availInnerH: number, mainOverflows: boolean, crossMode: number, perform: boolean): number {
  const main = n.dir, cross = isRow(main) ? DIR_COLUMN : DIR_ROW, mainRow = isRow(main);
  const original = remaining;
  // First pass: freeze items whose min/max trigger.
  let delta = 0, shrinkTerms = 0;
  for (let k = s; k < e; k++) {
    const c = stackItems[k]!;
    const basis = boundWithin(c, main, c.flexBasis, mainOwner); // Yoga 3.2: the owner's size, not the inner size
    if (remaining < 0) {
      const f = -shrinkOf(c) * basis;
      if (f === f && f !== 0) {
        shrinkTerms++;
        const base = basis + (remaining / totalShrink) * f;
        const bound = boundAxis(c, main, base, availInnerMain, availInnerW);
        near(base - bound);
        if (base === base && bound === bound && Math.abs(base - bound) > EPS) { delta += bound - basis; totalShrink -= -shrinkOf(c) * c.flexBasis; }
      }
    } else if (remaining > 0) {
      const g = growOf(c);
      if (g === g && g !== 0) {
        const base = basis + (remaining / totalGrow) * g;
        const bound = boundAxis(c, main, base, availInnerMain, availInnerW);
        near(base - bound);
        if (base === base && bound === bound && Math.abs(base - bound) > EPS) { delta += bound - basis; totalGrow -= g; }
      }
    }
  }
  remaining -= delta;
  // Freezing subtracts what was summed; in doubles that leaves ~1e-15 where Yoga's floats give 0
  // (and a division by the residue would explode). Snap it.
  // A total of two or more terms that cancels to 0 here is, in float32, usually a residue (and
  // Yoga then divides by it): the outcome is float-dependent.
  if (Math.abs(totalShrink) < 1e-6) { if (totalShrink !== 0 || (remaining < 0 && shrinkTerms >= 2)) sensitive++; totalShrink = 0; }
  if (Math.abs(totalGrow) < 1e-6) { if (totalGrow !== 0) sensitive++; totalGrow = 0; }
  // Second pass: size every item and lay it out (or measure it, if it still needs stretching).
  const wrap = n.wrap !== WRAP_NO;
  let distributed = 0;
  const crossRow = !mainRow;
  for (let k = s; k < e; k++) {
    const c = stackItems[k]!;
    const basis = boundWithin(c, main, c.flexBasis, mainOwner); // Yoga 3.2: the owner's size, not the inner size
    let updated = basis;
    if (remaining < 0) {
      const f = -shrinkOf(c) * basis;
      if (f !== 0) {
        const size = totalShrink === 0 ? basis + f : basis + (remaining / totalShrink) * f;
        updated = boundAxis(c, main, size, availInnerMain, availInnerW);
      }
    } else if (remaining > 0) {
      const g = growOf(c);
      if (g === g && g !== 0) updated = boundAxis(c, main, basis + (remaining / totalGrow) * g, availInnerMain, availInnerW);
    }
    distributed += updated - basis;
    const mMain = marginAxis(c, main, availInnerW), mCross = marginAxis(c, cross, availInnerW);
    let childCross = NaN, crossM = MAX;
    let childMain = updated + mMain, mainM = EXACT;
    const al = alignOf(n, c);
    const noAutoCross = !isAutoMargin(c, START[cross]!) && !isAutoMargin(c, END[cross]!);
    const crossDefinite = hasDefiniteLength(c, crossRow, availInnerCross);
    if (c.aspect === c.aspect) {
      childCross = (mainRow ? (childMain - mMain) / c.aspect : (childMain - mMain) * c.aspect) + mCross;
      crossM = EXACT;
    } else if (availInnerCross === availInnerCross && !crossDefinite && crossMode === EXACT && !(wrap && mainOverflows) && al === A_STRETCH && noAutoCross) {
      childCross = availInnerCross; crossM = EXACT;
    } else if (!crossDefinite) {
      childCross = availInnerCross; crossM = childCross === childCross ? FIT : MAX;
    } else {
      childCross = resolvedDim(c, crossRow, availInnerCross) + mCross;
      const loosePct = c.lu[dimSlot(c, crossRow)] === U_PCT && crossMode !== EXACT;
      crossM = childCross !== childCross || loosePct ? MAX : EXACT;
    }
    constrainMax(c, main, availInnerMain, availInnerW, mainM, childMain); mainM = cmMode; childMain = cmSize;
    constrainMax(c, cross, availInnerCross, availInnerW, crossM, childCross); crossM = cmMode; childCross = cmSize;
    const requiresStretch = !crossDefinite && al === A_STRETCH && noAutoCross;
    const cw = mainRow ? childMain : childCross, ch = mainRow ? childCross : childMain;
    const cwm = mainRow ? mainM : crossM, chm = mainRow ? crossM : mainM;
    layoutNode(c, cw, ch, cwm, chm, availInnerW, availInnerH, perform && !requiresStretch);
  }
  return original - distributed;
}

function justifyMain(n: SceneNode, mainMode: number, crossMode: number, mainOwner: number, ownerW: number, availInnerMain: number, availInnerCross: number, availInnerW: number, perform: boolean): void {
  const main = n.dir, cross = isRow(main) ? DIR_COLUMN : DIR_ROW;
  const se = START[main]!, ee = END[main]!;
  const leadPB = pad(n, se, ownerW) + border(n, se), trailPB = pad(n, ee, ownerW) + border(n, ee);
  const gap = gapForAxis(n, main);
  if (mainMode === FIT && lnRemaining > 0) {
    const mn = resolve(n, isRow(main) ? S_MINW : S_MINH, mainOwner);
    if (mn === mn) {
      const minAvail = mn - leadPB - trailPB;
      const occupied = availInnerMain - lnRemaining;
      lnRemaining = maxOrDef(0, minAvail - occupied);
    } else lnRemaining = 0;
  }
  const count = lnEnd - lnStart;
  let leading = 0, between = gap;
  let j = n.justify;
  if (!(lnRemaining >= 0) && (j === J_BETWEEN || j === J_AROUND || j === J_EVENLY)) j = 0;
  // No items (only absolute or hidden children): Yoga divides by zero here (space-around gives
  // an infinite line); nothing to distribute.
  if (count === 0 && j === J_AROUND) sensitive++; // yoga-layout: 0/0 here, its result is not comparable
  if (lnAutoMargins === 0 && count > 0) {
    switch (j) {
      case J_CENTER: leading = lnRemaining / 2; break;
      case J_END: leading = lnRemaining; break;
      case J_BETWEEN: if (count > 1) between += lnRemaining / (count - 1); break;
      case J_EVENLY: leading = lnRemaining / (count + 1); between += leading; break;
      case J_AROUND: leading = (0.5 * lnRemaining) / count; between += leading * 2; break;
    }
  }
  let mainDim = leadPB + leading, crossDim = 0, maxAscent = 0, maxDescent = 0;
  const baseline = isBaselineLayout(n);
  const skipFlex = !perform && crossMode === EXACT;
  for (let k = lnStart; k < lnEnd; k++) {
    const c = stackItems[k]!;
    if (isAutoMargin(c, se) && lnRemaining > 0) mainDim += lnRemaining / lnAutoMargins;
    if (perform) c.pos[se] = c.pos[se]! + mainDim;
    if (k !== lnEnd - 1) mainDim += between;
    if (isAutoMargin(c, ee) && lnRemaining > 0) mainDim += lnRemaining / lnAutoMargins;
    if (skipFlex) {
      mainDim += marginAxis(c, main, availInnerW) + c.flexBasis;
      crossDim = availInnerCross;
    } else {
      mainDim += measured(c, main) + marginAxis(c, main, availInnerW);
      if (baseline) {
        const ascent = calculateBaseline(c) + margin(c, T, availInnerW);
        const descent = c.measuredH + marginAxis(c, DIR_COLUMN, availInnerW) - ascent;
        maxAscent = maxOrDef(maxAscent, ascent); maxDescent = maxOrDef(maxDescent, descent);
      } else {
        crossDim = maxOrDef(crossDim, measured(c, cross) + marginAxis(c, cross, availInnerW));
      }
    }
  }
  mainDim += trailPB;
  if (baseline) crossDim = maxAscent + maxDescent;
  lnMainDim = mainDim; lnCrossDim = crossDim;
}

function layoutImpl(n: SceneNode, aw: number, ah: number, wMode: number, hMode: number, ownerW: number, ownerH: number, perform: boolean): void {
  tree.stats.computed++;
  const marginAxisRow = margin(n, L, ownerW) + margin(n, R, ownerW);
  const marginAxisCol = margin(n, T, ownerW) + margin(n, B, ownerW);
  if (isLeaf(n)) { measureLeaf(n, aw - marginAxisRow, ah - marginAxisCol, wMode, hMode, ownerW, ownerH); return; }
  const kids = n.children, childCount = kids.length;
  if (childCount === 0) {
    const w = wMode === MAX || wMode === FIT ? padBorderAxis(n, DIR_ROW, ownerW) : aw - marginAxisRow;
    n.measuredW = boundAxis(n, DIR_ROW, w, ownerW, ownerW);
    const h = hMode === MAX || hMode === FIT ? padBorderAxis(n, DIR_COLUMN, ownerW) : ah - marginAxisCol;
    n.measuredH = boundAxis(n, DIR_COLUMN, h, ownerH, ownerW);
    return;
  }
  if (!perform) {
    const fw = aw - marginAxisRow, fh = ah - marginAxisCol;
    // Yoga 3.2 (the yoga-layout we match): either side at-most <= 0, or both exact.
    if (wMode === FIT) near(fw);
    if (hMode === FIT) near(fh);
    if ((fw === fw && wMode === FIT && fw <= EPS) || (fh === fh && hMode === FIT && fh <= EPS) || (wMode === EXACT && hMode === EXACT)) {
      n.measuredW = boundAxis(n, DIR_ROW, fw !== fw || (wMode === FIT && fw < EPS) ? 0 : fw, ownerW, ownerW);
      n.measuredH = boundAxis(n, DIR_COLUMN, fh !== fh || (hMode === FIT && fh < EPS) ? 0 : fh, ownerH, ownerW);
      return;
    }
  }

  // STEP 1: values for the rest of the algorithm.
  const main = n.dir, cross = isRow(main) ? DIR_COLUMN : DIR_ROW, mainRow = isRow(main);
  const wrap = n.wrap !== WRAP_NO;
  const mainOwner = mainRow ? ownerW : ownerH, crossOwner = mainRow ? ownerH : ownerW;
  const pbMain = padBorderAxis(n, main, ownerW), pbCross = padBorderAxis(n, cross, ownerW);
  const cs = START[cross]!;
  const leadPBCross = pad(n, cs, ownerW) + border(n, cs);
  let mainMode = mainRow ? wMode : hMode;
  const crossMode = mainRow ? hMode : wMode;
  const pbRow = mainRow ? pbMain : pbCross, pbCol = mainRow ? pbCross : pbMain;

  // STEP 2: available inner size.
  const availInnerW = availableInner(n, true, aw - marginAxisRow, pbRow, ownerW);
  const availInnerH = availableInner(n, false, ah - marginAxisCol, pbCol, ownerH);
  let availInnerMain = mainRow ? availInnerW : availInnerH;
  const availInnerCross = mainRow ? availInnerH : availInnerW;

  // STEP 3: flex basis of every child.
  let single: SceneNode | null = null;
  if ((mainRow ? wMode : hMode) === EXACT) {
    for (const c of kids) {
      if (!isFlexible(c)) continue;
      if (single !== null || inexactEq(growOf(c), 0) || inexactEq(shrinkOf(c), 0)) { single = null; break; }
      single = c;
    }
  }
  let totalMain = 0;
  for (const c of kids) {
    if (c.none) { zeroOut(c); c.dirty = false; continue; }
    if (perform) setPosition(c, availInnerW, availInnerH);
    if (c.absolute) continue;
    if (c === single) c.flexBasis = 0;
    else computeFlexBasisForChild(n, c, availInnerW, wMode, availInnerH, availInnerW, availInnerH, hMode);
    totalMain += c.flexBasis + marginAxis(c, main, availInnerW);
  }
  if (childCount > 1) totalMain += gapForAxis(n, main) * (childCount - 1);
  if (wrap) near(totalMain - availInnerMain);
  const mainOverflows = mainMode !== MAX && totalMain > availInnerMain + EPS;
  if (wrap && mainOverflows && mainMode === FIT) mainMode = EXACT;

  // STEP 4-7: lines.
  let startIndex = 0, lineCount = 0, totalLineCross = 0, maxLineMain = 0;
  const crossGap = gapForAxis(n, cross);
  const stackBase = stackTop;
  while (startIndex < childCount) {
    collectLine(n, startIndex, lineCount, ownerW, mainOwner, availInnerW, availInnerMain);
    startIndex = lnNextIndex;
    const lineStart = lnStart, lineEnd = lnEnd, lineGrow = lnGrow, lineShrink = lnShrink, lineAutos = lnAutoMargins;
    const skipFlex = !perform && crossMode === EXACT;
    let sizeBasedOnContent = false;
    if (mainMode !== EXACT) {
      const minInnerMain = resolve(n, mainRow ? S_MINW : S_MINH, mainOwner) - (mainRow ? pbRow : pbCol);
      const maxInnerMain = resolve(n, mainRow ? S_MAXW : S_MAXH, mainOwner) - (mainRow ? pbRow : pbCol);
      if (minInnerMain === minInnerMain && lnSizeConsumed < minInnerMain) availInnerMain = minInnerMain;
      else if (maxInnerMain === maxInnerMain && lnSizeConsumed > maxInnerMain) availInnerMain = maxInnerMain;
      else {
        if (lnGrow === 0 || growOf(n) === 0) availInnerMain = lnSizeConsumed;
        sizeBasedOnContent = true;
      }
    }
    let remaining = 0;
    if (!sizeBasedOnContent && availInnerMain === availInnerMain) remaining = availInnerMain - lnSizeConsumed;
    else if (lnSizeConsumed < 0) remaining = -lnSizeConsumed;
    if (!skipFlex) remaining = resolveFlexibleLength(n, lineStart, lineEnd, remaining, lineGrow, lineShrink, mainOwner, availInnerMain, availInnerCross, availInnerW, availInnerH, mainOverflows, crossMode, perform);
    // Nested layouts pushed above this line on the stack and popped again; the line is intact,
    // but the ln* globals are theirs now.
    lnStart = lineStart; lnEnd = lineEnd; lnRemaining = remaining; lnAutoMargins = lineAutos;
    justifyMain(n, mainMode, crossMode, mainOwner, ownerW, availInnerMain, availInnerCross, availInnerW, perform);

    let containerCross = availInnerCross;
    if (crossMode === MAX || crossMode === FIT) containerCross = boundAxis(n, cross, lnCrossDim + pbCross, crossOwner, ownerW) - pbCross;
    if (!wrap && crossMode === EXACT) lnCrossDim = availInnerCross;
    if (!wrap) lnCrossDim = boundAxis(n, cross, lnCrossDim + pbCross, crossOwner, ownerW) - pbCross;
    const lineCross = lnCrossDim, lineMain = lnMainDim;

    // STEP 7: cross-axis alignment.
    if (perform) {
      for (let k = lineStart; k < lineEnd; k++) {
        const c = stackItems[k]!;
        let leadCross = leadPBCross;
        const al = alignOf(n, c);
        const autoS = isAutoMargin(c, cs), autoE = isAutoMargin(c, END[cross]!);
        if (al === A_STRETCH && !autoS && !autoE) {
          if (!hasDefiniteLength(c, !mainRow, availInnerCross)) {
            let childMain = measured(c, main);
            let childCross = c.aspect === c.aspect
              ? marginAxis(c, cross, availInnerW) + (mainRow ? childMain / c.aspect : childMain * c.aspect)
              : lineCross;
            childMain += marginAxis(c, main, availInnerW);
            constrainMax(c, main, availInnerMain, availInnerW, EXACT, childMain); const mm = cmMode; childMain = cmSize;
            constrainMax(c, cross, availInnerCross, availInnerW, EXACT, childCross); const cm = cmMode; childCross = cmSize;
            void mm; void cm;
            const cw = mainRow ? childMain : childCross, ch = mainRow ? childCross : childMain;
            const noGrow = n.alignContent !== A_STRETCH && wrap;
            const cwm = cw !== cw || (!mainRow && noGrow) ? MAX : EXACT;
            const chm = ch !== ch || (mainRow && noGrow) ? MAX : EXACT;
            layoutNode(c, cw, ch, cwm, chm, availInnerW, availInnerH, true);
          }
        } else {
          const rem = containerCross - (measured(c, cross) + marginAxis(c, cross, availInnerW));
          if (autoS && autoE) leadCross += maxOrDef(0, rem / 2);
          else if (autoE) { /* stays at the start */ }
          else if (autoS) leadCross += maxOrDef(0, rem);
          else if (al === A_START) { /* start */ }
          else if (al === A_CENTER) leadCross += rem / 2;
          else leadCross += rem;
        }
        c.pos[cs] = c.pos[cs]! + totalLineCross + leadCross;
      }
    }
    totalLineCross += lineCross + (lineCount !== 0 ? crossGap : 0);
    maxLineMain = maxOrDef(maxLineMain, lineMain);
    lineCount++;
    stackTop = stackBase;
  }

  // STEP 8: multi-line content alignment.
  if (perform && (wrap || isBaselineLayout(n))) {
    let leadPerLine = 0, currentLead = leadPBCross, extraPerLine = 0;
    const unclamped = crossMode === EXACT ? availInnerCross + pbCross
      : hasDefiniteLength(n, !mainRow, crossOwner) ? resolvedDim(n, !mainRow, crossOwner)
        : totalLineCross + pbCross;
    const innerCross = boundAxis(n, cross, unclamped, ownerH, ownerW) - pbCross; // sic (Yoga 3.2): the owner height on either axis
    const rem = innerCross - totalLineCross;
    let ac = n.alignContent;
    if (!(rem >= 0) && (ac === A_BETWEEN || ac === A_STRETCH || ac === A_AROUND || ac === A_EVENLY)) ac = A_START;
    switch (ac) {
      case A_END: currentLead += rem; break;
      case A_CENTER: currentLead += rem / 2; break;
      case A_STRETCH: extraPerLine = rem / lineCount; break;
      case A_AROUND: currentLead += rem / (2 * lineCount); leadPerLine = rem / lineCount; break;
      case A_EVENLY: currentLead += rem / (lineCount + 1); leadPerLine = rem / (lineCount + 1); break;
      case A_BETWEEN: if (lineCount > 1) leadPerLine = rem / (lineCount - 1); break;
    }
    let idx = 0;
    for (let i = 0; i < lineCount; i++) {
      const startIdx = idx;
      let lineHeight = 0, maxAscent = 0, maxDescent = 0;
      for (; idx < childCount; idx++) {
        const c = kids[idx]!;
        if (c.none) continue;
        if (c.absolute) continue;
        if (c.lineIndex !== i) break;
        const md = measured(c, cross);
        if (md === md && md >= 0) lineHeight = maxOrDef(lineHeight, md + marginAxis(c, cross, availInnerW));
        if (alignOf(n, c) === A_BASELINE) {
          const ascent = calculateBaseline(c) + margin(c, T, availInnerW);
          const descent = c.measuredH + marginAxis(c, DIR_COLUMN, availInnerW) - ascent;
          maxAscent = maxOrDef(maxAscent, ascent); maxDescent = maxOrDef(maxDescent, descent);
          lineHeight = maxOrDef(lineHeight, maxAscent + maxDescent);
        }
      }
      const endIdx = idx;
      currentLead += i !== 0 ? crossGap : 0;
      lineHeight += extraPerLine;
      for (let k = startIdx; k < endIdx; k++) {
        const c = kids[k]!;
        if (c.none || c.absolute) continue;
        switch (alignOf(n, c)) {
          // sic (Yoga 3.2): the start-edge inset, not the margin.
          case A_START: c.pos[cs] = currentLead + insetAt(c, cs, availInnerW); break;
          case A_END: c.pos[cs] = currentLead + lineHeight - margin(c, END[cross]!, availInnerW) - measured(c, cross); break;
          case A_CENTER: c.pos[cs] = currentLead + (lineHeight - measured(c, cross)) / 2; break;
          case A_STRETCH: {
            c.pos[cs] = currentLead + margin(c, cs, availInnerW);
            if (!hasDefiniteLength(c, !mainRow, availInnerCross)) {
              const cw = mainRow ? c.measuredW + marginAxis(c, main, availInnerW) : leadPerLine + lineHeight;
              const ch = !mainRow ? c.measuredH + marginAxis(c, cross, availInnerW) : leadPerLine + lineHeight; // sic: Yoga adds the cross-axis margins here
              if (!(inexactEq(cw, c.measuredW) && inexactEq(ch, c.measuredH))) layoutNode(c, cw, ch, EXACT, EXACT, availInnerW, availInnerH, true);
            }
            break;
          }
          case A_BASELINE: c.pos[T] = currentLead + maxAscent - calculateBaseline(c) + insetAt(c, T, availInnerCross); break;
        }
      }
      currentLead = currentLead + leadPerLine + lineHeight;
    }
  }

  // STEP 9: final dimensions.
  n.measuredW = boundAxis(n, DIR_ROW, aw - marginAxisRow, ownerW, ownerW);
  n.measuredH = boundAxis(n, DIR_COLUMN, ah - marginAxisCol, ownerH, ownerW);
  const scroll = n.overflow === 2;
  if (mainMode === MAX || (!scroll && mainMode === FIT)) setMeasured(n, main, boundAxis(n, main, maxLineMain, mainOwner, ownerW));
  else if (mainMode === FIT && scroll) setMeasured(n, main, maxOrDef(minOrDef(availInnerMain + pbMain, boundWithin(n, main, maxLineMain, mainOwner)), pbMain));
  if (crossMode === MAX || (!scroll && crossMode === FIT)) setMeasured(n, cross, boundAxis(n, cross, totalLineCross + pbCross, crossOwner, ownerW));
  else if (crossMode === FIT && scroll) setMeasured(n, cross, maxOrDef(minOrDef(availInnerCross + pbCross, boundWithin(n, cross, totalLineCross + pbCross, crossOwner)), pbCross));

  if (!perform) return;
  if (n.wrap === WRAP_REV) {
    for (const c of kids) if (!c.absolute && !c.none) c.pos[cs] = measured(n, cross) - c.pos[cs]! - measured(c, cross);
  }
  // STEP 10: reversed axes are positioned from their far edge.
  const revMain = main === DIR_ROW_REV || main === DIR_COLUMN_REV;
  if (revMain) {
    const se = START[main]!, ee = END[main]!;
    for (const c of kids) if (!c.none && !c.absolute) c.pos[ee] = measured(n, main) - measured(c, main) - c.pos[se]!;
  }
  // STEP 11: absolute children, in this node's padding box.
  const cbW = n.measuredW - border(n, L) - border(n, R), cbH = n.measuredH - border(n, T) - border(n, B);
  for (const c of kids) {
    if (c.none || !c.absolute) continue;
    layoutAbsolute(n, c, cbW, cbH, mainRow ? mainMode : crossMode, ownerW);
    if (revMain) { const se = START[main]!, ee = END[main]!; c.pos[ee] = measured(n, main) - measured(c, main) - c.pos[se]!; }
  }
  for (const c of kids) if (!c.none) setBox(c, c.pos[L]!, c.pos[T]!, c.w, c.h);
}

function layoutAbsolute(n: SceneNode, c: SceneNode, cbW: number, cbH: number, widthMode: number, ownerW: number): void {
  const main = n.dir, cross = isRow(main) ? DIR_COLUMN : DIR_ROW, mainRow = isRow(main);
  let cw = NaN, ch = NaN, cwm = MAX, chm = MAX;
  const mRow = marginAxis(c, DIR_ROW, cbW), mCol = marginAxis(c, DIR_COLUMN, cbW);
  const insetDef = (e: number) => c.lu[S_INSET + e] === U_PT || c.lu[S_INSET + e] === U_PCT;
  if (hasDefiniteLength(c, true, cbW)) cw = resolvedDim(c, true, cbW) + mRow;
  else if (insetDef(L) && insetDef(R)) {
    cw = n.measuredW - (border(n, L) + border(n, R)) - (resolve(c, S_INSET + L, cbW) + resolve(c, S_INSET + R, cbW));
    cw = boundAxis(c, DIR_ROW, cw, cbW, cbW);
  }
  if (hasDefiniteLength(c, false, cbH)) ch = resolvedDim(c, false, cbH) + mCol;
  else if (insetDef(T) && insetDef(B)) {
    ch = n.measuredH - (border(n, T) + border(n, B)) - (resolve(c, S_INSET + T, cbH) + resolve(c, S_INSET + B, cbH));
    ch = boundAxis(c, DIR_COLUMN, ch, cbH, cbW);
  }
  if ((cw !== cw) !== (ch !== ch) && c.aspect === c.aspect) {
    if (cw !== cw) cw = mRow + (ch - mCol) * c.aspect;
    else ch = mCol + (cw - mRow) / c.aspect;
  }
  if (cw !== cw || ch !== ch) {
    cwm = cw !== cw ? MAX : EXACT;
    chm = ch !== ch ? MAX : EXACT;
    if (!mainRow && cw !== cw && widthMode !== MAX && cbW === cbW && cbW > 0) { cw = cbW; cwm = FIT; }
    layoutNode(c, cw, ch, cwm, chm, cbW, cbH, false);
    cw = c.measuredW + marginAxis(c, DIR_ROW, cbW);
    ch = c.measuredH + marginAxis(c, DIR_COLUMN, cbW);
  }
  layoutNode(c, cw, ch, EXACT, EXACT, cbW, cbH, true);
  positionAbsolute(n, c, main, true, cbW, cbH, ownerW);
  positionAbsolute(n, c, cross, false, cbW, cbH, ownerW);
}

function positionAbsolute(n: SceneNode, c: SceneNode, axis: number, isMain: boolean, cbW: number, cbH: number, ownerW: number): void {
  const row = isRow(axis), cbSize = row ? cbW : cbH;
  const is = row ? L : T, ie = row ? R : B; // inline start / end edges
  const fs = START[axis]!, fe = END[axis]!;
  const insetDef = (e: number) => c.lu[S_INSET + e] === U_PT || c.lu[S_INSET + e] === U_PCT;
  const opposite = (p: number) => measured(n, axis) - measured(c, axis) - p;
  if (insetDef(is)) {
    const p = resolve(c, S_INSET + is, cbSize) + border(n, is) + margin(c, is, cbSize);
    c.pos[fs] = is !== fs ? opposite(p) : p;
    return;
  }
  if (insetDef(ie)) {
    const p = measured(n, axis) - measured(c, axis) - border(n, ie) - margin(c, ie, cbSize) - resolve(c, S_INSET + ie, cbSize);
    c.pos[fs] = is !== fs ? opposite(p) : p;
    return;
  }
  // No insets: justify-content (main axis) / align-items (cross axis) of the parent decide.
  let where: number; // 0 start, 1 center, 2 end
  if (isMain) {
    const j = n.justify;
    where = j === J_END ? 2 : j === J_CENTER || j === J_AROUND || j === J_EVENLY ? 1 : 0;
  } else {
    let al = alignOf(n, c);
    if (n.wrap === WRAP_REV) al = al === A_END ? A_START : al !== A_CENTER ? A_END : al;
    where = al === A_END ? 2 : al === A_CENTER ? 1 : 0;
  }
  const pS = pad(n, fs, ownerW), pE = pad(n, fe, ownerW);
  if (where === 0) c.pos[fs] = margin(c, fs, cbW) + border(n, fs) + pS;
  else if (where === 2) c.pos[fs] = measured(n, axis) - measured(c, axis) - (border(n, fe) + margin(c, fe, cbW) + pE);
  else {
    const content = measured(n, axis) - border(n, fs) - border(n, fe) - pS - pE;
    const outer = measured(c, axis) + marginAxis(c, axis, cbW);
    c.pos[fs] = (content - outer) / 2 + border(n, fs) + margin(c, fs, cbW) + pS;
  }
}

// Leaf measurement reuse (Yoga's Cache.cpp rules), restricted to the cases where the reused
// result is exactly what measuring again would give — otherwise the result would depend on which
// measurements happen to be cached, and incremental layout would differ from fresh. Each entry
// keeps the unclamped content size it measured (`nat`, NaN when unknown) and whether its text
// wrapped. For text (greedy line breaking is monotone):
// - same mode and size;
// - exact now, at the old (unclamped) result: the lines at that width are the old lines;
// - at-most now, max-content before, the old result fits;
// - at-most now, at-most before with a larger size, the old result fits, and (width) either the
//   new size is really smaller or the old text did not wrap. Yoga compares the old size *with*
//   margins against the new one without, which lets a looser size reuse a wrapped result.
// A result clamped by min/max is reused only for the same spec. Images: same spec only.
function axisCompatible(m: number, a: number, lm: number, la: number, lc: number, margin: number, nat: number, wrapped: boolean, isWidth: boolean): boolean {
  if (lm === m && inexactEq(la, a)) return true;
  if (nat !== nat || !(Math.abs(lc - nat) < 1e-9)) return false;
  const size = a - margin;
  if (m === EXACT) return inexactEq(size, lc);
  if (m === FIT && lm === MAX) return size >= lc || inexactEq(size, lc);
  if (m === FIT && lm === FIT && la === la && size === size && la > size && (lc <= size || inexactEq(size, lc))) return !isWidth || !wrapped || size <= la - margin + 1e-9;
  return false;
}
// What yoga-layout 3.2 would have reused (its Cache.cpp rules, 1e-4 tolerances and all). Not
// used for layout: only to count the places where Yoga's answer would come from a stale reuse.
function yogaAxisCompatible(m: number, a: number, lm: number, la: number, lc: number, margin: number): boolean {
  const size = a - margin;
  return (lm === m && inexactEq(la, a))
    || (m === EXACT && inexactEq(size, lc))
    || (m === FIT && lm === MAX && (size >= lc || inexactEq(size, lc)))
    || (lm === FIT && m === FIT && la === la && size === size && lc === lc && la > size && (lc <= size || inexactEq(size, lc)));
}
/** Would Yoga (scanning its entries in its order) have reused an entry of this pass with another result than ours? */
function countYogaReuse(n: SceneNode, wm: number, aw: number, hm: number, ah: number, mRow: number, mCol: number): void {
  const cm = n.cM;
  const differs = (w: number, h: number) => Math.abs(w - n.measuredW) > 1e-3 || Math.abs(h - n.measuredH) > 1e-3;
  if (n.cLayout && n.cLGen === generation && yogaAxisCompatible(wm, aw, n.cWM, n.cAW, n.cRW, mRow) && yogaAxisCompatible(hm, ah, n.cHM, n.cAH, n.cRH, mCol)) {
    if (differs(n.cRW, n.cRH)) sensitive++;
    return;
  }
  for (let i = 0; i < n.cN; i++) {
    const o = i * SLOT;
    if (cm[o + 6] !== generation) continue;
    if (yogaAxisCompatible(wm, aw, cm[o + 2]!, cm[o]!, cm[o + 4]!, mRow) && yogaAxisCompatible(hm, ah, cm[o + 3]!, cm[o + 1]!, cm[o + 5]!, mCol)) {
      if (differs(cm[o + 4]!, cm[o + 5]!)) sensitive++;
      return;
    }
  }
}

function canUseCached(wm: number, aw: number, hm: number, ah: number, lwm: number, law: number, lhm: number, lah: number, lcw: number, lch: number, mRow: number, mCol: number, natW: number, natH: number, wrapped: boolean): boolean {
  if ((lch === lch && lch < 0) || (lcw === lcw && lcw < 0)) return false;
  return axisCompatible(wm, aw, lwm, law, lcw, mRow, natW, wrapped, true) && axisCompatible(hm, ah, lhm, lah, lch, mCol, natH, wrapped, false);
}

/** Yoga's calculateLayoutInternal: the cache in front of layoutImpl. */
function layoutNode(n: SceneNode, aw: number, ah: number, wm: number, hm: number, ownerW: number, ownerH: number, perform: boolean): boolean {
  const visit = n.dirty && n.gen !== generation;
  if (visit) { n.cN = 0; n.cLayout = false; }
  let hit = -1; // -2: the layout entry; >= 0: a measurement entry
  const cm = n.cM;
  if (isLeaf(n)) {
    const mRow = marginAxis(n, DIR_ROW, ownerW), mCol = marginAxis(n, DIR_COLUMN, ownerW);
    if (n.cLayout && sameOwner(n, ownerW, ownerH, n.cOW, n.cOH, n.cLGen) && canUseCached(wm, aw, hm, ah, n.cWM, n.cAW, n.cHM, n.cAH, n.cRW, n.cRH, mRow, mCol, n.cNatW, n.cNatH, n.cWrapped)) hit = -2;
    else {
      for (let i = 0; i < n.cN; i++) {
        const o = i * SLOT;
        if (sameOwner(n, ownerW, ownerH, cm[o + 7]!, cm[o + 8]!, cm[o + 6]!) && canUseCached(wm, aw, hm, ah, cm[o + 2]!, cm[o]!, cm[o + 3]!, cm[o + 1]!, cm[o + 4]!, cm[o + 5]!, mRow, mCol, cm[o + 9]!, cm[o + 10]!, cm[o + 11] === 1)) { hit = i; break; }
      }
    }
  } else if (perform) {
    if (n.cLayout && n.cWM === wm && n.cHM === hm && sameSize(n.cAW, aw, n.cLGen) && sameSize(n.cAH, ah, n.cLGen) && sameOwner(n, ownerW, ownerH, n.cOW, n.cOH, n.cLGen)) hit = -2;
  } else {
    for (let i = 0; i < n.cN; i++) {
      const o = i * SLOT;
      if (cm[o + 2] === wm && cm[o + 3] === hm && sameSize(cm[o]!, aw, cm[o + 6]!) && sameSize(cm[o + 1]!, ah, cm[o + 6]!) && sameOwner(n, ownerW, ownerH, cm[o + 7]!, cm[o + 8]!, cm[o + 6]!)) { hit = i; break; }
    }
  }
  if (!visit && hit !== -1) {
    if (hit === -2) { n.measuredW = n.cRW; n.measuredH = n.cRH; }
    else { n.measuredW = cm[hit * SLOT + 4]!; n.measuredH = cm[hit * SLOT + 5]!; }
    // Yoga scans its entries in order and may have taken another one than ours.
    if (isLeaf(n)) countYogaReuse(n, wm, aw, hm, ah, marginAxis(n, DIR_ROW, ownerW), marginAxis(n, DIR_COLUMN, ownerW));
  } else {
    layoutImpl(n, aw, ah, wm, hm, ownerW, ownerH, perform);
    if (hit === -1 && isLeaf(n)) countYogaReuse(n, wm, aw, hm, ah, marginAxis(n, DIR_ROW, ownerW), marginAxis(n, DIR_COLUMN, ownerW));
    if (hit === -1) {
      if (perform) {
        n.cLayout = true; n.cAW = aw; n.cAH = ah; n.cWM = wm; n.cHM = hm; n.cRW = n.measuredW; n.cRH = n.measuredH; n.cLGen = generation; n.cOW = ownerW; n.cOH = ownerH;
        n.cNatW = natW; n.cNatH = natH; n.cWrapped = natWrapped;
      } else {
        if (n.cN === CACHE_SLOTS) n.cN = 0;
        const o = n.cN * SLOT;
        // Grows by one entry at a time: most nodes only ever hold one or two measurements.
        if (n.cM.length === 0) n.cM = [0.5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        const cm = n.cM;
        while (cm.length < o + SLOT) cm.push(0.5);
        cm[o] = aw; cm[o + 1] = ah; cm[o + 2] = wm; cm[o + 3] = hm; cm[o + 4] = n.measuredW; cm[o + 5] = n.measuredH; cm[o + 6] = generation; cm[o + 7] = ownerW; cm[o + 8] = ownerH;
        cm[o + 9] = natW; cm[o + 10] = natH; cm[o + 11] = natWrapped ? 1 : 0;
        n.cN++;
      }
    }
  }
  if (perform) {
    setBox(n, n.x, n.y, n.measuredW, n.measuredH);
    n.dirty = false;
    n.zeroed = false;
    if (n.kind === K_TEXT) {
      // Glyphs are placed lazily (SceneNode.textLayout); here only note that they changed.
      const cw = quantize(n.measuredW - padBorderAxis(n, DIR_ROW, ownerW));
      if (cw !== n.textWidth || n.textLaid !== n.textVersion) { n.textWidth = cw; n.textLaid = n.textVersion; tree.noteLayoutChanged(n); }
    }
  }
  n.gen = generation;
  return visit || hit === -1;
}

/** Lays out the tree under `root` in a viewport of ownerW x ownerH (Yoga's calculateLayout). */
export function computeLayout(t: SceneTree, root: SceneNode, ownerW: number, ownerH: number): void {
  tree = t;
  generation = t.generation;
  sensitive = 0;
  stackTop = 0;
  if (stackItems.length > 1 << 16) stackItems = [];
  let w: number, wm: number, h: number, hm: number;
  if (hasDefiniteLength(root, true, ownerW)) { w = resolvedDim(root, true, ownerW) + marginAxis(root, DIR_ROW, ownerW); wm = EXACT; }
  else if (isDef(resolve(root, S_MAXW, ownerW))) { w = resolve(root, S_MAXW, ownerW); wm = FIT; }
  else { w = ownerW; wm = w === w ? EXACT : MAX; }
  if (hasDefiniteLength(root, false, ownerH)) { h = resolvedDim(root, false, ownerH) + marginAxis(root, DIR_COLUMN, ownerW); hm = EXACT; }
  else if (isDef(resolve(root, S_MAXH, ownerH))) { h = resolve(root, S_MAXH, ownerH); hm = FIT; }
  else { h = ownerH; hm = h === h ? EXACT : MAX; }
  layoutNode(root, w, h, wm, hm, ownerW, ownerH, true);
  // Always (Yoga only when the root was laid out again): a percent inset or margin on the root
  // moves it when the viewport changes even if its own layout is cached.
  setPosition(root, ownerW, ownerH);
  setBox(root, root.pos[L]!, root.pos[T]!, root.w, root.h);
  t.stats.precisionSensitive = sensitive;
}
