#!/usr/bin/env node
// Root `postinstall`: fetch Electron's binary where the network allows it, and never fail the
// install where it does not. npm 11 skips electron's own install script (package.json
// allowScripts), so this runs it ourselves with a time limit. Without the binary, `npm start`
// runs the same app in web mode.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const TIMEOUT_MS = Number(process.env.ORBITAL_ELECTRON_TIMEOUT_MS ?? 120_000);
const say = (m) => console.log(`ensure-electron: ${m}`);

function electronDir() {
  try { return dirname(createRequire(import.meta.url).resolve('electron/package.json')); } catch { return null; }
}

function installed(dir) {
  const pathFile = join(dir, 'path.txt');
  return existsSync(pathFile) && existsSync(join(dir, 'dist', readFileSync(pathFile, 'utf8').trim()));
}

const dir = electronDir();
if (!dir) { say('electron is not installed (devDependency skipped?); npm start will use web mode'); process.exit(0); }
if (installed(dir)) { say('the Electron binary is present'); process.exit(0); }
if (process.env.ELECTRON_SKIP_BINARY_DOWNLOAD) { say('ELECTRON_SKIP_BINARY_DOWNLOAD is set; npm start will use web mode'); process.exit(0); }

say(`downloading the Electron binary (time limit ${TIMEOUT_MS / 1000} s) ...`);
const r = spawnSync(process.execPath, [join(dir, 'install.js')], { cwd: dir, stdio: 'inherit', timeout: TIMEOUT_MS, env: process.env });
if (r.status === 0 && installed(dir)) say('the Electron binary is installed');
else {
  const why = r.error ? r.error.message : r.signal ? `stopped by ${r.signal}` : `exit code ${r.status}`;
  say(`could not install the Electron binary (${why}). This is fine: npm start runs Orbital in web mode;`);
  say(`retry later with: node ${join('node_modules', 'electron', 'install.js')}`);
}
process.exit(0);
