import { beforeAll, describe, expect, it } from 'vitest';
import { Sequencer, decodeEntry, decodeValue, initAxiom, osReducer, systemReducer, toHex, type Entry } from '../../axiom/index.ts';
import { firstDifference, renderDamage, renderFull } from '../raster/raster.ts';
import { randomActions } from './random.ts';
import { sceneHash, sessionReducer } from './reducer.ts';
import { SessionView, frameAt } from './view.ts';

beforeAll(() => initAxiom());

describe('SessionView', () => {
  it('follows a device log entry by entry: same hash as the device, damage keeps the screen right, frameAt agrees', () => {
    // The device does not run the session reducer (docs/os-domain.md); the view does.
    const dev = new Sequencer({ deviceId: new Uint8Array(16), bootId: new Uint8Array(16), os: 't', reducers: [systemReducer, osReducer] });
    const encoded = dev.boot().map((a) => a.encoded);
    const acts = [{ action: 'screen.resize', args: { w: 400, h: 330 } }, ...randomActions(99, 60, 0.1)];
    acts.forEach((a, i) => encoded.push(...dev.propose({ actor: 1, id: i + 1, domain: 2, action: a.action, args: a.args, time: 0 }).entries.map((x) => x.encoded)));
    const view = new SessionView();
    const shadow = sessionReducer.init();
    let screen = renderFull(view.frame);
    let rejections = 0;
    const entries: Entry[] = [];
    for (const b of encoded) {
      const r = view.applyEncoded(b);
      if (!r.ok) throw new Error(r.error.message);
      if (r.value.rejection) rejections++;
      if (screen.w !== r.value.frame.width || screen.h !== r.value.frame.height) screen = renderFull(r.value.frame);
      else renderDamage(r.value.frame, screen, r.value.damage);
      expect(firstDifference(screen, renderFull(r.value.frame))).toBe(-1);
      const e = decodeEntry(b); if (!e.ok) throw new Error('x');
      entries.push(e.value);
      const v = decodeValue(e.value.payload);
      sessionReducer.apply(shadow, e.value, v.ok ? v.value : undefined);
      expect(toHex(view.hash())).toBe(toHex(sceneHash(shadow)));
    }
    expect(rejections).toBeGreaterThan(0);
    const mid = entries[Math.floor(entries.length / 2)]!.seq;
    const at = frameAt(entries, mid);
    const view2 = new SessionView();
    for (const e of entries) { if (e.seq > mid) break; view2.apply(e); }
    expect(firstDifference(renderFull(at.frame), renderFull(view2.frame))).toBe(-1);
    expect(toHex(sceneHash(at.state))).toBe(toHex(view2.hash()));
  });

  it('an entry that changes nothing visible gives the same frame and no damage', () => {
    const v = new SessionView();
    const f0 = v.frame;
    const e = (seq: number, action: string, args: Record<string, unknown>) => v.apply({ version: 1, kind: 2, domain: 2, seq, time: seq + 1, actor: 1, prev: new Uint8Array(32), payload: new Uint8Array() }, { id: seq, action, args } as never);
    const r = e(0, 'window.focus', { id: 7 });
    expect(r.rejection?.code).toBe('no-such-window');
    expect(r.frame).toBe(f0);
    expect(r.damage).toEqual([]);
    const o = e(1, 'window.open', { app: 'a', title: 'b' });
    expect(o.frame).not.toBe(f0);
    expect(o.damage.length).toBeGreaterThan(0);
  });

  it('bad bytes are a typed error', () => {
    const v = new SessionView();
    const r = v.applyEncoded(new Uint8Array([1, 2, 3]));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.kind).toBe('bad-input');
  });
});
