/**
 * The scene graph: nodes, their style, and the layout the flex engine computes for them.
 * Pure (no DOM, no Node): the renderer, the tests, replay and the timeline debugger run this code.
 *
 * API for the compositor (and anyone building on the tree):
 *
 *   const tree = new SceneTree({ text: shaper });      // shaper: scene/text (HarfBuzz) or FixedShaper
 *   const win = tree.create('surface', { width: 640, height: 480, position: 'absolute', left: 10, top: 20 });
 *   tree.setSurface(win, 7);                             // which window's contents this surface shows
 *   tree.appendChild(tree.root, win);
 *   const label = tree.createText('Hello', { fontSize: 14 }, { flexShrink: 1 });
 *   tree.appendChild(win, label);
 *   tree.layout(1280, 800);                              // incremental: only dirty paths are redone
 *   tree.box(label)        → { x, y, width, height }    // border box, PARENT-RELATIVE (like Yoga)
 *   tree.absoluteBox(label)                              // the same, in root coordinates (walks up)
 *   tree.textLayout(label) → TextLayout                  // glyph ids, x/y (baseline), advances, clusters,
 *                                                        // lineStarts — content-box relative; placed
 *                                                        // lazily on first access, then cached
 *   tree.takeChanges()     → { layout, paint, removed }  // node ids changed since the last call
 *   tree.stats             → { computed, measured, precisionSensitive }  // of the last layout()
 *
 * - Node ids are small integers, stable for the life of a node and never reused by a tree, so
 *   a compositor can key caches and damage by id. Ids are allocated in creation order, so the
 *   same sequence of calls gives the same ids (replay determinism). The root is id 0.
 * - Every edit that can change layout (style, text, tree shape) marks the node and its
 *   ancestors dirty; `layout()` redoes only dirty paths and reuses cached measurements
 *   elsewhere. Paint-only style (background, borderColor, color, opacity, cornerRadius)
 *   never dirties layout; it is reported in `takeChanges().paint`.
 * - Bad input (an unknown id, a cycle, NaN or infinite numbers, an unknown enum value) throws
 *   a `SceneError` with `kind: 'bad-input'` and leaves the tree unchanged; callers that
 *   must never throw (the session reducer) catch it and turn it into a typed rejection.
 * - Coordinates: layout writes each node's border box relative to its parent's border box
 *   (x, y = the parent's top-left corner). A moved window therefore changes one box, not its
 *   whole subtree (its descendants' absolute positions move with it: damage the old and new
 *   absolute box of the subtree root). Values are rounded to 1/4096 px, not to pixels, and an
 *   incremental layout gives bit-for-bit the boxes a fresh tree in the same state would
 *   (tested: scene/layout/cache.test.ts), so they can go into a scene hash.
 * - `takeChanges().layout` lists nodes whose parent-relative box or text layout changed; a node
 *   inside a cached (skipped) subtree does not move relative to its parent and is not listed.
 * - Text: measurement is by the tree's shaper (scene/text/harfbuzz.ts with the shipped font in
 *   the app; FixedShaper by default: 0.6 em per character, for tests). Baseline alignment uses
 *   Yoga's default baseline (the box's height, or the first child's), not the text's.
 * - Display none: the node and its subtree get zero boxes and no text layout.
 * - Style semantics are Yoga 3.2's (defaults included: flexDirection 'column', flexShrink 0,
 *   alignContent 'flex-start', position 'relative'), left-to-right only; tested against
 *   yoga-layout (scene/layout/flex.yoga.test.ts). Percent margins and paddings on every edge
 *   resolve against the parent's width (as in CSS and Yoga); percent sizes and insets against
 *   the parent's size on the matching axis. Deliberate differences from yoga-layout, each a
 *   Yoga cache artifact: an explicit flex-basis is always honoured, and a measurement is never
 *   reused for another owner size or a looser size (see layout/flex.ts).
 * - Not supported: right-to-left direction, `display: contents`/static position, the `flex`
 *   shorthand, percent gaps, box-sizing content-box, bidi text and font fallback.
 */
import { computeLayout } from './layout/flex.ts';
import { FixedShaper, layoutText, measureText, type TextLayout, type TextMeasure, type TextShaper } from './text/lines.ts';

export type { TextLayout, TextShaper } from './text/lines.ts';

export type NodeId = number;
export type NodeKind = 'container' | 'text' | 'image' | 'surface';
/** A length: points (a number), a percent string like '50%', or 'auto'. */
export type Length = number | `${number}%` | 'auto';

export type FlexDirection = 'row' | 'row-reverse' | 'column' | 'column-reverse';
export type FlexWrap = 'nowrap' | 'wrap' | 'wrap-reverse';
export type Justify = 'flex-start' | 'center' | 'flex-end' | 'space-between' | 'space-around' | 'space-evenly';
export type Align = 'flex-start' | 'center' | 'flex-end' | 'stretch' | 'baseline';
export type AlignContent = 'flex-start' | 'center' | 'flex-end' | 'stretch' | 'space-between' | 'space-around' | 'space-evenly';

