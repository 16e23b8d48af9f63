// Random scene trees of the supported styles, from a seed: shared by the differential test
// against yoga-layout, the cached-vs-fresh test and the layout benchmark. Pure and
// deterministic (a seeded PRNG; no Math.random).
import { mulberry32 } from '../../axiom/random.ts';
import type { Length, StyleInput } from '../tree.ts';

export const prng = mulberry32;

export interface GenNode {
  kind: 'container' | 'text';
  style: StyleInput;
  text?: string;
  fontSize?: number;
  children: GenNode[];
}

export interface GenOptions {
  /** Probability that a style property is set at all. */
  density?: number;
  /** Allow absolute positioning, display none, aspect ratio, auto margins, wrap, min/max. */
  absolute?: boolean;
  displayNone?: boolean;
  aspectRatio?: boolean;
  autoMargins?: boolean;
  percent?: boolean;
  minMax?: boolean;
  baseline?: boolean;
  /** Generate explicit flex-basis values (points and percent). */
  flexBasis?: boolean;
  /**
   * Percents and margins on text leaves (default on). yoga-layout reuses a leaf's measurement
   * for other constraints when the old result "still fits" — also for a new owner size (a
   * percent padding stays resolved against the old one) and for a looser size when the leaf has
   * margins (its rule compares sizes with and without margins). We reuse only exact matches,
   * which keeps incremental layout bit-identical to fresh; the differential test turns this off
   * so it compares layout semantics, not those cache artifacts.
   */
  leafPercent?: boolean;
  /**
   * Percent margins, paddings and min/max (and percent sizes on wrapping containers): values a
   * node resolves against its owner's size. yoga-layout's caches leave the owner size out of
   * their keys and reuse such results across owner sizes; ours do not. Default on; the
   * differential test turns it off (percent widths, heights and insets stay on).
   */
  ownerPercent?: boolean;
}

const WORDS = ['a', 'lorem', 'ipsum', 'dolor', 'sit', 'amet', 'orbital', 'flex', 'box', 'x', 'window', 'terminal'];

export class StyleGen {
  constructor(readonly r: () => number, readonly o: GenOptions = {}) {}
  pick<T>(xs: readonly T[]): T { return xs[Math.floor(this.r() * xs.length)]!; }
  chance(p: number): boolean { return this.r() < p; }
  int(lo: number, hi: number): number { return lo + Math.floor(this.r() * (hi - lo + 1)); }
  len(max: number, auto: boolean, percentOk = true): Length {
    const x = this.r();
    if (auto && x < 0.2) return 'auto';
    if (this.o.percent !== false && percentOk && x < 0.45) return `${this.int(0, 100)}%`;
    return this.int(0, max);
  }
  style(isRoot: boolean): StyleInput {
    const d = this.o.density ?? 0.3, s: StyleInput = {};
    const maybe = (p = d) => this.chance(p);
    if (maybe()) s.flexDirection = this.pick(['row', 'row-reverse', 'column', 'column-reverse'] as const);
    if (maybe()) s.flexWrap = this.pick(['nowrap', 'wrap', 'wrap-reverse'] as const);
    if (maybe()) s.justifyContent = this.pick(['flex-start', 'center', 'flex-end', 'space-between', 'space-around', 'space-evenly'] as const);
    if (maybe()) s.alignItems = this.pick(this.o.baseline ? ['flex-start', 'center', 'flex-end', 'stretch', 'baseline'] as const : ['flex-start', 'center', 'flex-end', 'stretch'] as const);
    if (maybe()) s.alignSelf = this.pick(['auto', 'flex-start', 'center', 'flex-end', 'stretch'] as const);
    if (maybe()) s.alignContent = this.pick(['flex-start', 'center', 'flex-end', 'stretch', 'space-between', 'space-around', 'space-evenly'] as const);
    if (maybe()) s.flexGrow = this.pick([0, 1, 2, 0.5]);
    if (maybe()) s.flexShrink = this.pick([0, 1, 2, 0.5]);
    // Explicit bases are off by default: yoga-layout keeps the first flex basis it computed for a
    // node while the node stays clean (even a content size measured while the parent's size was
    // unknown), so it can ignore an explicit flex-basis; we always honour it (CSS). The
    // differential test therefore generates 'auto' only; other tests turn bases on.
    if (maybe(d / 2)) s.flexBasis = this.o.flexBasis ? this.len(200, true) : 'auto';
    const wrapped = s.flexWrap !== undefined && s.flexWrap !== 'nowrap';
    if (maybe()) s.width = this.len(300, true, !wrapped || this.o.ownerPercent !== false);
    if (maybe()) s.height = this.len(300, true, !wrapped || this.o.ownerPercent !== false);
    if (this.o.minMax !== false) {
      const op = this.o.ownerPercent !== false;
      if (maybe(d / 3)) s.minWidth = this.len(150, false, op);
      if (maybe(d / 3)) s.maxWidth = this.len(300, false, op);
      if (maybe(d / 3)) s.minHeight = this.len(150, false, op);
      if (maybe(d / 3)) s.maxHeight = this.len(300, false, op);
    }
    for (const e of ['Top', 'Right', 'Bottom', 'Left'] as const) {
      if (maybe(d / 2)) s[`margin${e}`] = this.o.autoMargins && this.chance(0.15) ? 'auto' : this.len(20, false, this.o.ownerPercent !== false);
      if (maybe(d / 2)) s[`padding${e}`] = this.len(20, false, this.o.ownerPercent !== false);
      if (maybe(d / 3)) s[`border${e}`] = this.int(0, 5);
    }
    if (maybe(d / 2)) s.rowGap = this.int(0, 15);
    if (maybe(d / 2)) s.columnGap = this.int(0, 15);
    if (!isRoot && this.o.absolute !== false && maybe(d / 3)) {
      s.position = 'absolute';
    }
    if (!isRoot && maybe(d / 2)) {
      for (const e of ['top', 'right', 'bottom', 'left'] as const) if (this.chance(0.4)) s[e] = this.len(50, false);
    }
    if (this.o.aspectRatio !== false && maybe(d / 4)) s.aspectRatio = this.pick([0.5, 1, 1.5, 2]);
    if (!isRoot && this.o.displayNone !== false && maybe(d / 6)) s.display = 'none';
    if (maybe(d / 3)) s.overflow = this.pick(['visible', 'hidden', 'scroll'] as const);
    return s;
  }
  /** The style with every percent length turned into points (same number) and no margins. */
  leafSafe(s: StyleInput): StyleInput {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(s)) {
      if (k.startsWith('margin')) continue;
      out[k] = typeof v === 'string' && v.endsWith('%') ? Number(v.slice(0, -1)) : v;
    }
    return out as StyleInput;
  }
  text(): string {
    const n = this.int(1, 8), w: string[] = [];
    for (let i = 0; i < n; i++) w.push(this.pick(WORDS));
    return w.join(' ');
  }
}

