import { describe, expect, it } from 'vitest';
import { SceneError, SceneTree } from './tree.ts';

describe('SceneTree API', () => {
  it('allocates stable ids in creation order and never reuses them', () => {
    const t = new SceneTree();
    expect(t.root).toBe(0);
    const a = t.create('container'), b = t.createText('hi'), c = t.create('surface');
    expect([a, b, c]).toEqual([1, 2, 3]);
    t.destroy(b);
    expect(t.create('container')).toBe(4);
    expect(t.has(b)).toBe(false);
  });

  it('marks dirty up to the root and clears after layout', () => {
    const t = new SceneTree();
    const a = t.create('container', { width: 100, height: 50 }), b = t.createText('hello');
    t.appendChild(t.root, a); t.appendChild(a, b);
    t.layout(800, 600);
    for (const id of [t.root, a, b]) expect(t.isDirty(id)).toBe(false);
    t.setText(b, 'hello world');
    for (const id of [t.root, a, b]) expect(t.isDirty(id)).toBe(true);
  });

  it('paint-only style does not dirty layout but is reported', () => {
    const t = new SceneTree();
    const a = t.create('container', { width: 10, height: 10 });
    t.appendChild(t.root, a);
    t.layout(100, 100);
    t.takeChanges();
    t.setStyle(a, { background: 0xff0000ff });
    expect(t.isDirty(a)).toBe(false);
    expect(t.takeChanges().paint).toEqual([a]);
  });

  it('rejects bad input with a typed error and leaves the node unchanged', () => {
    const t = new SceneTree();
    const a = t.create('container', { width: 10 });
    const bad: unknown[] = [{ width: NaN }, { height: Infinity }, { width: '12px' }, { flexGrow: -1 }, { flexDirection: 'diagonal' }, { bogus: 1 }, { padding: 'auto' }];
    for (const s of bad) {
      try { t.setStyle(a, s as never); expect.unreachable(); } catch (e) { expect(e).toBeInstanceOf(SceneError); expect((e as SceneError).kind).toBe('bad-input'); }
    }
    expect(t.style(a).width).toBe(10);
    expect(() => t.appendChild(a, 999)).toThrow(SceneError);
    expect(() => t.appendChild(a, t.root)).toThrow(SceneError);
    const b = t.create('container'); t.appendChild(a, b);
    expect(() => t.appendChild(b, a)).toThrow(/cycle/);
    expect(() => t.layout(NaN, 10)).toThrow(SceneError);
    const txt = t.createText('x');
    expect(() => t.appendChild(txt, t.create('container'))).toThrow(SceneError);
  });

  it('reports parent-relative boxes and absolute boxes', () => {
    const t = new SceneTree();
    const a = t.create('container', { width: 200, height: 100, padding: 10, flexDirection: 'row' });
    const b = t.create('container', { width: 50, height: 20, marginLeft: 5 });
    t.appendChild(t.root, a); t.appendChild(a, b);
    t.setStyle(t.root, { padding: 7 });
    t.layout(800, 600);
    expect(t.box(b)).toEqual({ x: 15, y: 10, width: 50, height: 20 });
    expect(t.absoluteBox(b)).toEqual({ x: 22, y: 17, width: 50, height: 20 });
  });

  it('lays out text into glyph runs', () => {
    const t = new SceneTree();
    const txt = t.createText('ab cd', { fontSize: 10 });
    t.appendChild(t.root, txt);
    t.layout(800, 600);
    const tl = t.textLayout(txt)!;
    expect(Array.from(tl.glyphs)).toEqual([...'ab cd'].map((c) => c.codePointAt(0)));
    expect(Array.from(tl.x)).toEqual([0, 6, 12, 18, 24]);
  });
});
