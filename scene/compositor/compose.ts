// The compositor: keeps a scene tree (scene/tree.ts) in step with the session state — the session
// layout (desktop, panel) and one surface subtree per window — lays it out incrementally, and
// turns it into the frame the renderer draws: groups of layers in z-order, with hit regions.
//
// Reuse: a group (a window, the panel, the desktop) is rebuilt only when a node in it changed
// layout or paint since the last frame; otherwise the very same Group object is handed on, which
// is what makes a drag step cheap and lets damage skip unchanged groups by identity.
import { K_IMAGE, K_SURFACE, K_TEXT, S_PAD, U_PT, SceneTree, type NodeId, type SceneNode, type TextLayout, type TextShaper } from '../tree.ts';
import type { SessionState, SessionWindow } from '../session/state.ts';
import { iconName, ICON_SIZE, makeIcon } from './icons.ts';
import type { Frame, Group, HitRegion, Layer, RGBAImage, TextLayer } from './layers.ts';
import { THEME } from './theme.ts';
import { paintOrder } from './zorder.ts';

interface WindowNodes {
  win: SessionWindow;
  /** null until the first focus styling. */
  focused: boolean | null;
  surface: NodeId; titlebar: NodeId; icon: NodeId; title: NodeId;
  minimize: NodeId; maximize: NodeId; close: NodeId;
  content: NodeId; text: NodeId;
  panelButton: NodeId; panelText: NodeId;
}

/** Glyph arrays prepared once per TextLayout (shared by every frame that shows it). */
interface PreparedText { glyphs: Uint32Array; gx: Float32Array; gy: Float32Array; gw: Float32Array; bx: number; by: number; w: number; h: number; ascent: number; size: number }

const isSpace = (c: number): boolean => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d || c === 0x3000 || c === 0x200b || c === 0xa0;

export interface SessionSceneOptions { shaper?: TextShaper }

export class SessionScene {
  readonly tree: SceneTree;
  private readonly desktop: NodeId;
  private readonly panel: NodeId;
  private readonly windows = new Map<number, WindowNodes>();
  /** Which group each node paints into (window id, or 0 for the panel / -1 for the desktop). */
  private readonly groupOf = new Map<NodeId, number>();
  private readonly groups = new Map<number, Group>();
  private readonly dirty = new Set<number>();
  private readonly prepared = new WeakMap<TextLayout, PreparedText>();
  private images = new Map<string, RGBAImage>();
  private screenW = -1; private screenH = -1;

  constructor(opts: SessionSceneOptions = {}) {
    this.tree = new SceneTree(opts.shaper ? { text: opts.shaper } : {});
    const t = this.tree;
    this.desktop = t.create('container', { position: 'absolute', left: 0, top: 0, width: '100%', height: '100%', background: THEME.desktop });
    this.panel = t.create('container', {
      position: 'absolute', left: 0, bottom: 0, width: '100%', height: THEME.panelH, flexDirection: 'row', alignItems: 'center',
      padding: 4, gap: 4, background: THEME.panel, overflow: 'hidden',
    });
    t.appendChild(t.root, this.desktop);
    t.appendChild(t.root, this.panel);
    this.groupOf.set(this.desktop, -1);
    this.groupOf.set(this.panel, 0);
    this.dirty.add(-1); this.dirty.add(0);
  }

  private own(id: NodeId, group: number): NodeId { this.groupOf.set(id, group); return id; }

  private ensureIcon(app: string): string {
    const name = iconName(app);
    if (!this.images.has(name)) {
      // Copy on write: a frame handed out keeps the image table it was drawn with.
      this.images = new Map(this.images);
      this.images.set(name, makeIcon(app));
    }
    return name;
  }

