// Electron main with `electron` replaced by recording fakes (its binary cannot run here): the
// window's web preferences, navigation and new-window blocking, permission denial, and that only
// the window main created may use the bridge.
import { describe, expect, it, vi } from 'vitest';

const rec = vi.hoisted(() => ({
  windows: [] as any[], handlers: new Map<string, Function>(), perms: null as any, check: null as any, opened: [] as string[],
  wcEvents: new Map<string, Function>(), openHandler: null as any, loaded: '',
}));

vi.mock('electron', () => {
  class BrowserWindow {
    webContents: any;
    constructor(readonly opts: any) {
      this.webContents = {
        id: 7, send: vi.fn(), isDestroyed: () => false,
        on: (ev: string, fn: Function) => rec.wcEvents.set(ev, fn),
        setWindowOpenHandler: (fn: Function) => { rec.openHandler = fn; },
      };
      rec.windows.push(this);
    }
    on() {}
    async loadURL(u: string) { rec.loaded = u; }
  }
  return {
    app: { whenReady: async () => {}, on: () => {}, quit: () => {}, exit: () => {} },
    BrowserWindow,
    ipcMain: { handle: (ch: string, fn: Function) => rec.handlers.set(ch, fn), removeHandler: () => {} },
    session: { defaultSession: { setPermissionRequestHandler: (fn: any) => { rec.perms = fn; }, setPermissionCheckHandler: (fn: any) => { rec.check = fn; } } },
    shell: { openExternal: async (u: string) => { rec.opened.push(u); } },
  };
});

vi.mock('../host/start-host.ts', async () => {
  const { Dispatcher } = await import('../host/dispatch.ts');
  const handlers = { hello: async () => ({ version: 1 }) } as any;
  return {
    defaultDataDir: () => '/nonexistent',
    startHost: async (o: { socket: boolean }) => {
      expect(o.socket).toBe(false); // Electron: the bridge is IPC, the web host serves files only
      return { web: { url: 'http://127.0.0.1:4321/?token=t' }, dispatcher: new Dispatcher(handlers, () => {}), events: { subscribe: () => () => {} }, close: async () => {} };
    },
  };
});

describe('Electron main', () => {
  it('creates a locked-down window and bridges only that window', async () => {
    await import('./main.ts');
    for (let i = 0; i < 50 && !rec.loaded; i++) await new Promise((r) => setTimeout(r, 10));
    expect(rec.loaded).toBe('http://127.0.0.1:4321/');
    const w = rec.windows[0]!;
    expect(w.opts.webPreferences).toMatchObject({ contextIsolation: true, sandbox: true, nodeIntegration: false, webSecurity: true, webviewTag: false });
    expect(w.opts.webPreferences.preload).toMatch(/preload\.cjs$/);

    // Permissions: every request and check is denied.
    const cb = vi.fn();
    rec.perms(null, 'media', cb);
    expect(cb).toHaveBeenCalledWith(false);
    expect(rec.check()).toBe(false);

    // Navigation away from our origin and every new window are blocked.
    const nav = { preventDefault: vi.fn() };
    rec.wcEvents.get('will-navigate')!(nav, 'https://evil.example/');
    expect(nav.preventDefault).toHaveBeenCalled();
    const same = { preventDefault: vi.fn() };
    rec.wcEvents.get('will-navigate')!(same, 'http://127.0.0.1:4321/?token=t');
    expect(same.preventDefault).not.toHaveBeenCalled();
    expect(rec.openHandler({ url: 'https://docs.example/' })).toEqual({ action: 'deny' });
    expect(rec.openHandler({ url: 'file:///etc/passwd' })).toEqual({ action: 'deny' });
    expect(rec.opened).toEqual(['https://docs.example/']);

    // The bridge answers the window main created and drops anyone else.
    const handle = [...rec.handlers.values()][0]!;
    const ok = await handle({ sender: w.webContents, senderFrame: { url: 'http://127.0.0.1:4321/' } }, 'hello', {});
    expect(ok).toEqual({ ok: true, value: { version: 1 } });
    const other = await handle({ sender: { id: 8, send() {}, isDestroyed: () => false }, senderFrame: { url: 'http://127.0.0.1:4321/' } }, 'hello', {});
    expect(other.ok).toBe(false);
  });
});
