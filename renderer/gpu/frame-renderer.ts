// Draws the compositor's layer list with three.js WebGPURenderer (WebGL2 fallback): the whole
// frame is one instanced draw of quads — solid rects, glyphs from a glyph atlas, window surfaces
// from a surface atlas. Surfaces are rasterized on the CPU only where their content changed, and
// only those texels are uploaded; moving a window moves a quad. An unchanged frame draws nothing.
import {
  WebGPURenderer, NodeMaterial, Mesh, InstancedBufferGeometry, InstancedBufferAttribute, BufferAttribute,
  Scene, OrthographicCamera, Color, NormalBlending, LinearSRGBColorSpace, NoToneMapping, DynamicDrawUsage,
} from 'three/webgpu';
import { instancedBufferAttribute, attribute, uniform, vec4, textureLoad, varying, float, ivec2, Fn, If } from 'three/tsl';
import type { Frame, Group, Layer, SurfaceLayer } from '../../scene/compositor/layers.ts';
import { TexturePage } from './page.ts';
import { ShelfPacker, type Slot } from './packer.ts';
import { CanvasGlyphs, type GlyphBitmap, type GlyphSource } from './glyph-source.ts';
import { rasterSurface, pixelRect, intersectI, layerPixels, type IRect } from './surface-raster.ts';
import { surfaceDamage } from './surface-diff.ts';

const STRIDE = 16; // floats per instance: rect(4) uv(4) color(4) mode(4)
const MODE_SOLID = 0, MODE_GLYPH = 1, MODE_SURFACE = 2, MODE_IMAGE = 3;
export const ANIM_MS = 160;

export type Backend = 'webgpu' | 'webgl2';

export interface FrameStats {
  /** Whether anything was drawn (false: the frame equalled the last one and nothing animates). */
  rendered: boolean;
  /** CPU time to prepare and submit, ms. */
  cpuMs: number;
  /** Texture bytes uploaded for this frame (glyph atlas + surface atlas). */
  uploadBytes: number;
  /** Instance data uploaded, bytes. */
  instanceBytes: number;
  instances: number;
  /** Surface pixels re-rasterized on the CPU. */
  rasterPixels: number;
  drawCalls: number;
}

interface GlyphEntry { slot: Slot; bm: GlyphBitmap }
interface SurfaceEntry { layer: SurfaceLayer; slot: Slot | null; px: IRect }
interface Block { data: Float32Array; n: number; bounds: IRect; window: number }

export interface FrameRendererOptions {
  canvas: HTMLCanvasElement;
  /** Force three's WebGL2 backend even where WebGPU exists. */
  forceWebGL?: boolean;
  glyphs?: GlyphSource;
  glyphPageSize?: number;
  surfacePageSize?: number;
  /** Called after the renderer was recreated following a lost device. */
  onRecovered?: (info: { reason: string; count: number }) => void;
  /** Open/close animations (purely visual). Off for golden images. */
  animate?: boolean;
}

export class FrameRenderer {
  renderer!: WebGPURenderer;
  canvas: HTMLCanvasElement;
  backend: Backend = 'webgpu';
  /** Times the device was lost and the renderer recreated. */
  recoveries = 0;
  lastLoss = '';
  private scene = new Scene();
  private camera = new OrthographicCamera(0, 1, 0, 1, -1, 1);
  private mesh!: Mesh;
  private geometry!: InstancedBufferGeometry;
  private attrs: InstancedBufferAttribute[] = [];
  private capacity = 0;
  private screen = uniform(vec4(1, 1, 0, 0));
  readonly glyphPage: TexturePage;
  surfacePage: TexturePage;
  private glyphPacker: ShelfPacker;
  private surfacePacker: ShelfPacker;
  private glyphEntries = new Map<string, GlyphEntry>();
  private surfaces = new Map<string, SurfaceEntry>();
  private blocks = new WeakMap<Group, Block>();
  private prev: Frame | null = null;
  private prevKeys = new Map<string, { block: Block; window: number }>();
  private opening = new Map<string, number>();
  private closing = new Map<string, { block: Block; at: number }>();
  private staging = new Float32Array(0);
  private glyphs: GlyphSource;
  private forceRedraw = true;
  private recovering: Promise<void> | null = null;
  private generation = 0;
  surfacesUnplaced = 0;

