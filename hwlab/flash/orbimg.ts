// Flashing a signed Orbital OS image (.orbimg, docs/image.md) directly: the header, manifest,
// signature and trust are checked (os-image/image's openImage) before anything is opened for
// writing; one part is chosen and its bytes are read straight out of the .orbimg file as a raw,
// seekable source, so the flash pipeline (compare, write, sync, byte-exact read-back, skip) runs
// unchanged; the part's BLAKE3 from the signed manifest is checked by the flash's own hash pass
// before the head of the disk is written (see flash.ts, ImageHasher's `expect`). A stream (a pipe,
// or a compressed .orbimg) is checked the same way as its header arrives (streamOrbimg).
import { closeSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { ImageError, IMAGE_MAGIC, openImage, headerManifestLength, checkSignedManifest, type Part } from '../../os-image/image/image.ts';
import { LabError, type LabErrorCode, type Blame } from '../errors.ts';
import type { Source } from './source.ts';
import type { Manifest } from '../../os-image/image/image.ts';

export interface OrbimgInfo {
  /** BLAKE3 of the manifest (the image's id). */
  id: string;
  name: string;
  version: string;
  /** The signer's Ed25519 public key, hex. */
  key: string;
  part: { name: string; size: number; blake3: string; offset: number };
  parts: string[];
}

/** True when a regular file starts with the .orbimg magic (a pipe is never read here: its bytes are the flash's). */
export function isOrbimg(path: string): boolean {
  let fd: number;
  try { if (!statSync(path).isFile()) return false; fd = openSync(path, 'r'); } catch { return false; }
  try {
    const b = Buffer.alloc(8);
    return readSync(fd, b, 0, 8, 0) === 8 && b.toString('latin1') === IMAGE_MAGIC;
  } catch { return false; } finally { closeSync(fd); }
}

const HEX_KEY = /^[0-9a-fA-F]{64}$/;

/**
 * A trusted key as `orbital-os image keygen` writes it: a KEY.pub file holding the hex public key,
 * or the 64 hex digits themselves. Returns the key or a message saying what is wrong.
 */
export function readTrustedKey(spec: string, baseDir = process.cwd()): { key: Uint8Array } | { error: string } {
  if (HEX_KEY.test(spec)) return { key: Uint8Array.from(Buffer.from(spec, 'hex')) };
  const p = resolve(baseDir, spec);
  let text: string;
  try { text = readFileSync(p, 'utf8').trim(); } catch (e) { return { error: `cannot read key file ${p}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` }; }
  if (!HEX_KEY.test(text)) return { error: `${p} is not a public key file (64 hex digits, as \`orbital-os image keygen\` writes KEY.pub)${text.includes('PRIVATE KEY') ? '; this is the private key: trust KEY.pub' : ''}` };
  return { key: Uint8Array.from(Buffer.from(text, 'hex')) };
}

/** Which ImageError means what to a person at the lab, and whose failure it is (docs/lab.md, "Exit codes"). */
const IMAGE_CODES: Record<ImageError['code'], [LabErrorCode, Blame]> = {
  // The person asked for an image this lab does not trust: trust its key or pick another image.
  'untrusted-key': ['untrusted-key', 'usage'],
  // A damaged or altered file: the lab was handed a bad artefact (as with a corrupt .xz).
  'bad-signature': ['bad-signature', 'lab'],
  'truncated': ['image-truncated', 'lab'],
  'trailing-bytes': ['bad-image', 'lab'],
  'bad-manifest': ['bad-image', 'lab'],
  'unknown-version': ['bad-image', 'lab'],
  'not-an-image': ['bad-image', 'lab'],
  'part-mismatch': ['checksum-mismatch', 'lab'],
  'io': ['source-missing', 'usage'],
};

export function fromImageError(e: ImageError): LabError {
  const [code, blame] = IMAGE_CODES[e.code];
  return new LabError('bad-input', code, e.message, blame, { imageError: e.code });
}

/**
 * The part to flash: `want` when given, else the one part named `disk` or ending in `.img`.
 * Unknown or ambiguous: a usage error listing the parts.
 */
export function choosePart(parts: Part[], want: string | undefined, path: string): Part {
  const list = parts.map((p) => `${p.name} (${p.size} bytes)`).join(', ') || '(none)';
  if (want !== undefined) {
    const p = parts.find((x) => x.name === want);
    if (!p) throw new LabError('bad-input', 'unknown-part', `${path} has no part '${want}'; its parts: ${list}`);
    return p;
  }
  const disks = parts.filter((p) => p.name === 'disk' || p.name.endsWith('.img'));
  if (disks.length === 1) return disks[0]!;
  throw new LabError('bad-input', 'unknown-part', disks.length === 0
    ? `${path} has no disk image part (named 'disk' or ending in '.img'); pick one with --part NAME from: ${list}`
    : `${path} has ${disks.length} disk image parts (${disks.map((p) => p.name).join(', ')}); pick one with --part NAME from: ${list}`);
}

/**
 * Checks the image (magic, manifest, signature, trusted key, file length) and opens the chosen part
 * as a raw seekable source. Throws a LabError; nothing has been written when it does.
 */
export function openOrbimg(path: string, trusted: Uint8Array[], want?: string): { source: Source; info: OrbimgInfo } {
  needTrust(path, trusted);
  let img;
  try { img = openImage(path, trusted); } catch (e) { if (e instanceof ImageError) throw fromImageError(e); throw e; }
  const info = infoOf(img.manifest, img.id, img.partsOffset, want, path);
  return { source: partSource(path, info.part.offset, info.part.size), info };
}

function needTrust(path: string, trusted: Uint8Array[]): void {
  if (trusted.length === 0) throw new LabError('bad-input', 'untrusted-key', `${path} is a signed Orbital image and no key is trusted here: give --trust KEY.pub (written by \`orbital-os image keygen\`) or list it under trust: in the lab file`);
}

function infoOf(manifest: Manifest, id: string, partsOffset: number, want: string | undefined, path: string): OrbimgInfo {
  const part = choosePart(manifest.parts, want, path);
  let offset = partsOffset;
  for (const p of manifest.parts) { if (p === part) break; offset += p.size; }
  return {
    id, name: manifest.name, version: manifest.version, key: Buffer.from(manifest.key).toString('hex'),
    part: { name: part.name, size: part.size, blake3: Buffer.from(part.hash).toString('hex'), offset },
    parts: manifest.parts.map((p) => p.name),
  };
}

/**
 * A stream source (a pipe, or what a decompressor yields) that may hold a signed image: when its
 * first bytes are the .orbimg magic, its header, manifest, signature and key are checked as they
 * arrive (before this returns: nothing is written before), and the returned source yields only the
 * chosen part's bytes - then reads the rest of the stream to the end, failing with image-truncated
 * or bad-image (trailing bytes) if it is not exactly as long as the manifest says. The part's
 * BLAKE3 is the flash's to check, as for a file. A stream that is not an image is handed back as it
 * was (its first bytes replayed); `info` is then null.
 */
export async function streamOrbimg(src: Source, trusted: Uint8Array[], want: string | undefined, name: string): Promise<{ source: Source; info: OrbimgInfo | null }> {
  const it = src.stream()[Symbol.asyncIterator]();
  let held: Buffer[] = [];
  let heldLen = 0;
  let ended = false;
  /** Pulls from the stream until `n` bytes are held (false: it ended first). */
  const need = async (n: number): Promise<boolean> => {
    while (heldLen < n && !ended) {
      const r = await it.next();
      if (r.done) ended = true; else { held.push(r.value); heldLen += r.value.length; }
    }
    return heldLen >= n;
  };
  const take = (n: number): Buffer => {
    const all = held.length === 1 ? held[0]! : Buffer.concat(held);
    held = all.length > n ? [all.subarray(n)] : [];
    heldLen = all.length - n;
    return all.subarray(0, n);
  };
  /** The held bytes, then the rest of the stream. */
  async function* rest(): AsyncGenerator<Buffer> {
    for (const b of held.splice(0)) yield b;
    heldLen = 0;
    if (ended) return;
    for (;;) { const r = await it.next(); if (r.done) return; yield r.value; }
  }
  const asIs: Source = { ...src, stream: rest };
  try {
    if (!(await need(8)) || Buffer.concat(held).subarray(0, 8).toString('latin1') !== IMAGE_MAGIC) return { source: asIs, info: null };
    needTrust(name, trusted);
    const truncated = () => new ImageError('truncated', `${name}: the stream ends inside its manifest or signature`);
    if (!(await need(16))) throw truncated();
    const m = headerManifestLength(name, take(16));
    if (!(await need(m + 64))) throw truncated();
    const mbytes = new Uint8Array(take(m));
    const sig = new Uint8Array(take(64));
    const { manifest, id } = checkSignedManifest(name, mbytes, sig, trusted);
    const info = infoOf(manifest, id, 16 + m + 64, want, name);
    const before = info.part.offset - (16 + m + 64);
    const after = manifest.parts.reduce((n, p) => n + p.size, 0) - before - info.part.size;
    const body = rest();
    async function* part(): AsyncGenerator<Buffer> {
      let pos = 0; // bytes of the parts area seen
      const end = before + info.part.size;
      for await (const b of body) {
        const lo = Math.max(0, before - pos), hi = Math.min(b.length, end - pos);
        if (lo < hi) yield b.subarray(lo, hi);
        pos += b.length;
        if (pos > end + after) throw fromImageError(new ImageError('trailing-bytes', `${name}: bytes follow the last part (the stream is longer than its manifest says)`));
      }
      if (pos < end + after) throw fromImageError(new ImageError('truncated', `${name}: the stream ends ${end + after - pos} bytes short of its last part`));
    }
    return { source: { ...src, format: 'orbimg', storedSize: null, seekable: false, stream: part }, info };
  } catch (e) {
    await src.close();
    if (e instanceof ImageError) throw fromImageError(e);
    throw e;
  }
}

/** Bytes [offset, offset+size) of a file, as a raw image source. */
function partSource(path: string, offset: number, size: number): Source {
  let fd: number | null = null;
  let consumed = 0;
  // Read on this thread, not libuv's (as openSource does): its threads are the target's.
  const readAt = async (buf: Uint8Array, pos: number): Promise<number> => {
    fd ??= openSync(path, 'r');
    const want = Math.max(0, Math.min(buf.length, size - pos));
    let got = 0;
    while (got < want) {
      const n = readSync(fd, buf, got, want - got, offset + pos + got);
      if (n === 0) break;
      got += n;
    }
    consumed = Math.max(consumed, pos + got);
    return got;
  };
  return {
    path,
    format: 'orbimg',
    storedSize: size,
    seekable: true,
    consumed: () => consumed,
    readAt,
    async *stream() {
      const buf = Buffer.alloc(1 << 20);
      for (let pos = 0; pos < size;) {
        const n = await readAt(buf, pos);
        if (n === 0) throw new LabError('bad-input', 'image-truncated', `${path}: part ends at ${pos} of ${size} bytes`, 'lab');
        yield Buffer.from(buf.subarray(0, n));
        pos += n;
      }
    },
    async close() { if (fd !== null) { try { closeSync(fd); } catch { /* closed */ } fd = null; } },
  };
}
