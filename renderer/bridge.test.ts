import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { fromBase64, toBase64, validateArgs, parseWireIn } from './bridge.ts';

describe('bridge protocol', () => {
  it('base64 round-trips any bytes and matches Node', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
      const s = toBase64(b);
      expect(s).toBe(Buffer.from(b).toString('base64'));
      expect(fromBase64(s)).toEqual(b);
    }));
    expect(fromBase64('abc')).toBeNull();
    expect(fromBase64('ab$=')).toBeNull();
  });
  it('validates arguments strictly', () => {
    expect(validateArgs('device.log', { device: 'd', from: 0, count: 10 })).toBeNull();
    expect(validateArgs('device.log', { device: 'd', from: 0, count: 0 })).toContain('count');
    expect(validateArgs('device.log', { device: 'd', from: 0.5, count: 1 })).toContain('from');
    expect(validateArgs('device.log', null)).toContain('object');
    expect(validateArgs('device.log', [])).toContain('object');
    expect(validateArgs('device.propose', { device: 'd', domain: 1, action: 'sh', args: { x: NaN } })).toContain('finite');
    expect(validateArgs('hello', Object.create({ inherited: 1 }))).toContain('object');
  });
  it('parses wire messages without throwing on garbage', () => {
    fc.assert(fc.property(fc.string(), (s) => { parseWireIn(s); }));
    expect(parseWireIn('{"t":"req","id":1,"ch":"hello","args":{}}').ok).toBe(true);
  });
});
