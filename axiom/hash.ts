// BLAKE3 for Axiom. The fast path is hash-wasm's WebAssembly BLAKE3 (~10x @noble/hashes here);
// @noble/hashes is the reference the fast path is tested against, and the fallback before
// initAxiom() has run (so nothing is ever wrong, only slower).
import { blake3 as nobleBlake3 } from '@noble/hashes/blake3.js';
import { createBLAKE3 } from 'hash-wasm';

interface WasmHasher { init(): unknown; update(d: Uint8Array): unknown; digest(f: 'binary'): Uint8Array }
let wasm: WasmHasher | null = null;
let loading: Promise<void> | null = null;

/** Loads the WebAssembly BLAKE3 once. Safe to call many times. */
export function initAxiom(): Promise<void> {
  loading ??= createBLAKE3().then((h) => { wasm = h as unknown as WasmHasher; }).catch(() => { /* stay on the reference */ });
  return loading;
}

/** True once the WebAssembly fast path is in use. */
export const fastHashReady = (): boolean => wasm !== null;

/** BLAKE3-256 of `data`. */
export function blake3(data: Uint8Array): Uint8Array {
  if (wasm) { wasm.init(); wasm.update(data); return wasm.digest('binary'); }
  return nobleBlake3(data);
}

/** BLAKE3-256 of several parts, as if concatenated. */
export function blake3Parts(parts: Uint8Array[]): Uint8Array {
  if (wasm) { wasm.init(); for (const p of parts) wasm.update(p); return wasm.digest('binary'); }
  const h = nobleBlake3.create();
  for (const p of parts) h.update(p);
  return h.digest();
}

/** The reference implementation, for tests and cross-checks. */
export const blake3Reference = (data: Uint8Array): Uint8Array => nobleBlake3(data);

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
export function toHex(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += HEX[b[i]!];
  return s;
}
export function fromHex(s: string): Uint8Array {
  const out = new Uint8Array(s.length >> 1);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(i * 2, i * 2 + 2), 16);
  return out;
}
