// Worker for verifyAndReplayFile: checks every record's stored hash against BLAKE3 of its entry,
// on the second core, while the main thread checks the chain and replays. Plain JavaScript, so a
// worker starts without a TypeScript loader. Record layout: docs/axiom.md section 9.
import { closeSync, openSync, readSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { createBLAKE3 } from 'hash-wasm';

const HEADER = 64, HASH = 32, MAX_ENTRY = 64 + 1_048_576, CHUNK = 1 << 20;
const u32 = (b, p) => (b[p] | (b[p + 1] << 8) | (b[p + 2] << 16) | (b[p + 3] << 24)) >>> 0;
const h = await createBLAKE3();
const fd = openSync(workerData.path, 'r');
let index = 0, mismatch = -1;
try {
  let buf = new Uint8Array(2 * CHUNK), start = 0, end = 0, pos = HEADER, eof = false;
  parse: for (;;) {
    let need = 4;
    while (end - start >= 4) {
      const L = u32(buf, start);
      if (L < 64 || L > MAX_ENTRY) break parse; // the main thread reports the bad record
      need = 4 + L + HASH;
      if (end - start < need) break;
      h.init(); h.update(buf.subarray(start + 4, start + 4 + L));
      const d = h.digest('binary');
      for (let i = 0; i < HASH; i++) if (d[i] !== buf[start + 4 + L + i]) { mismatch = index; break parse; }
      index++; start += need; need = 4;
    }
    if (eof) break; // what is left is a torn tail, which the main thread reports
    if (start > 0) { buf.copyWithin(0, start, end); end -= start; start = 0; }
    if (need > buf.length) { const b = new Uint8Array(need + CHUNK); b.set(buf.subarray(0, end)); buf = b; }
    const n = readSync(fd, buf, end, buf.length - end, pos);
    if (n === 0) eof = true;
    pos += n; end += n;
  }
} finally { closeSync(fd); }
parentPort.postMessage({ checked: index, mismatch });
