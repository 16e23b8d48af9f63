// Framing of docs/kernel-link.md sections 1-3: console text and frames on one byte stream.
// 0xFF is stuffed as FF 00 everywhere; FF 4C starts a frame. The decoder is a byte-level state
// machine, so any split of the stream into chunks yields the same events; it holds at most one
// frame (16 + maxFrame bytes) and never throws on any input.
import { crc32 as jsCrc32, type Crc32 } from './crc32.ts';

export const ESC = 0xff;
export const MARKER = 0x4c;
export const STUFFED = 0x00;
/** Frame overhead: marker 2, header 6, header CRC 4, payload CRC 4. */
export const FRAME_OVERHEAD = 16;
/** No frame payload is ever larger (a header announcing more is not a header). */
export const HARD_MAX_PAYLOAD = 2_097_152;
/** What a sender may send before the handshake told it the receiver's limit. */
export const PRE_HANDSHAKE_MAX_PAYLOAD = 4096;

/** Finds `byte` in `buf` from `from`; -1 if absent. Node injects Buffer's memchr-based indexOf (10x). */
export type FindByte = (buf: Uint8Array, byte: number, from: number) => number;
export const typedFindByte: FindByte = (buf, byte, from) => buf.indexOf(byte, from);
/** The two hot primitives of the codec; pure defaults, faster native ones injected by kernel-link/node. */
/**
 * A fresh buffer of `n` bytes that the caller overwrites completely before anyone reads it, so it
 * need not be zeroed (Node injects an unzeroed allocation; frames are up to 2 MiB).
 */
export type Alloc = (n: number) => Uint8Array;
export const zeroedAlloc: Alloc = (n) => new Uint8Array(n);
export interface FrameCodec { crc32: Crc32; findByte: FindByte; alloc?: Alloc }
export const pureCodec: FrameCodec = { crc32: jsCrc32, findByte: typedFindByte };
const codecOf = (c?: Crc32 | Partial<FrameCodec>): FrameCodec => (typeof c === 'function' ? { crc32: c, findByte: typedFindByte } : { ...pureCodec, ...c });

export type DropReason = 'cut' | 'bad-escape' | 'bad-header' | 'bad-crc' | 'oversized';
export interface DropInfo { reason: DropReason; type?: number; length?: number }

/** Where a decoder's output goes. `text` may be a view into the input chunk: copy to keep it. */
export interface FrameSink {
  text(bytes: Uint8Array): void;
  frame(type: number, payload: Uint8Array): void;
  drop(info: DropInfo): void;
}

/** Size of `bytes` once stuffed. */
export function stuffedLength(bytes: Uint8Array, find: FindByte = typedFindByte): number {
  let n = bytes.length;
  for (let i = find(bytes, ESC, 0); i >= 0; i = find(bytes, ESC, i + 1)) n++;
  return n;
}

/** Writes `src` stuffed into `out` at `at`; returns the new offset. */
export function putStuffed(out: Uint8Array, at: number, src: Uint8Array, find: FindByte = typedFindByte): number {
  let i = 0;
  for (;;) {
    const j = find(src, ESC, i);
    const end = j < 0 ? src.length : j;
    if (end > i) { out.set(src.subarray(i, end), at); at += end - i; }
    if (j < 0) return at;
    out[at++] = ESC; out[at++] = STUFFED;
    i = j + 1;
  }
}

/** Console text as it goes on the wire (each 0xFF as FF 00). */
export function stuffText(text: Uint8Array, find: FindByte = typedFindByte): Uint8Array {
  const n = stuffedLength(text, find);
  if (n === text.length) return text.slice();
  const out = new Uint8Array(n);
  putStuffed(out, 0, text, find);
  return out;
}

