// The conformance suite against kernel-link's own MemoryDevice, over in-memory pipes, over a unix
// socket, and over one shared pipe (the way a QEMU chardev is used).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryDevice } from '../core/memory-device.ts';
import { serveLink } from '../core/server.ts';
import { memoryPair } from '../core/transport.ts';
import { linkConformance, shareTransport } from './conformance.ts';
import { zlibCrc32 } from './crc.ts';
import { connectTransport, listenTransport } from './socket.ts';

linkConformance({
  name: 'memory device, in-memory pipes',
  start: async () => {
    const dev = new MemoryDevice();
    // A small max_frame, like the guest kernel's, so oversized frames are exercised.
    return { connect: async () => { const [h, s] = memoryPair(); serveLink(s, dev, { maxFrame: 16384 }); return h; }, stop: async () => {} };
  },
});

linkConformance({
  name: 'memory device, unix socket',
  start: async () => {
    const dev = new MemoryDevice();
    const dir = mkdtempSync(join(tmpdir(), 'klc-'));
    const path = join(dir, 'link.sock');
    const l = await listenTransport({ path });
    l.onConnection((t) => serveLink(t, dev, { crc32: zlibCrc32 }));
    return { connect: () => connectTransport({ path }), stop: async () => { await l.close(); rmSync(dir, { recursive: true, force: true }); } };
  },
  faults: false,
});

linkConformance({
  name: 'memory device, one shared pipe (like a QEMU chardev)',
  start: async () => {
    const dev = new MemoryDevice();
    const [h, s] = memoryPair();
    serveLink(s, dev);
    return { connect: shareTransport(h), stop: async () => { h.close(); } };
  },
  faults: false,
});

linkConformance({
  name: 'memory device, TCP',
  start: async () => {
    const dev = new MemoryDevice();
    const l = await listenTransport({ host: '127.0.0.1', port: 0 });
    l.onConnection((t) => serveLink(t, dev, { crc32: zlibCrc32 }));
    return { connect: () => connectTransport(l.address), stop: () => l.close() };
  },
  faults: false,
});
