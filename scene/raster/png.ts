// A minimal PNG encoder for rasters (RGBA, 8 bits, no filter, stored deflate blocks): golden images
// people can open, byte-identical in every runtime. Not small files — goldens are small images.
import type { Raster } from './raster.ts';

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(parts: Uint8Array[]): number {
  let c = 0xffffffff;
  for (const b of parts) for (let i = 0; i < b.length; i++) c = CRC_TABLE[(c ^ b[i]!) & 255]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function adler32(b: Uint8Array): number {
  let a = 1, s = 0;
  for (let i = 0; i < b.length; i++) { a = (a + b[i]!) % 65521; s = (s + a) % 65521; }
  return ((s << 16) | a) >>> 0;
}

const u32 = (v: number): Uint8Array => new Uint8Array([v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255]);
const ascii = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));

function chunk(type: string, data: Uint8Array): Uint8Array[] {
  const t = ascii(type);
  return [u32(data.length), t, data, u32(crc32([t, data]))];
}

export function encodePNG(r: Raster): Uint8Array {
  const row = r.w * 4 + 1;
  const raw = new Uint8Array(row * r.h);
  for (let y = 0; y < r.h; y++) raw.set(r.rgba.subarray(y * r.w * 4, (y + 1) * r.w * 4), y * row + 1);
  // zlib stream of stored blocks (≤ 65535 bytes each).
  const blocks = Math.max(1, Math.ceil(raw.length / 65535));
  const z = new Uint8Array(2 + raw.length + blocks * 5 + 4);
  z[0] = 0x78; z[1] = 0x01;
  let o = 2;
  for (let i = 0; i < blocks; i++) {
    const start = i * 65535, len = Math.min(65535, raw.length - start);
    z[o++] = i === blocks - 1 ? 1 : 0;
    z[o++] = len & 255; z[o++] = len >>> 8; z[o++] = ~len & 255; z[o++] = (~len >>> 8) & 255;
    z.set(raw.subarray(start, start + len), o); o += len;
  }
  z.set(u32(adler32(raw)), o);
  const ihdr = new Uint8Array(13);
  ihdr.set(u32(r.w), 0); ihdr.set(u32(r.h), 4); ihdr[8] = 8; ihdr[9] = 6;
  const parts = [new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]), ...chunk('IHDR', ihdr), ...chunk('IDAT', z), ...chunk('IEND', new Uint8Array())];
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let p = 0;
  for (const x of parts) { out.set(x, p); p += x.length; }
  return out;
}
