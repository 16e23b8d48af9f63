import { readFileSync } from 'node:fs';
import { crc32 as zlibCrc32 } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fromHex, toHex } from '../../axiom/hash.ts';
import { crc32 } from './crc32.ts';
import { CollectingSink, decodeAll, encodeFrame, FrameDecoder, HARD_MAX_PAYLOAD, stuffText, type DecodedEvent } from './frame.ts';
import { eventsJson } from './vectors.ts';

const vectors = JSON.parse(readFileSync(new URL('../../docs/vectors/kernel-link-v1.json', import.meta.url), 'utf8'));

/** Splits `b` at the given cut points (sorted, deduplicated, within range). */
function split(b: Uint8Array, cuts: number[]): Uint8Array[] {
  const pts = [...new Set(cuts.map((c) => c % (b.length + 1)))].sort((x, y) => x - y);
  const out: Uint8Array[] = [];
  let at = 0;
  for (const p of pts) { out.push(b.subarray(at, p)); at = p; }
  out.push(b.subarray(at));
  return out;
}
const cat = (parts: Uint8Array[]) => { const o = new Uint8Array(parts.reduce((n, p) => n + p.length, 0)); let a = 0; for (const p of parts) { o.set(p, a); a += p.length; } return o; };

describe('crc32', () => {
  it('matches the vectors and zlib', () => {
    for (const v of vectors.crc32) expect(crc32(fromHex(v.hex))).toBe(v.crc);
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ maxLength: 50 }), (a, b) => {
      expect(crc32(a)).toBe(zlibCrc32(a));
      expect(crc32(b, crc32(a))).toBe(crc32(cat([a, b])));
    }));
  });
});

describe('vectors', () => {
  it('encodes every frame exactly', () => {
    for (const f of vectors.frames) expect(toHex(encodeFrame(f.type, fromHex(f.payload_hex))), f.name).toBe(f.wire_hex);
  });
  it('decodes every stream to its events, in whole and in every 1..3-byte chunking', () => {
    for (const s of vectors.streams) {
      const wire = fromHex(s.wire_hex);
      expect(eventsJson(decodeAll([wire], { maxFrame: s.max_frame })), s.name).toEqual(s.events);
      const bytewise = Array.from(wire, (b) => Uint8Array.of(b));
      expect(eventsJson(decodeAll(bytewise, { maxFrame: s.max_frame })), `${s.name} byte by byte`).toEqual(s.events);
      for (let k = 2; k <= 3; k++) {
        const chunks: Uint8Array[] = [];
        for (let i = 0; i < wire.length; i += k) chunks.push(wire.subarray(i, i + k));
        expect(eventsJson(decodeAll(chunks, { maxFrame: s.max_frame })), `${s.name} in ${k}s`).toEqual(s.events);
      }
    }
  });
  it('every frame vector decodes back to its payload', () => {
    for (const f of vectors.frames) {
      const ev = decodeAll([fromHex(f.wire_hex)]);
      expect(ev).toHaveLength(1);
      expect(eventsJson(ev)).toEqual([{ frame: { type: f.type, payload_hex: f.payload_hex } }]);
    }
  });
});

// A piece of a stream: console text (any bytes: stuffing makes them safe) or a frame.
type Piece = { text: Uint8Array } | { type: number; payload: Uint8Array };
const piece: fc.Arbitrary<Piece> = fc.oneof(
  fc.record({ text: fc.oneof(fc.uint8Array({ minLength: 1, maxLength: 80 }), fc.string({ minLength: 1, maxLength: 40 }).map((s) => new TextEncoder().encode(s))) }),
  fc.record({ type: fc.integer({ min: 0, max: 255 }), payload: fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.constant(new Uint8Array(300).fill(0xff))) }),
);
const wireOf = (p: Piece) => ('text' in p ? stuffText(p.text) : encodeFrame(p.type, p.payload));

/** What a stream of pieces must decode to: text merged between frames. */
function expected(pieces: Piece[]): DecodedEvent[] {
  const out: DecodedEvent[] = [];
  let text: Uint8Array[] = [];
  const flush = () => { const t = cat(text); if (t.length) out.push({ text: t }); text = []; };
  for (const p of pieces) {
    if ('text' in p) text.push(p.text);
    else { flush(); out.push({ frame: { type: p.type, payload: p.payload } }); }
  }
  flush();
  return out;
}

