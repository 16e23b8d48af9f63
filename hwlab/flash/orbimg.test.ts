// Flashing a signed Orbital image (.orbimg): built with os-image/image's builder and a fresh key,
// flashed to a file target through the whole pipeline, and refused - before any byte is written -
// when its key is not trusted, its signature is bad or it is cut (from a file or a stream: a pipe,
// a compressed .orbimg); a part that does not match its signed BLAKE3 fails the flash before the
// head of the target is written.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeSync, existsSync, openSync, readFileSync, rmSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { initAxiom, toHex } from '../../axiom/index.ts';
import { buildImage, generateKeys, type KeyPair } from '../../os-image/image/image.ts';
import { flash, verifyOnly } from './flash.ts';
import { streamOrbimg } from './orbimg.ts';
import type { Source } from './source.ts';
import fc from 'fast-check';
import { readJournal } from './journal.ts';
import { LabError } from '../errors.ts';
import { makeLab, MiB } from './testimg.ts';
import { parseLab } from '../labfile.ts';
import { describeWithTools } from '../../scripts/testkit.ts';
import { guestArtifacts, GUEST_BOOT } from '../testguest.ts';
import { boot } from '../boot.ts';

const dirs: string[] = [];
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });
beforeAll(() => initAxiom());

const key = generateKeys();
const BIN = resolve(import.meta.dirname, '../../bin/orbital-lab.mjs');

/** A 5 MiB "disk": a boot sector-like head, data past the 1 MiB head, a zero stretch, data at the end. */
function diskBytes(): Buffer {
  const b = Buffer.alloc(5 * MiB);
  randomBytes(64 * 1024).copy(b, 0);
  b[510] = 0x55; b[511] = 0xaa;
  randomBytes(2 * MiB).copy(b, MiB + 4096);
  randomBytes(8192).copy(b, 5 * MiB - 8192);
  return b;
}

async function setup(parts: Array<[string, Buffer]> = [['kernel', randomBytes(70_000)], ['disk', diskBytes()]], k: KeyPair = key) {
  const l = makeLab();
  dirs.push(l.dir);
  const files = parts.map(([name, bytes]) => { const path = join(l.dir, `part-${name}`); writeFileSync(path, bytes); return { name, path }; });
  const img = join(l.dir, 'os.orbimg');
  const built = await buildImage(img, { name: 'orbital-guest', version: '0.3.0', created: 1_700_000_000, parts: files }, k);
  const bytes = Object.fromEntries(parts);
  /** Offset in the .orbimg of a part's first byte. */
  const offsetOf = (name: string) => { const raw = readFileSync(img); let at = 16 + raw.readUInt32LE(12) + 64; for (const [n, b] of parts) { if (n === name) return at; at += b.length; } throw new Error(name); };
  return { ...l, img, built, bytes, offsetOf };
}

async function code(p: Promise<unknown>): Promise<string> {
  try { await p; return 'ok'; } catch (e) { if (!(e instanceof LabError)) throw e; return e.code; }
}
async function err(p: Promise<unknown>): Promise<LabError> {
  try { await p; } catch (e) { if (e instanceof LabError) return e; throw e; }
  throw new Error('expected a LabError');
}
function flip(path: string, at: number): void {
  const fd = openSync(path, 'r+');
  const b = Buffer.alloc(1);
  try { readFileSync(path).copy(b, 0, at, at + 1); b[0] ^= 0x5a; writeSync(fd, b, 0, 1, at); } finally { closeSync(fd); }
}

