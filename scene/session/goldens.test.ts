import { beforeAll, describe, expect, it } from 'vitest';
import { initAxiom, toHex } from '../../axiom/index.ts';
import { renderFull } from '../raster/raster.ts';
import { GOLDEN_SCENES, goldenFrame } from './goldens.ts';
import { sceneHash } from './reducer.ts';

beforeAll(() => initAxiom());

describe('golden scenes', () => {
  it('every golden scene builds without a rejection, has distinct state, and renders', () => {
    const hashes = new Set<string>();
    for (const name of Object.keys(GOLDEN_SCENES)) {
      const { state, frame } = goldenFrame(name);
      hashes.add(toHex(sceneHash(state)));
      expect(state.rejected).toBe(0);
      const r = renderFull(frame);
      expect(r.w * r.h).toBe(640 * 400);
    }
    expect(hashes.size).toBe(Object.keys(GOLDEN_SCENES).length);
    expect(() => goldenFrame('nope')).toThrow(/no golden scene/);
  });
});
