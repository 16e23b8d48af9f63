// Random edit sequences and fresh rebuilds for the cached-vs-fresh test (and its debugging).
// Test/bench helper (not scene code proper): see yoga-ref.bench.ts for the naming.
import { SceneTree, type NodeId, type StyleInput } from '../tree.ts';
import type { TextShaper } from '../text/lines.ts';
import { prng, randomTree, StyleGen, type GenNode } from './gen.ts';
import { buildOurs } from './yoga-ref.bench.ts';

/** A fresh tree with the same shape, styles and content (pre-order ids of both, in step). */
export function rebuild(t: SceneTree): { fresh: SceneTree; pairs: [NodeId, NodeId][] } {
  const fresh = new SceneTree({ text: t.shaper });
  const pairs: [NodeId, NodeId][] = [];
  const copy = (id: NodeId, into: NodeId | null) => {
    let nid: NodeId;
    const style = t.style(id) as StyleInput;
    if (into === null) { nid = fresh.root; fresh.setStyle(nid, style); }
    else {
      const kind = t.kind(id);
      nid = kind === 'text' ? fresh.createText(t.text(id), t.textStyle(id), style) : fresh.create(kind, style);
      fresh.appendChild(into, nid);
    }
    pairs.push([id, nid]);
    for (const c of t.children(id)) copy(c, nid);
  };
  copy(t.root, null);
  return { fresh, pairs };
}

export type Edit =
  | { op: 'style'; target: number; style: StyleInput }
  | { op: 'text'; target: number; text: string }
  | { op: 'insert'; target: number; node: GenNode; at: number }
  | { op: 'remove'; target: number }
  | { op: 'move'; target: number; to: number }
  | { op: 'viewport'; w: number; h: number };

export function randomEdits(seed: number, n: number): Edit[] {
  const r = prng(seed), g = new StyleGen(r, { flexBasis: true, autoMargins: true, density: 0.15 });
  const out: Edit[] = [];
  for (let i = 0; i < n; i++) {
    const k = r();
    const target = Math.floor(r() * 1e9);
    if (k < 0.4) out.push({ op: 'style', target, style: g.style(false) });
    else if (k < 0.55) out.push({ op: 'text', target, text: g.text() });
    else if (k < 0.7) out.push({ op: 'insert', target, node: randomTree(Math.floor(r() * 1e9), 4, { flexBasis: true }), at: Math.floor(r() * 1e9) });
    else if (k < 0.8) out.push({ op: 'remove', target });
    else if (k < 0.9) out.push({ op: 'move', target, to: Math.floor(r() * 1e9) });
    else out.push({ op: 'viewport', w: g.int(0, 500), h: g.int(0, 500) });
  }
  return out;
}

export function apply(t: SceneTree, e: Edit, vp: { w: number; h: number }): void {
  const ids = t.ids();
  const pick = (x: number) => ids[x % ids.length]!;
  switch (e.op) {
    case 'style': { const id = pick(e.target); const s = { ...e.style }; if (id === t.root) { delete s.position; delete s.display; } t.setStyle(id, s); break; }
    case 'text': { const texts = ids.filter((id) => t.kind(id) === 'text'); if (texts.length) t.setText(texts[e.target % texts.length]!, e.text); break; }
    case 'insert': {
      const parents = ids.filter((id) => t.kind(id) === 'container');
      const p = parents[e.target % parents.length]!;
      const kids = t.children(p);
      const tmp: NodeId[] = [];
      // Build the subtree detached, then insert it at a position among the parent's children.
      const sub = e.node.kind === 'text' ? t.createText(e.node.text ?? '', { fontSize: e.node.fontSize ?? 14 }, e.node.style) : t.create('container', e.node.style);
      tmp.push(sub);
      for (const c of e.node.children) buildOurs(t, c, sub, tmp);
      t.insertBefore(p, sub, kids.length ? kids[e.at % (kids.length + 1)] ?? null : null);
      break;
    }
    case 'remove': { const id = pick(e.target); if (id !== t.root) t.destroy(id); break; }
    case 'move': {
      const id = pick(e.target);
      if (id === t.root) break;
      const parents = ids.filter((p) => t.kind(p) === 'container');
      const p = parents[e.to % parents.length]!;
      for (let a: NodeId | null = p; a !== null; a = t.parent(a)) if (a === id) return; // would be a cycle
      t.appendChild(p, id);
      break;
    }
    case 'viewport': vp.w = e.w; vp.h = e.h; break;
  }
}


/**
 * First difference between the incremental layout of `t` and a fresh one, or null. `tol`: how far
 * apart a coordinate may be (0: bit for bit).
 */
export function diffFresh(t: SceneTree, w: number, h: number, tol = 0): string | null {
  const { fresh, pairs } = rebuild(t);
  fresh.layout(w, h);
  const off = (u: number, v: number) => !(Math.abs(u - v) <= tol);
  for (const [a, b] of pairs) {
    const x = t.box(a), y = fresh.box(b);
    if (![x.x, x.y, x.width, x.height].every(Number.isFinite)) return `node ${a}: non-finite box ${JSON.stringify(x)}`;
    if (off(x.x, y.x) || off(x.y, y.y) || off(x.width, y.width) || off(x.height, y.height)) return `node ${a}: cached ${JSON.stringify(x)} fresh ${JSON.stringify(y)}`;
    if (t.kind(a) === 'text') {
      const p = t.textLayout(a), q = fresh.textLayout(b);
      if ((p === null) !== (q === null)) return `text node ${a}: text layout ${p ? 'present' : 'missing'} in the cached tree only`;
      if (p && q && (p.glyphs.length !== q.glyphs.length || p.x.some((v, i) => off(v, q.x[i]!)) || p.y.some((v, i) => off(v, q.y[i]!)))) return `text node ${a}: glyph positions differ`;
    }
  }
  return null;
}
export type { TextShaper };