  private constructor(private o: FrameRendererOptions) {
    this.canvas = o.canvas;
    this.glyphs = o.glyphs ?? new CanvasGlyphs();
    const gs = o.glyphPageSize ?? 1024, ss = o.surfacePageSize ?? 2048;
    this.glyphPage = new TexturePage(gs, gs, 'glyph atlas');
    this.surfacePage = new TexturePage(ss, ss, 'surface atlas');
    this.glyphPacker = new ShelfPacker(gs, gs);
    this.surfacePacker = new ShelfPacker(ss, ss);
    // Texel (0,0) of the glyph page is opaque white: solid quads sample it harmlessly.
  }

  static async create(o: FrameRendererOptions): Promise<FrameRenderer> {
    const r = new FrameRenderer(o);
    await r.initRenderer();
    return r;
  }

  private async initRenderer(): Promise<void> {
    const renderer = new WebGPURenderer({ canvas: this.canvas, antialias: false, alpha: false, forceWebGL: this.o.forceWebGL ?? false });
    renderer.outputColorSpace = LinearSRGBColorSpace;
    renderer.toneMapping = NoToneMapping;
    renderer.setPixelRatio(1);
    await renderer.init();
    this.renderer = renderer;
    this.backend = (renderer.backend as unknown as { isWebGPUBackend?: boolean }).isWebGPUBackend ? 'webgpu' : 'webgl2';
    const gen = ++this.generation;
    const lost = (info: { api?: string; message?: string; reason?: string | null }) => {
      if (gen !== this.generation) return;
      this.generation++;
      this.lastLoss = `${info.api ?? ''} device lost: ${info.reason ?? ''} ${info.message ?? ''}`.trim();
      void this.recover();
    };
    renderer.onDeviceLost = lost;
    // three ignores a loss with reason 'destroyed'; a device destroyed while this renderer is
    // current was not destroyed by us (dispose bumps the generation first), so recover from it too.
    const device = (renderer.backend as unknown as { device?: { lost: Promise<{ reason: string; message: string }> } }).device;
    device?.lost.then((i) => lost({ api: 'WebGPU', reason: i.reason, message: i.message }));
    this.buildMesh(Math.max(this.capacity, 1024));
  }

  private losses: number[] = [];
  /** Set when WebGPU kept losing its device and the renderer went over to WebGL2. */
  fellBack = false;

  /** Recreates the renderer (new canvas, new device) and uploads the atlases from their CPU copies. */
  recover(): Promise<void> {
    this.recovering ??= (async () => {
      // A WebGPU that loses its device again and again (an adapter that cannot present, a broken
      // driver) is not coming back: the third loss within 10 s switches to three's WebGL2 backend.
      const t = performance.now();
      this.losses = [...this.losses.filter((x) => t - x < 10_000), t];
      if (this.backend === 'webgpu' && this.losses.length >= 3 && !this.o.forceWebGL) {
        this.o.forceWebGL = true;
        this.fellBack = true;
        this.lastLoss += ' — WebGPU keeps losing its device; using WebGL2';
      }
      this.generation++;
      const old = this.canvas;
      const fresh = old.cloneNode(false) as HTMLCanvasElement;
      old.replaceWith(fresh);
      this.canvas = fresh;
      try { this.renderer.dispose(); } catch { /* the old device is gone */ }
      this.o.canvas = fresh;
      this.glyphPage.recreate();
      this.surfacePage.recreate();
      await this.initRenderer();
      this.recoveries++;
      this.forceRedraw = true;
      this.o.onRecovered?.({ reason: this.lastLoss, count: this.recoveries });
    })().finally(() => { this.recovering = null; });
    return this.recovering;
  }

  /** Loses the device on purpose (tests of recovery). */
  loseDevice(): void {
    const b = this.renderer.backend as unknown as { isWebGPUBackend?: boolean; device?: { destroy(): void }; gl?: WebGL2RenderingContext };
    if (b.isWebGPUBackend) b.device!.destroy();
    else b.gl!.getExtension('WEBGL_lose_context')?.loseContext();
  }

  get isRecovering(): boolean { return this.recovering !== null; }

