// Test page for the GPU renderer alone: draws fixture frames on demand and reports what it did.
// Playwright drives it through window.__gpu.
import { FrameRenderer } from '../gpu/frame-renderer.ts';
import { ReferenceGlyphs } from '../gpu/glyph-source.ts';
import { goldenFrame, goldenFrameOpened, goldenSession } from './fixtures.ts';
import { ANIM_MS } from '../gpu/frame-renderer.ts';

const canvas = document.getElementById('screen') as HTMLCanvasElement;
let fr: FrameRenderer | null = null;

const api = {
  async init(opts: { forceWebGL?: boolean } = {}) {
    const adapter = 'gpu' in navigator ? await (navigator as unknown as { gpu: { requestAdapter(): Promise<unknown> } }).gpu.requestAdapter() : null;
    fr = await FrameRenderer.create({ canvas, glyphs: new ReferenceGlyphs(), animate: false, ...opts });
    return { adapter: adapter !== null, backend: fr.backend, isWebGPUBackend: (fr.renderer.backend as unknown as { isWebGPUBackend?: boolean }).isWebGPUBackend === true };
  },
  drawGolden() { return fr!.draw(goldenFrame(), 0); },
  state() { return { backend: fr!.backend, recoveries: fr!.recoveries, fellBack: fr!.fellBack, lastLoss: fr!.lastLoss }; },
  drawSession() { return fr!.draw(goldenSession(), 0); },
  /** Opens a window with the animation on, at frame times 0, mid-way and past the end. */
  animateOpen() {
    const r = fr!;
    (r as unknown as { o: { animate: boolean } }).o.animate = true;
    const a = goldenFrame(), b = goldenFrameOpened();
    r.draw(a, 0);
    const start = r.draw(b, 1000);
    const animatingAtStart = r.animating;
    const mid = r.draw(b, 1000 + ANIM_MS / 2);
    const end = r.draw(b, 1000 + ANIM_MS + 1);
    const animatingAfter = r.animating;
    const idle = r.draw(b, 5000);
    (r as unknown as { o: { animate: boolean } }).o.animate = false;
    return { start: start.rendered, animatingAtStart, mid: mid.rendered, midUploads: mid.uploadBytes, end: end.rendered, animatingAfter, idle: idle.rendered };
  },
  drawSame() { const f = goldenFrame(); fr!.draw(f, 0); return fr!.draw(f, 0); },
  async loseAndRecover() {
    const before = fr!.recoveries;
    fr!.loseDevice();
    for (let i = 0; i < 200 && fr!.recoveries === before; i++) await new Promise((r) => setTimeout(r, 25));
    return { recoveries: fr!.recoveries, reason: fr!.lastLoss, backend: fr!.backend, stats: fr!.draw(goldenFrame(), 0) };
  },
};
(window as unknown as { __gpu: typeof api }).__gpu = api;
document.title = 'gpu-page ready';
