// The session's own windows — Console, Timeline, System, Devices — drawn as content inside the
// scene's window surfaces. Their content is derived from the device's log and link (never stored
// in scene state); what a person does in them is proposed as actions like everything else.
import { THEME, type Frame, type Group, type Layer, type SurfaceLayer, type SessionWindow } from '../../scene/index.ts';
import { toHex, describeEntry } from '../../axiom/index.ts';
import type { ModelView } from '../session/device-model.ts';
import type { DeviceInfo, HostCapabilities } from '../bridge.ts';
import { charsIn, pushText } from './text.ts';

export const APPS = ['console', 'timeline', 'system', 'devices'] as const;
export type AppName = (typeof APPS)[number];
export const APP_TITLES: Record<AppName, string> = { console: 'Console', timeline: 'Timeline', system: 'System', devices: 'Devices' };
export const APP_BOUNDS: Record<AppName, { x: number; y: number; w: number; h: number }> = {
  console: { x: 40, y: 56, w: 560, h: 360 },
  timeline: { x: 640, y: 56, w: 600, h: 560 },
  system: { x: 40, y: 440, w: 460, h: 250 },
  devices: { x: 520, y: 440, w: 440, h: 250 },
};

export interface Button { id: string; x: number; y: number; w: number; h: number }

export interface UiState {
  model: ModelView;
  devices: DeviceInfo[];
  capabilities: HostCapabilities;
  activeDevice: string;
  backend: string;
  recoveries: number;
  /** Timeline: the selected seq, or -1 to follow the newest entry. */
  selected: number;
  /** The seq whose screen is shown instead of the live one, or -1. */
  viewAt: number;
  /** The last problem to tell the person about (a rejected proposal, a failed connect). */
  notice: string;
  devicesVersion: number;
  connecting: string;
}

export interface Content { layers: Layer[]; buttons: Button[] }

const C = {
  termBg: 0x11161cff, termText: 0xd8dee9ff, termPrompt: 0x8fbcbbff, caret: 0xd8dee9c0,
  text: 0x1a1a1aff, dim: 0x5a6270ff, ok: 0x2e7d32ff, bad: 0xc62828ff, rowSel: 0x3d7eff40, rowAlt: 0x0000000a,
  button: 0x3d5a80ff, buttonOff: 0xa0a6aeff, buttonText: 0xffffffff, header: 0xe3e6eaff,
};

export function contentRect(s: SurfaceLayer): { x: number; y: number; w: number; h: number } {
  const b = THEME.border;
  return { x: s.x + b, y: s.y + b + THEME.titleH, w: Math.max(0, s.w - 2 * b), h: Math.max(0, s.h - 2 * b - THEME.titleH) };
}

function consoleContent(w: SessionWindow, r: Content['layers'], box: { x: number; y: number; w: number; h: number }, ui: UiState, focused: boolean): Button[] {
  const size = 13, lh = 16, pad = 6;
  r.push({ kind: 'rect', key: 'console.bg', x: box.x, y: box.y, w: box.w, h: box.h, color: C.termBg });
  const cols = charsIn(box.w - 2 * pad, size);
  const rows = Math.max(1, Math.floor((box.h - 2 * pad) / lh));
  // The input line is the window's own text field (session state): typing is proposed as text.input.
  const input = w.text.split('\n').pop() ?? '';
  const lines = ui.model.consoleLines.slice();
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  const shown = lines.slice(Math.max(0, lines.length - (rows - 1)));
  shown.forEach((l, i) => pushText(r, `console.l${i}`, l, box.x + pad, box.y + pad + i * lh, size, C.termText, cols));
  const py = box.y + pad + shown.length * lh;
  const prompt = `$ ${input}`;
  const visible = prompt.length > cols ? prompt.slice(prompt.length - cols + 1) : prompt;
  pushText(r, 'console.prompt', visible, box.x + pad, py, size, C.termPrompt, cols);
  if (focused) r.push({ kind: 'rect', key: 'console.caret', x: box.x + pad + visible.length * size * 0.6, y: py + 1, w: size * 0.6, h: lh - 2, color: C.caret });
  return [];
}

export const TL = { size: 12, row: 16, header: 22 };

/** Timeline geometry: list rows and the detail pane, shared by drawing and hit testing. */
export function timelineLayout(box: { x: number; y: number; w: number; h: number }) {
  const listTop = box.y + TL.header;
  const listH = Math.max(TL.row, Math.floor((box.h - TL.header) * 0.5 / TL.row) * TL.row);
  return { listTop, listH, rows: Math.floor(listH / TL.row), detailTop: listTop + listH + 6 };
}

