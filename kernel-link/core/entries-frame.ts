// The ENTRIES frame in one pass over the entries: each entry is copied (stuffed only when it holds
// an FF) straight into the frame buffer, then checksummed there while it is in cache, so the
// server's hot path no longer builds the payload in a scratch buffer and copies it again. Byte-identical to
// encodeFrame(MsgType.Entries, encodeEntriesPayload(...)) (tested); the wire format is unchanged.
import { crc32 as jsCrc32 } from './crc32.ts';
import { encodeFrame, ESC, HARD_MAX_PAYLOAD, MARKER, putStuffed, u32le, zeroedAlloc, typedFindByte, type FrameCodec } from './frame.ts';
import { encodeEntriesPayload, ENTRIES_HEAD, ENTRIES_TAIL, MsgType, writeEntriesHead, writeEntriesTail } from './messages.ts';

/** Room kept before the payload for the marker and the stuffed header (10 bytes, up to 20 stuffed). */
const HEAD_ROOM = 22;

/**
 * The buffer size encodeEntriesFrame asks `alloc` for, given the payload size `n`: the payload,
 * 1/16 of it for stuffed entry bytes, and room for the fixed fields, an entry prefix and the CRC
 * even if every one of their bytes is stuffed (so those never need a check of their own).
 */
export const entriesFrameAlloc = (n: number) => HEAD_ROOM + n + (n >> 4) + ENTRIES_HEAD + ENTRIES_TAIL + 2 * ENTRIES_TAIL + 10 + 8;

/**
 * One ENTRIES frame. The result may be a view that does not start at offset 0 of the buffer
 * `codec.alloc` returned. Entries so full of FF bytes that stuffing outgrows 1/16 of the payload
 * take the two-pass path instead (same bytes).
 */
export function encodeEntriesFrame(stream: number, seq: number, entries: Uint8Array[], codec: Partial<FrameCodec> = {}): Uint8Array {
  const crc = codec.crc32 ?? jsCrc32, find = codec.findByte ?? typedFindByte, alloc = codec.alloc ?? zeroedAlloc;
  let n = ENTRIES_HEAD + ENTRIES_TAIL;
  for (const e of entries) n += 5 + e.length;
  if (n > HARD_MAX_PAYLOAD) throw new RangeError(`frame payload of ${n} bytes exceeds ${HARD_MAX_PAYLOAD}`);
  const cap = entriesFrameAlloc(n);
  const out = alloc(cap);
  const small = new Uint8Array(ENTRIES_TAIL);
  const dv = new DataView(small.buffer);
  let at = HEAD_ROOM;
  // Where a stuffing 00 went in: the CRC runs over the frame afterwards, skipping them (a few
  // native calls over memory just written, instead of one per entry).
  const zeros: number[] = [];
  /** A small part (map head, entry prefix, seq and stream fields), stuffed in JS. */
  const putSmall = (len: number) => {
    for (let i = 0; i < len; i++) { const b = small[i]!; out[at++] = b; if (b === ESC) { zeros.push(at); out[at++] = 0; } }
  };
  writeEntriesHead(small, dv, 0, entries.length);
  putSmall(ENTRIES_HEAD);
  // Room every entry must leave: the next prefix, the tail fields and the CRC, all stuffed at worst.
  const limit = cap - 2 * ENTRIES_TAIL - 8;
  for (const e of entries) {
    const len = e.length;
    small[0] = 0x05; dv.setUint32(1, len, true);
    putSmall(5);
    let j = find(e, ESC, 0);
    if (j < 0) {
      if (at + len > limit) return twoPass(stream, seq, entries, codec);
      out.set(e, at); at += len;
    } else {
      let ffs = 0;
      for (let i = j; i >= 0; i = find(e, ESC, i + 1)) ffs++;
      if (at + len + ffs > limit) return twoPass(stream, seq, entries, codec);
      let i = 0;
      while (j >= 0) {
        if (j > i) { out.set(e.subarray(i, j), at); at += j - i; }
        out[at++] = ESC; zeros.push(at); out[at++] = 0;
        i = j + 1; j = find(e, ESC, i);
      }
      if (i < len) { out.set(e.subarray(i), at); at += len - i; }
    }
  }
  writeEntriesTail(small, dv, 0, seq, stream);
  putSmall(ENTRIES_TAIL);
  let c = 0, from = HEAD_ROOM;
  for (const z of zeros) { if (z > from) c = crc(out.subarray(from, z), c); from = z + 1; }
  if (at > from) c = crc(out.subarray(from, at), c);
  const tail = new Uint8Array(4); u32le(tail, 0, c);
  at = putStuffed(out, at, tail);
  // The header, now that the payload is known, right before it.
  const head = new Uint8Array(10);
  head[0] = MsgType.Entries; head[1] = 0; u32le(head, 2, n);
  const hh = new Uint8Array(8); hh[0] = ESC; hh[1] = MARKER; hh.set(head.subarray(0, 6), 2);
  u32le(head, 6, jsCrc32(hh));
  let hs = 10; for (let i = 0; i < 10; i++) if (head[i] === ESC) hs++;
  const start = HEAD_ROOM - hs - 2;
  out[start] = ESC; out[start + 1] = MARKER;
  putStuffed(out, start + 2, head);
  return out.subarray(start, at);
}

function twoPass(stream: number, seq: number, entries: Uint8Array[], codec: Partial<FrameCodec>): Uint8Array {
  return encodeFrame(MsgType.Entries, encodeEntriesPayload(stream, seq, entries), codec);
}
