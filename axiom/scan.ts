// A non-allocating validator of the canonical value encoding: the verifier's hot path checks
// every payload without building objects. It accepts exactly what decodeValue accepts
// (a property test holds them to that).
import { MAX_DEPTH } from './value.ts';

/** Returns null when `b[start..end)` is exactly one canonical value, else a message. */
export function scanValue(b: Uint8Array, start = 0, end = b.length): string | null {
  let pos = start;
  // Iterative walk: a stack of remaining-children counts; for maps, where the last key was.
  const remaining: number[] = [];
  const isMap: boolean[] = [];
  const keyStart: number[] = [];
  const keyEnd: number[] = [];
  let depth = 0;
  for (;;) {
    if (depth > 0 && isMap[depth - 1]) {
      // read a key
      if (end - pos < 4) return `key length beyond the end at ${pos}`;
      const kl = u32(b, pos); pos += 4;
      if (kl > end - pos) return `key runs beyond the end at ${pos}`;
      const err = checkUtf8(b, pos, pos + kl);
      if (err) return err;
      const ks = keyStart[depth - 1]!;
      if (ks >= 0 && compare(b, ks, keyEnd[depth - 1]!, pos, pos + kl) >= 0) return `map keys not unique and ascending at ${pos}`;
      keyStart[depth - 1] = pos; keyEnd[depth - 1] = pos + kl;
      pos += kl;
    }
    if (pos >= end) return `value expected at ${pos}, input ended`;
    if (depth + 1 > MAX_DEPTH) return `nested deeper than ${MAX_DEPTH}`;
    const tag = b[pos++]!;
    let container = -1;
    switch (tag) {
      case 0: case 1: case 2: break;
      case 3: if (end - pos < 8) return `int runs beyond the end`; pos += 8; break;
      case 4: {
        if (end - pos < 8) return `float runs beyond the end`;
        const v = f64(b, pos);
        if (Number.isNaN(v)) { if (u32(b, pos) !== 0 || u32(b, pos + 4) !== 0x7ff80000) return 'non-canonical NaN'; }
        else if (Number.isInteger(v) && v >= -(2 ** 63) && v < 2 ** 63) return `float ${v} is integral: must be an int`;
        pos += 8; break;
      }
      case 5: case 6: {
        if (end - pos < 4) return `length beyond the end`;
        const n = u32(b, pos); pos += 4;
        if (n > end - pos) return `${tag === 5 ? 'bytes' : 'string'} of ${n} runs beyond the end`;
        if (tag === 6) { const e = checkUtf8(b, pos, pos + n); if (e) return e; }
        pos += n; break;
      }
      case 7: case 8: {
        if (end - pos < 4) return `count beyond the end`;
        container = u32(b, pos); pos += 4;
        if (container * (tag === 8 ? 5 : 1) > end - pos) return `count ${container} larger than the bytes left`;
        break;
      }
      default: return `unknown value tag 0x${tag.toString(16)} at ${pos - 1}`;
    }
    if (depth > 0) remaining[depth - 1]!--;
    if (container > 0) { remaining[depth] = container; isMap[depth] = tag === 8; keyStart[depth] = -1; depth++; }
    while (depth > 0 && remaining[depth - 1] === 0) depth--;
    if (depth === 0) return pos === end ? null : `${end - pos} trailing bytes after the value`;
  }
}

const u32 = (b: Uint8Array, p: number): number => (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24)) >>> 0;
const F = new Float64Array(1), FB = new Uint8Array(F.buffer);
function f64(b: Uint8Array, p: number): number { for (let i = 0; i < 8; i++) FB[i] = b[p + i]!; return F[0]!; }

function compare(b: Uint8Array, a0: number, a1: number, b0: number, b1: number): number {
  const n = Math.min(a1 - a0, b1 - b0);
  for (let i = 0; i < n; i++) { const d = b[a0 + i]! - b[b0 + i]!; if (d) return d; }
  return (a1 - a0) - (b1 - b0);
}

/** Strict UTF-8 (no overlongs, no surrogates, ≤ U+10FFFF), as TextDecoder's fatal mode. */
function checkUtf8(b: Uint8Array, i: number, end: number): string | null {
  while (i < end) {
    const c = b[i]!;
    if (c < 0x80) { i++; continue; }
    // (multi-byte sequence)
    let n: number, min: number, cp: number;
    if (c >= 0xc2 && c <= 0xdf) { n = 1; min = 0x80; cp = c & 0x1f; }
    else if (c >= 0xe0 && c <= 0xef) { n = 2; min = 0x800; cp = c & 0x0f; }
    else if (c >= 0xf0 && c <= 0xf4) { n = 3; min = 0x10000; cp = c & 0x07; }
    else return `invalid UTF-8 at ${i}`;
    if (i + n >= end) return `truncated UTF-8 at ${i}`;
    for (let k = 1; k <= n; k++) {
      const d = b[i + k]!;
      if ((d & 0xc0) !== 0x80) return `invalid UTF-8 at ${i}`;
      cp = (cp << 6) | (d & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return `invalid UTF-8 at ${i}`;
    i += n + 1;
  }
  return null;
}
