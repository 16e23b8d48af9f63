import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, truncateSync, appendFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initAxiom } from '../../axiom/index.ts';
import { ImageError, buildImage, generateKeys, verifyImage } from './image.ts';
import { ImageStore } from './store.ts';

beforeAll(() => initAxiom());
const tmp = () => mkdtempSync(join(tmpdir(), 'orbimg-'));
const key = generateKeys();

function parts(dir: string, seed: number, sizes: number[]) {
  return sizes.map((n, i) => {
    const p = join(dir, `part${i}-${seed}`);
    const b = new Uint8Array(n); for (let j = 0; j < n; j++) b[j] = (j * 31 + seed * 7 + i) & 0xff;
    writeFileSync(p, b);
    return { name: `p${i}`, path: p };
  });
}
async function image(dir: string, version: string, ps: { name: string; path: string }[], k = key) {
  const out = join(dir, `${version}.orbimg`);
  const r = await buildImage(out, { name: 'orbital-guest', version, created: 1_700_000_000, parts: ps }, k);
  return { out, ...r };
}
async function code(p: Promise<unknown>): Promise<string> { try { await p; return 'ok'; } catch (e) { return e instanceof ImageError ? e.code : `not typed: ${String(e)}`; } }

describe('image files', () => {
  it('build and verify round trip, with a content-addressed id', async () => {
    const d = tmp();
    const a = await image(d, '1.0', parts(d, 1, [1000, 3 << 20, 0]));
    const v = await verifyImage(a.out, [key.publicKey]);
    expect(v.id).toBe(a.id);
    expect(v.manifest.parts.map((p) => p.size)).toEqual([1000, 3 << 20, 0]);
  });
  it('rejects tampering, foreign keys, truncation and trailing bytes with typed errors', async () => {
    const d = tmp();
    const a = await image(d, '1.0', parts(d, 2, [5000, 7000]));
    const bytes = readFileSync(a.out);
    const at = (name: string, f: (b: Buffer) => Buffer) => { const p = join(d, name); writeFileSync(p, f(Buffer.from(bytes))); return p; };
    expect(await code(verifyImage(at('part', (b) => { b[b.length - 10] ^= 1; return b; }), [key.publicKey]))).toBe('part-mismatch');
    expect(await code(verifyImage(at('manifest', (b) => { b[20] ^= 1; return b; }), [key.publicKey]))).toMatch(/bad-signature|bad-manifest/);
    expect(await code(verifyImage(at('sig', (b) => { b[16 + b.readUInt32LE(12) + 5] ^= 1; return b; }), [key.publicKey]))).toBe('bad-signature');
    expect(await code(verifyImage(a.out, [generateKeys().publicKey]))).toBe('untrusted-key');
    const t = at('trunc', (b) => b); truncateSync(t, bytes.length - 1);
    expect(await code(verifyImage(t, [key.publicKey]))).toBe('truncated');
    const x = at('trail', (b) => b); appendFileSync(x, 'x');
    expect(await code(verifyImage(x, [key.publicKey]))).toBe('trailing-bytes');
    expect(await code(verifyImage(at('text', () => Buffer.from('hello world, not an image at all')), [key.publicKey]))).toBe('not-an-image');
  });
});

