// Minimal placeholder layout (stacking along the main axis, fixed sizes, grow, padding, margins,
// text measurement). The Yoga-semantics engine replaces this file.
import type { SceneNode, SceneTree } from '../tree.ts';
import { DIR_ROW, DIR_ROW_REV, K_TEXT, S_BORDER, S_H, S_MARGIN, S_PAD, S_W, U_PCT, U_PT } from '../tree.ts';

function len(n: SceneNode, slot: number, ref: number): number {
  const u = n.lu[slot]!;
  return u === U_PT ? n.lv[slot]! : u === U_PCT ? (n.lv[slot]! * ref) / 100 : NaN;
}

function place(tree: SceneTree, n: SceneNode, x: number, y: number, w: number, h: number): void {
  if (n.x !== x || n.y !== y || n.w !== w || n.h !== h) { n.x = x; n.y = y; n.w = w; n.h = h; tree.noteLayoutChanged(n); }
  n.dirty = false;
  const pl = len(n, S_PAD, w) || 0, pt = len(n, S_PAD + 1, w) || 0, pr = len(n, S_PAD + 2, w) || 0, pb = len(n, S_PAD + 3, w) || 0;
  const bl = n.lv[S_BORDER]!, bt = n.lv[S_BORDER + 1]!, br = n.lv[S_BORDER + 2]!, bb = n.lv[S_BORDER + 3]!;
  const cw = Math.max(0, w - pl - pr - bl - br), ch = Math.max(0, h - pt - pb - bt - bb);
  if (n.kind === K_TEXT) { n.textLayout = tree.shapeText(n, cw); return; }
  const row = n.dir === DIR_ROW || n.dir === DIR_ROW_REV;
  let used = 0, grow = 0;
  const sizes: number[] = [];
  for (const c of n.children) {
    if (c.none) { sizes.push(0); continue; }
    let s = len(c, row ? S_W : S_H, row ? cw : ch);
    if (Number.isNaN(s)) s = c.kind === K_TEXT ? (row ? tree.shapeText(c, NaN).width : tree.shapeText(c, cw).height) : 0;
    sizes.push(s); used += s; grow += c.grow;
  }
  const free = Math.max(0, (row ? cw : ch) - used);
  let pos = row ? pl + bl : pt + bt;
  n.children.forEach((c, i) => {
    const ml = len(c, S_MARGIN, cw) || 0, mt = len(c, S_MARGIN + 1, cw) || 0;
    const main = sizes[i]! + (grow > 0 ? (free * c.grow) / grow : 0);
    const crossLen = len(c, row ? S_H : S_W, row ? ch : cw);
    const cross = Number.isNaN(crossLen) ? (row ? ch : cw) : crossLen;
    if (row) { place(tree, c, pos + ml, pt + bt + mt, main, cross); pos += main + ml; }
    else { place(tree, c, pl + bl + ml, pos + mt, cross, main); pos += main + mt; }
  });
}

export function computeLayout(tree: SceneTree, root: SceneNode, width: number, height: number): void {
  const w = len(root, S_W, width), h = len(root, S_H, height);
  place(tree, root, 0, 0, Number.isNaN(w) ? width : w, Number.isNaN(h) ? height : h);
}