describe('flash a signed Orbital image', () => {
  it('checks the signature, writes the disk part byte for byte, reports the image, then skips', async () => {
    const s = await setup();
    const r = await flash({ device: s.dev, stateDir: s.lab.stateDir, source: s.img, trust: [key.publicKey] });
    expect(r.status).toBe('written');
    expect(readFileSync(s.target).equals(s.bytes.disk!)).toBe(true);
    expect(r.source).toMatchObject({ format: 'orbimg', bmap: null });
    expect(r.imageSize).toBe(5 * MiB);
    expect(r.verify!.bytes).toBe(5 * MiB);
    const disk = s.built.manifest.parts.find((p) => p.name === 'disk')!;
    expect(r.blake3).toBe(toHex(disk.hash));
    expect(r.orbimg).toEqual({
      id: s.built.id, name: 'orbital-guest', version: '0.3.0', key: toHex(key.publicKey),
      part: { name: 'disk', size: 5 * MiB, blake3: toHex(disk.hash), offset: s.offsetOf('disk') }, parts: ['kernel', 'disk'],
    });
    expect(readJournal(s.lab.stateDir, 'dut')).toMatchObject({ status: 'ok', blake3: toHex(disk.hash) });
    const again = await flash({ device: s.dev, stateDir: s.lab.stateDir, source: s.img, trust: [key.publicKey] });
    expect(again.status).toBe('skipped');
    expect(again.orbimg?.id).toBe(s.built.id);
    const v = await verifyOnly({ device: s.dev, stateDir: s.lab.stateDir, source: s.img, trust: [key.publicKey] });
    expect(v).toMatchObject({ same: true, blake3: toHex(disk.hash) });
  });

  it('refuses an untrusted key, no trusted key at all, a bad signature and a cut file before writing anything', async () => {
    const s = await setup();
    const untrusted = await err(flash({ device: s.dev, stateDir: s.lab.stateDir, source: s.img, trust: [generateKeys().publicKey] }));
    expect(untrusted).toMatchObject({ code: 'untrusted-key', blame: 'usage' });
    expect(untrusted.message).toContain(toHex(key.publicKey).slice(0, 16));
    expect(await code(flash({ device: s.dev, stateDir: s.lab.stateDir, source: s.img }))).toBe('untrusted-key');
    const sig = join(s.dir, 'sig.orbimg');
    writeFileSync(sig, readFileSync(s.img));
    flip(sig, 16 + readFileSync(sig).readUInt32LE(12) + 3);
    expect(await err(flash({ device: s.dev, stateDir: s.lab.stateDir, source: sig, trust: [key.publicKey] }))).toMatchObject({ code: 'bad-signature', blame: 'lab' });
    const cut = join(s.dir, 'cut.orbimg');
    writeFileSync(cut, readFileSync(s.img));
    truncateSync(cut, readFileSync(cut).length - 100);
    expect(await err(flash({ device: s.dev, stateDir: s.lab.stateDir, source: cut, trust: [key.publicKey] }))).toMatchObject({ code: 'image-truncated', blame: 'lab' });
    // Nothing touched the target, and no flash was even started.
    expect(existsSync(s.target)).toBe(false);
    expect(readJournal(s.lab.stateDir, 'dut')).toBeNull();
    // A bmap does not apply to a signed image.
    expect(await code(flash({ device: s.dev, stateDir: s.lab.stateDir, source: s.img, trust: [key.publicKey], bmap: join(s.dir, 'x.bmap') }))).toBe('bad-usage');
  });

  it('fails a part that does not match its signed BLAKE3 (checksum-mismatch), and the target never holds a valid head', async () => {
    for (const where of ['tail', 'head'] as const) {
      const s = await setup();
      const at = s.offsetOf('disk') + (where === 'tail' ? 5 * MiB - 100 : 510);
      // First a good flash, so the target starts out holding a bootable image.
      await flash({ device: s.dev, stateDir: s.lab.stateDir, source: s.img, trust: [key.publicKey] });
      flip(s.img, at);
      const e = await err(flash({ device: s.dev, stateDir: s.lab.stateDir, source: s.img, trust: [key.publicKey] }));
      expect(e).toMatchObject({ code: 'checksum-mismatch', blame: 'lab' });
      expect(e.message).toContain("part 'disk'");
      expect(readJournal(s.lab.stateDir, 'dut')).toMatchObject({ status: 'failed' });
      const head = readFileSync(s.target).subarray(0, MiB);
      expect(head.equals(s.bytes.disk!.subarray(0, MiB)), where).toBe(false);
      expect(head.every((b) => b === 0), where).toBe(true);
    }
  });

  it('does not skip a target that matches a part altered the same way: the signed BLAKE3 fails the compare', async () => {
    const s = await setup();
    await flash({ device: s.dev, stateDir: s.lab.stateDir, source: s.img, trust: [key.publicKey] });
    flip(s.img, s.offsetOf('disk') + 3 * MiB);
    flip(s.target, 3 * MiB);
    expect(await code(flash({ device: s.dev, stateDir: s.lab.stateDir, source: s.img, trust: [key.publicKey] }))).toBe('checksum-mismatch');
    expect(await code(verifyOnly({ device: s.dev, stateDir: s.lab.stateDir, source: s.img, trust: [key.publicKey] }))).toBe('checksum-mismatch');
  });

  it('picks the part: --part, else the one disk part; none or several is a usage error listing the parts', async () => {
    const a = randomBytes(300_000), b = randomBytes(200_000);
    const s = await setup([['a.img', a], ['b.img', b], ['config', Buffer.from('x=1\n')]]);
    const amb = await err(flash({ device: s.dev, stateDir: s.lab.stateDir, source: s.img, trust: [key.publicKey] }));
    expect(amb).toMatchObject({ code: 'unknown-part', blame: 'usage' });
    expect(amb.message).toMatch(/a\.img.*b\.img.*config/);
    expect(existsSync(s.target)).toBe(false);
    const unknown = await err(flash({ device: s.dev, stateDir: s.lab.stateDir, source: s.img, trust: [key.publicKey], part: 'disk' }));
    expect(unknown).toMatchObject({ code: 'unknown-part', blame: 'usage' });
    expect(unknown.message).toContain('a.img');
    const r = await flash({ device: s.dev, stateDir: s.lab.stateDir, source: s.img, trust: [key.publicKey], part: 'b.img' });
    expect(r.orbimg?.part.name).toBe('b.img');
    expect(readFileSync(s.target).equals(b)).toBe(true);
    // A part that is not a disk image can still be named (here a 4-byte config).
    const c = await flash({ device: s.dev, stateDir: s.lab.stateDir, source: s.img, trust: [key.publicKey], part: 'config' });
    expect(readFileSync(s.target).toString()).toBe('x=1\n');
    expect(c.imageSize).toBe(4);
    const none = await setup([['kernel', randomBytes(1000)]]);
    expect((await err(flash({ device: none.dev, stateDir: none.lab.stateDir, source: none.img, trust: [key.publicKey] }))).message).toMatch(/no disk image part.*kernel/);
    // --part on a plain image is a mistake, said so.
    const raw = join(s.dir, 'plain.img');
    writeFileSync(raw, a);
    expect(await code(flash({ device: s.dev, stateDir: s.lab.stateDir, source: raw, part: 'a.img' }))).toBe('bad-usage');
  });

  it('the lab file trust: list (KEY.pub files or hex keys), with line and field errors', async () => {
    const s = await setup();
    writeFileSync(join(s.dir, 'release.pub'), toHex(key.publicKey) + '\n');
    writeFileSync(join(s.dir, 'private.pem'), '-----BEGIN PRIVATE KEY-----\nxx\n');
    const ok = parseLab(`version: 1\ntrust:\n  - release.pub\n  - ${toHex(generateKeys().publicKey)}\ndevices: {}\n`, join(s.dir, 'lab.yaml'));
    expect(ok.ok && ok.lab.trust.map((t) => [t.from, t.line, toHex(t.key)])).toEqual([['release.pub', 3, toHex(key.publicKey)], [expect.any(String), 4, expect.any(String)]]);
    const bad = parseLab(`version: 1\ntrust:\n  - release.pub\n  - missing.pub\n  - private.pem\n  - 42\ndevices: {}\n`, join(s.dir, 'lab.yaml'));
    expect(bad.ok).toBe(false);
    if (bad.ok) return;
    expect(bad.issues.map((i) => `${i.line}:${i.field}`)).toEqual(['4:trust[1]', '5:trust[2]', '6:trust[3]']);
    expect(bad.issues[0]!.message).toContain('missing.pub');
    expect(bad.issues[1]!.message).toContain('private key');
    const notList = parseLab(`version: 1\ntrust: release.pub\ndevices: {}\n`, join(s.dir, 'lab.yaml'));
    expect(!notList.ok && notList.issues[0]).toMatchObject({ line: 2, field: 'trust' });
  });
});