describe('image store', () => {
  it('installs into the other slot, boots it, confirms it; an upgrade writes only new parts', async () => {
    const d = tmp();
    const store = new ImageStore(join(d, 'store'), [key.publicKey]);
    const shared = parts(d, 3, [4096]);
    const v1 = await image(d, '1.0', [...shared, { ...parts(d, 4, [100])[0]!, name: 'p1' }]);
    const i1 = await store.install(v1.out);
    expect(i1).toMatchObject({ slot: 'a', written: 2, reused: 0 });
    expect(store.boot()).toEqual({ slot: 'a', rolledBack: false });
    store.confirm();
    const v2 = await image(d, '2.0', [...shared, { ...parts(d, 5, [200])[0]!, name: 'p1' }]);
    const i2 = await store.install(v2.out);
    expect(i2).toMatchObject({ slot: 'b', written: 1, reused: 1 });
    expect(store.boot().slot).toBe('b');
    expect(store.confirm()).toMatchObject({ active: 'b', previous: 'a' });
    expect(readFileSync(store.parts('b').p1!).length).toBe(200);
    expect(store.rollback()).toMatchObject({ active: 'a', previous: 'b' });
  });
  it('rolls back after max_tries boots that never confirmed', async () => {
    const d = tmp();
    const store = new ImageStore(join(d, 'store'), [key.publicKey]);
    await store.install((await image(d, '1.0', parts(d, 6, [10]))).out);
    store.boot(); store.confirm();
    await store.install((await image(d, '2.0', parts(d, 7, [10]))).out, 2);
    expect(store.boot()).toEqual({ slot: 'b', rolledBack: false });
    expect(store.boot()).toEqual({ slot: 'b', rolledBack: false });
    expect(store.boot()).toEqual({ slot: 'a', rolledBack: true });
    expect(store.boot()).toEqual({ slot: 'a', rolledBack: false });
    expect(store.gc()).toBe(0); // slot b still holds v2's parts until the next install
  });
  it('a damaged image installs nothing', async () => {
    const d = tmp();
    const store = new ImageStore(join(d, 'store'), [key.publicKey]);
    const a = await image(d, '1.0', parts(d, 8, [3000]));
    const b = readFileSync(a.out); b[b.length - 1] ^= 0xff; writeFileSync(a.out, b);
    await expect(store.install(a.out)).rejects.toMatchObject({ code: 'part-mismatch' });
    expect(store.state()).toMatchObject({ active: '', pending: '' });
    expect(store.slot('a')).toBeNull();
  });
  it('a SIGKILL at any moment of an install leaves the store booting a whole image', async () => {
    const d = tmp();
    const storeDir = join(d, 'store');
    const store = new ImageStore(storeDir, [key.publicKey]);
    await store.install((await image(d, '1.0', parts(d, 9, [1 << 20]))).out);
    store.boot(); store.confirm();
    const big = await image(d, '2.0', parts(d, 10, [6 << 20, 6 << 20]));
    const keyHex = Buffer.from(key.publicKey).toString('hex');
    const script = join(d, 'install.mts');
    writeFileSync(script, `import { ImageStore } from ${JSON.stringify(new URL('./store.ts', import.meta.url).pathname)};
import { initAxiom } from ${JSON.stringify(new URL('../../axiom/index.ts', import.meta.url).pathname)};
await initAxiom(); const s = new ImageStore(process.argv[2], [Uint8Array.from(Buffer.from(process.argv[3], 'hex'))]);
process.stdout.write('go\\n'); await s.install(process.argv[4]); process.stdout.write('done\\n');`);
    for (const delay of [0, 40, 120, 300]) {
      const c = spawn(process.execPath, ['--import', 'tsx', script, storeDir, keyHex, big.out], { stdio: ['ignore', 'pipe', 'inherit'] });
      const exited = new Promise((r) => c.once('exit', r));
      await new Promise<void>((res, rej) => { c.stdout!.once('data', () => res()); void exited.then((code) => rej(new Error(`installer exited before it started (${code})`))); });
      await new Promise((r) => setTimeout(r, delay));
      c.kill('SIGKILL');
      await exited;
      const s = new ImageStore(storeDir, [key.publicKey]); // cleans temporaries
      const st = s.state();
      const booted = s.boot();
      const slot = s.slot(booted.slot as 'a' | 'b');
      expect(slot, `delay ${delay}: state ${JSON.stringify(st)}`).not.toBeNull();
      for (const p of Object.values(s.parts(booted.slot as 'a' | 'b'))) expect(existsSync(p)).toBe(true);
      if (st.pending) s.rollback(); // back to the known-good image for the next round
    }
  }, 120_000);
});
