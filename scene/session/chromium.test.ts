// The same log gives the same scene hashes — and the same pixels from the reference rasterizer —
// in Chromium as in Node: the scene layer is bundled for the browser and run there.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';
import { chromium } from 'playwright-core';
import { beforeAll, expect, it } from 'vitest';
import { describeWithTools } from '../../scripts/testkit.ts';
import { Sequencer, blake3, initAxiom, osReducer, systemReducer, toHex } from '../../axiom/index.ts';
import { renderFull } from '../raster/raster.ts';
import { randomActions } from './random.ts';
import { SessionView } from './view.ts';

beforeAll(() => initAxiom());

/** What both runtimes compute: the scene hash after every entry, and a pixel hash every 25 entries. */
const probe = `
  export async function run(hexes, deps) {
    const { initAxiom, fromHex, toHex, blake3, SessionView, renderFull } = deps;
    await initAxiom();
    const view = new SessionView();
    const hashes = [], pixels = [];
    hexes.forEach((h, i) => {
      const r = view.applyEncoded(fromHex(h));
      if (!r.ok) throw new Error(r.error.message);
      hashes.push(toHex(view.hash()));
      if (i % 25 === 24 || i === hexes.length - 1) pixels.push(toHex(blake3(renderFull(view.frame).rgba)));
    });
    return { hashes, pixels };
  }
`;

describeWithTools(['chromium'], 'scene in Chromium', () => {
  it('replays a session log to the same scene hashes and pixels as Node', async () => {
    const dev = new Sequencer({ deviceId: new Uint8Array(16), bootId: new Uint8Array(16), os: 't', reducers: [systemReducer, osReducer] });
    const log = dev.boot().map((a) => a.encoded);
    const acts = [{ action: 'screen.resize', args: { w: 480, h: 360 } }, ...randomActions(4242, 120, 0.1)];
    acts.forEach((a, i) => log.push(...dev.propose({ actor: 1, id: i + 1, domain: 2, action: a.action, args: a.args, time: i }).entries.map((x) => x.encoded)));
    const hexes = log.map(toHex);

    // Node.
    const { fromHex } = await import('../../axiom/index.ts');
    const node = await (await import(`data:text/javascript,${encodeURIComponent(probe)}`)).run(hexes, { initAxiom, fromHex, toHex, blake3, SessionView, renderFull });

    // Chromium: bundle the same modules for the browser.
    const dir = mkdtempSync(join(tmpdir(), 'orbital-scene-chromium-'));
    const here = resolve(import.meta.dirname);
    writeFileSync(join(dir, 'entry.ts'), `
      import { initAxiom, fromHex, toHex, blake3 } from ${JSON.stringify(join(here, '../../axiom/index.ts'))};
      import { SessionView, renderFull } from ${JSON.stringify(join(here, '../index.ts'))};
      ${probe}
      (globalThis as any).probe = (hexes: string[]) => run(hexes, { initAxiom, fromHex, toHex, blake3, SessionView, renderFull });
    `);
    const out = await build({ entryPoints: [join(dir, 'entry.ts')], bundle: true, format: 'iife', platform: 'browser', write: false, logLevel: 'silent', target: 'es2022' });
    const browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
    });
    try {
      const page = await browser.newPage();
      await page.addScriptTag({ content: out.outputFiles[0]!.text });
      const web = await page.evaluate((h) => (globalThis as any).probe(h), hexes);
      expect(web.hashes).toHaveLength(hexes.length);
      expect(web.hashes).toEqual(node.hashes);
      expect(web.pixels).toEqual(node.pixels);
    } finally {
      await browser.close();
    }
  }, 120_000);
});
