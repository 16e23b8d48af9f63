// The graphical session in the page: the device's log in, frames out, a person's input proposed
// as actions. Nothing here changes the scene directly — a drag, a keystroke, a click becomes a
// proposal; the scene moves when the committed entry comes back (DESIGN.md, "data flow").
import { initAxiom, Domain, decodeEntry, type ValueMap } from '../axiom/index.ts';
import { InputMachine, hitTest, frameAt, THEME, type Frame, type Group, type RawEvent, type SessionState } from '../scene/index.ts';
import { fromBase64, toHex, type DeviceInfo, type HostCapabilities } from './bridge.ts';
import { BridgeRequestError, type AnyBridge } from './bridge-client.ts';
import { DeviceModel, modelAt } from './session/device-model.ts';
import { FrameRenderer, type FrameStats } from './gpu/frame-renderer.ts';
import { APP_BOUNDS, APP_TITLES, APPS, appContent, contentKey, decorateGroup, isApp, timelineLayout, contentRect, TL, type AppName, type Button, type UiState } from './ui/apps.ts';
import { pushText } from './ui/text.ts';
import type { Layer } from '../scene/index.ts';

const LAUNCHER = { x: 8, y: 8, w: 104, h: 28, gap: 8 };

export class SessionApp {
  private models = new Map<string, DeviceModel>();
  private ui!: UiState;
  private input = new InputMachine();
  private decorated = new Map<number, { src: Group; key: string; out: Group; buttons: Button[] }>();
  private buttons = new Map<number, Button[]>();
  private frame: Frame | null = null;
  private pastFrame: { seq: number; frame: Frame; state: SessionState; model: ReturnType<typeof modelAt> } | null = null;
  private scheduled = false;
  lastStats: FrameStats | null = null;
  frames = 0;
  private proposing: Promise<unknown> = Promise.resolve();
  proposals = { sent: 0, committed: 0, rejected: 0, failed: 0 };

  private constructor(private bridge: AnyBridge, readonly renderer: FrameRenderer) {}

  static async start(bridge: AnyBridge, canvas: HTMLCanvasElement): Promise<SessionApp> {
    await initAxiom();
    const hello = await bridge.request('hello', {});
    const renderer = await FrameRenderer.create({ canvas, onRecovered: () => app.schedule() });
    const app = new SessionApp(bridge, renderer);
    const first = hello.devices[0];
    if (!first) throw new Error('the host has no device connected');
    app.live = app.modelFor(first);
    app.ui = {
      model: app.live, devices: hello.devices, capabilities: hello.capabilities, activeDevice: first.id,
      backend: renderer.backend, recoveries: 0, selected: -1, viewAt: -1, notice: '', devicesVersion: 0, connecting: '',
    };
    bridge.on('device.entries', (d) => { const m = app.models.get(d.device); if (m && m.push(d.entries.map((b) => fromBase64(b)!))) app.changed(d.device); });
    bridge.on('device.console', (d) => { app.models.get(d.device)?.addConsole(d.text); app.changed(d.device); });
    bridge.on('device.status', (d) => app.status(d));
    for (const d of hello.devices) await app.load(d);
    app.attachInput(canvas);
    app.schedule();
    // First start of a session with no windows: show what the device is.
    if (app.model.view.state.windows.size === 0 && app.model.view.state.applied === 0) void app.openApp('system');
    return app;
  }

  get model(): DeviceModel { return this.live; }
  private live!: DeviceModel;

  private modelFor(d: DeviceInfo): DeviceModel {
    let m = this.models.get(d.id);
    if (!m) { m = new DeviceModel(d); this.models.set(d.id, m); }
    return m;
  }

  /** Fetches a device's whole log and its console history. */
  private async load(d: DeviceInfo): Promise<void> {
    const m = this.modelFor(d);
    for (;;) {
      const r = await this.bridge.request('device.log', { device: d.id, from: m.rows.length, count: 4096 });
      if (!r.entries.length) break;
      m.push(r.entries.map((b) => fromBase64(b)!));
    }
    const c = await this.bridge.request('device.console', { device: d.id });
    m.addConsole(c.text);
  }

  private status(d: DeviceInfo): void {
    const i = this.ui.devices.findIndex((x) => x.id === d.id);
    if (i >= 0) this.ui.devices[i] = d; else this.ui.devices.push(d);
    this.modelFor(d).info = d;
    this.ui.devicesVersion++;
    this.schedule();
  }

