// A device's image store (docs/image.md section 3): content-addressed blobs and two slots, with
// atomic upgrade (every change is write-temp, fsync, rename, fsync-dir) and rollback after
// `max_tries` boots of a new image that never confirmed.
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { blake3 as blakeOf, decodeValue, encodeValue, getInt, getStr, isMap, toHex } from '../../axiom/index.ts';
import { ImageError, openImage, parseManifest, streamParts, type Manifest } from './image.ts';

export type Slot = 'a' | 'b';
export interface StoreState { active: Slot | ''; pending: Slot | ''; tries: number; max_tries: number; previous: Slot | '' }

function writeAtomic(path: string, bytes: Uint8Array): void {
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try { let o = 0; while (o < bytes.length) o += writeSync(fd, bytes, o, bytes.length - o, o); fsyncSync(fd); } finally { closeSync(fd); }
  renameSync(tmp, path);
  syncDir(path.slice(0, path.lastIndexOf('/')) || '.');
}
function syncDir(dir: string): void { try { const d = openSync(dir, 'r'); try { fsyncSync(d); } finally { closeSync(d); } } catch { /* not supported here */ } }

export class ImageStore {
  constructor(readonly dir: string, readonly trusted: Uint8Array[]) {
    mkdirSync(join(dir, 'blobs'), { recursive: true });
    mkdirSync(join(dir, 'slots'), { recursive: true });
    // Temporary files are leftovers of a cut: never referenced, safe to remove.
    for (const sub of ['', 'blobs', 'slots']) for (const f of readdirSync(join(dir, sub))) if (f.includes('.tmp-')) rmSync(join(dir, sub, f), { force: true });
  }

  state(): StoreState {
    const p = join(this.dir, 'state');
    if (!existsSync(p)) return { active: '', pending: '', tries: 0, max_tries: 3, previous: '' };
    const d = decodeValue(new Uint8Array(readFileSync(p)));
    if (!d.ok || !isMap(d.value)) throw new ImageError('io', `${p} is damaged: ${d.ok ? 'not a map' : d.error.message}`);
    const v = d.value;
    const slot = (k: string): Slot | '' => { const s = getStr(v, k); return s === 'a' || s === 'b' ? s : ''; };
    return { active: slot('active'), pending: slot('pending'), tries: getInt(v, 'tries') ?? 0, max_tries: getInt(v, 'max_tries') ?? 3, previous: slot('previous') };
  }
  private setState(s: StoreState): void { writeAtomic(join(this.dir, 'state'), encodeValue({ ...s })); }

  /** The manifest in a slot, or null. */
  slot(s: Slot): { manifest: Manifest; id: string } | null {
    const p = join(this.dir, 'slots', s);
    if (!existsSync(p)) return null;
    const b = new Uint8Array(readFileSync(p));
    const m = new DataView(b.buffer, b.byteOffset).getUint32(0, true);
    const mbytes = b.subarray(4, 4 + m);
    return { manifest: parseManifest(mbytes), id: toHex(blakeOf(mbytes)) };
  }

  blobPath(hash: Uint8Array): string { return join(this.dir, 'blobs', toHex(hash)); }

  /** Verifies and installs an image into the inactive slot, and makes it pending. */
  async install(imagePath: string, maxTries = 3): Promise<{ slot: Slot; id: string; written: number; reused: number }> {
    const img = openImage(imagePath, this.trusted);
    const st = this.state();
    const target: Slot = st.active === 'a' ? 'b' : 'a';
    let written = 0, reused = 0;
    await streamParts(imagePath, img, (part) => {
      const final = this.blobPath(part.hash);
      if (existsSync(final)) { reused++; return { write() {}, end() {} }; }
      const tmp = `${final}.tmp-${process.pid}`;
      const fd = openSync(tmp, 'w');
      let pos = 0;
      return {
        write(b) { let o = 0; while (o < b.length) o += writeSync(fd, b, o, b.length - o, pos + o); pos += b.length; },
        end(ok) { fsyncSync(fd); closeSync(fd); if (ok) { renameSync(tmp, final); written++; } else unlinkSync(tmp); },
      };
    });
    syncDir(join(this.dir, 'blobs'));
    const slotBytes = new Uint8Array(4 + img.manifestBytes.length + 64);
    new DataView(slotBytes.buffer).setUint32(0, img.manifestBytes.length, true);
    slotBytes.set(img.manifestBytes, 4); slotBytes.set(img.signature, 4 + img.manifestBytes.length);
    writeAtomic(join(this.dir, 'slots', target), slotBytes);
    this.setState({ ...st, pending: target, tries: 0, max_tries: maxTries });
    return { slot: target, id: img.id, written, reused };
  }

  /** Which slot to boot now (and the bookkeeping of tries and rollback), made durable before it returns. */
  boot(): { slot: Slot | ''; rolledBack: boolean } {
    const st = this.state();
    if (st.pending) {
      if (st.tries < st.max_tries) { this.setState({ ...st, tries: st.tries + 1 }); return { slot: st.pending, rolledBack: false }; }
      this.setState({ ...st, pending: '', tries: 0 });
      return { slot: st.active, rolledBack: true };
    }
    return { slot: st.active, rolledBack: false };
  }

  /** The pending image booted well: it becomes the active one. */
  confirm(): StoreState {
    const st = this.state();
    if (!st.pending) throw new ImageError('io', 'nothing to confirm: no image is pending');
    const next: StoreState = { ...st, previous: st.active, active: st.pending, pending: '', tries: 0 };
    this.setState(next);
    return next;
  }

  /** Drops a pending image, or goes back to the previous one. */
  rollback(): StoreState {
    const st = this.state();
    let next: StoreState;
    if (st.pending) next = { ...st, pending: '', tries: 0 };
    else if (st.previous && this.slot(st.previous)) next = { ...st, active: st.previous, previous: st.active };
    else throw new ImageError('io', 'nothing to roll back to');
    this.setState(next);
    return next;
  }

  /** Path of each part of the image in `slot`, for the boot loader or the lab. */
  parts(slot: Slot): Record<string, string> {
    const s = this.slot(slot);
    if (!s) throw new ImageError('io', `slot ${slot} is empty`);
    return Object.fromEntries(s.manifest.parts.map((p) => [p.name, this.blobPath(p.hash)]));
  }

  /** Removes blobs no slot refers to. */
  gc(): number {
    const keep = new Set<string>();
    for (const s of ['a', 'b'] as Slot[]) for (const p of this.slot(s)?.manifest.parts ?? []) keep.add(toHex(p.hash));
    let n = 0;
    for (const f of readdirSync(join(this.dir, 'blobs'))) if (!keep.has(f)) { rmSync(join(this.dir, 'blobs', f), { force: true }); n++; }
    return n;
  }
}
