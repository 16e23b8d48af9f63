// `orbital-os image …`: make keys, build, verify and install signed images, and drive a store's
// A/B slots (boot, confirm, rollback, status). --json for machines.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { initAxiom, toHex } from '../../axiom/index.ts';
import { ImageError, buildImage, generateKeys, privateKeyFromPem, rawPublic, verifyImage } from './image.ts';
import { ImageStore } from './store.ts';
import { createPublicKey } from 'node:crypto';

export const IMAGE_HELP = `orbital-os image — signed, content-addressed OS images (docs/image.md)

  image keygen KEY              write KEY (private, PEM) and KEY.pub (hex public key)
  image build OUT --key KEY --name N --version V PART=FILE...
  image verify IMAGE --trust KEY.pub[,…]
  image install IMAGE --store DIR --trust KEY.pub[,…] [--max-tries N]
  image boot|confirm|rollback|status|gc --store DIR --trust KEY.pub[,…]

exit codes: 0 ok, 1 the image or store is bad (typed error printed), 2 bad usage`;

export async function imageMain(argv: string[]): Promise<number> {
  await initAxiom();
  const flags = new Map<string, string>();
  const pos: string[] = [];
  let json = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--json') json = true;
    else if (a.startsWith('--')) flags.set(a.slice(2), argv[++i] ?? '');
    else pos.push(a);
  }
  const [cmd, ...rest] = pos;
  const out = (j: Record<string, unknown>, text: string) => process.stdout.write(json ? JSON.stringify(j) + '\n' : text + '\n');
  const need = (k: string) => { const v = flags.get(k); if (!v) throw new UsageError(`--${k} is required`); return v; };
  const trusted = () => need('trust').split(',').map((f) => Uint8Array.from(Buffer.from(readFileSync(resolve(f), 'utf8').trim(), 'hex')));
  try {
    switch (cmd) {
      case 'keygen': {
        const f = rest[0]; if (!f) throw new UsageError('keygen needs a file name');
        if (existsSync(f)) throw new UsageError(`${f} exists; refusing to overwrite a key`);
        const k = generateKeys();
        writeFileSync(f, k.privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
        writeFileSync(`${f}.pub`, toHex(k.publicKey) + '\n');
        out({ key: f, public: toHex(k.publicKey) }, `wrote ${f} and ${f}.pub (${toHex(k.publicKey)})`);
        return 0;
      }
      case 'build': {
        const [o, ...ps] = rest; if (!o || ps.length === 0) throw new UsageError('build needs OUT and at least one PART=FILE');
        const priv = privateKeyFromPem(readFileSync(need('key'), 'utf8'));
        const parts = ps.map((p) => { const i = p.indexOf('='); if (i < 1) throw new UsageError(`'${p}' is not PART=FILE`); return { name: p.slice(0, i), path: resolve(p.slice(i + 1)) }; });
        const r = await buildImage(resolve(o), { name: need('name'), version: need('version'), created: Math.floor(Date.now() / 1000), parts }, { privateKey: priv, publicKey: rawPublic(createPublicKey(priv)) });
        out({ image: o, id: r.id, parts: r.manifest.parts.map((p) => ({ name: p.name, size: p.size, hash: toHex(p.hash) })) }, `built ${o}: id ${r.id}`);
        return 0;
      }
      case 'verify': {
        const img = await verifyImage(resolve(rest[0] ?? ''), trusted());
        out({ ok: true, id: img.id, name: img.manifest.name, version: img.manifest.version }, `ok: ${img.manifest.name} ${img.manifest.version}, id ${img.id}`);
        return 0;
      }
      default: {
        const store = new ImageStore(resolve(need('store')), trusted());
        if (cmd === 'install') { const r = await store.install(resolve(rest[0] ?? ''), Number(flags.get('max-tries') ?? 3)); out(r, `installed ${r.id} into slot ${r.slot} (pending; ${r.written} parts written, ${r.reused} reused)`); return 0; }
        if (cmd === 'boot') { const r = store.boot(); out(r, r.rolledBack ? `rolled back: boot slot ${r.slot}` : `boot slot ${r.slot || '(none)'}`); return 0; }
        if (cmd === 'confirm') { const s = store.confirm(); out({ ...s }, `slot ${s.active} is now active`); return 0; }
        if (cmd === 'rollback') { const s = store.rollback(); out({ ...s }, `active slot ${s.active}${s.pending ? `, pending ${s.pending}` : ''}`); return 0; }
        if (cmd === 'gc') { const n = store.gc(); out({ removed: n }, `removed ${n} unreferenced blobs`); return 0; }
        if (cmd === 'status') {
          const s = store.state();
          const slots = Object.fromEntries((['a', 'b'] as const).map((x) => { const v = store.slot(x); return [x, v ? { id: v.id, name: v.manifest.name, version: v.manifest.version } : null]; }));
          out({ ...s, slots }, `active ${s.active || '-'}  pending ${s.pending || '-'} (tries ${s.tries}/${s.max_tries})  previous ${s.previous || '-'}\n${Object.entries(slots).map(([k, v]) => `slot ${k}: ${v ? `${v.name} ${v.version} ${v.id.slice(0, 16)}` : 'empty'}`).join('\n')}`);
          return 0;
        }
        throw new UsageError(`unknown image command '${cmd ?? ''}'`);
      }
    }
  } catch (e) {
    if (e instanceof UsageError) { process.stderr.write(`orbital-os image: ${e.message}\n\n${IMAGE_HELP}\n`); return 2; }
    if (e instanceof ImageError) { out({ ok: false, error: e.code, message: e.message }, `${e.code}: ${e.message}`); return 1; }
    throw e;
  }
}
class UsageError extends Error {}