  private changed(device: string): void { if (device === this.ui.activeDevice) this.wake(); this.schedule(); }

  // ---- proposals ----

  /** Proposes an action to the active device, after every earlier one, and records the outcome. */
  propose(domain: number, action: string, args: ValueMap): Promise<void> {
    const device = this.ui.activeDevice;
    const p = this.proposing.then(() => this.send(device, domain, action, args));
    this.proposing = p;
    return p;
  }

  private async send(device: string, domain: number, action: string, args: ValueMap): Promise<void> {
    this.proposals.sent++;
    try {
      const r = await this.bridge.request('device.propose', { device, domain, action, args: args as never });
      this.highest = Math.max(this.highest, r.seq, r.receiptSeq ?? -1);
      if (r.status === 'rejected') { this.proposals.rejected++; this.notice(`${action} rejected: ${r.reason ?? ''}`); }
      else this.proposals.committed++;
    } catch (e) {
      this.proposals.failed++;
      this.notice(`${action} failed: ${e instanceof BridgeRequestError ? `${e.kind}: ${e.message}` : String(e)}`);
    }
  }

  /** The highest seq any of our proposals produced. */
  private highest = -1;
  private waiters: (() => void)[] = [];

  /** Resolves once the model holds every entry our proposals produced so far. */
  private caughtUp(): Promise<void> {
    if (this.model.seq >= this.highest) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private wake(): void {
    if (this.model.seq < this.highest) return;
    const w = this.waiters; this.waiters = [];
    for (const f of w) f();
  }

  private notice(s: string): void { this.ui.notice = s; this.schedule(); }

  private windowOf(app: AppName) {
    for (const w of this.model.view.state.windows.values()) if (w.app === app) return w;
    return undefined;
  }

  async openApp(app: AppName): Promise<void> {
    const w = this.windowOf(app);
    if (w) return this.propose(Domain.Session, 'window.focus', { id: w.id });
    return this.propose(Domain.Session, 'window.open', { app, title: APP_TITLES[app], bounds: { ...APP_BOUNDS[app] } });
  }

  // ---- frames ----

  schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    requestAnimationFrame((t) => { this.scheduled = false; this.paint(t); });
  }

  /** The frame on screen: the live session (or the screen at a past entry), with the session's own windows filled in. */
  compose(): Frame {
    const past = this.ui.viewAt >= 0 ? this.frameAtSeq(this.ui.viewAt) : null;
    const s = past ? past.state : this.model.view.state;
    const base = past ? past.frame : this.model.view.frame;
    // At a past entry the windows show what the log says they showed then.
    const ui = past ? { ...this.ui, model: past.model } : this.ui;
    const groups: Group[] = [];
    const seen = new Set<number>();
    for (const g of base.groups) {
      const w = g.window ? s.windows.get(g.window) : undefined;
      if (w && isApp(w.app)) {
        const focused = s.focused === w.id;
        const key = `${past ? `past${this.ui.viewAt}|` : ''}${contentKey(w.app, w, ui, focused)}`;
        const prev = this.decorated.get(w.id);
        let out: Group, buttons: Button[];
        if (prev && prev.src === g && prev.key === key) ({ out, buttons } = prev);
        else {
          const surf = g.layers.find((l) => l.kind === 'surface');
          const c = surf && surf.kind === 'surface' ? appContent(w.app, w, surf, ui, focused) : { layers: [], buttons: [] };
          out = decorateGroup(g, c); buttons = c.buttons;
          this.decorated.set(w.id, { src: g, key, out, buttons });
        }
        this.buttons.set(w.id, buttons);
        seen.add(w.id);
        groups.push(out);
      } else groups.push(g);
      if (g.key === 'desktop') groups.push(this.launcher());
    }
    for (const id of [...this.decorated.keys()]) if (!seen.has(id)) { this.decorated.delete(id); this.buttons.delete(id); }
    if (this.ui.viewAt >= 0) groups.push(this.banner(base));
    return { ...base, groups };
  }

  private frameAtSeq(seq: number): { frame: Frame; state: SessionState; model: ReturnType<typeof modelAt> } {
    if (this.pastFrame?.seq === seq) return this.pastFrame;
    const entries = this.model.rows.slice(0, seq + 1).map((r) => r.entry);
    const { frame, state } = frameAt(entries, seq);
    this.pastFrame = { seq, frame, state, model: modelAt(this.model, seq) };
    return this.pastFrame;
  }

