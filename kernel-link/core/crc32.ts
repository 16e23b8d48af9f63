// CRC-32 (IEEE 802.3 / zlib: reflected polynomial 0xEDB88320, init and final XOR 0xFFFFFFFF),
// the checksum of docs/kernel-link.md section 2. Slicing-by-4 table lookup: pure JS, no Node.
// Node callers may inject zlib.crc32 (native) where speed matters; both give identical results.

const T = new Uint32Array(256 * 4);
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  T[n] = c >>> 0;
}
for (let n = 0; n < 256; n++) {
  let c = T[n]!;
  for (let t = 1; t < 4; t++) { c = T[c & 0xff]! ^ (c >>> 8); T[t * 256 + n] = c >>> 0; }
}

/** A CRC-32 function: `crc(data, previous)` continues a CRC over concatenated data. */
export type Crc32 = (data: Uint8Array, previous?: number) => number;

export const crc32: Crc32 = (data, previous = 0) => {
  let c = ~previous >>> 0;
  let i = 0;
  const n = data.length;
  for (; i + 4 <= n; i += 4) {
    c ^= data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24);
    c = T[768 + (c & 0xff)]! ^ T[512 + ((c >>> 8) & 0xff)]! ^ T[256 + ((c >>> 16) & 0xff)]! ^ T[c >>> 24]!;
  }
  for (; i < n; i++) c = T[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
};
