import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { connectTransport, listenTransport } from './socket.ts';

const dir = mkdtempSync(join(tmpdir(), 'orb-socket-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it('chunks read into slabs are never written again: kept views still hold what was sent', async () => {
  // 24 MiB in writes of random sizes: many slabs, reads that end anywhere inside them.
  const path = join(dir, 'slab.sock');
  const sent = randomBytes(24 << 20);
  const srv = createServer((s) => {
    let at = 0;
    const pump = () => {
      while (at < sent.length) {
        const n = 1 + Math.floor(Math.random() * 300_000);
        const ok = s.write(sent.subarray(at, at + n)); at += n;
        if (!ok) { s.once('drain', pump); return; }
      }
      s.end();
    };
    pump();
  });
  await new Promise<void>((r) => srv.listen(path, r));
  const t = await connectTransport({ path });
  const views: Uint8Array[] = [];
  await new Promise<void>((resolve) => t.attach({ data: (c) => views.push(c), close: () => resolve() }));
  srv.close();
  let n = 0; for (const v of views) n += v.length;
  expect(n).toBe(sent.length);
  const h = createHash('sha256'); for (const v of views) h.update(v);
  expect(h.digest('hex')).toBe(createHash('sha256').update(sent).digest('hex'));
  expect(views.some((v) => v.length > 65536)).toBe(true); // reads larger than Node's default 64 KiB happened
});

it('an accepted connection and a connected one talk both ways; ready() resolves, also after close', async () => {
  const l = await listenTransport({ path: join(dir, 'pair.sock') });
  const c = await connectTransport(l.address);
  const s = await l.accept();
  const got: number[] = [];
  const done = new Promise<void>((r) => s.attach({ data: (b) => { got.push(...b); if (got.length === 3) r(); }, close: () => {} }));
  c.attach({ data: () => {}, close: () => {} });
  c.write(Uint8Array.of(1, 2)); c.write(Uint8Array.of(3));
  await done;
  expect(got).toEqual([1, 2, 3]);
  await s.ready!();
  c.close(); s.close();
  await s.ready!();
  await l.close();
});
