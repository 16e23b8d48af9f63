// npm run bench -- frame [--json] [--webgl]: the GPU renderer in Chromium on SwiftShader, a desktop
// of 32 windows with ~10k glyphs, one window dragged for 1,000 frames. Baselines from the same
// run: the idle page's animation-frame interval, and submitting an unchanged frame.
import type { BenchContext, BenchResult } from './harness.ts';
import { round } from './harness.ts';
import { launchChromium } from '../app/testing/chromium.ts';
import { servePage } from '../app/testing/page-host.ts';
import { which } from '../scripts/testkit.ts';

export default async function frame(ctx: BenchContext): Promise<BenchResult> {
  if (!which('chromium')) throw new Error('bench frame needs Debian\'s chromium (/usr/bin/chromium): apt-get install -y chromium');
  const webgl = ctx.args.includes('--webgl');
  const framesArg = ctx.args.find((a) => a.startsWith('--frames='));
  const frames = framesArg ? Number(framesArg.slice(9)) : 1000;
  ctx.progress('building the renderer bundle');
  const host = await servePage('renderer/testing/bench-page.ts');
  const b = await launchChromium({ webgpu: !webgl, width: 1920, height: 1080, args: ['--js-flags=--expose-gc', '--enable-precise-memory-info'] });
  try {
    const page = b.browser.pages()[0] ?? await b.browser.newPage();
    await page.goto(host.url);
    await page.waitForFunction(() => document.title === 'bench-page ready');
    ctx.progress(`dragging one of 32 windows for ${frames} frames (${webgl ? 'WebGL2' : 'WebGPU'} on SwiftShader)`);
    const r = await page.evaluate((n) => (window as any).__bench.run({ frames: n }), frames) as Record<string, number | string>;
    const n = (k: string) => r[k] as number;
    const figures: Record<string, number | string> = {};
    for (const [k, v] of Object.entries(r)) figures[k] = typeof v === 'number' ? round(v, 3) : v;
    return {
      figures,
      goals: [
        { text: `cpu_frame_ms_p50 ≤ 4 (${round(n('cpu_frame_ms_p50'), 2)})`, met: n('cpu_frame_ms_p50') <= 4 },
        { text: `heap_growth_kb ≤ 1024 over ${frames} frames (${n('heap_growth_kb')})`, met: n('heap_growth_kb') <= 1024 },
        { text: `upload_bytes_one_window ≤ 0.1 × upload_bytes_full (${n('upload_bytes_one_window')} vs ${n('upload_bytes_full')})`, met: n('upload_bytes_one_window') <= 0.1 * n('upload_bytes_full') },
      ],
      notes: [
        'cpu_frame_ms: FrameRenderer.draw (surface diff, CPU raster of damaged texels, instance build, uploads, renderer.render submit); the scene step (reduce + layout + composite) is scene_step_ms, measured apart',
        'baseline_submit_only_ms: draw() of an unchanged frame forced to render — three.js render() of our one instanced mesh, no preparation',
        'frame_interval_ms is paced by SwiftShader doing the GPU work on the same 2 shared cores: useful as a ratio to baseline_idle_raf_interval_ms, not as a GPU figure',
        'upload_bytes_full: every surface re-rasterized and uploaded (not the first frame, which uploads whole atlas pages: upload_bytes_first_frame)',
        'heap_growth_kb: performance.memory.usedJSHeapSize after gc() (--expose-gc), after vs before the drag',
      ],
    };
  } finally {
    await b.close();
    await host.close();
  }
}