  private buildMesh(capacity: number) {
    if (this.mesh) { this.scene.remove(this.mesh); this.geometry.dispose(); (this.mesh.material as NodeMaterial).dispose(); }
    this.capacity = capacity;
    const g = new InstancedBufferGeometry();
    g.setAttribute('corner', new BufferAttribute(new Float32Array([0, 0, 1, 0, 0, 1, 1, 1]), 2));
    g.setIndex([0, 2, 1, 1, 2, 3]);
    this.attrs = [0, 1, 2, 3].map(() => {
      const a = new InstancedBufferAttribute(new Float32Array(capacity * 4), 4);
      a.setUsage(DynamicDrawUsage);
      return a;
    });
    g.instanceCount = 0;
    this.geometry = g;
    // TSL's swizzles are not in three's TypeScript types; the node graph is checked when built.
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    type N = any;
    const [rect, uvs, col, mode] = this.attrs.map((a) => instancedBufferAttribute(a) as N);
    const corner: N = attribute('corner', 'vec2');
    const px = rect!.xy.add(corner.mul(rect!.zw));
    const m = new NodeMaterial();
    m.vertexNode = vec4(px.x.div(this.screen.x).mul(2).sub(1), float(1).sub(px.y.div(this.screen.y).mul(2)), 0, 1);
    const vUv: N = varying(uvs!.xy.add(corner.mul(uvs!.zw.sub(uvs!.xy))));
    const vCol: N = varying(col!);
    const vMode: N = varying(mode!.x);
    // Texel fetches (no sampler): nearest by construction, and only the texture a quad uses is
    // read — SwiftShader's frame time is mostly texture reads over the whole screen.
    const gtex = this.glyphPage.texture, stex = this.surfacePage.texture;
    m.fragmentNode = (Fn(() => {
      const out: N = vec4(vCol).toVar();
      If(vMode.greaterThan(0.5), () => {
        const t: N = ivec2(vUv.floor());
        If(vMode.lessThan(1.5), () => { out.assign(vec4(vCol.rgb, vCol.a.mul((textureLoad(gtex, t) as N).a))); })
          .ElseIf(vMode.lessThan(2.5), () => { const st: N = textureLoad(stex, t); out.assign(vec4(st.rgb, st.a.mul(vCol.a))); })
          .Else(() => { const gt: N = textureLoad(gtex, t); out.assign(vec4(gt.rgb, gt.a.mul(vCol.a))); });
      });
      return out;
    }) as N)();
    m.transparent = true; m.blending = NormalBlending; m.depthTest = false; m.depthWrite = false;
    const mesh = new Mesh(g, m);
    mesh.frustumCulled = false;
    this.mesh = mesh;
    this.scene.add(mesh);
  }

  // ------------------------------------------------------------------------------------------
  // Atlases

  private glyph(id: number, font: string, size: number, boxW: number): GlyphEntry {
    const key = this.glyphs.key(id, font, size, boxW);
    let e = this.glyphEntries.get(key);
    if (e) return e;
    const bm = this.glyphs.draw(id, font, size, boxW);
    let slot = this.glyphPacker.alloc(bm.w, bm.h);
    if (!slot) {
      // Full: start over; every cached block refers to old slots.
      this.glyphPacker.reset(); this.glyphEntries.clear(); this.blocks = new WeakMap();
      this.glyphPage.data.fill(0);
      this.reserveWhite();
      this.glyphPage.mark({ x: 0, y: 0, w: this.glyphPage.width, h: this.glyphPage.height });
      slot = this.glyphPacker.alloc(bm.w, bm.h);
      if (!slot) throw new Error(`glyph ${id} (${bm.w}×${bm.h}) does not fit the glyph atlas`);
    }
    const d = this.glyphPage.data, W = this.glyphPage.width;
    for (let y = 0; y < bm.h; y++) for (let x = 0; x < bm.w; x++) {
      const p = ((slot.y + y) * W + slot.x + x) * 4;
      d[p] = d[p + 1] = d[p + 2] = 255; d[p + 3] = bm.alpha[y * bm.w + x]!;
    }
    this.glyphPage.mark(slot);
    e = { slot, bm };
    this.glyphEntries.set(key, e);
    return e;
  }