/** A node's full style. Every field has a value (see `DEFAULT_STYLE`). */
export interface Style {
  display: 'flex' | 'none';
  position: 'relative' | 'absolute';
  flexDirection: FlexDirection;
  flexWrap: FlexWrap;
  justifyContent: Justify;
  alignItems: Align;
  alignSelf: Align | 'auto';
  alignContent: AlignContent;
  flexGrow: number;
  flexShrink: number;
  flexBasis: Length;
  width: Length;
  height: Length;
  /** 'auto' means no minimum / maximum. */
  minWidth: Length;
  minHeight: Length;
  maxWidth: Length;
  maxHeight: Length;
  marginTop: Length; marginRight: Length; marginBottom: Length; marginLeft: Length;
  paddingTop: Length; paddingRight: Length; paddingBottom: Length; paddingLeft: Length;
  /** Border widths in points (drawn in `borderColor`). */
  borderTop: number; borderRight: number; borderBottom: number; borderLeft: number;
  /** Insets; 'auto' = unset. Relative nodes are offset by them; absolute nodes placed by them. */
  top: Length; right: Length; bottom: Length; left: Length;
  rowGap: number;
  columnGap: number;
  /** width / height; 0 = unset. */
  aspectRatio: number;
  /** 'hidden' and 'scroll' clip children to the padding box (the compositor does the clipping). */
  overflow: 'visible' | 'hidden' | 'scroll';
  // Paint only (never dirties layout). Colours are 0xRRGGBBAA; 0 = transparent.
  background: number;
  borderColor: number;
  color: number;
  opacity: number;
  cornerRadius: number;
}

/** What callers pass: any subset of Style plus shorthands (all edges / both gaps at once). */
export interface StyleInput extends Partial<Style> {
  margin?: Length;
  padding?: Length;
  border?: number;
  gap?: number;
}

export const DEFAULT_STYLE: Readonly<Style> = Object.freeze({
  display: 'flex', position: 'relative', flexDirection: 'column', flexWrap: 'nowrap',
  justifyContent: 'flex-start', alignItems: 'stretch', alignSelf: 'auto', alignContent: 'flex-start',
  flexGrow: 0, flexShrink: 0, flexBasis: 'auto',
  width: 'auto', height: 'auto', minWidth: 'auto', minHeight: 'auto', maxWidth: 'auto', maxHeight: 'auto',
  marginTop: 0, marginRight: 0, marginBottom: 0, marginLeft: 0,
  paddingTop: 0, paddingRight: 0, paddingBottom: 0, paddingLeft: 0,
  borderTop: 0, borderRight: 0, borderBottom: 0, borderLeft: 0,
  top: 'auto', right: 'auto', bottom: 'auto', left: 'auto',
  rowGap: 0, columnGap: 0, aspectRatio: 0, overflow: 'visible',
  background: 0, borderColor: 0, color: 0x000000ff, opacity: 1, cornerRadius: 0,
} as Style);

export interface TextStyle {
  /** Font key registered with the shaper ('' = the shaper's default font). */
  font: string;
  fontSize: number;
  /** Line height in points; 0 = the font's ascent + descent + line gap. */
  lineHeight: number;
  /** Wrap at break opportunities when the available width is too small. */
  wrap: boolean;
}
export const DEFAULT_TEXT_STYLE: Readonly<TextStyle> = Object.freeze({ font: '', fontSize: 14, lineHeight: 0, wrap: true });

export interface Box { x: number; y: number; width: number; height: number }

export type SceneErrorKind = 'bad-input' | 'bug';
export class SceneError extends Error {
  constructor(readonly kind: SceneErrorKind, message: string) { super(message); this.name = 'SceneError'; }
}

// ---- compiled style: what the layout engine reads (numbers only, no strings in the hot loop) ----

/** Length slots in `SceneNode.lv` / `SceneNode.lu`. Edge slots are ordered left, top, right, bottom. */
export const S_W = 0, S_H = 1, S_MINW = 2, S_MINH = 3, S_MAXW = 4, S_MAXH = 5, S_BASIS = 6;
export const S_MARGIN = 7; // + edge (0 left, 1 top, 2 right, 3 bottom)
export const S_PAD = 11;
export const S_INSET = 15;
export const S_BORDER = 19;
export const S_COUNT = 23;
/** Units in `SceneNode.lu`. */
export const U_UNDEF = 0, U_PT = 1, U_PCT = 2, U_AUTO = 3;