describe('orbital-lab flash FILE.orbimg', () => {
  const run = (args: string[]) => {
    const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000 });
    const lines = r.stdout.trim().split('\n');
    const last = (() => { try { return JSON.parse(lines[lines.length - 1] ?? '') as Record<string, any>; } catch { return {}; } })();
    return { code: r.status, last, stderr: r.stderr, stdout: r.stdout };
  };
  it('trusts --trust KEY.pub and the lab file trust:, reports the image; exit 2 untrusted or unknown part, 3 tampered', async () => {
    const s = await setup();
    const pub = join(s.dir, 'release.pub');
    writeFileSync(pub, toHex(key.publicKey) + '\n');
    const untrusted = run(['--lab', s.labFile, '--json', 'flash', 'dut', s.img]);
    expect(untrusted.code).toBe(2);
    expect(untrusted.last.error).toMatchObject({ code: 'untrusted-key', blame: 'usage' });
    expect(run(['--lab', s.labFile, '--json', 'flash', 'dut', s.img, '--trust', pub, '--part', 'nope']).code).toBe(2);
    const ok = run(['--lab', s.labFile, '--json', 'flash', 'dut', s.img, '--trust', pub]);
    expect(ok.code).toBe(0);
    expect(ok.last).toMatchObject({ ok: true, status: 'written', orbimg: { id: s.built.id, name: 'orbital-guest', version: '0.3.0', key: toHex(key.publicKey), part: { name: 'disk' } } });
    expect(readFileSync(s.target).equals(s.bytes.disk!)).toBe(true);
    // The lab file's trust: instead of --trust; plain output names the image.
    writeFileSync(s.labFile, `${readFileSync(s.labFile, 'utf8').replace('version: 1\n', 'version: 1\ntrust: [release.pub]\n')}`);
    const plain = run(['--lab', s.labFile, 'flash', 'dut', s.img]);
    expect(plain.code).toBe(0);
    expect(plain.stdout).toMatch(/already holds this image[\s\S]*signed image orbital-guest 0\.3\.0.*part 'disk'/);
    flip(s.img, s.offsetOf('disk') + 2 * MiB);
    const bad = run(['--lab', s.labFile, '--json', 'flash', 'dut', s.img]);
    expect(bad.code).toBe(3);
    expect(bad.last.error).toMatchObject({ code: 'checksum-mismatch', blame: 'lab' });
  });
});