  private createWindow(w: SessionWindow): WindowNodes {
    const t = this.tree, g = w.id;
    const o = (id: NodeId): NodeId => this.own(id, g);
    const surface = o(t.create('surface', { position: 'absolute', border: THEME.border, flexDirection: 'column', overflow: 'hidden', background: THEME.windowBg }));
    t.setSurface(surface, w.id);
    const titlebar = o(t.create('container', { height: THEME.titleH, flexDirection: 'row', alignItems: 'center', paddingLeft: 6, paddingRight: 4, gap: 4, flexShrink: 0 }));
    const icon = o(t.createImage(this.ensureIcon(w.app), ICON_SIZE, ICON_SIZE, { width: ICON_SIZE, height: ICON_SIZE, flexShrink: 0 }));
    const titleBox = o(t.create('container', { flexGrow: 1, flexShrink: 1, height: THEME.titleH, overflow: 'hidden', justifyContent: 'center' }));
    const title = o(t.createText(w.title, { fontSize: THEME.titleFont, wrap: false }, { flexShrink: 0, color: THEME.titleText }));
    const button = (label: string, color: number): NodeId => {
      const b = o(t.create('container', { width: THEME.button, height: THEME.button, flexShrink: 0, alignItems: 'center', justifyContent: 'center', background: color }));
      t.appendChild(b, o(t.createText(label, { fontSize: 12, wrap: false }, { color: THEME.buttonText })));
      return b;
    };
    const minimize = button('_', THEME.otherButton), maximize = button('+', THEME.otherButton), close = button('x', THEME.closeButton);
    const content = o(t.create('container', { flexGrow: 1, flexShrink: 1, padding: THEME.contentPadding, overflow: 'hidden' }));
    const text = o(t.createText(w.text, { fontSize: THEME.contentFont, wrap: true }, { color: THEME.contentText, flexShrink: 0 }));
    t.appendChild(titleBox, title);
    for (const c of [icon, titleBox, minimize, maximize, close]) t.appendChild(titlebar, c);
    t.appendChild(content, text);
    t.appendChild(surface, titlebar);
    t.appendChild(surface, content);
    t.insertBefore(t.root, surface, this.panel);
    const panelButton = this.own(t.create('container', {
      width: THEME.panelButtonW, height: THEME.panelH - 8, flexDirection: 'row', alignItems: 'center', paddingLeft: 6, paddingRight: 6, gap: 6, flexShrink: 1, overflow: 'hidden',
    }), 0);
    const panelIcon = this.own(t.createImage(iconName(w.app), ICON_SIZE, ICON_SIZE, { width: ICON_SIZE, height: ICON_SIZE, flexShrink: 0 }), 0);
    const panelText = this.own(t.createText(w.title || w.app, { fontSize: THEME.panelFont, wrap: false }, { color: THEME.panelText, flexShrink: 0 }), 0);
    t.appendChild(panelButton, panelIcon);
    t.appendChild(panelButton, panelText);
    // Panel buttons in window-id order: ids only grow, so appending keeps the order.
    t.appendChild(this.panel, panelButton);
    const nodes: WindowNodes = { win: w, focused: null, surface, titlebar, icon, title, minimize, maximize, close, content, text, panelButton, panelText };
    this.styleWindow(nodes, w, null);
    return nodes;
  }

  /** Applies what changed between `prev` (null: new window) and `w` to the window's nodes. */
  private styleWindow(n: WindowNodes, w: SessionWindow, prev: SessionWindow | null): void {
    const t = this.tree;
    if (!prev || prev.x !== w.x || prev.y !== w.y || prev.w !== w.w || prev.h !== w.h || prev.mode !== w.mode) this.placeSurface(n, w);
    if (!prev || prev.title !== w.title) { t.setText(n.title, w.title); t.setText(n.panelText, w.title || w.app); }
    if (!prev || prev.text !== w.text) t.setText(n.text, w.text);
    if (!prev || prev.scroll !== w.scroll) t.setStyle(n.text, { position: 'relative', top: -w.scroll });
    if (!prev || prev.mode !== w.mode) {
      t.setStyle(n.panelButton, { background: this.panelColor(w, n.focused === true) });
      t.setStyle(n.maximize, { background: w.mode === 'maximized' ? THEME.borderFocused : THEME.otherButton });
    }
    n.win = w;
  }

  private placeSurface(n: WindowNodes, w: SessionWindow): void {
    if (w.mode === 'minimized') this.tree.setStyle(n.surface, { display: 'none' });
    else if (w.mode === 'maximized') this.tree.setStyle(n.surface, { display: 'flex', left: 0, top: 0, width: this.screenW, height: Math.max(0, this.screenH - THEME.panelH) });
    else this.tree.setStyle(n.surface, { display: 'flex', left: w.x, top: w.y, width: w.w, height: w.h });
  }

  private panelColor(w: SessionWindow, focused: boolean): number {
    return w.mode === 'minimized' ? THEME.panelButtonMinimized : focused ? THEME.panelButtonFocused : THEME.panelButton;
  }

