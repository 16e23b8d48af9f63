import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeValue, encodeValue, scanValue, type Value } from './index.ts';

const key = fc.string({ maxLength: 6 });
const scalar: fc.Arbitrary<Value> = fc.oneof(
  fc.constant(null), fc.boolean(), fc.integer(), fc.double(), fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
  fc.string(), fc.uint8Array({ maxLength: 16 }), fc.string({ unit: 'binary', maxLength: 8 }),
);
const value: fc.Arbitrary<Value> = fc.letrec((tie) => ({
  v: fc.oneof({ depthSize: 'small', withCrossShrink: true }, scalar, fc.array(tie('v'), { maxLength: 4 }), fc.dictionary(key, tie('v'), { maxKeys: 4 })),
})).v as fc.Arbitrary<Value>;

describe('canonical values', () => {
  it('decode(encode(v)) re-encodes to the same bytes', () => {
    fc.assert(fc.property(value, (v) => {
      const b = encodeValue(v);
      const d = decodeValue(b);
      expect(d.ok).toBe(true);
      if (d.ok) expect(encodeValue(d.value)).toEqual(b);
      expect(scanValue(b)).toBeNull();
    }), { numRuns: 2000 });
  });
  it('never throws on random or mutated bytes, and the scanner agrees with the decoder', () => {
    const bytes = fc.oneof(fc.uint8Array({ maxLength: 64 }), value.chain((v) => {
      const b = encodeValue(v);
      return fc.tuple(fc.nat(Math.max(0, b.length - 1)), fc.integer({ min: 0, max: 255 }), fc.nat(b.length)).map(([i, x, cut]) => {
        const m = b.slice(0, Math.max(1, cut)); if (m.length) m[i % m.length] = x; return m;
      });
    }));
    fc.assert(fc.property(bytes, (b) => {
      const d = decodeValue(b);
      expect((scanValue(b) === null)).toBe(d.ok);
      if (d.ok) expect(encodeValue(d.value)).toEqual(b); // accepted ⇒ canonical
    }), { numRuns: 5000 });
  });
  it('a huge length field allocates nothing', () => {
    const b = new Uint8Array([0x05, 0xff, 0xff, 0xff, 0xff]);
    const d = decodeValue(b);
    expect(d.ok).toBe(false);
    if (!d.ok) expect(d.error.message).toMatch(/bytes/);
  });
});
