// Hashing for a flash, on its own thread so the main thread keeps the disk busy: BLAKE3 of the
// written bytes (hash-wasm, ~1 GB/s) and the bmap's per-range SHA-256 / SHA-1 (node:crypto, native).
// Chunks arrive in order as (buffer index, offset, length) into SharedArrayBuffers the main thread
// owns, each naming the open hash streams it feeds; each is acknowledged once hashed so the main
// thread can reuse the buffer. Messages are handled strictly in order, which streaming hashes need.
// Plain JS (a worker must not depend on a TS loader); only hash-wasm's BLAKE3 build is loaded, and
// only when asked for: the full bundle doubles the worker's start-up cost.
import { parentPort, workerData } from 'node:worker_threads';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
let blake3 = null;
const loadBlake3 = () => (blake3 ??= require('hash-wasm/dist/blake3.umd.min.js').createBLAKE3());
if (workerData?.preload?.includes('blake3')) void loadBlake3();

/** Open streams: id -> { update(u8), digest(): hex }. */
const streams = new Map();
let views = [];

async function handle(m) {
  if (m.t === 'buffers') views = m.sabs.map((s) => new Uint8Array(s));
  else if (m.t === 'open') {
    if (m.alg === 'blake3') {
      const h = await loadBlake3();
      // One hash-wasm instance: a BLAKE3 stream is never open twice at once.
      h.init();
      streams.set(m.id, { update: (d) => h.update(d), digest: () => h.digest('hex') });
    } else {
      const h = createHash(m.alg);
      streams.set(m.id, { update: (d) => h.update(d), digest: () => h.digest('hex') });
    }
  } else if (m.t === 'data') {
    const d = views[m.buf].subarray(m.off, m.off + m.len);
    for (const id of m.streams) streams.get(id).update(d);
    parentPort.postMessage({ t: 'done', id: m.id });
  } else if (m.t === 'digest') {
    const s = streams.get(m.stream);
    streams.delete(m.stream);
    parentPort.postMessage({ t: 'digest', id: m.id, hex: s.digest() });
  }
}

let chain = Promise.resolve();
parentPort.on('message', (m) => {
  chain = chain.then(() => handle(m)).catch((e) => parentPort.postMessage({ t: 'error', message: String(e?.stack ?? e) }));
});
// Up: the main thread may now hand hashing here instead of doing it itself.
parentPort.postMessage({ t: 'ready' });
