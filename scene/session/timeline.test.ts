import { beforeAll, describe, expect, it } from 'vitest';
import { Sequencer, initAxiom, osReducer, systemReducer, toHex, type Entry } from '../../axiom/index.ts';
import { firstDifference, renderDamage, renderFull } from '../raster/raster.ts';
import { mulberry32, randomActions } from './random.ts';
import { SessionTimeline } from './timeline.ts';
import { SessionView } from './view.ts';

beforeAll(() => initAxiom());

describe('SessionTimeline', () => {
  it('seeking anywhere, in any order, gives the same hash and pixels as replaying to that point, and damage stays correct', () => {
    const dev = new Sequencer({ deviceId: new Uint8Array(16), bootId: new Uint8Array(16), os: 't', reducers: [systemReducer, osReducer] });
    const entries: Entry[] = dev.boot().map((a) => a.entry);
    const acts = [{ action: 'screen.resize', args: { w: 360, h: 320 } }, ...randomActions(7, 80, 0.1)];
    acts.forEach((a, i) => entries.push(...dev.propose({ actor: 1, id: i + 1, domain: 2, action: a.action, args: a.args, time: 0 }).entries.map((x) => x.entry)));
    // Ground truth: hash and pixels after every entry, from a straight replay.
    const view = new SessionView();
    const truth = entries.map((e) => { view.apply(e); return { hash: toHex(view.hash()), frame: view.frame }; });
    const tl = new SessionTimeline({ k: 16 });
    for (const e of entries) tl.push(e);
    const r = mulberry32(3);
    let screen: ReturnType<typeof renderFull> | null = null;
    for (let i = 0; i < 25; i++) {
      const seq = Math.floor(r() * entries.length);
      const seen = tl.seek(seq);
      expect(seen.replayed).toBeLessThan(16);
      expect(toHex(seen.hash)).toBe(truth[seq]!.hash);
      const full = renderFull(seen.frame);
      expect(firstDifference(full, renderFull(truth[seq]!.frame))).toBe(-1);
      if (screen && screen.w === full.w && screen.h === full.h) { renderDamage(seen.frame, screen, seen.damage); expect(firstDifference(screen, full)).toBe(-1); }
      screen = full;
    }
  });
});
