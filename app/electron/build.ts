// Bundles what Electron runs into one directory: main.mjs (everything but `electron` inlined),
// preload.cjs (sandboxed preloads must be single CommonJS files), renderer.js and app.css.
// `npm start` builds into node_modules/.cache; electron-builder's beforePack hook into build/app.
import { build } from 'esbuild';
import { copyFile, mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export async function buildElectronApp(outdir: string): Promise<string> {
  await mkdir(outdir, { recursive: true });
  const common = { bundle: true, logLevel: 'warning' as const, legalComments: 'none' as const };
  await Promise.all([
    build({ ...common, entryPoints: [join(root, 'app/electron/main.ts')], outfile: join(outdir, 'main.mjs'), platform: 'node', format: 'esm', target: 'node20',
      // serialport loads a native binding from its own package directory: keep it a real module.
      external: ['electron', 'serialport'],
      // Some bundled CommonJS deps call require(); give the ESM bundle one.
      banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" } }),
    build({ ...common, entryPoints: [join(root, 'app/electron/preload.ts')], outfile: join(outdir, 'preload.cjs'), platform: 'node', format: 'cjs', target: 'node20', external: ['electron'] }),
    build({ ...common, entryPoints: [join(root, 'renderer/main.ts')], outfile: join(outdir, 'renderer.js'), platform: 'browser', format: 'esm', target: 'es2022', minify: true }),
    copyFile(join(root, 'renderer/app.css'), join(outdir, 'app.css')),
  ]);
  return join(outdir, 'main.mjs');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const out = process.argv[2] ?? join(root, 'build', 'app');
  buildElectronApp(out).then((m) => console.log(`built ${m}`), (e) => { console.error(e); process.exit(1); });
}
