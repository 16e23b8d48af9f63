// Orbital OS image files (docs/image.md): a signed, content-addressed manifest and the parts'
// bytes. Building and reading both stream the parts; nothing holds a whole part in memory.
import { createPublicKey, generateKeyPairSync, sign as edSign, verify as edVerify, createPrivateKey, type KeyObject } from 'node:crypto';
import { closeSync, fstatSync, fsyncSync, openSync, readSync, renameSync, writeSync } from 'node:fs';
import { createBLAKE3 } from 'hash-wasm';
import { blake3, decodeValue, encodeValue, getBytes, getInt, getStr, isMap, toHex, type Value } from '../../axiom/index.ts';

export const IMAGE_MAGIC = 'ORBIMAGE';
export const IMAGE_VERSION = 1;
export const MAX_MANIFEST = 1 << 20;
const CHUNK = 1 << 20;

export interface Part { name: string; size: number; hash: Uint8Array }
export interface Manifest { format: 1; name: string; version: string; created: number; key: Uint8Array; parts: Part[] }

export class ImageError extends Error {
  readonly kind = 'bad-input' as const;
  constructor(readonly code: 'not-an-image' | 'unknown-version' | 'bad-manifest' | 'bad-signature' | 'untrusted-key' | 'part-mismatch' | 'truncated' | 'trailing-bytes' | 'io', message: string) { super(message); this.name = 'ImageError'; }
}

export interface KeyPair { publicKey: Uint8Array; privateKey: KeyObject }
export function generateKeys(): KeyPair {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  return { publicKey: rawPublic(publicKey), privateKey };
}
export function rawPublic(k: KeyObject): Uint8Array { return new Uint8Array(Buffer.from(k.export({ format: 'jwk' }).x!, 'base64url')); }
export function privateKeyFromPem(pem: string): KeyObject { return createPrivateKey(pem); }
function publicKeyObject(raw: Uint8Array): KeyObject { return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(raw).toString('base64url') }, format: 'jwk' }); }

export function manifestValue(m: Manifest): Value {
  return { format: m.format, name: m.name, version: m.version, created: m.created, key: m.key, parts: m.parts.map((p) => ({ name: p.name, size: p.size, hash: p.hash })) };
}

export function parseManifest(bytes: Uint8Array): Manifest {
  const d = decodeValue(bytes);
  if (!d.ok) throw new ImageError('bad-manifest', `the manifest is not a canonical value: ${d.error.message}`);
  const v = d.value;
  if (!isMap(v)) throw new ImageError('bad-manifest', 'the manifest is not a map');
  const need = <T>(x: T | undefined, what: string): T => { if (x === undefined) throw new ImageError('bad-manifest', `the manifest has no valid '${what}'`); return x; };
  const format = need(getInt(v, 'format'), 'format');
  if (format !== 1) throw new ImageError('unknown-version', `manifest format ${format} is not supported (this reader knows 1)`);
  const name = need(getStr(v, 'name'), 'name'), version = need(getStr(v, 'version'), 'version');
  const key = need(getBytes(v, 'key'), 'key');
  if (key.length !== 32) throw new ImageError('bad-manifest', `'key' must be 32 bytes, is ${key.length}`);
  if (!Array.isArray(v.parts)) throw new ImageError('bad-manifest', "the manifest has no 'parts' list");
  const seen = new Set<string>();
  const parts = v.parts.map((p, i) => {
    if (!isMap(p)) throw new ImageError('bad-manifest', `part ${i} is not a map`);
    const pn = need(getStr(p, 'name'), `parts[${i}].name`), size = need(getInt(p, 'size'), `parts[${i}].size`), hash = need(getBytes(p, 'hash'), `parts[${i}].hash`);
    if (!pn || pn.length > 64 || seen.has(pn)) throw new ImageError('bad-manifest', `part ${i}: name '${pn}' is empty, too long or repeated`);
    if (size < 0 || hash.length !== 32) throw new ImageError('bad-manifest', `part '${pn}': bad size or hash`);
    seen.add(pn);
    return { name: pn, size, hash };
  });
  if (!name || name.length > 64 || !version || version.length > 64) throw new ImageError('bad-manifest', 'name and version must be 1..64 bytes');
  return { format: 1, name, version, created: need(getInt(v, 'created'), 'created'), key, parts };
}

async function hashFile(path: string): Promise<{ size: number; hash: Uint8Array }> {
  const h = await createBLAKE3();
  const fd = openSync(path, 'r');
  try {
    const buf = new Uint8Array(CHUNK);
    let size = 0, n: number;
    while ((n = readSync(fd, buf, 0, CHUNK, size)) > 0) { h.update(buf.subarray(0, n)); size += n; }
    return { size, hash: h.digest('binary') };
  } finally { closeSync(fd); }
}