  private launcherGroup: Group | null = null;
  private launcher(): Group {
    if (this.launcherGroup) return this.launcherGroup;
    const layers: Layer[] = [];
    APPS.forEach((a, i) => {
      const x = LAUNCHER.x + i * (LAUNCHER.w + LAUNCHER.gap);
      layers.push({ kind: 'rect', key: `launch.${a}`, x, y: LAUNCHER.y, w: LAUNCHER.w, h: LAUNCHER.h, color: 0x26303cff });
      pushText(layers, `launch.t.${a}`, APP_TITLES[a], x + 10, LAUNCHER.y + 7, 13, 0xdde3eaff);
    });
    const w = APPS.length * (LAUNCHER.w + LAUNCHER.gap);
    this.launcherGroup = { key: 'launcher', window: 0, bounds: { x: LAUNCHER.x, y: LAUNCHER.y, w, h: LAUNCHER.h }, layers, hits: [] };
    return this.launcherGroup;
  }

  private banner(base: Frame): Group {
    const layers: Layer[] = [{ kind: 'rect', key: 'banner', x: 0, y: 0, w: base.width, h: 26, color: 0xb26a00e6 }];
    pushText(layers, 'banner.t', `Screen at entry #${this.ui.viewAt} of ${this.model.rows.length} — ↑/↓ scrub, Esc: back to live`, 10, 6, 13, 0xffffffff);
    return { key: 'banner', window: 0, bounds: { x: 0, y: 0, w: base.width, h: 26 }, layers, hits: [] };
  }

  private paint(now: number): void {
    if (this.ui.backend !== this.renderer.backend) document.title = `Orbital — ${this.renderer.backend}`;
    this.ui.backend = this.renderer.backend;
    this.ui.recoveries = this.renderer.recoveries;
    const frame = this.compose();
    this.frame = frame;
    const c = this.renderer.canvas;
    if (c.style.width !== `${frame.width}px`) { c.style.width = `${frame.width}px`; c.style.height = `${frame.height}px`; }
    const st = this.renderer.draw(frame, now);
    if (st.rendered) { this.lastStats = st; this.frames++; }
    if (this.renderer.animating || this.renderer.isRecovering) this.schedule();
  }

  // ---- input ----

  private attachInput(canvas: HTMLCanvasElement): void {
    const target = document;
    const pos = (e: MouseEvent) => { const r = this.renderer.canvas.getBoundingClientRect(); return { x: e.clientX - r.left, y: e.clientY - r.top }; };
    target.addEventListener('pointerdown', (e) => { const p = pos(e); this.pointer({ type: 'pointerdown', x: p.x, y: p.y, button: e.button }); });
    target.addEventListener('pointermove', (e) => { const p = pos(e); this.pointer({ type: 'pointermove', x: p.x, y: p.y }); });
    target.addEventListener('pointerup', (e) => { const p = pos(e); this.pointer({ type: 'pointerup', x: p.x, y: p.y, button: e.button }); });
    target.addEventListener('wheel', (e) => { const p = pos(e as WheelEvent); this.pointer({ type: 'wheel', x: p.x, y: p.y, dy: (e as WheelEvent).deltaY }); }, { passive: true });
    window.addEventListener('keydown', (e) => { if (this.key(e)) e.preventDefault(); });
    // Paste goes to the focused window's text field, as text.input actions (≤ 4096 bytes each).
    window.addEventListener('paste', (e) => {
      const f = this.focusedApp() ?? (() => { const s = this.model.view.state; const w = s.focused ? s.windows.get(s.focused) : undefined; return w ? { id: w.id } : null; })();
      const text = e.clipboardData?.getData('text/plain') ?? '';
      if (!f || !text) return;
      e.preventDefault();
      const enc = new TextEncoder();
      let chunk = '';
      for (const ch of text.replace(/\r\n?/g, '\n')) {
        if (enc.encode(chunk + ch).length > 4096) { void this.propose(Domain.Session, 'text.input', { id: f.id, text: chunk }); chunk = ''; }
        chunk += ch;
      }
      if (chunk) void this.propose(Domain.Session, 'text.input', { id: f.id, text: chunk });
    });
    // The session's screen follows the browser window (a session action, like everything else).
    let timer: ReturnType<typeof setTimeout> | undefined;
    const fit = () => {
      const w = Math.max(320, Math.floor(window.innerWidth)), h = Math.max(320, Math.floor(window.innerHeight));
      const s = this.model.view.state;
      if (w !== s.screenW || h !== s.screenH) void this.propose(Domain.Session, 'screen.resize', { w, h });
    };
    window.addEventListener('resize', () => { clearTimeout(timer); timer = setTimeout(fit, 300); });
    fit();
    canvas.tabIndex = 0;
    canvas.focus();
  }