export const DIR_COLUMN = 0, DIR_COLUMN_REV = 1, DIR_ROW = 2, DIR_ROW_REV = 3;
export const WRAP_NO = 0, WRAP_YES = 1, WRAP_REV = 2;
export const J_START = 0, J_CENTER = 1, J_END = 2, J_BETWEEN = 3, J_AROUND = 4, J_EVENLY = 5;
export const A_AUTO = 0, A_START = 1, A_CENTER = 2, A_END = 3, A_STRETCH = 4, A_BASELINE = 5, A_BETWEEN = 6, A_AROUND = 7, A_EVENLY = 8;
export const K_CONTAINER = 0, K_TEXT = 1, K_IMAGE = 2, K_SURFACE = 3;

const KINDS: NodeKind[] = ['container', 'text', 'image', 'surface'];
const DIRS: Record<string, number> = { column: DIR_COLUMN, 'column-reverse': DIR_COLUMN_REV, row: DIR_ROW, 'row-reverse': DIR_ROW_REV };
const WRAPS: Record<string, number> = { nowrap: WRAP_NO, wrap: WRAP_YES, 'wrap-reverse': WRAP_REV };
const JUSTIFY: Record<string, number> = { 'flex-start': J_START, center: J_CENTER, 'flex-end': J_END, 'space-between': J_BETWEEN, 'space-around': J_AROUND, 'space-evenly': J_EVENLY };
const ALIGN: Record<string, number> = { auto: A_AUTO, 'flex-start': A_START, center: A_CENTER, 'flex-end': A_END, stretch: A_STRETCH, baseline: A_BASELINE, 'space-between': A_BETWEEN, 'space-around': A_AROUND, 'space-evenly': A_EVENLY };

const LENGTH_KEYS: [keyof Style, number, boolean /* auto allowed */][] = [
  ['width', S_W, true], ['height', S_H, true], ['minWidth', S_MINW, true], ['minHeight', S_MINH, true],
  ['maxWidth', S_MAXW, true], ['maxHeight', S_MAXH, true], ['flexBasis', S_BASIS, true],
  ['marginLeft', S_MARGIN, true], ['marginTop', S_MARGIN + 1, true], ['marginRight', S_MARGIN + 2, true], ['marginBottom', S_MARGIN + 3, true],
  ['paddingLeft', S_PAD, false], ['paddingTop', S_PAD + 1, false], ['paddingRight', S_PAD + 2, false], ['paddingBottom', S_PAD + 3, false],
  ['left', S_INSET, true], ['top', S_INSET + 1, true], ['right', S_INSET + 2, true], ['bottom', S_INSET + 3, true],
];
const PAINT_KEYS = new Set<string>(['background', 'borderColor', 'color', 'opacity', 'cornerRadius']);
const ENUMS: Partial<Record<keyof Style, readonly string[]>> = {
  display: ['flex', 'none'], position: ['relative', 'absolute'], flexDirection: Object.keys(DIRS), flexWrap: Object.keys(WRAPS),
  justifyContent: Object.keys(JUSTIFY), alignItems: ['flex-start', 'center', 'flex-end', 'stretch', 'baseline'],
  alignSelf: ['auto', 'flex-start', 'center', 'flex-end', 'stretch', 'baseline'],
  alignContent: ['flex-start', 'center', 'flex-end', 'stretch', 'space-between', 'space-around', 'space-evenly'],
  overflow: ['visible', 'hidden', 'scroll'],
};
const NUMBER_KEYS = new Set<string>(['flexGrow', 'flexShrink', 'borderTop', 'borderRight', 'borderBottom', 'borderLeft', 'rowGap', 'columnGap', 'aspectRatio', 'background', 'borderColor', 'color', 'opacity', 'cornerRadius']);
const NONNEG_KEYS = new Set<string>(['flexGrow', 'flexShrink', 'borderTop', 'borderRight', 'borderBottom', 'borderLeft', 'rowGap', 'columnGap', 'aspectRatio', 'opacity', 'cornerRadius']);
const STYLE_KEYS = new Set<string>(Object.keys(DEFAULT_STYLE));

function badInput(msg: string): never { throw new SceneError('bad-input', msg); }

let parsedValue = 0;
/** Parses a Length: returns its unit and leaves its value in parsedValue; throws bad-input otherwise. */
function parseLength(key: string, v: unknown, autoOk: boolean): number {
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) badInput(`style.${key}: ${v} is not a finite number of points`);
    parsedValue = v;
    return U_PT;
  }
  if (v === 'auto' && autoOk) { parsedValue = 0; return U_AUTO; }
  if (typeof v === 'string' && v.length <= 32 && v.endsWith('%')) {
    const n = Number(v.slice(0, -1));
    if (v.length > 1 && Number.isFinite(n)) { parsedValue = n; return U_PCT; }
  }
  return badInput(`style.${key}: ${JSON.stringify(typeof v === 'string' ? v.slice(0, 40) : v)} is not a length (a number of points, 'N%'${autoOk ? " or 'auto'" : ''})`);
}
const LENGTH_SPEC = new Map(LENGTH_KEYS.map((l) => [l[0] as string, l]));

