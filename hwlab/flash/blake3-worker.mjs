// BLAKE3 of a flash's written bytes, on its own thread so hashing (~1 GB/s in WASM) runs beside
// the main thread's checksums, fingerprints and I/O. Chunks arrive in order as (buffer index,
// offset, length) into SharedArrayBuffers the main thread owns; each is acknowledged once hashed
// so the main thread can reuse the buffer. Plain JS (a worker must not depend on a TS loader), and
// only hash-wasm's BLAKE3 build is loaded: the full bundle doubles the worker's start-up cost.
import { parentPort } from 'node:worker_threads';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { createBLAKE3 } = require('hash-wasm/dist/blake3.umd.min.js');
const ready = createBLAKE3().then((h) => { h.init(); return h; });
let views = [];
parentPort.on('message', async (m) => {
  const h = await ready;
  if (m.t === 'buffers') views = m.sabs.map((s) => new Uint8Array(s));
  else if (m.t === 'data') {
    h.update(views[m.buf].subarray(m.off, m.off + m.len));
    parentPort.postMessage({ t: 'done', id: m.id });
  } else if (m.t === 'digest') {
    parentPort.postMessage({ t: 'digest', hex: h.digest('hex') });
    h.init();
  }
});
