// Builds the same tree in yoga-layout (the reference; a dev dependency) for the differential
// test and the benchmark. Named .bench.ts so the layer check and the pure tsconfig treat it as
// test/bench code: scene code proper never imports it.
import Yoga, { Align, Direction, Display, Edge, FlexDirection, Gutter, Justify, MeasureMode, Overflow, PositionType, Wrap, type Config, type Node as YNode } from 'yoga-layout';
import type { GenNode } from './gen.ts';
import { DEFAULT_TEXT_STYLE, SceneTree, type Length, type NodeId, type SceneNode, type StyleInput } from '../tree.ts';
import { layoutText, type TextShaper } from '../text/lines.ts';

const DIR = { row: FlexDirection.Row, 'row-reverse': FlexDirection.RowReverse, column: FlexDirection.Column, 'column-reverse': FlexDirection.ColumnReverse };
const WRAP = { nowrap: Wrap.NoWrap, wrap: Wrap.Wrap, 'wrap-reverse': Wrap.WrapReverse };
const JUST = { 'flex-start': Justify.FlexStart, center: Justify.Center, 'flex-end': Justify.FlexEnd, 'space-between': Justify.SpaceBetween, 'space-around': Justify.SpaceAround, 'space-evenly': Justify.SpaceEvenly };
const ALIGN = { auto: Align.Auto, 'flex-start': Align.FlexStart, center: Align.Center, 'flex-end': Align.FlexEnd, stretch: Align.Stretch, baseline: Align.Baseline, 'space-between': Align.SpaceBetween, 'space-around': Align.SpaceAround, 'space-evenly': Align.SpaceEvenly };
const OVER = { visible: Overflow.Visible, hidden: Overflow.Hidden, scroll: Overflow.Scroll };
const EDGES = [['Left', Edge.Left], ['Top', Edge.Top], ['Right', Edge.Right], ['Bottom', Edge.Bottom]] as const;

export function yogaConfig(): Config {
  const c = Yoga.Config.create();
  c.setPointScaleFactor(0); // no pixel rounding: compare raw layout
  return c;
}

const ml = (v: Length | undefined) => (v === undefined ? undefined : (v as number | 'auto' | `${number}%`));
const nonAuto = (v: Length | undefined) => (v === undefined || v === 'auto' ? undefined : (v as number | `${number}%`));

export function applyYogaStyle(y: YNode, s: StyleInput): void {
  if (s.flexDirection) y.setFlexDirection(DIR[s.flexDirection]);
  if (s.flexWrap) y.setFlexWrap(WRAP[s.flexWrap]);
  if (s.justifyContent) y.setJustifyContent(JUST[s.justifyContent]);
  if (s.alignItems) y.setAlignItems(ALIGN[s.alignItems]);
  if (s.alignSelf) y.setAlignSelf(ALIGN[s.alignSelf]);
  if (s.alignContent) y.setAlignContent(ALIGN[s.alignContent]);
  if (s.flexGrow !== undefined) y.setFlexGrow(s.flexGrow);
  if (s.flexShrink !== undefined) y.setFlexShrink(s.flexShrink);
  if (s.flexBasis !== undefined) y.setFlexBasis(ml(s.flexBasis) as never);
  if (s.width !== undefined) y.setWidth(ml(s.width));
  if (s.height !== undefined) y.setHeight(ml(s.height));
  if (s.minWidth !== undefined) y.setMinWidth(nonAuto(s.minWidth));
  if (s.minHeight !== undefined) y.setMinHeight(nonAuto(s.minHeight));
  if (s.maxWidth !== undefined) y.setMaxWidth(nonAuto(s.maxWidth));
  if (s.maxHeight !== undefined) y.setMaxHeight(nonAuto(s.maxHeight));
  for (const [name, e] of EDGES) {
    const m = s.margin ?? s[`margin${name}`]; if (m !== undefined) y.setMargin(e, ml(m));
    const p = s.padding ?? s[`padding${name}`]; if (p !== undefined) y.setPadding(e, nonAuto(p));
    const b = s.border ?? s[`border${name}`]; if (b !== undefined) y.setBorder(e, b);
    const i = s[name.toLowerCase() as 'left']; if (i !== undefined) y.setPosition(e, nonAuto(i));
  }
  const rg = s.gap ?? s.rowGap, cg = s.gap ?? s.columnGap;
  if (rg !== undefined) y.setGap(Gutter.Row, rg);
  if (cg !== undefined) y.setGap(Gutter.Column, cg);
  if (s.position) y.setPositionType(s.position === 'absolute' ? PositionType.Absolute : PositionType.Relative);
  if (s.aspectRatio) y.setAspectRatio(s.aspectRatio);
  if (s.display) y.setDisplay(s.display === 'none' ? Display.None : Display.Flex);
  if (s.overflow) y.setOverflow(OVER[s.overflow]);
}

