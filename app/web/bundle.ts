// Builds the renderer bundle for the browser with esbuild (already installed with tsx; works
// offline). Built in memory at host start and cached; nothing is written to the repository.
import { build } from 'esbuild';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface Assets { js: string; css: string }

export async function buildRenderer(opts: { entry?: string; minify?: boolean } = {}): Promise<Assets> {
  const r = await build({
    entryPoints: [opts.entry ?? join(root, 'renderer', 'main.ts')],
    bundle: true, write: false, format: 'esm', platform: 'browser', target: 'es2022',
    minify: opts.minify ?? false, sourcemap: false, logLevel: 'silent', legalComments: 'none',
  });
  const js = r.outputFiles[0]!.text;
  const css = await readFile(join(root, 'renderer', 'app.css'), 'utf8');
  return { js, css };
}

/** Memoized builder: the first request waits for the build, later ones reuse it. */
export function cachedAssets(opts: { entry?: string; minify?: boolean } = {}): () => Promise<Assets> {
  let p: Promise<Assets> | null = null;
  return () => (p ??= buildRenderer(opts).catch((e) => { p = null; throw e; }));
}