describeWithTools(['qemu-system-x86_64', 'grub-mkrescue', 'xorriso'], 'boot a guest flashed from a signed image', () => {
  it('wraps the guest ISO as the disk part of an .orbimg, flashes it and boots it', async () => {
    const g = guestArtifacts({ iso: true });
    dirs.push(g.dir);
    const l = makeLab(GUEST_BOOT + '    timeouts: { boot: 60s }\n');
    dirs.push(l.dir);
    const img = join(l.dir, 'guest.orbimg');
    const kp = generateKeys();
    await buildImage(img, { name: 'orbital-guest', version: 'test', created: 1_700_000_000, parts: [{ name: 'kernel', path: g.elf }, { name: 'disk', path: g.iso! }] }, kp);
    const r = await boot({ lab: l.lab, device: l.dev, image: img, trust: [kp.publicKey] });
    expect(r.flash?.orbimg?.part.name).toBe('disk');
    expect(readFileSync(l.target).equals(readFileSync(g.iso!))).toBe(true);
    expect(r.ok, JSON.stringify(r.failure)).toBe(true);
    expect(readFileSync(r.log, 'utf8')).toMatch(/Booting from Hard Disk[\s\S]*GRUB/);
  }, 120_000);
});

describe('flash a signed Orbital image from a stream', () => {
  const gz = (path: string, bytes: Buffer) => { writeFileSync(path, gzipSync(bytes)); return path; };
  it('checks a compressed .orbimg as its header arrives, writes the disk part, and records the image', async () => {
    const s = await setup();
    const src = gz(join(s.dir, 'os.orbimg.gz'), readFileSync(s.img));
    const r = await flash({ device: s.dev, stateDir: s.lab.stateDir, source: src, trust: [key.publicKey] });
    expect(r.status).toBe('written');
    expect(r.source).toMatchObject({ format: 'orbimg', bmap: null });
    expect(readFileSync(s.target).equals(s.bytes.disk!)).toBe(true);
    const disk = s.built.manifest.parts.find((p) => p.name === 'disk')!;
    expect(r.blake3).toBe(toHex(disk.hash));
    expect(r.orbimg).toMatchObject({ id: s.built.id, part: { name: 'disk', size: 5 * MiB, offset: s.offsetOf('disk') }, parts: ['kernel', 'disk'] });
    expect(readJournal(s.lab.stateDir, 'dut')).toMatchObject({ status: 'ok', signed: { id: s.built.id, part: 'disk' } });
    // --part picks another part of the stream; a bmap does not apply.
    const k = await flash({ device: s.dev, stateDir: s.lab.stateDir, source: src, trust: [key.publicKey], part: 'kernel' });
    expect(readFileSync(s.target).equals(s.bytes.kernel!)).toBe(true);
    expect(k.orbimg!.part.name).toBe('kernel');
    expect(await code(flash({ device: s.dev, stateDir: s.lab.stateDir, source: src, trust: [key.publicKey], bmap: join(s.dir, 'x.bmap') }))).toBe('bad-usage');
  });

  it('refuses an untrusted or badly signed stream before writing, and fails an altered part, a cut stream and trailing bytes', async () => {
    const s = await setup([['disk', diskBytes()], ['kernel', randomBytes(70_000)]]);
    const raw = readFileSync(s.img);
    const flashOf = (bytes: Buffer, trust = [key.publicKey]) => flash({ device: s.dev, stateDir: s.lab.stateDir, source: gz(join(s.dir, `v${Math.random()}.gz`), bytes), trust });
    expect(await code(flashOf(raw, []))).toBe('untrusted-key');
    expect(await code(flashOf(raw, [generateKeys().publicKey]))).toBe('untrusted-key');
    const sig = Buffer.from(raw); sig[16 + raw.readUInt32LE(12) + 3] ^= 1;
    expect(await code(flashOf(sig))).toBe('bad-signature');
    expect(await code(flashOf(raw.subarray(0, 40)))).toBe('image-truncated');
    expect(existsSync(s.target)).toBe(false);
    // The disk part is first: an altered byte in it, and a stream cut or padded after it, in the part the flash does not write.
    const part = Buffer.from(raw); part[s.offsetOf('disk') + 3 * MiB] ^= 0x5a;
    const e = await err(flashOf(part));
    expect(e).toMatchObject({ code: 'checksum-mismatch', blame: 'lab' });
    expect(readFileSync(s.target).subarray(0, MiB).every((b) => b === 0)).toBe(true);
    expect(await code(flashOf(raw.subarray(0, raw.length - 1000)))).toBe('image-truncated');
    expect(await code(flashOf(Buffer.concat([raw, Buffer.from('extra')])))).toBe('bad-image');
    expect(readJournal(s.lab.stateDir, 'dut')).toMatchObject({ status: 'failed' });
    expect(await code(flashOf(raw))).toBe('ok');
    expect(readFileSync(s.target).equals(s.bytes.disk!)).toBe(true);
  });

  it('orbital-lab flash DEVICE - with an .orbimg piped to stdin', async () => {
    const s = await setup();
    const pub = join(s.dir, 'release.pub');
    writeFileSync(pub, toHex(key.publicKey) + '\n');
    const r = spawnSync(process.execPath, [BIN, '--lab', s.labFile, '--json', 'flash', 'dut', '-', '--trust', pub], { input: readFileSync(s.img), encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout.trim().split('\n').pop()!)).toMatchObject({ ok: true, status: 'written', source: { path: '-', format: 'orbimg' }, orbimg: { id: s.built.id, part: { name: 'disk' } } });
    expect(readFileSync(s.target).equals(s.bytes.disk!)).toBe(true);
    const untrusted = spawnSync(process.execPath, [BIN, '--lab', s.labFile, '--json', 'flash', 'dut', '-'], { input: readFileSync(s.img), encoding: 'utf8', timeout: 60_000 });
    expect(untrusted.status).toBe(2);
    expect(untrusted.stderr).toMatch(/stdin is a signed Orbital image and no key is trusted/);
  });
});

