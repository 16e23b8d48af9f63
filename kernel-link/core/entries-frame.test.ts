import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { toHex } from '../../axiom/hash.ts';
import { encodeEntriesFrame, entriesFrameAlloc } from './entries-frame.ts';
import { decodeAll, encodeFrame } from './frame.ts';
import { decodeMessage, encodeEntriesPayload, MsgType } from './messages.ts';

// Entries with FF bytes where they matter: in the data, as a length byte (255, 0xFF00), in runs.
const entry = fc.oneof(
  fc.uint8Array({ maxLength: 600 }),
  fc.constantFrom(255, 0xff00 - 1, 0xff, 0x1ff).chain((n) => fc.uint8Array({ minLength: n, maxLength: n })),
  fc.integer({ min: 0, max: 400 }).map((n) => new Uint8Array(n).fill(0xff)),
);
const dirty = (n: number) => new Uint8Array(n).fill(0xa5);

describe('encodeEntriesFrame', () => {
  it('writes exactly the bytes of encodeFrame(ENTRIES, encodeEntriesPayload(...)), with any allocator', () => {
    fc.assert(fc.property(fc.array(entry, { maxLength: 12 }), fc.nat({ max: 0xffffffff }), fc.maxSafeNat(), fc.boolean(), (entries, stream, seq, unzeroed) => {
      const want = encodeFrame(MsgType.Entries, encodeEntriesPayload(stream, seq, entries));
      const got = encodeEntriesFrame(stream, seq, entries, unzeroed ? { alloc: dirty } : {});
      expect(toHex(got)).toBe(toHex(want));
    }), { numRuns: 200 });
  });

  it('decodes back to its entries; a stream id and seq whose bytes hold FF are stuffed too', () => {
    const entries = [Uint8Array.of(1, 0xff, 2), new Uint8Array(255).fill(7)];
    const f = encodeEntriesFrame(0xffffffff, 0xff_ffff_ffff, entries);
    const ev = decodeAll([f]);
    expect(ev).toHaveLength(1);
    const e = ev[0]!;
    if (!('frame' in e)) throw new Error('not a frame');
    const d = decodeMessage(e.frame.type, e.frame.payload);
    expect(d.ok && d.msg.t === 'entries' && d.msg.seq === 0xff_ffff_ffff && d.msg.stream === 0xffffffff).toBe(true);
    if (d.ok && d.msg.t === 'entries') expect(d.msg.entries.map((x) => toHex(x))).toEqual(entries.map((x) => toHex(x)));
  });

  it('asks for one buffer of entriesFrameAlloc(payload) and returns a view of it', () => {
    const entries = [new Uint8Array(1000).fill(3), new Uint8Array(2000).fill(4)];
    let asked = 0, buf: ArrayBufferLike | null = null;
    const f = encodeEntriesFrame(1, 2, entries, { alloc: (n) => { asked = n; const b = new Uint8Array(n); buf = b.buffer; return b; } });
    expect(asked).toBe(entriesFrameAlloc(56 + 1005 + 2005));
    expect(f.buffer).toBe(buf);
  });
});
