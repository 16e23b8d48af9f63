// Same glyph ids and positions in Chromium as in Node: the text engine (HarfBuzz WASM + line
// breaking + flex layout) is bundled for the browser, fed the same font bytes, and its output
// compared number for number.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { build } from 'esbuild';
import { chromium } from 'playwright-core';
import { expect, it } from 'vitest';
import { describeWithTools } from '../../scripts/testkit.ts';
import { SceneTree } from '../tree.ts';
import { HarfBuzzShaper } from './harfbuzz.ts';

const here = resolve(import.meta.dirname);
const font = readFileSync(join(here, '../fonts/DejaVuSans.ttf'));
const SAMPLES = ['Hello, Orbital!', 'office affluent AVATAR', 'Ünïcødé — ½ ∑ ≠ 😀', 'Ωμέγα кириллица', 'مرحبا بالعالم', 'a long paragraph that has to wrap over several lines in a narrow box\nand a second paragraph'];

/** What both runtimes compute: glyphs and positions of each sample laid out in a 180 px box. */
function probe(tree: typeof SceneTree, Shaper: typeof HarfBuzzShaper, fontBytes: Uint8Array, samples: string[]) {
  const shaper = new Shaper();
  shaper.addFont('', fontBytes);
  const t = new tree({ text: shaper });
  const ids = samples.map((s) => { const id = t.createText(s, { fontSize: 15 }, { width: 180 }); t.appendChild(t.root, id); return id; });
  t.layout(400, 2000);
  return ids.map((id) => { const tl = t.textLayout(id)!; return { box: t.box(id), glyphs: Array.from(tl.glyphs), x: Array.from(tl.x), y: Array.from(tl.y) }; });
}

describeWithTools(['chromium'], 'text in Chromium', () => {
  it('shapes and lays out the same glyphs at the same positions as Node', async () => {
    const node = probe(SceneTree, HarfBuzzShaper, new Uint8Array(font), SAMPLES);

    const entry = `
      import { SceneTree } from ${JSON.stringify(join(here, '../tree.ts'))};
      import { HarfBuzzShaper } from ${JSON.stringify(join(here, 'harfbuzz.ts'))};
      ${probe.toString()}
      globalThis.probe = (fontB64, samples) => probe(SceneTree, HarfBuzzShaper, Uint8Array.from(atob(fontB64), (c) => c.charCodeAt(0)), samples);
      globalThis.ready = true;
    `;
    const out = await build({ stdin: { contents: entry, resolveDir: here, loader: 'ts' }, bundle: true, format: 'esm', platform: 'browser', write: false, logLevel: 'error', target: 'es2022', external: ['module'] });
    const wasm = readFileSync(join(dirname(createRequire(import.meta.url).resolve('harfbuzzjs')), 'harfbuzz.wasm'));
    const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'] });
    try {
      const page = await browser.newPage();
      // harfbuzzjs fetches harfbuzz.wasm next to its module (the bundle). Serve the page, the bundle and HarfBuzz's WASM from memory (no network involved).
      await page.route('http://orbital.test/**', (route) => {
        const u = route.request().url();
        if (u.endsWith('.wasm')) return route.fulfill({ body: wasm, contentType: 'application/wasm' });
        if (u.endsWith('/app.js')) return route.fulfill({ body: out.outputFiles[0]!.text, contentType: 'text/javascript' });
        return route.fulfill({ body: '<!doctype html><script type="module" src="/app.js"></script>', contentType: 'text/html' });
      });
      await page.goto('http://orbital.test/');
      await page.waitForFunction(() => (globalThis as { ready?: boolean }).ready === true, null, { timeout: 30_000 });
      const browserOut = await page.evaluate(([b64, samples]) => (globalThis as unknown as { probe: (a: string, b: string[]) => unknown }).probe(b64, samples), [font.toString('base64'), SAMPLES] as const);
      expect(browserOut).toEqual(node);
      expect(node.some((s) => s.y.some((y) => y > 30))).toBe(true); // something wrapped
    } finally {
      await browser.close();
    }
  }, 120_000);
});
