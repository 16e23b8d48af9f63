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
  windows: { id: number; app: string; x: number; y: number; w: number; h: number; text: string; hits: Record<'title' | 'close' | 'resizeE' | 'content', { x: number; y: number; w: number; h: number } | null> }[];
  launcher: { app: string; x: number; y: number; w: number; h: number }[];
  proposals: { sent: number; committed: number; rejected: number; failed: number };
  selected: number; viewAt: number; shown: number[]; recoveries: number; shownConsole: string;
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
  /**
   * The frame on screen shows window `w` where the model has it. Clicks are hit-tested against
   * the frame last drawn (what a person sees), which can lag the model on a loaded machine: a test
   * that clicks at a spot read from the model must first wait for the frame to catch up.
   */
  const drawn = (w: Snap['windows'][number] | undefined) => {
    const t = w?.hits.title, c = w?.hits.close;
    if (!w || !t || !c) return false;
    const right = w.x + w.w - (c.x + c.w);
    return t.x - w.x >= 0 && t.x - w.x <= 4 && t.y - w.y >= 0 && t.y - w.y <= 4 && right > 0 && right <= 40;
  };

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
    const moved = await until('the window to move, on screen', snap, (x) => { const w = x.windows.find((w) => w.id === con.id)!; return w.x === con.x + 120 && w.y === con.y + 80 && drawn(w); });
    const w2 = moved.windows.find((w) => w.id === con.id)!;
    const close = w2.hits.close!;
    await page.mouse.click(center(close).x, center(close).y);
    await until('the console to close', snap, (x) => !x.windows.some((w) => w.id === con.id));
  });

  it('the Timeline lists entries; selecting one and pressing Enter shows the screen at that entry', async () => {
    const s0 = await snap();
    const btn = s0.launcher.find((l) => l.app === 'timeline')!;
    await page.mouse.click(center(btn).x, center(btn).y);
    const s1 = await until('the timeline window', snap, (s) => s.windows.some((w) => w.app === 'timeline' && s.focused === w.id));
    // The console was open a few entries ago and is closed now: pick an entry from when it was open.
    const log = host.services.logOf(host.device);
    const { decodeEntry, decodeValue } = await import('../axiom/index.ts');
    let openSeq = -1;
    for (let i = 0; i < log.length; i++) {
      const e = decodeEntry(log[i]!);
      if (!e.ok || e.value.domain !== 2 || e.value.kind !== 2) continue;
      const p = decodeValue(e.value.payload);
      if (p.ok && (p.value as any).action === 'window.move') openSeq = e.value.seq;
    }
    expect(openSeq).toBeGreaterThan(0);
    // Scrub with the keyboard from the newest entry down to it, then show that screen.
    await page.keyboard.press('Home');
    const top = await until('the newest entry selected', snap, (s) => s.selected === s.seq);
    const steps = top.selected - openSeq;
    for (let i = 0; i < steps; i++) await page.keyboard.press('ArrowDown');
    await until('the selection', snap, (s) => s.selected === openSeq);
    await page.keyboard.press('Enter');
    // The console is closed in the live session, but on the screen at that entry it is there.
    expect(s0.windows.find((w) => w.app === 'console')).toBeUndefined();
    const past = await until('the screen at the entry', snap, (s) => s.viewAt === openSeq && s.shown.some((id) => !s.windows.some((w) => w.id === id)));
    expect(past.shown.length).toBeGreaterThan(0);
    // Its Console shows what the log says the device printed by then.
    expect(past.shownConsole).toContain('$ set a 1\na=1');
    await page.keyboard.press('Escape');
    await until('the live screen again', snap, (s) => s.viewAt === -1 && s.shown.every((id) => s.windows.some((w) => w.id === id)));
    // A click on a row selects it.
    const y = await page.evaluate((q) => (window as any).__orbital.timelineRowY(q), s1.seq - 1);
    const tl = (await snap()).windows.find((w) => w.app === 'timeline')!;
    await page.mouse.click(tl.x + 100, y);
    await until('the clicked row selected', snap, (s) => s.selected === s1.seq - 1);
  });

  it('resizes a window from its edge, and a click focuses the window under it', async () => {
    const s = await until('the timeline on screen', snap, (x) => drawn(x.windows.find((w) => w.app === 'timeline')));
    const tl = s.windows.find((w) => w.app === 'timeline')!;
    const e = tl.hits.resizeE!;
    const from = center(e);
    await page.mouse.move(from.x, from.y);
    await page.mouse.down();
    for (let i = 1; i <= 4; i++) await page.mouse.move(from.x - i * 15, from.y);
    await page.mouse.up();
    await until('the narrower window, on screen', snap, (x) => { const w = x.windows.find((w) => w.id === tl.id)!; return w.w === tl.w - 60 && drawn(w); });
    // The System window is behind; clicking its content focuses it.
    const sys = (await snap()).windows.find((w) => w.app === 'system')!;
    await page.mouse.click(sys.x + 30, sys.y + sys.h - 20);
    await until('focus on the clicked window', snap, (x) => x.focused === sys.id);
  });

  it('the host rejects what a renderer must not send, and refuses a socket without the token', async () => {
    const r = await page.evaluate(async () => {
      const url = `ws://${location.host}/bridge`;
      const token = new URLSearchParams(location.search).get('token');
      const refused = await new Promise((res) => { const ws = new WebSocket(url); ws.onopen = () => res('opened'); ws.onerror = () => res('refused'); });
      const ws = new WebSocket(`${url}?token=${token}`);
      await new Promise((res) => { ws.onopen = res; });
      const answers: any[] = [];
      const got = new Promise<void>((res) => { ws.onmessage = (m) => { const d = JSON.parse(m.data); if (d.t === 'res') answers.push(d); if (answers.length === 3) res(); }; });
      ws.send(JSON.stringify({ t: 'req', id: 1, ch: 'shell.exec', args: { cmd: 'rm -rf /' } }));
      ws.send(JSON.stringify({ t: 'req', id: 2, ch: 'device.propose', args: { device: 'dev1', domain: 1, action: 'sh' } }));
      ws.send(JSON.stringify({ t: 'req', id: 3, ch: 'device.propose', args: { device: 'dev1', domain: 1, action: 'sh', args: { line: 'x'.repeat(100_000) } } }));
      await got;
      ws.close();
      return { refused, answers };
    });
    expect(r.refused).toBe('refused');
    expect(r.answers.map((a: any) => a.ok)).toEqual([false, false, false]);
    expect(r.answers.map((a: any) => a.error.kind)).toEqual(['protocol', 'bad-input', 'bad-input']);
  });

  it('recovers from a lost GPU device without losing the session', async () => {
    const before = await snap();
    await page.evaluate(() => (window as any).__orbital.loseDevice());
    const after = await until('the renderer to be recreated', snap, (s) => s.recoveries === 1 && s.frames > before.frames);
    expect(after.sceneHash).toBe(before.sceneHash);
    expect(after.backend).toBe('webgpu');
    // Still interactive: a command goes through after the recovery.
    const btn = after.launcher.find((l) => l.app === 'console')!;
    await page.mouse.click(center(btn).x, center(btn).y);
    await until('a console window again', snap, (s) => s.windows.some((w) => w.app === 'console' && s.focused === w.id));
    await page.keyboard.type('echo back');
    await page.keyboard.press('Enter');
    await until('the echo', snap, (s) => s.consoleText.includes('\nback\n'));
  });

  it('reports the scene hash that a replay of the device log in Node computes', async () => {
    // Entries may still be arriving from the previous step: wait until the page and the host agree.
    let log = host.services.logOf(host.device);
    const s = await until('the page to hold the whole log', async () => { log = host.services.logOf(host.device); return snap(); }, (x) => x.seq === log.length - 1);
    const r = replay([sessionReducer], log);
    expect(s.sceneHash).toBe(toHex(sceneHash(r.states[0] as SessionState)));
    expect(s.brokenAt).toBe(-1);
    expect(s.proposals.failed).toBe(0);
    expect(errors).toEqual([]);
  });
});