  private pointer(ev: RawEvent): void {
    if (!this.frame) return;
    const s = this.model.view.state;
    if (ev.type === 'pointerdown' && this.ui.viewAt < 0) {
      const hit = hitTest(this.frame, ev.x, ev.y);
      if (!hit || hit.window === 0) {
        const i = Math.floor((ev.x - LAUNCHER.x) / (LAUNCHER.w + LAUNCHER.gap));
        const inBtn = i >= 0 && i < APPS.length && ev.x - LAUNCHER.x - i * (LAUNCHER.w + LAUNCHER.gap) < LAUNCHER.w && ev.y >= LAUNCHER.y && ev.y < LAUNCHER.y + LAUNCHER.h;
        if (inBtn && (!hit || hit.part === 'desktop')) { void this.openApp(APPS[i]!); return; }
      } else if (hit.part === 'content') {
        const b = (this.buttons.get(hit.window) ?? []).find((b) => ev.x >= b.x && ev.x < b.x + b.w && ev.y >= b.y && ev.y < b.y + b.h);
        if (b) void this.button(b.id);
      }
    }
    if (this.ui.viewAt >= 0) return; // a past screen is not interactive
    for (const p of this.input.handle(ev, this.frame, s)) void this.propose(Domain.Session, p.action, p.args);
  }

  private async button(id: string): Promise<void> {
    const [kind, arg] = [id.slice(0, id.indexOf(':')), id.slice(id.indexOf(':') + 1)];
    if (kind === 'row') { this.ui.selected = Number(arg); this.schedule(); return; }
    if (kind === 'device') {
      const m = this.models.get(arg);
      if (m) { this.live = m; this.ui.model = m; this.ui.activeDevice = arg; this.ui.selected = -1; this.ui.viewAt = -1; this.input = new InputMachine(); this.schedule(); }
      return;
    }
    if (kind === 'connect') {
      this.ui.connecting = arg; this.schedule();
      try {
        const serial = arg.startsWith('serial:') ? arg.slice(7) : null;
        const d = await this.bridge.request('device.connect', serial ? { target: 'serial', path: serial } : { target: arg as 'hosted' | 'qemu' });
        this.status(d);
        await this.load(d);
        this.ui.notice = '';
      } catch (e) {
        this.notice(`connect ${arg}: ${e instanceof Error ? e.message : e}`);
      } finally { this.ui.connecting = ''; this.schedule(); }
    }
  }

  private focusedApp(): { app: AppName; id: number; text: string } | null {
    const s = this.model.view.state;
    const w = s.focused ? s.windows.get(s.focused) : undefined;
    return w && isApp(w.app) ? { app: w.app, id: w.id, text: w.text } : null;
  }