function timelineContent(w: SessionWindow, r: Layer[], box: { x: number; y: number; w: number; h: number }, ui: UiState): Button[] {
  const m = ui.model, n = m.rows.length, size = TL.size, pad = 6;
  const cols = charsIn(box.w - 2 * pad, size);
  const L = timelineLayout(box);
  const chain = m.brokenAt < 0 ? 'hash chain ok' : `hash chain BROKEN at #${m.brokenAt}`;
  r.push({ kind: 'rect', key: 'tl.hdr', x: box.x, y: box.y, w: box.w, h: TL.header - 2, color: C.header });
  pushText(r, 'tl.h', `${n} entries · ${chain}${ui.viewAt >= 0 ? ` · showing screen at #${ui.viewAt}` : ''}`, box.x + pad, box.y + 4, size, m.brokenAt < 0 ? C.text : C.bad, cols);
  const sel = ui.selected >= 0 ? ui.selected : n - 1;
  const top = Math.min(Math.floor(w.scroll / TL.row), Math.max(0, n - 1));
  const buttons: Button[] = [];
  for (let i = 0; i < L.rows; i++) {
    const seq = n - 1 - (top + i);
    if (seq < 0) break;
    const row = m.rows[seq]!;
    const y = L.listTop + i * TL.row;
    if (seq === sel) r.push({ kind: 'rect', key: `tl.sel`, x: box.x, y, w: box.w, h: TL.row, color: C.rowSel });
    else if (seq % 2) r.push({ kind: 'rect', key: `tl.alt${i}`, x: box.x, y, w: box.w, h: TL.row, color: C.rowAlt });
    const mark = row.linked ? ' ' : '!';
    const line = `${mark}#${String(seq).padEnd(5)} ${m.kindName(row.entry).padEnd(10)} ${m.domainName(row.entry).padEnd(7)} ${row.summary}`;
    pushText(r, `tl.r${i}`, line, box.x + pad, y + 2, size, row.linked ? C.text : C.bad, cols);
    buttons.push({ id: `row:${seq}`, x: box.x, y, w: box.w, h: TL.row });
  }
  // Detail of the selected entry: its fields, decoded payload, chain link, and the state there.
  if (sel >= 0 && sel < n) {
    const row = m.rows[sel]!;
    const v = describeEntry(row.encoded);
    const hashes = m.hashesAt(sel);
    const lines = [
      `#${v.seq} ${v.kind} domain=${v.domain} time=${v.time} actor=${v.actor} ${v.size} bytes`,
      `hash ${v.hash.slice(0, 32)}…`,
      `prev ${v.prev.slice(0, 32)}… ${row.linked ? '= hash of the entry before ✓' : '≠ hash of the entry before ✗'}`,
      ...JSON.stringify(v.payload, null, 1).split('\n').map((l) => `  ${l.trim()}`).slice(0, 8),
      `state after #${sel}: system ${hashes.system!.slice(0, 12)} os ${hashes.os!.slice(0, 12)} session ${hashes.session!.slice(0, 12)}`,
      ui.viewAt === sel ? 'screen: showing this entry (Esc: back to live)' : 'Enter: show the screen at this entry · ↑/↓: scrub',
    ];
    const maxLines = Math.floor((box.y + box.h - L.detailTop) / 15);
    lines.slice(0, maxLines).forEach((l, i) => pushText(r, `tl.d${i}`, l, box.x + pad, L.detailTop + i * 15, size, l.includes('✗') ? C.bad : C.text, cols));
  }
  return buttons;
}

function systemContent(r: Layer[], box: { x: number; y: number; w: number; h: number }, ui: UiState): Button[] {
  const m = ui.model, size = 12, pad = 8, lh = 16;
  const cols = charsIn(box.w - 2 * pad, size);
  const h = m.hashes();
  const cp = m.checkpoint();
  const lines: [string, number][] = [
    [`device   ${m.info.label} (${m.info.target})`, C.text],
    [`id       ${m.info.deviceId || '?'}`, C.text],
    [`boot     ${m.info.bootId || '?'}`, C.text],
    [`link     ${m.info.link}${m.info.error ? ` — ${m.info.error}` : ''}`, m.info.link === 'up' ? C.ok : C.bad],
    [`seq      ${m.seq}   (${m.rows.length} entries)`, C.text],
    [`system   ${h.system}`, C.text],
    [`os       ${h.os}`, C.text],
    [`session  ${h.session}`, C.text],
    [cp ? `checkpoint #${cp.seq} ${cp.matches ? 'matches this replay ✓' : 'DIFFERS from this replay ✗'}` : 'checkpoint none yet', cp && !cp.matches ? C.bad : C.text],
    [`renderer ${ui.backend}${ui.recoveries ? `, recovered ${ui.recoveries}× from a lost device` : ''}`, C.dim],
  ];
  if (ui.notice) lines.push([ui.notice, C.bad]);
  lines.forEach(([l, c], i) => pushText(r, `sys.${i}`, l, box.x + pad, box.y + pad + i * lh, size, c, cols));
  return [];
}

function devicesContent(r: Layer[], box: { x: number; y: number; w: number; h: number }, ui: UiState): Button[] {
  const size = 12, pad = 8, lh = 18;
  const cols = charsIn(box.w - 2 * pad, size);
  const buttons: Button[] = [];
  let y = box.y + pad;
  for (const d of ui.devices) {
    const active = d.id === ui.activeDevice;
    if (active) r.push({ kind: 'rect', key: `dev.sel.${d.id}`, x: box.x, y: y - 2, w: box.w, h: lh, color: C.rowSel });
    pushText(r, `dev.${d.id}`, `${active ? '▶' : ' '} ${d.label} · ${d.link} · seq ${d.seq}${d.error ? ` · ${d.error}` : ''}`, box.x + pad, y, size, d.link === 'up' ? C.text : C.bad, cols);
    buttons.push({ id: `device:${d.id}`, x: box.x, y: y - 2, w: box.w, h: lh });
    y += lh;
  }
  y += 8;
  const btn = (id: string, label: string, enabled: boolean, why?: string) => {
    const bw = Math.min(box.w - 2 * pad, 200);
    r.push({ kind: 'rect', key: `dev.b.${id}`, x: box.x + pad, y, w: bw, h: 24, color: enabled ? C.button : C.buttonOff });
    pushText(r, `dev.bt.${id}`, ui.connecting === id ? `${label}…` : label, box.x + pad + 8, y + 5, size, C.buttonText, charsIn(bw - 16, size));
    if (why) pushText(r, `dev.why.${id}`, why, box.x + pad + bw + 8, y + 5, 11, C.dim, charsIn(box.w - bw - 3 * pad, 11));
    if (enabled) buttons.push({ id: `connect:${id}`, x: box.x + pad, y, w: bw, h: 24 });
    y += 30;
  };
  btn('hosted', 'Connect hosted OS', true);
  btn('qemu', 'Boot QEMU guest', ui.capabilities.qemu, ui.capabilities.qemu ? undefined : ui.capabilities.qemuWhyNot ?? 'not available');
  const ports = ui.capabilities.serialPorts;
  if (!ports.length) btn('serial', 'Open serial port', false, 'no serial ports found');
  for (const p of ports.slice(0, 4)) btn(`serial:${p}`, `Open ${p}`, true);
  return buttons;
}

/** The app content for window `w` inside its surface `s`. */
export function appContent(app: AppName, w: SessionWindow, s: SurfaceLayer, ui: UiState, focused: boolean): Content {
  const box = contentRect(s);
  const layers: Layer[] = [];
  let buttons: Button[] = [];
  if (app === 'console') buttons = consoleContent(w, layers, box, ui, focused);
  else if (app === 'timeline') buttons = timelineContent(w, layers, box, ui);
  else if (app === 'system') buttons = systemContent(layers, box, ui);
  else buttons = devicesContent(layers, box, ui);
  return { layers, buttons };
}

/** What makes an app's content change (so unchanged windows keep their layer objects). */
export function contentKey(app: AppName, w: SessionWindow, ui: UiState, focused: boolean): string {
  const m = ui.model;
  switch (app) {
    case 'console': return `${m.consoleLines.length}|${m.consoleLines[m.consoleLines.length - 1]}|${m.consoleLines[m.consoleLines.length - 2] ?? ''}|${w.text.length}|${w.text.slice(-64)}|${focused}`;
    case 'timeline': return `${m.rows.length}|${m.brokenAt}|${ui.selected}|${ui.viewAt}|${w.scroll}`;
    case 'system': return `${m.rows.length}|${m.info.link}|${m.info.error}|${ui.backend}|${ui.recoveries}|${ui.notice}`;
    case 'devices': return `${ui.devicesVersion}|${ui.activeDevice}|${ui.connecting}|${ui.devices.map((d) => `${d.id}:${d.link}:${d.seq}`).join(',')}`;
  }
}

export const isApp = (a: string): a is AppName => (APPS as readonly string[]).includes(a);

/** Replaces the content area of window `g`'s surface with app content. */
export function decorateGroup(g: Group, content: Content): Group {
  const layers = g.layers.map((l) => {
    if (l.kind !== 'surface') return l;
    const box = contentRect(l);
    const keep = l.children.filter((c) => !(c.kind === 'clip' && c.y >= box.y - 0.5));
    const border = keep.length && keep[keep.length - 1]!.kind === 'border' ? keep.pop()! : null;
    const clip: Layer = { kind: 'clip', key: `${l.key}.app`, x: box.x, y: box.y, w: box.w, h: box.h, children: content.layers };
    return { ...l, children: [...keep, clip, ...(border ? [border] : [])] } as SurfaceLayer;
  });
  return { ...g, layers };
}

export const hexShort = (b: Uint8Array): string => toHex(b).slice(0, 16);
export type { Frame };