  private setFocused(n: WindowNodes, focused: boolean): void {
    if (n.focused === focused) return;
    n.focused = focused;
    const t = this.tree;
    t.setStyle(n.surface, { borderColor: focused ? THEME.borderFocused : THEME.borderBlurred });
    t.setStyle(n.titlebar, { background: focused ? THEME.titleFocused : THEME.titleBlurred });
    t.setStyle(n.panelButton, { background: this.panelColor(n.win, focused) });
  }

  private destroyWindow(id: number, n: WindowNodes): void {
    for (const node of [n.surface, n.panelButton]) {
      const stack = [node];
      while (stack.length) { const x = stack.pop()!; stack.push(...this.tree.children(x)); this.groupOf.delete(x); }
      this.tree.destroy(node);
    }
    this.windows.delete(id);
    this.groups.delete(id);
    this.dirty.add(0);
  }

  /** Brings the tree in step with `s`, lays it out, and returns the frame. */
  update(s: SessionState): Frame {
    const t = this.tree;
    const resized = s.screenW !== this.screenW || s.screenH !== this.screenH;
    if (resized) {
      this.screenW = s.screenW; this.screenH = s.screenH;
      t.setStyle(t.root, { width: s.screenW, height: s.screenH });
    }
    for (const [id, n] of this.windows) if (!s.windows.has(id)) this.destroyWindow(id, n);
    for (const w of s.windows.values()) {
      let n = this.windows.get(w.id);
      if (!n) { n = this.createWindow(w); this.windows.set(w.id, n); this.dirty.add(w.id); this.dirty.add(0); }
      else if (n.win !== w) this.styleWindow(n, w, n.win);
      if (resized && w.mode === 'maximized') this.placeSurface(n, w);
      this.setFocused(n, s.focused === w.id);
    }
    t.layout(s.screenW, s.screenH);
    const ch = t.takeChanges();
    for (const list of [ch.layout, ch.paint]) for (const id of list) { const g = this.groupOf.get(id); if (g !== undefined) this.dirty.add(g); }
    if (resized) { this.dirty.add(-1); this.dirty.add(0); }

    for (const g of this.dirty) {
      if (g === -1) this.groups.set(-1, this.buildGroup('desktop', 0, this.desktop));
      else if (g === 0) this.groups.set(0, this.buildGroup('panel', 0, this.panel));
      else { const n = this.windows.get(g); if (n) this.groups.set(g, this.buildWindow(n)); }
    }
    this.dirty.clear();

    const order: Group[] = [this.groups.get(-1)!];
    const wins = paintOrder(s);
    let panelPlaced = false;
    for (const w of wins) {
      if (!panelPlaced && w.band === 'overlay') { order.push(this.groups.get(0)!); panelPlaced = true; }
      const g = this.groups.get(w.id);
      if (g) order.push(g);
    }
    if (!panelPlaced) order.push(this.groups.get(0)!);
    // Nothing visible changed: hand back the very same frame (renderers may skip it by identity).
    const last = this.last;
    if (last && last.width === s.screenW && last.height === s.screenH && last.images === this.images &&
        last.groups.length === order.length && order.every((g, i) => g === last.groups[i])) return last;
    this.last = { width: s.screenW, height: s.screenH, clear: THEME.clear, groups: order, images: this.images };
    return this.last;
  }
  private last: Frame | null = null;

  // ---- building groups from laid-out nodes ----

  private absolute(id: NodeId): { x: number; y: number } {
    const b = this.tree.absoluteBox(id);
    return { x: b.x, y: b.y };
  }

  private buildGroup(key: string, window: number, node: NodeId): Group {
    const layers: Layer[] = [];
    const n = this.tree.node(node);
    const o = this.absolute(node);
    this.emit(n, o.x - n.x, o.y - n.y, layers);
    const bounds = { x: o.x, y: o.y, w: n.w, h: n.h };
    const hits: HitRegion[] = [{ ...bounds, window: 0, part: key === 'panel' ? 'panel' : 'desktop' }];
    if (key === 'panel') {
      for (const [id, wn] of this.windows) {
        const b = this.tree.absoluteBox(wn.panelButton);
        hits.push({ x: b.x, y: b.y, w: b.width, h: b.height, window: id, part: 'panel-button' });
      }
    }
    return { key, window, bounds, layers, hits };
  }

