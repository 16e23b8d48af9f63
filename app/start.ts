// `npm start`: Orbital on the hosted OS. Electron where its binary is installed; otherwise the
// same app in web mode, with the URL printed. Flags: --web (force web mode), --port N,
// --data DIR (the hosted OS's data directory).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { startHost, defaultDataDir } from './host/start-host.ts';
import { cachedAssets } from './web/bundle.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const flag = (name: string) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : undefined; };

/** Electron's binary path, or the reason it cannot be used. */
export function findElectron(): { path: string } | { why: string } {
  try {
    const p = createRequire(import.meta.url)('electron') as unknown;
    if (typeof p === 'string' && existsSync(p)) return { path: p };
    return { why: `the electron package points at ${String(p)}, which does not exist` };
  } catch (e) {
    void e;
    return { why: 'its binary is not installed here (npm could not download it); to get it: node app/scripts/ensure-electron.mjs' };
  }
}

async function web(reason?: string) {
  if (reason) console.log(`Electron: ${reason}\nStarting web mode instead.`);
  const dataDir = flag('--data') ?? defaultDataDir();
  const port = flag('--port');
  const assets = cachedAssets();
  await assets(); // build the renderer bundle now, so the first page load does not wait for it
  const host = await startHost({ socket: true, assets, dataDir, ...(port ? { port: Number(port) } : {}) });
  console.log(`Orbital is running in web mode (device data: ${dataDir}).`);
  console.log(`Open this URL in Chromium or Chrome (WebGPU; other browsers use WebGL2):\n\n  ${host.web.url}\n`);
  console.log('Press Ctrl+C to stop.');
  const stop = async () => { await host.close(); process.exit(0); };
  process.once('SIGINT', stop); process.once('SIGTERM', stop);
}

async function electron(bin: string) {
  const { buildElectronApp } = await import('./electron/build.ts');
  const main = await buildElectronApp(join(root, 'node_modules', '.cache', 'orbital-electron'));
  const env = { ...process.env, ORBITAL_DATA: flag('--data') ?? defaultDataDir(), ORBITAL_GUEST_KERNEL: join(root, 'os-image', 'kernel', 'target', 'kernel', 'orbital-kernel.elf') };
  const child = spawn(bin, [main], { stdio: 'inherit', env });
  child.on('exit', (code) => process.exit(code ?? 0));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const e = args.includes('--web') ? { why: '--web given' } : findElectron();
  ('path' in e ? electron(e.path) : web('why' in e && e.why !== '--web given' ? e.why : undefined)).catch((err) => {
    console.error(`orbital: ${err instanceof Error ? err.message : err}`);
    process.exit(1);
  });
}
