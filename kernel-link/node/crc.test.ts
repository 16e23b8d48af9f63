import fc from 'fast-check';
import { expect, it } from 'vitest';
import { toHex } from '../../axiom/hash.ts';
import { crc32 } from '../core/crc32.ts';
import { decodeAll, encodeFrame, stuffText } from '../core/frame.ts';
import { eventsJson } from '../core/vectors.ts';
import { nodeCodec, zlibCrc32 } from './crc.ts';

const cat = (parts: Uint8Array[]) => { const o = new Uint8Array(parts.reduce((n, p) => n + p.length, 0)); let a = 0; for (const p of parts) { o.set(p, a); a += p.length; } return o; };

it('the native codec (zlib CRC, Buffer indexOf) encodes and decodes exactly as the pure one', () => {
  const piece = fc.oneof(
    fc.record({ text: fc.uint8Array({ minLength: 1, maxLength: 80 }) }),
    fc.record({ type: fc.integer({ min: 0, max: 255 }), payload: fc.uint8Array({ maxLength: 300 }) }),
  );
  fc.assert(fc.property(fc.array(piece, { maxLength: 8 }), fc.array(fc.nat(), { maxLength: 10 }), (pieces, cuts) => {
    const pure = cat(pieces.map((p) => ('text' in p ? stuffText(p.text) : encodeFrame(p.type, p.payload))));
    const native = cat(pieces.map((p) => ('text' in p ? stuffText(p.text, nodeCodec.findByte) : encodeFrame(p.type, p.payload, nodeCodec))));
    expect(toHex(native)).toBe(toHex(pure));
    const pts = [...new Set(cuts.map((c) => c % (pure.length + 1)))].sort((a, b) => a - b);
    const chunks: Uint8Array[] = []; let at = 0; for (const p of pts) { chunks.push(pure.subarray(at, p)); at = p; } chunks.push(pure.subarray(at));
    expect(eventsJson(decodeAll(chunks, nodeCodec))).toEqual(eventsJson(decodeAll([pure])));
    for (const p of pieces) if ('payload' in p) expect(zlibCrc32(p.payload)).toBe(crc32(p.payload));
  }), { numRuns: 200 });
});