/** A random tree of at most `maxNodes` nodes (containers and text leaves). */
export function randomTree(seed: number, maxNodes: number, opts: GenOptions = {}): GenNode {
  const r = prng(seed), g = new StyleGen(r, opts);
  let budget = maxNodes - 1;
  const build = (depth: number, isRoot: boolean): GenNode => {
    if (!isRoot && (depth > 5 || r() < 0.3)) {
      return { kind: 'text', style: opts.leafPercent === false ? g.leafSafe(g.style(false)) : g.style(false), text: g.text(), fontSize: g.pick([10, 12, 14, 20]), children: [] };
    }
    const node: GenNode = { kind: 'container', style: g.style(isRoot), children: [] };
    const n = g.int(0, 5);
    for (let i = 0; i < n && budget > 0; i++) { budget--; node.children.push(build(depth + 1, false)); }
    return node;
  };
  return build(0, true);
}

/**
 * A benchmark tree of about `nodes` nodes in sections of mixed shapes: wide (a wrapping row of
 * labelled tiles), deep (nested panels 30 levels down), and lists (rows of icon, growing text,
 * meta text) — roughly a third of the nodes are text.
 */
export function benchTree(nodes: number, seed = 1): GenNode {
  const r = prng(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(r() * xs.length)]!;
  const words = (lo: number, hi: number) => { const n = lo + Math.floor(r() * (hi - lo + 1)), w: string[] = []; for (let i = 0; i < n; i++) w.push(pick(WORDS)); return w.join(' '); };
  const text = (style: StyleInput = {}): GenNode => ({ kind: 'text', style, text: words(1, 6), fontSize: pick([12, 13, 14]), children: [] });
  const box = (style: StyleInput, children: GenNode[] = []): GenNode => ({ kind: 'container', style, children });
  const root = box({ flexDirection: 'column', padding: 8, gap: 8 });
  let count = 1, section = 0;
  while (count < nodes) {
    const kind = section++ % 3;
    if (kind === 0) {
      const wide = box({ flexDirection: 'row', flexWrap: 'wrap', gap: 4, padding: 4, border: 1 });
      count++;
      for (let i = 0; i < 150 && count < nodes; i++) {
        wide.children.push(box({ width: 60 + Math.floor(r() * 60), padding: 4, alignItems: 'center' }, [text({ flexShrink: 1 })]));
        count += 2;
      }
      root.children.push(wide);
    } else if (kind === 1) {
      let parent = box({ padding: 2, border: 1 });
      root.children.push(parent);
      count++;
      for (let d = 0; d < 30 && count < nodes; d++) {
        // Nested panels, each with a small toolbar row (icon + label) beside the next panel.
        // (Content-sized rows *around* the chain at every few levels make Yoga's algorithm —
        // and ours — take time exponential in their number: Taffy #243's shape.)
        const child = box({ flexDirection: 'column', padding: 2, gap: 2 });
        const bar = box({ flexDirection: 'row', alignItems: 'center', gap: 4 }, [box({ width: 8, height: 8 })]);
        if (d % 5 === 0) bar.children.push(text({ flexShrink: 1 }));
        parent.children.push(bar, child);
        count += d % 5 === 0 ? 4 : 3;
        parent = child;
      }
      parent.children.push(text());
      count++;
    } else {
      const list = box({ flexDirection: 'column', gap: 2 });
      count++;
      for (let i = 0; i < 60 && count < nodes; i++) {
        list.children.push(box({ flexDirection: 'row', alignItems: 'center', gap: 8, padding: 4 }, [
          box({ width: 16, height: 16 }),
          text({ flexGrow: 1, flexShrink: 1 }),
          text({ flexShrink: 0 }),
        ]));
        count += 4;
      }
      root.children.push(list);
    }
  }
  return root;
}