export const u32le = (b: Uint8Array, at: number, v: number) => { b[at] = v & 0xff; b[at + 1] = (v >>> 8) & 0xff; b[at + 2] = (v >>> 16) & 0xff; b[at + 3] = (v >>> 24) & 0xff; };
const readU32 = (b: Uint8Array, at: number) => (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;

/**
 * One complete frame on the wire. `codec` is a CRC function or a FrameCodec (native fast paths).
 * Throws RangeError only for a payload above HARD_MAX_PAYLOAD (a caller bug).
 */
export function encodeFrame(type: number, payload: Uint8Array, codec?: Crc32 | Partial<FrameCodec>): Uint8Array {
  return encodeFrameParts(type, [payload], codec);
}

/** Parts up to this size are scanned and checksummed in JS (a native call costs more than the work). */
const SMALL_PART = 32;

/**
 * A frame whose payload is the concatenation of `parts`, written in one allocation: each part is
 * checksummed once and copied once, and scanned for FF once unless it holds one. (Many small parts
 * cost more in native calls than one contiguous payload: the entry stream builds one payload.)
 */
export function encodeFrameParts(type: number, parts: Uint8Array[], codec?: Crc32 | Partial<FrameCodec>): Uint8Array {
  const { crc32: crc, findByte: find, alloc = zeroedAlloc } = codecOf(codec);
  // Pass 1: length, CRC, and where each part's first FF is (-1: none, the common case).
  let len = 0, ffs = 0, c = 0;
  const firstFF = new Int32Array(parts.length);
  for (let k = 0; k < parts.length; k++) {
    const p = parts[k]!;
    len += p.length;
    let j: number;
    if (p.length <= SMALL_PART) {
      c = jsCrc32(p, c);
      j = p.indexOf(ESC);
      for (let i = j; i >= 0 && i < p.length; i++) if (p[i] === ESC) ffs++;
    } else {
      c = crc(p, c);
      j = find(p, ESC, 0);
      for (let i = j; i >= 0; i = find(p, ESC, i + 1)) ffs++;
    }
    firstFF[k] = j;
  }
  if (len > HARD_MAX_PAYLOAD) throw new RangeError(`frame payload of ${len} bytes exceeds ${HARD_MAX_PAYLOAD}`);
  const head = new Uint8Array(12);
  head[0] = ESC; head[1] = MARKER; head[2] = type & 0xff; head[3] = 0;
  u32le(head, 4, len);
  u32le(head, 8, jsCrc32(head.subarray(0, 8)));
  const tail = new Uint8Array(4);
  u32le(tail, 0, c);
  const hs = head.subarray(2);
  const out = alloc(2 + stuffedLength(hs) + len + ffs + stuffedLength(tail)); // every byte written below
  out[0] = ESC; out[1] = MARKER;
  // Pass 2: copy, stuffing only the parts that hold an FF.
  let at = putStuffed(out, 2, hs);
  for (let k = 0; k < parts.length; k++) {
    const p = parts[k]!;
    if (firstFF[k]! < 0) { if (p.length <= SMALL_PART) { for (let i = 0; i < p.length; i++) out[at + i] = p[i]!; } else out.set(p, at); at += p.length; }
    else at = putStuffed(out, at, p, find);
  }
  putStuffed(out, at, tail);
  return out;
}

const TEXT = 0, HEADER = 1, BODY = 2, SKIP = 3;
const ONE_FF = new Uint8Array([ESC]);
const EMPTY = new Uint8Array(0);

export interface DecoderOptions {
  /** Largest payload this receiver accepts; larger frames are skipped (event oversized). */
  maxFrame?: number;
  /** CRC-32 used for payloads (inject a native one for speed). */
  crc32?: Crc32;
  /** Byte search (inject a native one for speed). */
  findByte?: FindByte;
  /** Allocation of frame bodies (inject an unzeroed one for speed; every byte is written before use). */
  alloc?: Alloc;
  /**
   * Reuse one body buffer for every frame that has to be copied (frames split across chunks or
   * holding stuffed bytes), so a long stream allocates nothing. A frame's payload is then valid
   * only until the next push(): for receivers that use each frame before returning.
   */
  reuseBody?: boolean;
}

/** Decodes console text and frames from a byte stream, chunk by chunk. */
export class FrameDecoder {
  maxFrame: number;
  private readonly crc: Crc32;
  private readonly find: FindByte;
  private readonly alloc: Alloc;
  private mode = TEXT;
  /** The previous chunk ended with an FF whose partner byte has not arrived. */
  private pendingEsc = false;
  private readonly hdr = new Uint8Array(12);
  private hdrLen = 0;
  private body: Uint8Array = EMPTY;
  /** Unstuffed bytes the body (payload + pcrc) needs; the buffer is allocated on first copy. */
  private bodyNeed = 0;
  private bodyLen = 0;
  private skipLeft = 0;
  /** With reuseBody: the body buffer kept across frames. */
  private spare: Uint8Array | null = null;

  constructor(opts: DecoderOptions = {}) {
    this.maxFrame = Math.min(opts.maxFrame ?? HARD_MAX_PAYLOAD, HARD_MAX_PAYLOAD);
    this.crc = opts.crc32 ?? jsCrc32;
    this.find = opts.findByte ?? typedFindByte;
    this.alloc = opts.alloc ?? zeroedAlloc;
    if (opts.reuseBody) this.spare = EMPTY;
    this.hdr[0] = ESC; this.hdr[1] = MARKER;
  }

  /** Bytes held for a frame in progress (never more than 12 + maxFrame + 4). */
  get buffered(): number { return this.mode === BODY ? this.body.length + 12 : this.mode === HEADER ? 12 : 0; }
  /** Frames delivered as views of the input chunk (no copy), for the curious. */
  zeroCopyFrames = 0;

  /** True while inside a frame (a cut here would abandon it). */
  get inFrame(): boolean { return this.mode !== TEXT; }

  private startFrame(): void { this.mode = HEADER; this.hdrLen = 2; }

  /** Feeds one chunk. Never throws on any bytes (a throwing sink propagates). */
  push(chunk: Uint8Array, sink: FrameSink): void {
    const n = chunk.length;
    let i = 0;
    if (this.pendingEsc && n > 0) {
      this.pendingEsc = false;
      i = this.escape(chunk[0]!, sink) ? 1 : 0;
    }
    while (i < n) {
      if (this.mode === TEXT) {
        const j = this.find(chunk, ESC, i);
        if (j < 0) { sink.text(chunk.subarray(i)); return; }
        if (j > i) sink.text(chunk.subarray(i, j));
        if (j + 1 >= n) { this.pendingEsc = true; return; }
        i = j + 1;
        if (this.escape(chunk[i]!, sink)) i++;
        continue;
      }
      // A whole frame body inside this chunk with nothing stuffed: hand out a view, copy nothing
      // (transports give each chunk to the receiver for good, so the view stays valid).
      if (this.mode === BODY && this.bodyLen === 0 && n - i >= this.bodyNeed && this.find(chunk.subarray(0, i + this.bodyNeed), ESC, i) < 0) {
        const len = this.bodyNeed - 4;
        const payload = chunk.subarray(i, i + len);
        const good = this.crc(payload) === readU32(chunk, i + len);
        const type = this.hdr[2]!;
        i += this.bodyNeed;
        this.mode = TEXT; this.hdrLen = 0;
        if (good) { this.zeroCopyFrames++; sink.frame(type, payload); } else sink.drop({ reason: 'bad-crc', type, length: len });
        continue;
      }
      // Inside a frame: copy the run up to the next FF or the end of the current field.
      const need = this.mode === HEADER ? 12 - this.hdrLen : this.mode === BODY ? this.bodyNeed - this.bodyLen : this.skipLeft;
      const lim = Math.min(n, i + need);
      // Search only up to lim: a search past the field's end would rescan the rest of the chunk per field.
      let j = lim > i ? this.find(lim === n ? chunk : chunk.subarray(0, lim), ESC, i) : -1;
      if (j < 0) j = lim;
      if (j > i) { this.take(chunk, i, j); i = j; if (this.fieldDone(sink)) continue; }
      if (i >= n) return;
      if (chunk[i] !== ESC) continue;
      if (i + 1 >= n) { this.pendingEsc = true; return; }
      i++;
      if (this.escape(chunk[i]!, sink)) i++;
    }
  }

  /** Handles the byte after an FF. Returns false when `b` must be read again (in text state). */
  private escape(b: number, sink: FrameSink): boolean {
    if (this.mode === TEXT) {
      if (b === STUFFED) { sink.text(ONE_FF); return true; }
      if (b === MARKER) { this.startFrame(); return true; }
      sink.text(ONE_FF); return false; // lenient: a raw FF from firmware is text
    }
    if (b === STUFFED) { this.takeByte(ESC); this.fieldDone(sink); return true; }
    if (b === MARKER) { this.abandon(sink, 'cut'); this.startFrame(); return true; }
    this.abandon(sink, 'bad-escape');
    return false;
  }

  private abandon(sink: FrameSink, reason: DropReason): void {
    const info: DropInfo = { reason };
    if (this.hdrLen === 12) { info.type = this.hdr[2]!; info.length = readU32(this.hdr, 4); }
    this.mode = TEXT; this.body = EMPTY; this.hdrLen = 0;
    sink.drop(info);
  }

  private take(chunk: Uint8Array, from: number, to: number): void {
    if (this.mode === HEADER) { this.hdr.set(chunk.subarray(from, to), this.hdrLen); this.hdrLen += to - from; }
    else if (this.mode === BODY) { if (!this.body.length) this.body = this.newBody(); this.body.set(chunk.subarray(from, to), this.bodyLen); this.bodyLen += to - from; }
    else this.skipLeft -= to - from;
  }
  private newBody(): Uint8Array {
    const spare = this.spare;
    if (spare === null) return this.alloc(this.bodyNeed);
    if (spare.length >= this.bodyNeed) return spare.subarray(0, this.bodyNeed);
    // Grow to the next power of two (at most the largest frame), so a stream settles at one buffer.
    let cap = 4096; while (cap < this.bodyNeed) cap *= 2;
    this.spare = this.alloc(Math.min(cap, HARD_MAX_PAYLOAD + 4));
    return this.spare.subarray(0, this.bodyNeed);
  }
  private takeByte(b: number): void {
    if (this.mode === HEADER) this.hdr[this.hdrLen++] = b;
    else if (this.mode === BODY) { if (!this.body.length) this.body = this.newBody(); this.body[this.bodyLen++] = b; }
    else this.skipLeft--;
  }

  /** Acts when the current field is complete. Returns true when the mode changed or advanced. */
  private fieldDone(sink: FrameSink): boolean {
    if (this.mode === HEADER) {
      if (this.hdrLen < 12) return false;
      const len = readU32(this.hdr, 4);
      if (jsCrc32(this.hdr.subarray(0, 8)) !== readU32(this.hdr, 8) || len > HARD_MAX_PAYLOAD) {
        // A damaged header: we cannot know where its frame ends, so its bytes are text again.
        // The raw bytes held only valid FF 00 escapes, so re-reading them yields these bytes.
        const again = this.hdr.slice(2, 12);
        this.mode = TEXT; this.hdrLen = 0;
        sink.drop({ reason: 'bad-header' });
        sink.text(again);
        return true;
      }
      if (len > this.maxFrame) {
        this.mode = SKIP; this.skipLeft = len + 4;
        sink.drop({ reason: 'oversized', type: this.hdr[2]!, length: len });
        return true;
      }
      this.mode = BODY; this.body = EMPTY; this.bodyNeed = len + 4; this.bodyLen = 0;
      return true;
    }
    if (this.mode === BODY) {
      if (this.bodyLen < this.bodyNeed) return false;
      const len = this.bodyNeed - 4;
      const payload = this.body.subarray(0, len);
      const good = this.crc(payload) === readU32(this.body, len);
      const type = this.hdr[2]!;
      this.mode = TEXT; this.hdrLen = 0; this.body = EMPTY;
      if (good) sink.frame(type, payload); else sink.drop({ reason: 'bad-crc', type, length: len });
      return true;
    }
    if (this.mode === SKIP) {
      if (this.skipLeft > 0) return false;
      this.mode = TEXT; this.hdrLen = 0;
      return true;
    }
    return false;
  }

  /** End of stream: a pending FF is text; a frame in progress is abandoned (cut). */
  end(sink: FrameSink): void {
    const pendingText = this.pendingEsc && this.mode === TEXT; // an FF pending inside a frame dies with it
    this.pendingEsc = false;
    if (this.mode !== TEXT) this.abandon(sink, 'cut');
    if (pendingText) sink.text(ONE_FF);
  }

  /** Forgets everything (a new connection). */
  reset(): void { this.mode = TEXT; this.pendingEsc = false; this.hdrLen = 0; this.body = EMPTY; this.bodyNeed = 0; this.skipLeft = 0; }
}

/** A sink that records events, merging consecutive text (tests, vectors, tools). */
export type DecodedEvent = { text: Uint8Array } | { frame: { type: number; payload: Uint8Array } } | { drop: DropInfo };
export class CollectingSink implements FrameSink {
  events: DecodedEvent[] = [];
  private parts: Uint8Array[] = [];
  text(b: Uint8Array): void { if (b.length) this.parts.push(b.slice()); }
  private flushText(): void {
    if (!this.parts.length) return;
    let n = 0; for (const p of this.parts) n += p.length;
    const t = new Uint8Array(n); let at = 0; for (const p of this.parts) { t.set(p, at); at += p.length; }
    this.parts = []; this.events.push({ text: t });
  }
  frame(type: number, payload: Uint8Array): void { this.flushText(); this.events.push({ frame: { type, payload: payload.slice() } }); }
  drop(info: DropInfo): void { this.flushText(); this.events.push({ drop: { ...info } }); }
  done(): DecodedEvent[] { this.flushText(); return this.events; }
}

/** Decodes a whole byte stream given as chunks (end of stream included). */
export function decodeAll(chunks: Uint8Array[], opts: DecoderOptions = {}): DecodedEvent[] {
  const d = new FrameDecoder(opts), s = new CollectingSink();
  for (const c of chunks) d.push(c, s);
  d.end(s);
  return s.done();
}
