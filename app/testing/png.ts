// Minimal PNG for tests: decode Chromium's screenshots (8-bit RGB/RGBA, non-interlaced, any
// filter) and encode RGBA for diff images a person can open. node:zlib does the compression.
import { deflateSync, inflateSync } from 'node:zlib';

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) { let c = n; for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1; t[n] = c >>> 0; }
  return t;
})();
function crc32(b: Uint8Array): number { let c = 0xffffffff; for (const x of b) c = CRC_TABLE[(c ^ x) & 255]! ^ (c >>> 8); return (c ^ 0xffffffff) >>> 0; }

export interface Image { w: number; h: number; rgba: Uint8Array }

export function decodePng(buf: Uint8Array): Image {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let p = 8, w = 0, h = 0, ct = 0;
  const idat: Uint8Array[] = [];
  while (p < buf.length) {
    const len = dv.getUint32(p); const type = String.fromCharCode(...buf.subarray(p + 4, p + 8));
    const body = buf.subarray(p + 8, p + 8 + len);
    if (type === 'IHDR') {
      w = dv.getUint32(p + 8); h = dv.getUint32(p + 12); ct = body[9]!;
      if (body[8] !== 8 || body[12] !== 0 || (ct !== 2 && ct !== 6)) throw new Error(`unsupported PNG (depth ${body[8]}, color type ${ct}, interlace ${body[12]})`);
    } else if (type === 'IDAT') idat.push(body);
    else if (type === 'IEND') break;
    p += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const bpp = ct === 6 ? 4 : 3, stride = w * bpp;
  const out = new Uint8Array(w * h * 4);
  const prev = new Uint8Array(stride), cur = new Uint8Array(stride);
  for (let y = 0; y < h; y++) {
    const f = raw[y * (stride + 1)]!;
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let i = 0; i < stride; i++) {
      const a = i >= bpp ? cur[i - bpp]! : 0, b = prev[i]!, c = i >= bpp ? prev[i - bpp]! : 0;
      let v = line[i]!;
      if (f === 1) v += a; else if (f === 2) v += b; else if (f === 3) v += (a + b) >> 1;
      else if (f === 4) { const pp = a + b - c, pa = Math.abs(pp - a), pb = Math.abs(pp - b), pc = Math.abs(pp - c); v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c; }
      cur[i] = v & 255;
    }
    for (let x = 0; x < w; x++) {
      const o = (y * w + x) * 4;
      out[o] = cur[x * bpp]!; out[o + 1] = cur[x * bpp + 1]!; out[o + 2] = cur[x * bpp + 2]!; out[o + 3] = bpp === 4 ? cur[x * bpp + 3]! : 255;
    }
    prev.set(cur);
  }
  return { w, h, rgba: out };
}

export function encodePng(img: Image): Uint8Array {
  const chunk = (type: string, body: Uint8Array) => {
    const b = new Uint8Array(12 + body.length); const dv = new DataView(b.buffer);
    dv.setUint32(0, body.length); b.set(Buffer.from(type, 'latin1'), 4); b.set(body, 8);
    dv.setUint32(8 + body.length, crc32(b.subarray(4, 8 + body.length)));
    return b;
  };
  const ihdr = new Uint8Array(13); const dv = new DataView(ihdr.buffer);
  dv.setUint32(0, img.w); dv.setUint32(4, img.h); ihdr[8] = 8; ihdr[9] = 6;
  const raw = new Uint8Array(img.h * (img.w * 4 + 1));
  for (let y = 0; y < img.h; y++) raw.set(img.rgba.subarray(y * img.w * 4, (y + 1) * img.w * 4), y * (img.w * 4 + 1) + 1);
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', new Uint8Array(0))]);
}

/** Pixels whose largest channel difference exceeds `tolerance`, and the largest difference. */
export function compareImages(a: Image, b: Image, tolerance: number): { differing: number; maxDelta: number; first: [number, number] | null } {
  if (a.w !== b.w || a.h !== b.h) return { differing: a.w * a.h, maxDelta: 255, first: [0, 0] };
  let differing = 0, maxDelta = 0, first: [number, number] | null = null;
  for (let i = 0; i < a.w * a.h; i++) {
    let d = 0;
    for (let c = 0; c < 3; c++) d = Math.max(d, Math.abs(a.rgba[i * 4 + c]! - b.rgba[i * 4 + c]!));
    if (d > maxDelta) maxDelta = d;
    if (d > tolerance) { differing++; first ??= [i % a.w, Math.floor(i / a.w)]; }
  }
  return { differing, maxDelta, first };
}