  private white: Slot | null = null;
  private reserveWhite() {
    this.white = this.glyphPacker.alloc(2, 2)!;
    const d = this.glyphPage.data, W = this.glyphPage.width;
    for (let y = 0; y < 2; y++) for (let x = 0; x < 2; x++) d.fill(255, ((this.white.y + y) * W + this.white.x + x) * 4, ((this.white.y + y) * W + this.white.x + x) * 4 + 4);
  }

  /** Places and re-rasterizes surfaces as needed; returns CPU-rasterized pixels. */
  private updateSurfaces(frame: Frame): number {
    const seen = new Set<string>();
    const list: SurfaceLayer[] = [];
    for (const g of frame.groups) for (const l of g.layers) if (l.kind === 'surface') { list.push(l); seen.add(l.key); }
    for (const [k, e] of this.surfaces) if (!seen.has(k)) { if (e.slot) this.surfacePacker.free(e.slot); this.surfaces.delete(k); }
    let pixels = 0;
    let repack = false;
    for (const s of list) {
      const px = pixelRect(s.x, s.y, s.w, s.h);
      const old = this.surfaces.get(s.key);
      if (old && old.layer === s) continue;
      let dmg = surfaceDamage(old?.layer, s);
      let slot = old?.slot ?? null;
      // A surface that did not fit stays unplaced (drawn as its background color) until the next
      // repack; retrying every frame would repack every frame.
      if (old && !slot && old.px.w === px.w && old.px.h === px.h) { this.surfaces.set(s.key, { layer: s, slot, px }); continue; }
      if (!old || old.px.w !== px.w || old.px.h !== px.h) {
        if (slot) this.surfacePacker.free(slot);
        slot = px.w > 0 && px.h > 0 ? this.surfacePacker.alloc(px.w, px.h) : null;
        if (!slot && px.w > 0 && px.h > 0) repack = true;
        dmg = 'all';
      }
      this.surfaces.set(s.key, { layer: s, slot, px });
      if (slot) pixels += this.paintSurface(s, px, slot, dmg, frame);
    }
    if (repack) pixels += this.repackSurfaces(frame);
    return pixels;
  }

  /** Places every surface afresh, growing the surface page (up to the texture limit) when they do not fit. */
  private repackSurfaces(frame: Frame): number {
    this.blocks = new WeakMap();
    const all = [...this.surfaces.values()].sort((a, b) => b.px.h - a.px.h);
    for (;;) {
      this.surfacePacker.reset();
      this.surfacesUnplaced = 0;
      for (const e of all) {
        e.slot = e.px.w > 0 && e.px.h > 0 ? this.surfacePacker.alloc(e.px.w, e.px.h) : null;
        if (!e.slot && e.px.w > 0 && e.px.h > 0) this.surfacesUnplaced++;
      }
      const size = this.surfacePage.width;
      if (!this.surfacesUnplaced || size * 2 > this.maxTexture) break;
      this.surfacePage.dispose();
      this.surfacePage = new TexturePage(size * 2, size * 2, 'surface atlas');
      this.surfacePacker = new ShelfPacker(size * 2, size * 2);
      this.buildMesh(this.capacity);
    }
    let pixels = 0;
    for (const e of all) if (e.slot) pixels += this.paintSurface(e.layer, e.px, e.slot, 'all', frame);
    return pixels;
  }

  private get maxTexture(): number {
    const b = this.renderer.backend as unknown as { isWebGPUBackend?: boolean; device?: { limits: { maxTextureDimension2D: number } }; gl?: WebGL2RenderingContext };
    return b.isWebGPUBackend ? (b.device?.limits.maxTextureDimension2D ?? 8192) : (b.gl?.getParameter(b.gl.MAX_TEXTURE_SIZE) as number | undefined) ?? 4096;
  }

  private paintSurface(s: SurfaceLayer, px: IRect, slot: Slot, dmg: 'all' | IRect[], frame: Frame): number {
    const rects = dmg === 'all' ? [{ x: 0, y: 0, w: px.w, h: px.h }] : dmg;
    const target = { data: this.surfacePage.data, stride: this.surfacePage.width, slotX: slot.x, slotY: slot.y, ox: px.x, oy: px.y };
    const lookup = Object.assign((id: number, font: string, size: number, boxW: number) => this.glyph(id, font, size, boxW).bm, { fit: this.glyphs.fit });
    let n = 0;
    for (const r of rects) {
      const local = intersectI(r, { x: 0, y: 0, w: px.w, h: px.h });
      if (local.w <= 0 || local.h <= 0) continue;
      n += rasterSurface(s, { x: local.x + px.x, y: local.y + px.y, w: local.w, h: local.h }, target, lookup, frame.images);
      this.surfacePage.mark({ x: slot.x + local.x, y: slot.y + local.y, w: local.w, h: local.h });
    }
    return n;
  }