describe('streamOrbimg on arbitrary bytes', () => {
  /** A stream Source over `bytes`, cut into pieces at `cuts`. */
  const streamOf = (bytes: Uint8Array, cuts: number[]): Source => ({
    path: 'fuzz', format: 'raw', storedSize: null, seekable: false, consumed: () => 0,
    readAt: () => { throw new Error('not seekable'); },
    async *stream() {
      let at = 0;
      for (const c of [...cuts.map((x) => x % (bytes.length + 1)).sort((a, b) => a - b), bytes.length]) { if (c > at) { yield Buffer.from(bytes.subarray(at, c)); at = c; } }
    },
    close: async () => {},
  });
  it('gives back the bytes as they were, or a part, or a LabError - never another throw', async () => {
    const good = readFileSync((await setup()).img);
    await fc.assert(fc.asyncProperty(
      fc.oneof(
        fc.uint8Array({ maxLength: 300 }),
        fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.concat([Buffer.from('ORBIMAGE'), b])),
        // A real image, cut, padded or with one byte changed in its header, manifest or signature.
        fc.tuple(fc.nat(good.length), fc.nat(400), fc.integer({ min: 1, max: 255 })).map(([cut, at, x]) => { const b = Buffer.from(good.subarray(0, Math.max(cut, 16 + good.readUInt32LE(12) + 64))); b[at % b.length] ^= x; return b; }),
      ),
      fc.array(fc.nat(), { maxLength: 6 }),
      async (bytes, cuts) => {
        let r;
        try { r = await streamOrbimg(streamOf(bytes, cuts), [key.publicKey], undefined, 'fuzz'); } catch (e) { expect(e).toBeInstanceOf(LabError); return; }
        const out: Buffer[] = [];
        try { for await (const b of r.source.stream()) out.push(b); } catch (e) { expect(e).toBeInstanceOf(LabError); return; }
        if (!r.info) expect(Buffer.concat(out).equals(Buffer.from(bytes))).toBe(true);
        else expect(Buffer.concat(out).length).toBe(r.info.part.size);
      }), { numRuns: 300 });
  });
});
