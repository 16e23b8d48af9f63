// The whole session in web mode on the hosted OS, in Chromium with WebGPU: backend, a person's
// path by real clicks and keys, and end-to-end determinism against a replay in Node.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { describeWithTools } from '../scripts/testkit.ts';
import { launchChromium, type Launched } from './testing/chromium.ts';
import { startHost, type RunningHost } from './host/start-host.ts';
import { cachedAssets } from './web/bundle.ts';
import { replay, toHex } from '../axiom/index.ts';
import { sessionReducer, sceneHash, type SessionState } from '../scene/index.ts';
import { decodePng } from './testing/png.ts';

type Snap = {
  backend: string; seq: number; sceneHash: string; focused: number; consoleText: string; brokenAt: number; frames: number; notice: string;
  windows: { id: number; app: string; x: number; y: number; w: number; h: number; text: string; hits: { title: { x: number; y: number; w: number; h: number } | null; close: { x: number; y: number; w: number; h: number } | null } }[];
  launcher: { app: string; x: number; y: number; w: number; h: number }[];
  proposals: { sent: number; committed: number; rejected: number; failed: number };
};

describeWithTools(['chromium'], 'session in web mode (WebGPU, hosted OS)', () => {
  let host: RunningHost, b: Launched, page: Page, dataDir: string;
  const errors: string[] = [];
  const snap = (): Promise<Snap> => page.evaluate(() => (window as any).__orbital.snapshot());
  async function until<T>(what: string, fn: () => Promise<T>, ok: (v: T) => boolean): Promise<T> {
    let v = await fn();
    for (let i = 0; i < 300 && !ok(v); i++) { await page.waitForTimeout(50); v = await fn(); }
    if (!ok(v)) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(v).slice(0, 600)}`);
    return v;
  }
  const center = (r: { x: number; y: number; w: number; h: number }) => ({ x: r.x + r.w / 2, y: r.y + r.h / 2 });

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'orbital-session-'));
    host = await startHost({ socket: true, assets: cachedAssets(), dataDir, fsync: 'never', log: () => {} });
    b = await launchChromium({ webgpu: true, width: 1280, height: 800 });
    page = b.browser.pages()[0] ?? await b.browser.newPage();
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(host.web.url);
    await page.waitForFunction(() => (window as any).__orbital || (window as any).__orbitalError, null, { timeout: 60_000 });
    const fatal = await page.evaluate(() => (window as any).__orbitalError);
    if (fatal) throw new Error(`the page failed to start: ${fatal}`);
  });
  afterAll(async () => { await b?.close(); await host?.close(); rmSync(dataDir, { recursive: true, force: true }); });

  it('renders on the WebGPU backend', async () => {
    const gpu = await page.evaluate(async () => !!(await (navigator as any).gpu?.requestAdapter()));
    expect(gpu).toBe(true);
    const s = await until('a first frame', snap, (x) => x.frames > 0);
    expect(s.backend).toBe('webgpu');
    const png = decodePng(await page.screenshot());
    // The desktop color of the scene theme is on screen (not a blank canvas).
    const px = (x: number, y: number) => Array.from(png.rgba.subarray((y * png.w + x) * 4, (y * png.w + x) * 4 + 3));
    expect(px(1270, 700)).toEqual([0x1d, 0x2b, 0x3a]);
  });

  it('a person opens the Console, types a command and sees its committed result', async () => {
    const s0 = await snap();
    const btn = s0.launcher.find((l) => l.app === 'console')!;
    await page.mouse.click(center(btn).x, center(btn).y);
    const s1 = await until('the console window', snap, (s) => s.windows.some((w) => w.app === 'console' && s.focused === w.id));
    const con = s1.windows.find((w) => w.app === 'console')!;
    await page.keyboard.type('set a 1');
    await until('the typed line in the console input', snap, (s) => s.windows.find((w) => w.id === con.id)?.text === 'set a 1');
    await page.keyboard.press('Enter');
    const s2 = await until('the command result', snap, (s) => s.consoleText.includes('a=1'));
    expect(s2.consoleText).toContain('$ set a 1');
    await until('the input line cleared', snap, (s) => s.windows.find((w) => w.id === con.id)?.text === '');
    // Typing fast and pressing Enter at once: the line is submitted whole, after its keystrokes commit.
    await page.keyboard.type('get a');
    await page.keyboard.press('Enter');
    const s3 = await until('the second result', snap, (s) => s.consoleText.includes('$ get a'));
    await until('its output', snap, (s) => /\$ get a\n1\n/.test(s.consoleText));
    expect(s3.notice).toBe('');
  });

  it('drags a window by its title bar and it moves; closes a window', async () => {
    const s = await snap();
    const con = s.windows.find((w) => w.app === 'console')!;
    const t = con.hits.title!;
    const from = { x: t.x + 80, y: t.y + t.h / 2 };
    await page.mouse.move(from.x, from.y);
    await page.mouse.down();
    for (let i = 1; i <= 8; i++) await page.mouse.move(from.x + i * 15, from.y + i * 10);
    await page.mouse.up();
    const moved = await until('the window to move', snap, (x) => { const w = x.windows.find((w) => w.id === con.id)!; return w.x === con.x + 120 && w.y === con.y + 80; });
    const w2 = moved.windows.find((w) => w.id === con.id)!;
    const close = w2.hits.close!;
    await page.mouse.click(center(close).x, center(close).y);
    await until('the console to close', snap, (x) => !x.windows.some((w) => w.id === con.id));
  });

  it('reports the scene hash that a replay of the device log in Node computes', async () => {
    const log = host.services.logOf(host.device);
    const s = await until('the page to hold the whole log', snap, (x) => x.seq === log.length - 1);
    const r = replay([sessionReducer], log);
    expect(s.sceneHash).toBe(toHex(sceneHash(r.states[0] as SessionState)));
    expect(s.brokenAt).toBe(-1);
    expect(s.proposals.failed).toBe(0);
    expect(errors).toEqual([]);
  });
});