  // ------------------------------------------------------------------------------------------
  // Instances

  private blockFor(g: Group): Block {
    let b = this.blocks.get(g);
    if (b) return b;
    const out: number[] = [];
    const clip = pixelRect(g.bounds.x, g.bounds.y, g.bounds.w, g.bounds.h);
    for (const l of g.layers) this.emit(l, clip, out);
    b = { data: Float32Array.from(out), n: out.length / STRIDE, bounds: clip, window: g.window };
    this.blocks.set(g, b);
    return b;
  }

  /** Appends a quad for box (x,y,w,h) clipped to `clip`, sampling uv rect (u0,v0)-(u1,v1). */
  private quad(out: number[], x: number, y: number, w: number, h: number, clip: IRect, u0: number, v0: number, u1: number, v1: number, color: number, mode: number) {
    if (w <= 0 || h <= 0) return;
    const x0 = Math.max(x, clip.x), y0 = Math.max(y, clip.y), x1 = Math.min(x + w, clip.x + clip.w), y1 = Math.min(y + h, clip.y + clip.h);
    if (x1 <= x0 || y1 <= y0) return;
    const fu = (u1 - u0) / w, fv = (v1 - v0) / h;
    out.push(x0, y0, x1 - x0, y1 - y0,
      u0 + (x0 - x) * fu, v0 + (y0 - y) * fv, u0 + (x1 - x) * fu, v0 + (y1 - y) * fv,
      (color >>> 24) / 255, ((color >>> 16) & 255) / 255, ((color >>> 8) & 255) / 255, (color & 255) / 255,
      mode, 0, 0, 0);
  }

  private emit(l: Layer, clip0: IRect, out: number[]): void {
    const clip = intersectI(clip0, layerPixels(l, this.glyphs.fit === 'pixel'));
    if (clip.w <= 0 || clip.h <= 0) return;
    const GW = this.glyphPage.width;
    const white = this.white!;
    const wu = white.x + 1, wv = white.y + 1;
    const solid = (x: number, y: number, w: number, h: number, c: number) => { if (c & 255) this.quad(out, x, y, w, h, clip, wu, wv, wu, wv, c, MODE_SOLID); };
    switch (l.kind) {
      case 'rect': return solid(l.x, l.y, l.w, l.h, l.color);
      case 'border': {
        const b = Math.min(l.width, l.w / 2, l.h / 2);
        solid(l.x, l.y, l.w, b, l.color); solid(l.x, l.y + l.h - b, l.w, b, l.color);
        solid(l.x, l.y + b, b, l.h - 2 * b, l.color); solid(l.x + l.w - b, l.y + b, b, l.h - 2 * b, l.color);
        return;
      }
      case 'clip': for (const c of l.children) this.emit(c, clip, out); return;
      case 'surface': {
        const e = this.surfaces.get(l.key);
        const px = pixelRect(l.x, l.y, l.w, l.h);
        if (!e?.slot) { solid(l.x, l.y, l.w, l.h, l.color); return; }
        this.quad(out, px.x, px.y, px.w, px.h, clip, e.slot.x, e.slot.y, e.slot.x + px.w, e.slot.y + px.h, 0xffffffff, MODE_SURFACE);
        return;
      }
      case 'text': {
        if (!(l.color & 255)) return;
        for (let i = 0; i < l.glyphs.length; i++) {
          const gw = l.gw[i]!;
          const e = this.glyph(l.glyphs[i]!, l.font, l.size, gw);
          const s = e.slot;
          const x = l.x + l.gx[i]!, y = l.y + l.gy[i]! - l.ascent;
          if (this.glyphs.fit === 'pixel') this.quad(out, Math.round(x), Math.round(y), s.w, s.h, clip, s.x, s.y, s.x + s.w, s.y + s.h, l.color, MODE_GLYPH);
          else this.quad(out, x, y, gw, l.size, clip, s.x, s.y, s.x + s.w, s.y + s.h, l.color, MODE_GLYPH);
        }
        return;
      }
      case 'image': {
        // Images outside surfaces are rare (icons); they go through a surface-like path: a
        // one-off slot in the glyph page holding RGBA texels.
        const img = (this.prevImages ?? new Map()).get(l.image);
        if (!img) { solid(l.x, l.y, l.w, l.h, 0xff00ffff); return; }
        const key = `img:${l.image}`;
        let e = this.glyphEntries.get(key);
        if (!e) {
          const slot = this.glyphPacker.alloc(img.w, img.h);
          if (!slot) { solid(l.x, l.y, l.w, l.h, 0xff00ffff); return; }
          const d = this.glyphPage.data;
          for (let y = 0; y < img.h; y++) d.set(img.rgba.subarray(y * img.w * 4, (y + 1) * img.w * 4), ((slot.y + y) * GW + slot.x) * 4);
          this.glyphPage.mark(slot);
          e = { slot, bm: { w: img.w, h: img.h, alpha: new Uint8Array(0) } };
          this.glyphEntries.set(key, e);
        }
        const s = e.slot;
        this.quad(out, l.x, l.y, l.w, l.h, clip, s.x, s.y, s.x + s.w, s.y + s.h, 0xffffffff, MODE_IMAGE);
        return;
      }
    }
  }
  private prevImages: Frame['images'] | null = null;
  private clearColor = new Color();