/** Builds an image file from part files, signed with `key`. Written to a temporary file, fsynced, then renamed. */
export async function buildImage(out: string, spec: { name: string; version: string; created: number; parts: { name: string; path: string }[] }, key: KeyPair): Promise<{ id: string; manifest: Manifest }> {
  const parts: Part[] = [];
  for (const p of spec.parts) parts.push({ name: p.name, ...(await hashFile(p.path)) });
  const manifest: Manifest = { format: 1, name: spec.name, version: spec.version, created: spec.created, key: key.publicKey, parts };
  parseManifest(encodeValue(manifestValue(manifest))); // the same checks a reader makes
  const mbytes = encodeValue(manifestValue(manifest));
  const sig = new Uint8Array(edSign(null, mbytes, key.privateKey));
  const tmp = `${out}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    const head = new Uint8Array(16);
    head.set(new TextEncoder().encode(IMAGE_MAGIC));
    const dv = new DataView(head.buffer);
    dv.setUint16(8, IMAGE_VERSION, true); dv.setUint32(12, mbytes.length, true);
    let pos = 0;
    const put = (b: Uint8Array) => { let o = 0; while (o < b.length) o += writeSync(fd, b, o, b.length - o, pos + o); pos += b.length; };
    put(head); put(mbytes); put(sig);
    const buf = new Uint8Array(CHUNK);
    for (const p of spec.parts) {
      const src = openSync(p.path, 'r');
      try { let n: number, at = 0; while ((n = readSync(src, buf, 0, CHUNK, at)) > 0) { put(buf.subarray(0, n)); at += n; } } finally { closeSync(src); }
    }
    fsyncSync(fd);
  } finally { closeSync(fd); }
  renameSync(tmp, out);
  return { id: toHex(blake3(mbytes)), manifest };
}

export interface OpenedImage { manifest: Manifest; manifestBytes: Uint8Array; signature: Uint8Array; id: string; partsOffset: number; fileSize: number }

/** The manifest length M from an image's first 16 bytes (magic, version, M); throws an ImageError. */
export function headerManifestLength(path: string, head: Uint8Array): number {
  if (head.length < 16 || new TextDecoder().decode(head.subarray(0, 8)) !== IMAGE_MAGIC) throw new ImageError('not-an-image', `${path} is not an Orbital image (no ORBIMAGE header)`);
  const dv = new DataView(head.buffer, head.byteOffset, 16);
  if (dv.getUint16(8, true) !== IMAGE_VERSION) throw new ImageError('unknown-version', `${path}: image format ${dv.getUint16(8, true)} is not supported (this reader knows ${IMAGE_VERSION})`);
  const m = dv.getUint32(12, true);
  if (m > MAX_MANIFEST) throw new ImageError('bad-manifest', `${path}: manifest length ${m} exceeds ${MAX_MANIFEST}`);
  return m;
}

/** Checks a manifest, its signature and that its key is trusted; throws an ImageError. */
export function checkSignedManifest(path: string, mbytes: Uint8Array, sig: Uint8Array, trusted: Uint8Array[]): { manifest: Manifest; id: string } {
  const manifest = parseManifest(mbytes);
  if (!edVerify(null, mbytes, publicKeyObject(manifest.key), sig)) throw new ImageError('bad-signature', `${path}: the signature does not verify: the manifest was changed or signed by another key`);
  if (!trusted.some((k) => k.length === 32 && k.every((b, i) => b === manifest.key[i]))) throw new ImageError('untrusted-key', `${path}: signed by key ${toHex(manifest.key).slice(0, 16)}…, which is not trusted here`);
  return { manifest, id: toHex(blake3(mbytes)) };
}

/** Reads and checks an image's header, manifest and signature (not yet the parts). */
export function openImage(path: string, trusted: Uint8Array[]): OpenedImage {
  let fd: number;
  try { fd = openSync(path, 'r'); } catch (e) { throw new ImageError('io', `${path}: ${(e as Error).message}`); }
  try {
    const size = fstatSync(fd).size;
    const head = new Uint8Array(16);
    const m = headerManifestLength(path, head.subarray(0, readSync(fd, head, 0, 16, 0)));
    if (size < 16 + m + 64) throw new ImageError('truncated', `${path}: the file ends inside its manifest or signature`);
    const mbytes = new Uint8Array(m), sig = new Uint8Array(64);
    readSync(fd, mbytes, 0, m, 16); readSync(fd, sig, 0, 64, 16 + m);
    const { manifest, id } = checkSignedManifest(path, mbytes, sig, trusted);
    const total = 16 + m + 64 + manifest.parts.reduce((n, p) => n + p.size, 0);
    if (size < total) throw new ImageError('truncated', `${path}: ${total - size} bytes of parts are missing`);
    if (size > total) throw new ImageError('trailing-bytes', `${path}: ${size - total} bytes follow the last part`);
    return { manifest, manifestBytes: mbytes, signature: sig, id, partsOffset: 16 + m + 64, fileSize: size };
  } finally { closeSync(fd); }
}

/**
 * Streams each part to `sink` (chunk by chunk) while hashing it; throws part-mismatch before the
 * part's last chunk is confirmed when its hash is wrong (sink.end(false)).
 */
export async function streamParts(path: string, img: OpenedImage, sink: (part: Part) => { write(b: Uint8Array): void; end(ok: boolean): void }): Promise<void> {
  const fd = openSync(path, 'r');
  try {
    const buf = new Uint8Array(CHUNK);
    let at = img.partsOffset;
    for (const p of img.manifest.parts) {
      const h = await createBLAKE3();
      const s = sink(p);
      let left = p.size;
      while (left > 0) {
        const n = readSync(fd, buf, 0, Math.min(CHUNK, left), at);
        if (n <= 0) { s.end(false); throw new ImageError('truncated', `${path}: part '${p.name}' is cut short`); }
        const chunk = buf.subarray(0, n);
        h.update(chunk); s.write(chunk);
        at += n; left -= n;
      }
      const got = h.digest('binary');
      const ok = got.every((b, i) => b === p.hash[i]);
      s.end(ok);
      if (!ok) throw new ImageError('part-mismatch', `${path}: part '${p.name}' does not match its hash in the manifest (the file is damaged or was altered)`);
    }
  } finally { closeSync(fd); }
}

/** Full verification: header, signature, trust, and every part's hash. */
export async function verifyImage(path: string, trusted: Uint8Array[]): Promise<OpenedImage> {
  const img = openImage(path, trusted);
  await streamParts(path, img, () => ({ write() {}, end() {} }));
  return img;
}
