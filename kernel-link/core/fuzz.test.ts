import { beforeAll, expect, it } from 'vitest';
import { initAxiom } from '../../axiom/hash.ts';
import { seededRng } from './faulty.ts';
import { runFuzz } from './fuzz.ts';

beforeAll(() => initAxiom());

// The long run (≥ 1,000,000 inputs) is in `npm run bench -- link`; this keeps a quick one in CI.
it('fuzz: 20,000 random and mutated streams - no throw, one frame held at most', () => {
  const r = runFuzz(20_000, seededRng(42), () => performance.now());
  expect(r.failures).toEqual([]);
  expect(r.inputs).toBe(20_000);
  expect(r.frames).toBeGreaterThan(1000); // the mutator keeps many frames whole: it exercises more than the text path
  expect(r.drops).toBeGreaterThan(1000);
  expect(r.maxBuffered).toBeLessThanOrEqual(12 + 4096 + 4);
});