/**
 * One node. The layout engine reads and writes these fields directly; everyone else should treat
 * a SceneNode as read-only and go through SceneTree's methods (which keep the dirty flags right).
 */

export class SceneNode {
  parent: SceneNode | null = null;
  children: SceneNode[] = [];
  style: Readonly<Style> = DEFAULT_STYLE;
  // compiled style
  // Plain arrays, not typed arrays: a typed array per node costs an ArrayBuffer each, and
  // allocating and collecting tens of thousands of those dominated building and laying out.
  readonly lv: number[] = [0.5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
  readonly lu: number[] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
  dir = DIR_COLUMN; wrap = WRAP_NO; justify = J_START; alignItems = A_STRETCH; alignSelf = A_AUTO; alignContent = A_START;
  absolute = false; none = false; clip = false;
  /** 0 visible, 1 hidden, 2 scroll (scroll changes how Yoga sizes content-sized containers). */
  overflow = 0;
  grow = 0; shrink = 0; aspect = NaN; rowGap = 0; colGap = 0;
  /** A min/max, padding or margin is a percent: its measurement depends on the owner's size. */
  pctDep = false;
  /** Engine fast paths (see applyStyle): padding+border / margins per axis, NaN if percent. */
  fxPbRow = 0; fxPbCol = 0; fxMRow = 0; fxMCol = 0; hasMinMax = false;
  /** This node has a percent min/max; kidsMinMaxPct: how many children have one. */
  minMaxPct = false; kidsMinMaxPct = 0;
  // content
  text = '';
  textStyle: Readonly<TextStyle> = DEFAULT_TEXT_STYLE;
  /** Image intrinsic size (images) / surface id (surfaces). */
  intrinsicW = 0; intrinsicH = 0; surfaceId = -1; imageKey = '';
  // layout output: border box relative to the parent's border box
  x = 0; y = 0; w = 0; h = 0;
  /** Text nodes: the content width the last layout gave the text (NaN: not laid out / hidden). */
  textWidth = NaN;
  /** Bumped by every text or text-style edit; `textLaid` is the version the last layout saw. */
  textVersion = 0; textLaid = -1;
  /** The shaper of the owning tree (text nodes lay their glyphs out lazily through it). */
  shaperRef: TextShaper | null = null;
  private tl: TextLayout | null = null;
  /**
   * The node's glyphs, positioned relative to its content box, for the width layout gave it;
   * null for non-text nodes and text not laid out (or hidden). Placed on first access and kept:
   * layout itself only measures, so a relayout does not pay for glyphs nobody draws.
   */
  get textLayout(): TextLayout | null {
    if (this.kind !== K_TEXT || this.textWidth !== this.textWidth || !this.shaperRef) return null;
    const tl = this.tl;
    if (tl && tl.maxWidth === (this.textStyle.wrap && this.textWidth >= 0 ? this.textWidth : Infinity) && this.tlVersion === this.textVersion) return tl;
    this.tl = layoutText(this.shaperRef, this, this.textWidth);
    this.tlVersion = this.textVersion;
    return this.tl;
  }
  private tlVersion = -1;
  // engine state (see layout/flex.ts)
  dirty = true;
  changed = false;
  measuredW = 0; measuredH = 0;
  /** Yoga's computedFlexBasis (NaN = not computed). */
  flexBasis = NaN;
  lineIndex = 0;
  /** Position on each physical edge (left, top, right, bottom) while the parent lays out. */
  readonly pos: number[] = [0.5, 0, 0, 0];
  /** Layout generation of the last visit; `zeroed`: laid out as display:none (all zeros). */
  gen = -1; zeroed = false;
  // layout cache: last full layout + a small ring of measurements
  cLayout = false;
  cAW = 0; cAH = 0; cWM = 0; cHM = 0; cRW = 0; cRH = 0; cLGen = -1; cOW = 0; cOH = 0;
  cNatW = NaN; cNatH = NaN; cWrapped = true;
  cN = 0;
  /** Measurement cache: 8 entries of 12 numbers (see layout/flex.ts SLOT); allocated on first use. */
  cM: number[] = [];
  /** Shaped text cache (layout/text reuse it while text and textStyle are unchanged). */
  shaped: unknown = null;
  constructor(readonly id: NodeId, readonly kind: number) {
    this.lv[0] = 0; this.pos[0] = 0; // (created as doubles so the arrays stay double-typed)
    this.lu[S_W] = this.lu[S_H] = this.lu[S_BASIS] = U_AUTO;
    for (let e = 0; e < 4; e++) { this.lu[S_MARGIN + e] = U_PT; this.lu[S_PAD + e] = U_PT; this.lu[S_BORDER + e] = U_PT; this.lu[S_INSET + e] = U_AUTO; }
    this.lu[S_MINW] = this.lu[S_MINH] = this.lu[S_MAXW] = this.lu[S_MAXH] = U_AUTO;
  }
}

export interface Changes {
  /** Nodes whose box (parent-relative) or text layout changed in a layout() since the last call. */
  layout: NodeId[];
  /** Nodes whose paint-only style, image or surface binding changed. */
  paint: NodeId[];
  /** Nodes destroyed. */
  removed: NodeId[];
}

export interface LayoutStats {
  /** Nodes whose layout function ran (cache misses). */
  computed: number;
  /** Text measurements (line breaking) performed. */
  measured: number;
  /**
   * Places where yoga-layout may legitimately decide otherwise: a decision that hinged on a
   * rounding residue (float32 there, float64 here), Yoga's zero-total-shrink branch, or a leaf
   * measurement Yoga would have reused from other constraints with a different result (we
   * never reuse inexactly: it would make incremental layout differ from fresh). For the
   * differential test; 0 in ordinary trees.
   */
  precisionSensitive: number;
}

export interface SceneTreeOptions {
  /** The text shaper (scene/text). Default: FixedShaper (every glyph 0.6 em; for tests). */
  text?: TextShaper;
}

export class SceneTree {
  readonly root: NodeId;
  readonly shaper: TextShaper;
  private nodes: (SceneNode | undefined)[] = [];
  private nextId = 0;
  private changedLayout: NodeId[] = [];
  private changedPaint: NodeId[] = [];
  private removed: NodeId[] = [];
  private paintMark = new Set<NodeId>();
  /** Statistics of the last layout() call. */
  readonly stats: LayoutStats = { computed: 0, measured: 0, precisionSensitive: 0 };
  /** Bumped on every layout() (engine bookkeeping). */
  generation = 0;
  lastWidth = NaN;
  lastHeight = NaN;

