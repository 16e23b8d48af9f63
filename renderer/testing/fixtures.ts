// A fixed frame for golden images and renderer tests: chrome, translucent shadows, borders,
// text at fractional positions, nested clips, overlapping windows. Pure: built the same in Node
// (for the reference rasterizer) and in the page (for the GPU renderer).
import type { Frame, Group, Layer, TextLayer } from '../../scene/compositor/layers.ts';
import { SessionScene, applyCommit, sessionReducer } from '../../scene/index.ts';

function text(key: string, s: string, x: number, y: number, size: number, color: number): TextLayer {
  const ids: number[] = [], gx: number[] = [];
  const adv = size * 0.6;
  for (let i = 0; i < s.length; i++) if (s[i] !== ' ') { ids.push(s.codePointAt(i)!); gx.push(i * adv); }
  const ascent = size * 0.8;
  return {
    kind: 'text', key, x, y, w: s.length * adv, h: size, color, font: 'mono', size, ascent,
    glyphs: Uint32Array.from(ids), gx: Float32Array.from(gx), gy: new Float32Array(ids.length), gw: new Float32Array(ids.length).fill(adv),
    bx: 0, by: -ascent,
  };
}

function windowGroup(id: number, x: number, y: number, w: number, h: number, title: string, lines: string[], focused: boolean): Group {
  const tb = 24;
  const content: Layer[] = lines.map((l, i) => text(`w${id}.l${i}`, l, x + 8, y + tb + 18 + i * 16, 12, 0xd8dee9ff));
  content.push({ kind: 'rect', key: `w${id}.bar`, x: x + 8, y: y + h - 20, w: w - 16, h: 8, color: 0x5e81ac80 });
  content.push({ kind: 'clip', key: `w${id}.clip`, x: x + 8, y: y + h - 44, w: 60, h: 14, children: [text(`w${id}.clipped`, 'clipped text here', x + 8, y + h - 33, 12, 0xebcb8bff)] });
  const layers: Layer[] = [
    { kind: 'rect', key: `w${id}.shadow`, x: x - 6, y: y - 2, w: w + 12, h: h + 12, color: 0x00000050 },
    { kind: 'rect', key: `w${id}.title`, x, y, w, h: tb, color: focused ? 0x3b4252ff : 0x2e3440ff },
    text(`w${id}.tt`, title, x + 10.5, y + 17, 13, 0xeceff4ff),
    { kind: 'rect', key: `w${id}.closebtn`, x: x + w - 22, y: y + 5, w: 14, h: 14, color: 0xbf616aff },
    { kind: 'surface', key: `w${id}.surface`, window: id, x, y: y + tb, w, h: h - tb, color: 0x242933ff, children: content },
    { kind: 'border', key: `w${id}.ring`, x, y, w, h, width: focused ? 2 : 1, color: focused ? 0x88c0d0ff : 0x4c566aff },
  ];
  return { key: `window-${id}`, window: id, bounds: { x: x - 6, y: y - 2, w: w + 12, h: h + 12 }, layers, hits: [] };
}

export function goldenFrame(): Frame {
  const panel: Group = {
    key: 'panel', window: 0, bounds: { x: 0, y: 0, w: 640, h: 28 },
    layers: [{ kind: 'rect', key: 'panel.bg', x: 0, y: 0, w: 640, h: 28, color: 0x1d2128ff }, text('panel.t', 'Orbital  Console  Timeline', 8, 19, 13, 0xe5e9f0ff)],
    hits: [],
  };
  return {
    width: 640, height: 400, clear: 0x434c5eff,
    groups: [
      panel,
      windowGroup(1, 40, 60, 300, 220, 'Console', ['$ set a 1', 'a=1', '$ get a', '1'], false),
      windowGroup(2, 230.5, 140, 320, 200, 'Timeline', ['#12 COMMIT os sh', '#13 RECEIPT ok', '#14 COMMIT session'], true),
    ],
    images: new Map(),
  };
}

/** The golden frame with one more window opened on top (for open/close animation checks). */
export function goldenFrameOpened(): Frame {
  const f = goldenFrame();
  return { ...f, groups: [...f.groups, windowGroup(3, 120, 200, 240, 150, 'Opened', ['new window'], true)] };
}

/**
 * A fixed session, composited by the scene itself: three windows (one maximized then restored,
 * one focused with typed text, one scrolled), icons, panel buttons — everything the compositor emits.
 */
export function goldenSession(): Frame {
  const s = sessionReducer.init();
  let seq = 0;
  const c = (action: string, args: Record<string, unknown>) => { applyCommit(s, seq, { id: seq, action, args } as never); seq++; };
  c('screen.resize', { w: 800, h: 520 });
  c('window.open', { app: 'console', title: 'Console', bounds: { x: 30, y: 30, w: 360, h: 240 } });
  c('text.input', { id: 1, text: 'set a 1\na=1\nget a\n1' });
  c('window.open', { app: 'timeline', title: 'Timeline — 12 entries', bounds: { x: 300, y: 120, w: 420, h: 300 } });
  c('text.input', { id: 2, text: 'The quick brown fox jumps over the lazy dog. '.repeat(6) });
  c('window.open', { app: 'system', title: 'System', bounds: { x: 80, y: 300, w: 260, h: 150 } });
  c('window.maximize', { id: 3 });
  c('window.restore', { id: 3 });
  c('window.focus', { id: 2 });
  c('window.scroll', { id: 2, dy: 18 });
  return new SessionScene().update(s);
}
