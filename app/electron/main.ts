// Electron main: thin. It starts the same host services and local web host as web mode (the
// renderer bundle is served from 127.0.0.1, a secure context for WebGPU), but the bridge runs over
// IPC through the preload; the web host's socket is not opened in this mode.
import { app, BrowserWindow, ipcMain, session, shell } from 'electron';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { startHost, defaultDataDir } from '../host/start-host.ts';
import { IpcBridge, type IpcMainLike } from './ipc.ts';

const here = dirname(fileURLToPath(import.meta.url));

async function main() {
  await app.whenReady();
  // The renderer bundle is built beside this file (app/electron/build.ts); Electron never runs esbuild.
  const assets = async () => ({ js: await readFile(join(here, 'renderer.js'), 'utf8'), css: await readFile(join(here, 'app.css'), 'utf8') });
  const host = await startHost({ socket: false, assets, dataDir: process.env.ORBITAL_DATA ?? defaultDataDir() });
  const origin = new URL(host.web.url).origin;

  // Nothing this app loads asks for camera, notifications, USB ...: deny every permission.
  session.defaultSession.setPermissionRequestHandler((_wc, _perm, cb) => cb(false));
  session.defaultSession.setPermissionCheckHandler(() => false);

  const bridge = new IpcBridge({ ipcMain: ipcMain as unknown as IpcMainLike, dispatcher: host.dispatcher, events: host.events, origin });

  const win = new BrowserWindow({
    width: 1280, height: 800, title: 'Orbital', backgroundColor: '#101418',
    webPreferences: {
      preload: join(here, 'preload.cjs'),
      contextIsolation: true, sandbox: true, nodeIntegration: false, webSecurity: true,
      nodeIntegrationInWorker: false, webviewTag: false, spellcheck: false,
    },
  });
  bridge.allow(win.webContents);
  const wc = win.webContents;
  wc.on('will-navigate', (e, url) => { if (new URL(url).origin !== origin) e.preventDefault(); });
  wc.on('will-redirect', (e) => e.preventDefault());
  wc.on('will-attach-webview', (e) => e.preventDefault());
  wc.setWindowOpenHandler(({ url }) => {
    if (/^https:\/\//.test(url)) void shell.openExternal(url);
    return { action: 'deny' };
  });
  const wcId = wc.id;
  win.on("closed", () => bridge.forget(wcId));
  await win.loadURL(`${origin}/`);

  app.on('window-all-closed', async () => { bridge.close(); await host.close(); app.quit(); });
}

main().catch((e) => { console.error(e); app.exit(1); });