describe('decoder properties', () => {
  it('any interleaving of text and frames, in any chunks, decodes to the same frames and text', () => {
    fc.assert(fc.property(fc.array(piece, { maxLength: 12 }), fc.array(fc.nat(), { maxLength: 30 }), (pieces, cuts) => {
      const wire = cat(pieces.map(wireOf));
      const got = decodeAll(split(wire, cuts));
      expect(eventsJson(got)).toEqual(eventsJson(expected(pieces)));
    }), { numRuns: 300 });
  });

  it('an unzeroed allocator changes nothing: encoder and decoder write every byte they hand out', () => {
    const dirty = (n: number) => new Uint8Array(n).fill(0xa5);
    fc.assert(fc.property(fc.array(piece, { maxLength: 12 }), fc.array(fc.nat(), { maxLength: 30 }), fc.array(fc.nat(), { maxLength: 6 }), (pieces, cuts, damage) => {
      const wire = cat(pieces.map((p) => ('text' in p ? stuffText(p.text) : encodeFrame(p.type, p.payload, { alloc: dirty }))));
      expect(toHex(wire)).toBe(toHex(cat(pieces.map(wireOf))));
      for (const d of damage) if (wire.length) wire[d % wire.length] ^= 0x10; // damaged frames too
      expect(eventsJson(decodeAll(split(wire, cuts), { alloc: dirty }))).toEqual(eventsJson(decodeAll(split(wire, cuts))));
    }), { numRuns: 300 });
  });

  it('reuseBody and lent chunks change nothing for a sink that copies in frame(), damaged frames included', () => {
    fc.assert(fc.property(fc.array(piece, { maxLength: 12 }), fc.array(fc.nat(), { maxLength: 30 }), fc.array(fc.nat(), { maxLength: 6 }), (pieces, cuts, damage) => {
      const wire = cat(pieces.map(wireOf));
      for (const d of damage) if (wire.length) wire[d % wire.length] ^= 0x10;
      // Each chunk is lent: copied into one scratch buffer, then scribbled over after push().
      const d = new FrameDecoder({ reuseBody: true });
      const s = new CollectingSink();
      const scratch = new Uint8Array(wire.length + 1);
      const bodies = new Set<ArrayBufferLike>();
      const sink = { text: (b: Uint8Array) => s.text(b), drop: (i: Parameters<CollectingSink['drop']>[0]) => s.drop(i), frame: (t: number, p: Uint8Array) => { if (p.buffer !== scratch.buffer) bodies.add(p.buffer); s.frame(t, p); } };
      for (const c of split(wire, cuts)) { scratch.set(c); d.push(scratch.subarray(0, c.length), sink); scratch.fill(0x5a); }
      d.end(sink);
      expect(eventsJson(s.done())).toEqual(eventsJson(decodeAll(split(wire, cuts))));
      expect(bodies.size).toBeLessThanOrEqual(3); // grown at most twice (4 KiB, then a power of two), never one per frame
    }), { numRuns: 300 });
  });

  it('never throws, and text only grows by bytes that were on the wire, on any bytes in any chunks', () => {
    fc.assert(fc.property(fc.array(fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.constant(Uint8Array.of(0xff, 0x4c)), fc.constant(Uint8Array.of(0xff))), { maxLength: 20 }), fc.array(fc.nat(), { maxLength: 10 }), (parts, cuts) => {
      const wire = cat(parts);
      const a = decodeAll(split(wire, cuts), { maxFrame: 64 });
      const b = decodeAll([wire], { maxFrame: 64 });
      expect(eventsJson(a)).toEqual(eventsJson(b));
      let textLen = 0; for (const e of a) if ('text' in e) textLen += e.text.length;
      expect(textLen).toBeLessThanOrEqual(wire.length);
    }), { numRuns: 500 });
  });

  it('a damaged frame never takes the next good frame or the text after a frame it did not touch', () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 1, maxLength: 200 }), fc.nat(), fc.integer({ min: 1, max: 255 }), fc.uint8Array({ maxLength: 100 }), (payload, where, mask, after) => {
      const bad = encodeFrame(0x21, payload);
      const at = 2 + (where % (bad.length - 2)); // leave the marker alone
      const damaged = bad.slice(); damaged[at] = damaged[at]! ^ mask;
      const good = encodeFrame(0x04, after);
      const ev = decodeAll([damaged, good, stuffText(Uint8Array.of(0x7a))]);
      const frames = ev.filter((e) => 'frame' in e);
      expect(frames.at(-1)).toEqual({ frame: { type: 0x04, payload: after } });
      const last = ev.at(-1)!;
      expect('text' in last && last.text.at(-1)).toBe(0x7a);
      // the damaged frame itself is never delivered as good (CRC-32 catches any one-byte change)
      expect(frames.filter((e) => 'frame' in e && e.frame.type === 0x21)).toEqual([]);
    }), { numRuns: 400 });
  });

  it('holds at most one frame: an oversized header is skipped without buffering, text after it kept', () => {
    const d = new FrameDecoder({ maxFrame: 100 });
    const s = new CollectingSink();
    const big = encodeFrame(0x21, new Uint8Array(100_000).fill(7));
    for (let i = 0; i < big.length; i += 4096) d.push(big.subarray(i, i + 4096), s);
    d.push(stuffText(new TextEncoder().encode('still here\n')), s);
    d.end(s);
    expect(eventsJson(s.done())).toEqual([{ drop: 'oversized' }, { text_hex: toHex(new TextEncoder().encode('still here\n')) }]);
  });

  it('rejects payloads above the hard limit at encode time (a caller bug)', () => {
    expect(() => encodeFrame(1, new Uint8Array(HARD_MAX_PAYLOAD + 1))).toThrow(RangeError);
  });
});
