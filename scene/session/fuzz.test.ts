import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeValue, encodeValue, type Value } from '../../axiom/index.ts';
import { SessionScene } from '../compositor/compose.ts';
import { SESSION_ACTIONS } from './actions.ts';
import { applyCommit, sessionReducer } from './reducer.ts';

// Values as a decoded payload can hold them: every tag of docs/axiom.md section 1.
const leaf: fc.Arbitrary<Value> = fc.oneof(
  fc.constant(null), fc.boolean(), fc.integer(), fc.double(), fc.constantFrom(NaN, Infinity, -Infinity, -0, 2 ** 53 + 2, -(2 ** 60)),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), fc.string({ maxLength: 20 }), fc.uint8Array({ maxLength: 8 }),
);
const value: fc.Arbitrary<Value> = fc.letrec<{ v: Value }>((tie) => ({
  v: fc.oneof({ depthSize: 'small' }, leaf, fc.array(tie('v'), { maxLength: 4 }), fc.dictionary(fc.string({ maxLength: 6 }), tie('v'), { maxKeys: 4 })),
})).v;
const argKeys = fc.constantFrom('id', 'x', 'y', 'w', 'h', 'app', 'title', 'text', 'count', 'dy', 'band', 'bounds', 'extra', '__proto__', 'constructor');
const args = fc.dictionary(argKeys, fc.oneof(value, fc.integer({ min: -2, max: 6 })), { maxKeys: 6 });
const payload: fc.Arbitrary<Value> = fc.oneof(
  value,
  fc.record({ id: fc.nat(), action: fc.oneof(fc.constantFrom(...SESSION_ACTIONS), fc.constantFrom('__proto__', 'constructor', 'toString', 'hasOwnProperty'), fc.string({ maxLength: 12 })), args: fc.oneof(args, value) }),
);

describe('session reducer on arbitrary payloads', () => {
  it('never throws, keeps every number in the state a safe int, and stays canonical; the scene always composites', () => {
    fc.assert(fc.property(fc.array(payload, { maxLength: 40 }), (ps) => {
      const s = sessionReducer.init();
      // Open two windows first so ids 1 and 2 often exist.
      applyCommit(s, 0, { id: 0, action: 'window.open', args: { app: 'a', title: 'A' } });
      applyCommit(s, 1, { id: 1, action: 'window.open', args: { app: 'b', title: 'B' } });
      ps.forEach((p, i) => applyCommit(s, i + 2, p));
      for (const w of s.windows.values()) for (const k of ['id', 'x', 'y', 'w', 'h', 'scroll'] as const) expect(Number.isSafeInteger(w[k]) && !Object.is(w[k], -0)).toBe(true);
      expect(s.applied).toBe(ps.length + 2);
      const bytes = encodeValue(sessionReducer.toValue(s));
      const back = decodeValue(bytes);
      expect(back.ok).toBe(true);
      if (back.ok) expect(encodeValue(back.value)).toEqual(bytes);
      const f = new SessionScene().update(s);
      expect(f.groups.length).toBeGreaterThanOrEqual(2);
    }), { numRuns: 200 });
  });
});
