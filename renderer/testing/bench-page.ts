// The frame benchmark's page: a desktop of 32 windows with ~10k glyphs (scene/session/bench-support),
// drawn by the GPU renderer with real glyphs while one window is dragged, frame after frame.
import { FrameRenderer } from '../gpu/frame-renderer.ts';
import { applyCommit } from '../../scene/index.ts';
import { buildDragBench } from '../../scene/session/bench-support.ts';

const canvas = document.getElementById('screen') as HTMLCanvasElement;
const raf = () => new Promise<number>((r) => requestAnimationFrame(r));
const pct = (xs: number[], p: number) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!; };
const heap = () => (performance as unknown as { memory?: { usedJSHeapSize: number } }).memory?.usedJSHeapSize ?? NaN;
const gc = () => (window as unknown as { gc?: () => void }).gc?.();

async function run(opts: { frames?: number; forceWebGL?: boolean } = {}) {
  const frames = opts.frames ?? 1000;
  // Baseline: how often this browser gives an idle page an animation frame.
  const idle: number[] = [];
  let last = await raf();
  for (let i = 0; i < 60; i++) { const t = await raf(); idle.push(t - last); last = t; }

  const b = buildDragBench({ windows: 32, glyphs: 10_000 });
  const fr = await FrameRenderer.create({ canvas, animate: false, ...(opts.forceWebGL ? { forceWebGL: true } : {}) });
  canvas.style.width = `${b.frame.width}px`; canvas.style.height = `${b.frame.height}px`;
  const first = fr.draw(b.frame, 0);
  await raf();
  // A full redraw: every surface re-rasterized and re-uploaded.
  fr.repaintAll();
  const full = fr.draw(b.frame, 0);
  await raf();
  // One window's content changes (a line of text appended to the focused window).
  applyCommit(b.state, 1_000_000, { id: 1_000_000, action: 'text.input', args: { id: b.state.focused, text: ' more' } });
  const oneFrame = b.scene.update(b.state);
  b.frame = oneFrame;
  const one = fr.draw(oneFrame, 0);
  await raf();
  // Baseline: submitting an unchanged frame (three's render call for our one instanced mesh).
  const submit: number[] = [];
  for (let i = 0; i < 60; i++) { fr.redrawNext(); submit.push(fr.draw(b.frame, 0).cpuMs); await raf(); }

  // The drag: one step of the scene (reduce, layout, composite) and one frame, per animation frame.
  const cpu: number[] = [], step: number[] = [], interval: number[] = [], uploads: number[] = [], rendered: number[] = [];
  for (let i = 0; i < 50; i++) { b.step(); fr.draw(b.frame, 0); await raf(); }
  gc(); await raf(); gc();
  const heap0 = heap();
  last = await raf();
  for (let i = 0; i < frames; i++) {
    const t0 = performance.now();
    b.step();
    step.push(performance.now() - t0);
    const s = fr.draw(b.frame, i);
    cpu.push(s.cpuMs); uploads.push(s.uploadBytes); rendered.push(s.rendered ? 1 : 0);
    const t = await raf();
    interval.push(t - last); last = t;
  }
  gc(); await raf(); gc(); await raf();
  const heap1 = heap();
  const r = {
    backend: fr.backend,
    cpu_frame_ms_p50: pct(cpu, 50), cpu_frame_ms_p95: pct(cpu, 95),
    baseline_submit_only_ms_p50: pct(submit, 50),
    scene_step_ms_p50: pct(step, 50),
    frame_interval_ms_p50: pct(interval, 50), baseline_idle_raf_interval_ms_p50: pct(idle, 50),
    heap_growth_kb: Math.round((heap1 - heap0) / 1024),
    upload_bytes_one_window: one.uploadBytes, upload_bytes_full: full.uploadBytes, upload_bytes_first_frame: first.uploadBytes,
    upload_bytes_per_drag_frame_max: Math.max(...uploads),
    raster_pixels_one_window: one.rasterPixels, raster_pixels_full: full.rasterPixels,
    instances: one.instances, draw_calls: one.drawCalls, glyphs: b.glyphs, windows: b.windows, frames,
    frames_rendered: rendered.reduce((a, x) => a + x, 0), screen: `${b.frame.width}x${b.frame.height}`,
  };
  fr.dispose();
  return r;
}

(window as unknown as { __bench: { run: typeof run } }).__bench = { run };
document.title = 'bench-page ready';