/** The same measurement our engine does for a text leaf, as a Yoga measure function. */
/** Largest |size| yoga-layout passed to a measure function since the last reset. */
export const yogaProbe = { maxArg: 0 };
export function yogaTextMeasure(shaper: TextShaper, text: string, fontSize: number) {
  const fake = { text, textStyle: { ...DEFAULT_TEXT_STYLE, fontSize }, shaped: null } as unknown as SceneNode;
  return (width: number, wm: MeasureMode, height: number, hm: MeasureMode) => {
    if (Math.abs(width) > yogaProbe.maxArg) yogaProbe.maxArg = Math.abs(width);
    if (Math.abs(height) > yogaProbe.maxArg) yogaProbe.maxArg = Math.abs(height);
    const tl = layoutText(shaper, fake, wm === MeasureMode.Undefined ? Infinity : width);
    const w = wm === MeasureMode.Exactly ? width : wm === MeasureMode.AtMost ? Math.min(tl.width, width) : tl.width;
    const h = hm === MeasureMode.Exactly ? height : hm === MeasureMode.AtMost ? Math.min(tl.height, height) : tl.height;
    return { width: w, height: h };
  };
}

/** Builds a GenNode tree in Yoga; returns the root and every node in pre-order. */
export function buildYoga(config: Config, g: GenNode, shaper: TextShaper): { root: YNode; all: YNode[] } {
  const all: YNode[] = [];
  const build = (n: GenNode): YNode => {
    const y = Yoga.Node.create(config);
    all.push(y);
    applyYogaStyle(y, n.style);
    if (n.kind === 'text') y.setMeasureFunc(yogaTextMeasure(shaper, n.text ?? '', n.fontSize ?? 14));
    n.children.forEach((c, i) => y.insertChild(build(c), i));
    return y;
  };
  return { root: build(g), all };
}

export function buildOurs(t: SceneTree, g: GenNode, into: NodeId | null, ids: NodeId[]): NodeId {
  let id: NodeId;
  if (into === null) { id = t.root; t.setStyle(id, g.style); }
  else if (g.kind === 'text') id = t.createText(g.text ?? '', { fontSize: g.fontSize ?? 14 }, g.style);
  else id = t.create('container', g.style);
  ids.push(id);
  if (into !== null) t.appendChild(into, id);
  for (const c of g.children) buildOurs(t, c, id, ids);
  return id;
}

export interface Mismatch { index: number; ours: number[]; yoga: number[]; /** yoga-layout's float32 arithmetic blew up (a size beyond 1e6 somewhere): not comparable. */ degenerate?: boolean }

/** Lays the generated tree out both ways; returns the first mismatching visible node, if any. */
let sharedConfig: Config | null = null;
export function compare(g: GenNode, w: number, h: number, shaper: TextShaper): Mismatch | null {
  const config = sharedConfig ??= yogaConfig();
  const t = new SceneTree({ text: shaper });
  const ids: NodeId[] = [];
  buildOurs(t, g, null, ids);
  t.layout(w, h);
  const { root, all } = buildYoga(config, g, shaper);
  yogaProbe.maxArg = 0;
  root.calculateLayout(w, h, Direction.LTR);
  try {
    if (yogaProbe.maxArg > 1e6 || t.stats.precisionSensitive > 0) return { index: -1, ours: [], yoga: [], degenerate: true };
    // Pre-order walk that skips display:none subtrees (Yoga leaves NaN positions there).
    let i = 0;
    const walk = (n: GenNode, hidden: boolean): Mismatch | null => {
      const index = i++;
      const isHidden = hidden || n.style.display === 'none';
      if (!isHidden) {
        const b = t.box(ids[index]!), y = all[index]!.getComputedLayout();
        const ours = [b.x, b.y, b.width, b.height], yoga = [y.left, y.top, y.width, y.height];
        if (yoga.some((v) => !(Math.abs(v) < 1e6))) return { index, ours, yoga, degenerate: true };
        for (let k = 0; k < 4; k++) if (!(Math.abs(ours[k]! - yoga[k]!) <= 0.01)) return { index, ours, yoga };
      }
      for (const c of n.children) { const m = walk(c, isHidden); if (m) return m; }
      return null;
    };
    return walk(g, false);
  } finally {
    root.freeRecursive();
  }
}