  private ensureStaging(n: number) {
    if (this.staging.length < n * STRIDE) this.staging = new Float32Array(Math.max(n * STRIDE, this.staging.length * 2));
  }

  /** Copies a block into staging with an animation transform (scale about its center, alpha). */
  private put(b: Block, at: number, scale: number, alpha: number, skip = 0): number {
    const s = this.staging;
    const n = b.n - skip;
    s.set(b.data.subarray(skip * STRIDE, b.n * STRIDE), at * STRIDE);
    if (scale !== 1 || alpha !== 1) {
      const cx = b.bounds.x + b.bounds.w / 2, cy = b.bounds.y + b.bounds.h / 2;
      for (let i = 0; i < n; i++) {
        const o = (at + i) * STRIDE;
        s[o] = cx + (s[o]! - cx) * scale; s[o + 1] = cy + (s[o + 1]! - cy) * scale;
        s[o + 2] = s[o + 2]! * scale; s[o + 3] = s[o + 3]! * scale;
        s[o + 11] = s[o + 11]! * alpha;
      }
    }
    return at + n;
  }

  /**
   * Draws `frame` at time `now` (ms, any monotonic clock: it drives only the open/close
   * animations). Returns what it did; draws nothing when the frame is unchanged and idle.
   */
  draw(frame: Frame, now = 0): FrameStats {
    const t0 = performance.now();
    const none: FrameStats = { rendered: false, cpuMs: 0, uploadBytes: 0, instanceBytes: 0, instances: 0, rasterPixels: 0, drawCalls: 0 };
    if (this.recovering) return none;
    const animating = this.opening.size > 0 || this.closing.size > 0;
    if (frame === this.prev && !animating && !this.forceRedraw) return { ...none, cpuMs: performance.now() - t0 };
    if (!this.white) this.reserveWhite();
    this.prevImages = frame.images;

    if (this.canvas.width !== frame.width || this.canvas.height !== frame.height) {
      this.renderer.setSize(frame.width, frame.height, false);
    }
    this.screen.value.set(frame.width, frame.height, 0, 0);

    const rasterPixels = frame === this.prev ? 0 : this.updateSurfaces(frame);

    // Blocks in paint order, with open/close animation state.
    const anim = this.o.animate ?? true;
    const keys = new Map<string, { block: Block; window: number }>();
    const blocks: Block[] = [];
    for (const g of frame.groups) {
      const b = this.blockFor(g);
      blocks.push(b);
      keys.set(g.key, { block: b, window: g.window });
      if (anim && this.prev && g.window !== 0 && !this.prevKeys.has(g.key) && !this.opening.has(g.key)) this.opening.set(g.key, now);
    }
    if (anim && this.prev) for (const [k, v] of this.prevKeys) if (!keys.has(k) && v.window !== 0) this.closing.set(k, { block: v.block, at: now });
    this.prevKeys = keys;

    // An opaque rect over the whole screen at the very bottom (the desktop) is the clear color
    // instead: the same pixels, and a full screen less to fill (SwiftShader is fill-bound).
    let clear = frame.clear, skipFirst = 0;
    const b0 = blocks[0];
    if (b0 && b0.n > 0) {
      const d = b0.data;
      if (d[12] === MODE_SOLID && d[11] === 1 && d[0]! <= 0 && d[1]! <= 0 && d[0]! + d[2]! >= frame.width && d[1]! + d[3]! >= frame.height && !this.opening.has(frame.groups[0]!.key)) {
        clear = (Math.round(d[8]! * 255) << 24 | Math.round(d[9]! * 255) << 16 | Math.round(d[10]! * 255) << 8 | 255) >>> 0;
        skipFirst = 1;
      }
    }
    // Raw bytes in, raw bytes out: the working and output spaces are both linear, no conversion.
    this.clearColor.setRGB((clear >>> 24) / 255, ((clear >>> 16) & 255) / 255, ((clear >>> 8) & 255) / 255, LinearSRGBColorSpace);
    this.renderer.setClearColor(this.clearColor, 1);

    let n = -skipFirst;
    for (const b of blocks) n += b.n;
    for (const c of this.closing.values()) n += c.block.n;
    this.ensureStaging(n);
    let at = 0;
    for (let i = 0; i < frame.groups.length; i++) {
      const g = frame.groups[i]!;
      const started = this.opening.get(g.key);
      let scale = 1, alpha = 1;
      if (started !== undefined) {
        const t = Math.min(1, Math.max(0, (now - started) / ANIM_MS));
        if (t >= 1) this.opening.delete(g.key);
        const e = 1 - (1 - t) * (1 - t);
        scale = 0.94 + 0.06 * e; alpha = e;
      }
      at = this.put(blocks[i]!, at, scale, alpha, i === 0 ? skipFirst : 0);
    }
    for (const [k, c] of this.closing) {
      const t = Math.min(1, Math.max(0, (now - c.at) / ANIM_MS));
      if (t >= 1) { this.closing.delete(k); continue; }
      at = this.put(c.block, at, 1 - 0.04 * t, 1 - t);
    }
    n = at;

    if (n > this.capacity) this.buildMesh(Math.max(n, this.capacity * 2));
    const s = this.staging;
    for (let a = 0; a < 4; a++) {
      const attr = this.attrs[a]!;
      const arr = attr.array as Float32Array;
      for (let i = 0; i < n; i++) {
        const o = i * STRIDE + a * 4, p = i * 4;
        arr[p] = s[o]!; arr[p + 1] = s[o + 1]!; arr[p + 2] = s[o + 2]!; arr[p + 3] = s[o + 3]!;
      }
      attr.clearUpdateRanges();
      attr.addUpdateRange(0, n * 4);
      attr.needsUpdate = true;
    }
    this.geometry.instanceCount = n;

    const uploadBytes = this.glyphPage.flush(this.renderer) + this.surfacePage.flush(this.renderer);
    this.renderer.render(this.scene, this.camera);
    this.prev = frame;
    this.forceRedraw = false;
    return { rendered: true, cpuMs: performance.now() - t0, uploadBytes, instanceBytes: n * STRIDE * 4, instances: n, rasterPixels, drawCalls: 1 };
  }

  /** Re-rasterizes and re-uploads every surface on the next draw (a full redraw; benchmarks). */
  repaintAll(): void {
    for (const e of this.surfaces.values()) e.layer = { ...e.layer, children: [] };
    this.prev = null;
  }

  /** Draws the next frame even if it is unchanged (benchmarks: the cost of submitting alone). */
  redrawNext(): void { this.forceRedraw = true; }

  /** Whether an animation is running (the caller keeps requesting frames while it is). */
  get animating(): boolean { return this.opening.size > 0 || this.closing.size > 0; }

  dispose(): void {
    this.generation++;
    this.geometry?.dispose();
    this.glyphPage.dispose(); this.surfacePage.dispose();
    this.renderer?.dispose();
  }
}
