// BLAKE3 of a flash's written bytes, on its own thread so hashing (~1 GB/s in WASM) runs beside
// the main thread's checksums, fingerprints and I/O. Chunks arrive in order as (buffer index,
// offset, length) into SharedArrayBuffers the main thread owns; each is acknowledged once hashed
// so the main thread can reuse the buffer. Plain JS: a worker must not depend on a TS loader.
import { parentPort, workerData } from 'node:worker_threads';
import { createBLAKE3 } from 'hash-wasm';

const views = workerData.sabs.map((s) => new Uint8Array(s));
const h = await createBLAKE3();
h.init();
parentPort.on('message', (m) => {
  if (m.t === 'data') {
    h.update(views[m.buf].subarray(m.off, m.off + m.len));
    parentPort.postMessage({ t: 'done', id: m.id });
  } else if (m.t === 'digest') {
    parentPort.postMessage({ t: 'digest', hex: h.digest('hex') });
    h.init();
  }
});
parentPort.postMessage({ t: 'ready' });