  /** Returns whether the key was handled (the browser's default is then prevented). */
  private key(e: KeyboardEvent): boolean {
    if (!this.frame) return false;
    const f = this.focusedApp();
    const n = this.model.rows.length;
    // The timeline debugger: scrub with the arrow keys, Enter shows the screen at the entry.
    if (this.ui.viewAt >= 0 || f?.app === 'timeline') {
      const sel = this.ui.selected >= 0 ? this.ui.selected : n - 1;
      const move = (to: number) => { this.ui.selected = Math.max(0, Math.min(n - 1, to)); if (this.ui.viewAt >= 0) this.ui.viewAt = this.ui.selected; this.schedule(); return true; };
      if (e.key === 'ArrowUp') return move(sel + 1);
      if (e.key === 'ArrowDown') return move(sel - 1);
      if (e.key === 'Home') return move(n - 1);
      if (e.key === 'End') return move(0);
      if (e.key === 'Escape') { this.ui.viewAt = -1; this.ui.selected = -1; this.schedule(); return true; }
      if (e.key === 'Enter') { this.ui.viewAt = this.ui.viewAt >= 0 ? -1 : sel; this.schedule(); return true; }
      if (this.ui.viewAt >= 0) return true;
    }
    // The console: Enter submits the input line as the os domain's `sh` action, then clears it.
    if (f?.app === 'console' && e.key === 'Enter' && !e.ctrlKey && !e.altKey && !e.metaKey) {
      // Keystrokes typed before Enter may still be on their way: submit the line once every
      // earlier proposal is committed and its entry is back in the model.
      const device = this.ui.activeDevice;
      const task = this.proposing.then(() => this.caughtUp()).then(async () => {
        const w = this.model.view.state.windows.get(f.id);
        if (!w) return;
        const line = w.text.split('\n').pop() ?? '';
        await this.send(device, Domain.Os, 'sh', { line });
        const count = [...w.text].length;
        if (count) await this.send(device, Domain.Session, 'text.delete', { id: f.id, count: Math.min(count, 4096) });
      });
      this.proposing = task;
      return true;
    }
    if (e.altKey && !e.ctrlKey && /^[1-4]$/.test(e.key)) { void this.openApp(APPS[Number(e.key) - 1]!); return true; }
    const props = this.input.handle({ type: 'key', key: e.key, ...(e.key.length === 1 ? { text: e.key } : {}), ctrl: e.ctrlKey, alt: e.altKey, shift: e.shiftKey, meta: e.metaKey }, this.frame, this.model.view.state);
    for (const p of props) void this.propose(Domain.Session, p.action, p.args);
    return props.length > 0 || e.key === 'Tab' || e.key === 'Backspace';
  }

  // ---- what tests and the status line read ----

  snapshot() {
    const s = this.model.view.state;
    const hitsOf = (id: number) => {
      const g = this.frame?.groups.find((x) => x.window === id && x.key !== 'panel');
      const part = (p: string) => { const h = g?.hits.find((x) => x.part === p && x.window === id); return h ? { x: h.x, y: h.y, w: h.w, h: h.h } : null; };
      return { title: part('title'), close: part('close'), resizeE: part('resize-e'), content: part('content') };
    };
    const windows = [...s.windows.values()].map((w) => ({ id: w.id, app: w.app, title: w.title, x: w.x, y: w.y, w: w.w, h: w.h, mode: w.mode, text: w.text, hits: hitsOf(w.id) }));
    return {
      backend: this.renderer.backend, seq: this.model.seq, sceneHash: toHex(this.model.view.hash()), hashes: this.model.hashes(),
      windows, focused: s.focused, consoleText: this.model.consoleLines.join('\n'), brokenAt: this.model.brokenAt,
      frames: this.frames, stats: this.lastStats, proposals: { ...this.proposals }, notice: this.ui.notice, recoveries: this.renderer.recoveries,
      selected: this.ui.selected, viewAt: this.ui.viewAt, titleH: THEME.titleH,
      /** Windows in the frame on screen (differs from `windows` while showing a past entry). */
      shown: (this.frame?.groups ?? []).filter((g) => g.window !== 0).map((g) => g.window),
      /** The console text the Console window shows now (at a past entry: as the log tells it). */
      shownConsole: (this.ui.viewAt >= 0 && this.pastFrame ? this.pastFrame.model : this.model).consoleLines.join('\n'),
      launcher: APPS.map((a, i) => ({ app: a, x: LAUNCHER.x + i * (LAUNCHER.w + LAUNCHER.gap), y: LAUNCHER.y, w: LAUNCHER.w, h: LAUNCHER.h })),
    };
  }

  /** Timeline row geometry for tests (the y of the row showing `seq`, when visible). */
  timelineRowY(seq: number): number | null {
    const w = this.windowOf('timeline');
    const g = this.frame?.groups.find((x) => x.window === w?.id);
    const s = g?.layers.find((l) => l.kind === 'surface');
    if (!w || !s || s.kind !== 'surface') return null;
    const L = timelineLayout(contentRect(s));
    const top = Math.floor(w.scroll / TL.row);
    const i = this.model.rows.length - 1 - seq - top;
    return i >= 0 && i < L.rows ? L.listTop + i * TL.row + TL.row / 2 : null;
  }

  loseDevice(): void { this.renderer.loseDevice(); }
  decode = decodeEntry;
}
