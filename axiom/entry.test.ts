import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeEntry, encodeEntry, encodeValue, readHeader } from './index.ts';

const good = () => encodeEntry({ version: 1, kind: 2, domain: 1, seq: 3, time: 4, actor: 1, prev: new Uint8Array(32), payload: encodeValue({ id: 1, action: 'echo', args: { text: 'hi' } }) });

describe('entry decoding of bad input', () => {
  it('names what is wrong', () => {
    const cases: [string, (b: Uint8Array) => Uint8Array, RegExp, string][] = [
      ['short', (b) => b.subarray(0, 20), /shorter than its 64-byte header/, 'bad-encoding'],
      ['unknown version', (b) => { b[0] = 7; return b; }, /version 7 is not supported/, 'unknown-version'],
      ['unknown kind', (b) => { b[1] = 99; return b; }, /unknown entry kind 99/, 'bad-encoding'],
      ['huge length', (b) => { b[60] = 0xff; b[61] = 0xff; b[62] = 0xff; b[63] = 0xff; return b; }, /exceeds the 1048576-byte limit/, 'too-large'],
      ['length mismatch', (b) => { b[60]! += 1; return b; }, /payload length field says/, 'bad-encoding'],
      ['payload not canonical', (b) => { b[64] = 0x42; return b; }, /bad value encoding/, 'bad-encoding'],
    ];
    for (const [name, mutate, msg, reason] of cases) {
      const d = decodeEntry(mutate(good().slice()));
      expect(d.ok, name).toBe(false);
      if (!d.ok) { expect(d.error.message, name).toMatch(msg); expect(d.error.reason, name).toBe(reason); expect(d.error.kind).toBe('bad-input'); }
    }
  });
  it('never throws on random bytes or mutations of a good entry', () => {
    fc.assert(fc.property(fc.oneof(fc.uint8Array({ maxLength: 200 }), fc.tuple(fc.nat(200), fc.integer({ min: 0, max: 255 }), fc.nat(200)).map(([i, x, cut]) => { const b = good().slice(0, Math.max(1, cut)); b[i % b.length] = x; return b; })), (b) => {
      const d = decodeEntry(b);
      if (d.ok) expect(encodeEntry(d.value)).toEqual(b);
      readHeader(b);
    }), { numRuns: 5000 });
  });
});