  private buildWindow(wn: WindowNodes): Group {
    const n = this.tree.node(wn.surface);
    const o = this.absolute(wn.surface);
    const layers: Layer[] = [];
    if (!n.none) this.emit(n, o.x - n.x, o.y - n.y, layers);
    const bounds = { x: o.x, y: o.y, w: n.none ? 0 : n.w, h: n.none ? 0 : n.h };
    const id = wn.win.id;
    const box = (node: NodeId) => { const b = this.tree.absoluteBox(node); return { x: b.x, y: b.y, w: b.width, h: b.height }; };
    const hits: HitRegion[] = [
      { ...bounds, window: id, part: 'content' },
      { ...box(wn.titlebar), window: id, part: 'title' },
      { ...box(wn.minimize), window: id, part: 'minimize' },
      { ...box(wn.maximize), window: id, part: 'maximize' },
      { ...box(wn.close), window: id, part: 'close' },
    ];
    if (wn.win.mode === 'normal') {
      const { x, y, w, h } = bounds, e = THEME.edge, c = THEME.corner;
      hits.push(
        { x: x + c, y, w: w - 2 * c, h: e, window: id, part: 'resize-n' },
        { x: x + c, y: y + h - e, w: w - 2 * c, h: e, window: id, part: 'resize-s' },
        { x, y: y + c, w: e, h: h - 2 * c, window: id, part: 'resize-w' },
        { x: x + w - e, y: y + c, w: e, h: h - 2 * c, window: id, part: 'resize-e' },
        { x, y, w: c, h: e, window: id, part: 'resize-nw' }, { x, y, w: e, h: c, window: id, part: 'resize-nw' },
        { x: x + w - c, y, w: c, h: e, window: id, part: 'resize-ne' }, { x: x + w - e, y, w: e, h: c, window: id, part: 'resize-ne' },
        { x, y: y + h - e, w: c, h: e, window: id, part: 'resize-sw' }, { x, y: y + h - c, w: e, h: c, window: id, part: 'resize-sw' },
        { x: x + w - c, y: y + h - e, w: c, h: e, window: id, part: 'resize-se' }, { x: x + w - e, y: y + h - c, w: e, h: c, window: id, part: 'resize-se' },
      );
    }
    return { key: `w${id}`, window: id, bounds, layers, hits };
  }

  /** Emits the layers of node `n` (its parent's border box is at px, py) into `out`. */
  private emit(n: SceneNode, px: number, py: number, out: Layer[]): void {
    if (n.none) return;
    const x = px + n.x, y = py + n.y, w = n.w, h = n.h;
    const s = n.style, key = `n${n.id}`;
    const kids: Layer[] = [];
    if (n.kind !== K_SURFACE && (s.background & 255) !== 0) out.push({ kind: 'rect', key, x, y, w, h, color: s.background });
    const bw = Math.max(s.borderTop, s.borderRight, s.borderBottom, s.borderLeft);
    const border: Layer | null = bw > 0 && (s.borderColor & 255) !== 0 ? { kind: 'border', key: `${key}b`, x, y, w, h, width: bw, color: s.borderColor } : null;
    if (n.kind === K_TEXT) {
      const tl = n.textLayout;
      if (tl && tl.glyphs.length > 0) {
        const p = this.prepare(tl, n);
        const cx = x + s.borderLeft + pad(n, 0), cy = y + s.borderTop + pad(n, 1);
        if (p.glyphs.length > 0) {
          const t: TextLayer = { kind: 'text', key, x: cx, y: cy, w: p.w, h: p.h, bx: p.bx, by: p.by, color: s.color, font: tl.font, size: p.size, ascent: p.ascent, glyphs: p.glyphs, gx: p.gx, gy: p.gy, gw: p.gw };
          out.push(t);
        }
      }
    } else if (n.kind === K_IMAGE) {
      const img = this.tree.image(n.id);
      if (img.key) out.push({ kind: 'image', key: `${key}i`, x, y, w, h, image: img.key });
    }
    for (const c of n.children) this.emit(c, x, y, kids);
    if (n.kind === K_SURFACE) {
      if (border) kids.push(border);
      out.push({ kind: 'surface', key, window: n.surfaceId, x, y, w, h, color: s.background, children: kids });
      return;
    }
    if (n.clip && kids.length) {
      const cl = x + s.borderLeft, ct = y + s.borderTop;
      out.push({ kind: 'clip', key: `${key}c`, x: cl, y: ct, w: Math.max(0, w - s.borderLeft - s.borderRight), h: Math.max(0, h - s.borderTop - s.borderBottom), children: kids });
    } else out.push(...kids);
    if (border) out.push(border);
  }