  constructor(opts: SceneTreeOptions = {}) {
    this.shaper = opts.text ?? new FixedShaper();
    this.root = this.create('container');
  }

  // ---- creation and structure ----

  create(kind: NodeKind, style?: StyleInput): NodeId {
    const k = KINDS.indexOf(kind);
    if (k < 0) badInput(`unknown node kind ${JSON.stringify(kind)}`);
    const n = new SceneNode(this.nextId++, k);
    if (k === K_TEXT) n.shaperRef = this.shaper;
    if (style) this.applyStyle(n, style);
    this.nodes.push(n);
    return n.id;
  }
  createText(text: string, textStyle?: Partial<TextStyle>, style?: StyleInput): NodeId {
    const id = this.create('text', style);
    try { this.setText(id, text); if (textStyle) this.setTextStyle(id, textStyle); } catch (e) { this.destroy(id); throw e; }
    return id;
  }
  createImage(imageKey: string, intrinsicWidth: number, intrinsicHeight: number, style?: StyleInput): NodeId {
    const id = this.create('image', style);
    try { this.setImage(id, imageKey, intrinsicWidth, intrinsicHeight); } catch (e) { this.destroy(id); throw e; }
    return id;
  }

  has(id: NodeId): boolean { return this.nodes[id] !== undefined; }
  /** The node object (read-only use; see SceneNode). Throws bad-input for unknown ids. */
  node(id: NodeId): SceneNode {
    const n = Number.isInteger(id) ? this.nodes[id] : undefined;
    if (!n) badInput(`no scene node with id ${String(id).slice(0, 40)}`);
    return n;
  }
  kind(id: NodeId): NodeKind { return KINDS[this.node(id).kind]!; }
  parent(id: NodeId): NodeId | null { return this.node(id).parent?.id ?? null; }
  children(id: NodeId): NodeId[] { return this.node(id).children.map((c) => c.id); }
  style(id: NodeId): Readonly<Style> { return this.node(id).style; }
  text(id: NodeId): string { return this.node(id).text; }
  textStyle(id: NodeId): Readonly<TextStyle> { return this.node(id).textStyle; }
  /** Number of live nodes. */
  get size(): number { let c = 0; for (const n of this.nodes) if (n) c++; return c; }
  /** Live node ids in id order. */
  ids(): NodeId[] { const out: NodeId[] = []; for (const n of this.nodes) if (n) out.push(n.id); return out; }

  /** Inserts `child` into `parent` before `before` (null = at the end). Detaches it first. */
  insertBefore(parent: NodeId, child: NodeId, before: NodeId | null): void {
    const p = this.node(parent), c = this.node(child);
    if (p.kind === K_TEXT || p.kind === K_IMAGE) badInput(`node ${parent} is a ${KINDS[p.kind]} and cannot have children`);
    if (c.id === this.root) badInput('the root cannot be a child');
    for (let a: SceneNode | null = p; a; a = a.parent) if (a === c) badInput(`inserting node ${child} into ${parent} would make a cycle`);
    let b: SceneNode | null = null;
    if (before !== null) {
      b = this.node(before);
      if (b.parent !== p) badInput(`node ${before} is not a child of ${parent}`);
      if (b === c) return;
    }
    this.detach(c);
    const i = b ? p.children.indexOf(b) : p.children.length;
    p.children.splice(i, 0, c);
    if (c.minMaxPct) p.kidsMinMaxPct++;
    c.parent = p;
    this.markDirty(p);
  }
  appendChild(parent: NodeId, child: NodeId): void { this.insertBefore(parent, child, null); }
  /** Detaches a node (and its subtree) from its parent; it stays alive and can be re-inserted. */
  removeFromParent(id: NodeId): void { this.detach(this.node(id)); }
  /** Destroys a node and its whole subtree (ids are not reused). */
  destroy(id: NodeId): void {
    const n = this.node(id);
    if (n.id === this.root) badInput('the root cannot be destroyed');
    this.detach(n);
    const stack = [n];
    while (stack.length) {
      const m = stack.pop()!;
      for (const c of m.children) stack.push(c);
      this.nodes[m.id] = undefined;
      this.removed.push(m.id);
    }
  }
  private detach(c: SceneNode): void {
    const p = c.parent;
    if (!p) return;
    if (c.minMaxPct) p.kidsMinMaxPct--;
    p.children.splice(p.children.indexOf(c), 1);
    c.parent = null;
    this.markDirty(p);
    c.changed = false;
  }

  // ---- content and style ----

  /** Merges `style` into the node's style. Validates everything before changing anything. */
  setStyle(id: NodeId, style: StyleInput): void { this.applyStyle(this.node(id), style); }

  setText(id: NodeId, text: string): void {
    const n = this.node(id);
    if (n.kind !== K_TEXT) badInput(`node ${id} is a ${KINDS[n.kind]}, not text`);
    if (typeof text !== 'string') badInput(`text of node ${id} must be a string`);
    if (n.text === text) return;
    n.text = text;
    n.shaped = null;
    n.textVersion++;
    this.markDirty(n);
  }
  setTextStyle(id: NodeId, ts: Partial<TextStyle>): void {
    const n = this.node(id);
    if (n.kind !== K_TEXT) badInput(`node ${id} is a ${KINDS[n.kind]}, not text`);
    const next = { ...n.textStyle };
    for (const [k, v] of Object.entries(ts)) {
      if (k === 'font') { if (typeof v !== 'string') badInput('textStyle.font must be a string'); next.font = v; }
      else if (k === 'fontSize' || k === 'lineHeight') {
        if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 4096) badInput(`textStyle.${k}: ${v} is not a size in 0..4096`);
        next[k] = v;
      } else if (k === 'wrap') { if (typeof v !== 'boolean') badInput('textStyle.wrap must be a boolean'); next.wrap = v; }
      else badInput(`unknown text style property ${JSON.stringify(k).slice(0, 40)}`);
    }
    if (next.font === n.textStyle.font && next.fontSize === n.textStyle.fontSize && next.lineHeight === n.textStyle.lineHeight && next.wrap === n.textStyle.wrap) return;
    n.textStyle = Object.freeze(next);
    n.shaped = null;
    n.textVersion++;
    this.markDirty(n);
  }
  setImage(id: NodeId, imageKey: string, intrinsicWidth: number, intrinsicHeight: number): void {
    const n = this.node(id);
    if (n.kind !== K_IMAGE) badInput(`node ${id} is a ${KINDS[n.kind]}, not an image`);
    for (const v of [intrinsicWidth, intrinsicHeight]) if (!Number.isFinite(v) || v < 0) badInput(`image size ${v} is not a finite size >= 0`);
    if (n.imageKey !== imageKey) { n.imageKey = imageKey; this.markPaint(n); }
    if (n.intrinsicW !== intrinsicWidth || n.intrinsicH !== intrinsicHeight) {
      n.intrinsicW = intrinsicWidth; n.intrinsicH = intrinsicHeight; this.markDirty(n);
    }
  }
  /** Binds a surface node to a window's surface id (paint only). */
  setSurface(id: NodeId, surfaceId: number): void {
    const n = this.node(id);
    if (n.kind !== K_SURFACE) badInput(`node ${id} is a ${KINDS[n.kind]}, not a surface`);
    if (!Number.isInteger(surfaceId)) badInput(`surface id ${surfaceId} is not an integer`);
    if (n.surfaceId !== surfaceId) { n.surfaceId = surfaceId; this.markPaint(n); }
  }
  surfaceId(id: NodeId): number { return this.node(id).surfaceId; }
  image(id: NodeId): { key: string; width: number; height: number } {
    const n = this.node(id);
    return { key: n.imageKey, width: n.intrinsicW, height: n.intrinsicH };
  }