  private prepare(tl: TextLayout, node: SceneNode): PreparedText {
    let p = this.prepared.get(tl);
    if (p) return p;
    const text = node.text;
    const exact = shapedAdvances(node, tl);
    const m = this.tree.shaper.metrics(tl.font, tl.fontSize);
    const ascent = m.ascent, size = m.ascent + m.descent;
    const n = tl.glyphs.length;
    const keep: number[] = [];
    const widths = new Float64Array(n);
    let line = 0;
    for (let i = 0; i < n; i++) {
      while (line + 1 < tl.lineStarts.length && tl.lineStarts[line + 1]! <= i) line++;
      const lineEnd = line + 1 < tl.lineStarts.length ? tl.lineStarts[line + 1]! : n;
      // Glyph boxes are as wide as the glyph's advance; without the shaper's advances, the distance
      // to the next glyph on the line (the last one: 0.6 em).
      widths[i] = exact ? Math.max(0, exact[i]!) : i + 1 < lineEnd ? Math.max(0, tl.x[i + 1]! - tl.x[i]!) : tl.fontSize * 0.6;
      if (!isSpace(text.charCodeAt(tl.clusters[i]!)) && widths[i]! > 0) keep.push(i);
    }
    const k = keep.length;
    const glyphs = new Uint32Array(k), gx = new Float32Array(k), gy = new Float32Array(k), gw = new Float32Array(k);
    let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    for (let j = 0; j < k; j++) {
      const i = keep[j]!;
      glyphs[j] = tl.glyphs[i]!; gx[j] = tl.x[i]!; gy[j] = tl.y[i]!; gw[j] = widths[i]!;
      // Bounds from the stored (float32) values, so they contain exactly what is drawn.
      x0 = Math.min(x0, gx[j]!); x1 = Math.max(x1, gx[j]! + gw[j]!);
      y0 = Math.min(y0, gy[j]! - ascent); y1 = Math.max(y1, gy[j]! - ascent + size);
    }
    // A hair of slack so float rounding in (x + bx) + w versus x + (gx + gw) can never clip ink.
    const e = 1 / 64;
    p = k ? { glyphs, gx, gy, gw, bx: x0 - e, by: y0 - e, w: x1 - x0 + 2 * e, h: y1 - y0 + 2 * e, ascent, size } : { glyphs, gx, gy, gw, bx: 0, by: 0, w: 0, h: 0, ascent, size };
    this.prepared.set(tl, p);
    return p;
  }
}

/**
 * The shaper's advance of every glyph of a text layout, read from the text engine's per-node cache
 * (scene/text/lines.ts lays out every shaped glyph, paragraph after paragraph, in order). Checked
 * glyph by glyph against the layout; anything unexpected gives null and the caller estimates.
 */
function shapedAdvances(n: SceneNode, tl: TextLayout): Float64Array | null {
  const c = n.shaped as { paragraphs?: unknown } | null;
  if (!c || !Array.isArray(c.paragraphs)) return null;
  const out = new Float64Array(tl.glyphs.length);
  let k = 0;
  for (const p of c.paragraphs as { glyphs?: unknown; advances?: unknown }[]) {
    if (!(p.glyphs instanceof Uint32Array) || !(p.advances instanceof Float64Array) || p.advances.length !== p.glyphs.length) return null;
    for (let i = 0; i < p.glyphs.length; i++) {
      if (k >= out.length || p.glyphs[i] !== tl.glyphs[k]) return null;
      out[k++] = p.advances[i]!;
    }
  }
  return k === out.length ? out : null;
}

/** A node's padding on edge e (0 left, 1 top) in points (percent paddings resolve against the parent width). */
function pad(n: SceneNode, e: number): number {
  const u = n.lu[S_PAD + e]!;
  if (u === U_PT) return n.lv[S_PAD + e]!;
  return n.parent ? (n.lv[S_PAD + e]! * n.parent.w) / 100 : 0;
}