  private applyStyle(n: SceneNode, input: StyleInput): void {
    if (input === null || typeof input !== 'object') badInput('style must be an object');
    // Expand shorthands, then validate into a new object: nothing changes unless all is valid.
    const flat: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(input)) {
      if (v === undefined) continue;
      if (k === 'margin' || k === 'padding') { for (const e of ['Top', 'Right', 'Bottom', 'Left']) flat[k + e] = v; }
      else if (k === 'border') { for (const e of ['Top', 'Right', 'Bottom', 'Left']) flat[k + e] = v; }
      else if (k === 'gap') { flat.rowGap = v; flat.columnGap = v; }
      else if (!STYLE_KEYS.has(k)) badInput(`unknown style property ${JSON.stringify(k).slice(0, 40)}`);
      else flat[k] = v;
    }
    const next: Record<string, unknown> = { ...n.style };
    let layoutChanged = false, paintChanged = false;
    for (const [k, v] of Object.entries(flat)) {
      const allowed = ENUMS[k as keyof Style];
      if (allowed) { if (typeof v !== 'string' || !allowed.includes(v)) badInput(`style.${k}: ${JSON.stringify(v).slice(0, 40)} is not one of ${allowed.join(', ')}`); }
      else if (NUMBER_KEYS.has(k)) {
        if (typeof v !== 'number' || !Number.isFinite(v)) badInput(`style.${k}: ${String(v).slice(0, 40)} is not a finite number`);
        if (NONNEG_KEYS.has(k) && v < 0) badInput(`style.${k}: ${v} must be >= 0`);
      } else {
        const spec = LENGTH_SPEC.get(k)!;
        parseLength(k, v, spec[2]);
      }
      if (next[k] !== v) { next[k] = v; if (PAINT_KEYS.has(k)) paintChanged = true; else layoutChanged = true; }
    }
    if (!layoutChanged && !paintChanged) return;
    const s = Object.freeze(next as unknown as Style);
    n.style = s;
    if (paintChanged) this.markPaint(n);
    if (!layoutChanged) return;
    for (let i = 0; i < LENGTH_KEYS.length; i++) { const l = LENGTH_KEYS[i]!; n.lu[l[1]] = parseLength(l[0], s[l[0]], l[2]); n.lv[l[1]] = parsedValue; }
    n.lv[S_BORDER] = s.borderLeft; n.lv[S_BORDER + 1] = s.borderTop; n.lv[S_BORDER + 2] = s.borderRight; n.lv[S_BORDER + 3] = s.borderBottom;
    n.dir = DIRS[s.flexDirection]!; n.wrap = WRAPS[s.flexWrap]!; n.justify = JUSTIFY[s.justifyContent]!;
    n.alignItems = ALIGN[s.alignItems]!; n.alignSelf = ALIGN[s.alignSelf]!; n.alignContent = ALIGN[s.alignContent]!;
    n.absolute = s.position === 'absolute'; n.none = s.display === 'none'; n.clip = s.overflow !== 'visible';
    n.overflow = s.overflow === 'visible' ? 0 : s.overflow === 'hidden' ? 1 : 2;
    n.grow = s.flexGrow; n.shrink = s.flexShrink; n.aspect = s.aspectRatio > 0 ? s.aspectRatio : NaN;
    n.rowGap = s.rowGap; n.colGap = s.columnGap;
    // Percents the node resolves itself against its owner's size (Yoga leaves the owner out of
    // its cache keys; we add it for these nodes — see layout/flex.ts sameOwner).
    // Fast paths for the engine: padding+border and margins per axis when no percent is
    // involved (NaN otherwise), and which min/max exist.
    const fixed = (a: number, b: number) => (n.lu[a] === U_PT && n.lu[b] === U_PT ? n.lv[a]! + n.lv[b]! : NaN);
    const fixedMargin = (a: number, b: number) => (n.lu[a] !== U_PCT && n.lu[b] !== U_PCT ? (n.lu[a] === U_PT ? n.lv[a]! : 0) + (n.lu[b] === U_PT ? n.lv[b]! : 0) : NaN);
    n.fxPbRow = fixed(S_PAD, S_PAD + 2) + n.lv[S_BORDER]! + n.lv[S_BORDER + 2]!;
    n.fxPbCol = fixed(S_PAD + 1, S_PAD + 3) + n.lv[S_BORDER + 1]! + n.lv[S_BORDER + 3]!;
    if (n.lv[S_PAD]! < 0 || n.lv[S_PAD + 2]! < 0) n.fxPbRow = NaN;
    if (n.lv[S_PAD + 1]! < 0 || n.lv[S_PAD + 3]! < 0) n.fxPbCol = NaN;
    n.fxMRow = fixedMargin(S_MARGIN, S_MARGIN + 2);
    n.fxMCol = fixedMargin(S_MARGIN + 1, S_MARGIN + 3);
    n.hasMinMax = n.lu[S_MINW] === U_PT || n.lu[S_MINW] === U_PCT || n.lu[S_MAXW] === U_PT || n.lu[S_MAXW] === U_PCT
      || n.lu[S_MINH] === U_PT || n.lu[S_MINH] === U_PCT || n.lu[S_MAXH] === U_PT || n.lu[S_MAXH] === U_PCT;
    n.pctDep = false;
    for (let i = S_MINW; i < S_INSET; i++) if (i !== S_BASIS && n.lu[i] === U_PCT) n.pctDep = true;
    if (n.wrap !== WRAP_NO && (n.lu[S_W] === U_PCT || n.lu[S_H] === U_PCT)) n.pctDep = true;
    // Yoga bounds a flex item's basis by its percent min/max resolved against the *parent's*
    // owner size, so such a child makes its parent's layout depend on that size too.
    const mmPct = n.lu[S_MINW] === U_PCT || n.lu[S_MINH] === U_PCT || n.lu[S_MAXW] === U_PCT || n.lu[S_MAXH] === U_PCT;
    if (mmPct !== n.minMaxPct) { if (n.parent) n.parent.kidsMinMaxPct += mmPct ? 1 : -1; n.minMaxPct = mmPct; }
    this.markDirty(n);
  }

  /**
   * Marks a node and all its ancestors as needing layout. Always walks to the root (O(depth)):
   * stopping at an ancestor that is already dirty is the classic way for a cache to miss an edit
   * (a hidden or detached subtree can hold dirty nodes under a clean parent).
   */
  markDirty(n: SceneNode): void {
    for (let a: SceneNode | null = n; a; a = a.parent) { a.dirty = true; a.zeroed = false; }
  }
  private markPaint(n: SceneNode): void {
    if (!this.paintMark.has(n.id)) { this.paintMark.add(n.id); this.changedPaint.push(n.id); }
  }
  isDirty(id: NodeId): boolean { return this.node(id).dirty; }

  // ---- layout ----

  /**
   * Lays the tree out in a viewport of `width` x `height` points (the root's available size;
   * the root's own style may still set its size). Incremental: clean subtrees laid out before
   * under the same constraints are reused as they are.
   */
  layout(width: number, height: number): LayoutStats {
    if (!Number.isFinite(width) || !Number.isFinite(height) || width < 0 || height < 0) badInput(`viewport ${width}x${height} is not a finite size`);
    this.generation++;
    this.stats.computed = 0;
    this.stats.measured = 0;
    computeLayout(this, this.nodes[this.root]!, width, height);
    this.lastWidth = width; this.lastHeight = height;
    return { ...this.stats };
  }

  /** Engine hook: records that a node's box or text layout changed in this pass. */
  noteLayoutChanged(n: SceneNode): void {
    if (!n.changed) { n.changed = true; this.changedLayout.push(n.id); }
  }
  /** Engine hook: lays out a text node's glyphs for a width (NaN = unbounded). */
  shapeText(n: SceneNode, maxWidth: number): TextLayout {
    return layoutText(this.shaper, n, maxWidth);
  }
  /** Engine hook: a text node's size at a width, without placing glyphs. */
  measureText(n: SceneNode, maxWidth: number): TextMeasure {
    return measureText(this.shaper, n, maxWidth);
  }

  /** Border box relative to the parent's border box (root: relative to the viewport). */
  box(id: NodeId): Box { const n = this.node(id); return { x: n.x, y: n.y, width: n.w, height: n.h }; }
  /** Border box in root coordinates. A detached node is relative to its detached subtree's root. */
  absoluteBox(id: NodeId): Box {
    const n = this.node(id);
    let x = n.x, y = n.y;
    for (let a = n.parent; a; a = a.parent) { x += a.x; y += a.y; }
    return { x, y, width: n.w, height: n.h };
  }
  /** Padding box inset: the resolved border widths (left, top, right, bottom) in points. */
  border(id: NodeId): [number, number, number, number] { const s = this.node(id).style; return [s.borderLeft, s.borderTop, s.borderRight, s.borderBottom]; }
  /** A text node's glyphs, positioned relative to its content box (null before layout / for non-text). */
  textLayout(id: NodeId): TextLayout | null { return this.node(id).textLayout; }

  /** Node ids whose layout / paint changed, and destroyed ids, since the last call. */
  takeChanges(): Changes {
    const out: Changes = { layout: this.changedLayout.filter((id) => this.nodes[id] !== undefined), paint: this.changedPaint.filter((id) => this.nodes[id] !== undefined), removed: this.removed };
    for (const id of this.changedLayout) { const n = this.nodes[id]; if (n) n.changed = false; }
    this.changedLayout = []; this.changedPaint = []; this.removed = []; this.paintMark.clear();
    return out;
  }
}
