// Where a flash may write. A target must be the one the lab file names for the device; a block
// device must not be (or hold) anything mounted, used as swap or stacked on (LVM, RAID), and must
// not be the disk the running system lives on. A file target must not be open by another process
// (a QEMU still running from it) nor be the source itself. The system is read through a small
// view object so the refusals are testable without root or spare disks.
import { existsSync, readdirSync, readFileSync, readlinkSync, realpathSync, statSync, type Stats } from 'node:fs';
import { dirname } from 'node:path';
import { LabError } from '../errors.ts';
import type { Device } from '../labfile.ts';

export interface SystemView {
  /** /proc/self/mountinfo text. */
  mountinfo(): string;
  /** /proc/swaps text. */
  swaps(): string;
  /** The whole-disk maj:min of a block maj:min (itself when it is a disk); null when unknown. */
  diskOf(majmin: string): string | null;
  /** maj:min of the disk and all its partitions. */
  familyOf(diskMajmin: string): string[];
  /** maj:min of devices stacked on this one (dm, md), recursively; and of the devices under it. */
  holdersOf(majmin: string): string[];
  slavesOf(majmin: string): string[];
  /** Size in bytes of a block device. */
  blockSize(majmin: string): number | null;
  /** pids (with their command) that have `path` open. */
  openers(realPath: string): Array<{ pid: number; comm: string }>;
}

export interface Target {
  /** The path as the lab file gives it. */
  path: string;
  /** After following symlinks (/dev/disk/by-id/... -> /dev/sdb). */
  real: string;
  type: 'file' | 'block';
  exists: boolean;
  /** Current size in bytes (file size or device size); 0 for a file that does not exist yet. */
  size: number;
  majmin?: string;
}

const majminOf = (st: Stats) => `${Math.floor(st.rdev / 256) & 0xfff}:${(st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00)}`;

/**
 * Resolves and checks the device's flash target. `requested` (a path a person typed) must be the
 * same file as the lab file's target - nothing else is ever written.
 */
export function checkTarget(d: Device, opts: { requested?: string; sourcePath?: string; view?: SystemView } = {}): Target {
  const view = opts.view ?? realSystemView();
  if (!d.flashTarget) throw new LabError('bad-input', 'target-not-in-lab', `device ${d.name} has no flash target in the lab file (flash: { target: ... })`);
  const path = d.flashTarget;
  const real = existsSync(path) ? realpathSync(path) : path;
  if (opts.requested !== undefined) {
    const req = existsSync(opts.requested) ? realpathSync(opts.requested) : opts.requested;
    if (req !== real) throw new LabError('bad-input', 'target-not-in-lab', `refusing to write ${opts.requested}: the lab file names ${path}${real !== path ? ` (${real})` : ''} as ${d.name}'s flash target, and nothing else is written`);
  }
  if (!existsSync(path)) {
    if (path.startsWith('/dev/')) throw new LabError('disconnected', 'target-missing', `${d.name}: flash target ${path} is not there (card reader or board not attached?)`, 'lab');
    if (!existsSync(dirname(path))) throw new LabError('bad-input', 'target-missing', `${d.name}: the folder of flash target ${path} does not exist`, 'usage');
    return { path, real, type: 'file', exists: false, size: 0 };
  }
  const st = statSync(real);
  if (st.isDirectory()) throw new LabError('bad-input', 'target-not-in-lab', `${d.name}: flash target ${path} is a directory`);
  if (st.isFile()) {
    if (opts.sourcePath && existsSync(opts.sourcePath)) {
      const s = statSync(opts.sourcePath);
      if (s.dev === st.dev && s.ino === st.ino) throw new LabError('bad-input', 'target-is-source', `the image ${opts.sourcePath} is the flash target itself`);
    }
    const users = view.openers(real).filter((o) => o.pid !== process.pid);
    if (users.length) throw new LabError('refused', 'target-in-use', `${d.name}: flash target ${path} is open by ${users.map((u) => `${u.comm} (pid ${u.pid})`).join(', ')}; power the device off first`, 'lab', { users });
    return { path, real, type: 'file', exists: true, size: st.size };
  }
  if (!st.isBlockDevice()) throw new LabError('bad-input', 'target-not-in-lab', `${d.name}: flash target ${path} is neither a disk nor a file`);
  const mm = majminOf(st);
  checkBlock(d.name, path, real, mm, view);
  return { path, real, type: 'block', exists: true, size: view.blockSize(mm) ?? 0, majmin: mm };
}

/** The refusals for a block device; exported for tests with a fake view. */
export function checkBlock(name: string, path: string, real: string, mm: string, view: SystemView): void {
  const disk = view.diskOf(mm) ?? mm;
  const family = new Set([mm, ...view.familyOf(disk)]);
  // Everything built on top of any member (device-mapper, md) counts as the disk being used.
  for (const m of [...family]) for (const h of view.holdersOf(m)) family.add(h);
  const mounts = parseMountinfo(view.mountinfo());
  // The running system: the disks under /, /boot, /usr (through any dm/md layers).
  const sysDisks = new Set<string>();
  for (const mt of mounts) {
    if (!['/', '/boot', '/boot/efi', '/usr'].includes(mt.mountPoint)) continue;
    for (const low of [mt.majmin, ...view.slavesOf(mt.majmin)]) { const dk = view.diskOf(low); if (dk) sysDisks.add(dk); }
  }
  if (sysDisks.has(disk)) throw new LabError('refused', 'target-system-disk', `${name}: refusing to write ${path} (${real}): it is the disk the running system lives on`, 'lab');
  const mounted = mounts.filter((mt) => family.has(mt.majmin));
  if (mounted.length) throw new LabError('refused', 'target-mounted', `${name}: refusing to write ${path} (${real}): ${mounted.map((m) => `${m.source} is mounted on ${m.mountPoint}`).join('; ')} - unmount it first`, 'lab');
  const swaps = view.swaps().split('\n').slice(1).map((l) => l.split(/\s+/)[0]).filter(Boolean) as string[];
  for (const s of swaps) {
    try { const sm = majminOf(statSync(s)); if (family.has(sm)) throw new LabError('refused', 'target-mounted', `${name}: refusing to write ${path}: ${s} is in use as swap`, 'lab'); } catch (e) { if (e instanceof LabError) throw e; }
  }
  const stacked = [...family].filter((m) => view.holdersOf(m).length > 0);
  if (stacked.length) throw new LabError('refused', 'target-in-use', `${name}: refusing to write ${path}: device-mapper/RAID devices are built on it (${stacked.join(', ')})`, 'lab');
}

export function parseMountinfo(text: string): Array<{ majmin: string; mountPoint: string; source: string }> {
  const out: Array<{ majmin: string; mountPoint: string; source: string }> = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f.length < 10) continue;
    const sep = f.indexOf('-', 6);
    out.push({ majmin: f[2]!, mountPoint: f[4]!.replace(/\\040/g, ' '), source: sep > 0 ? f[sep + 2] ?? '' : '' });
  }
  return out;
}

const read = (p: string) => { try { return readFileSync(p, 'utf8').trim(); } catch { return null; } };
const list = (p: string) => { try { return readdirSync(p); } catch { return []; } };
const devOfName = (n: string) => read(`/sys/class/block/${n}/dev`);

export function realSystemView(): SystemView {
  return {
    mountinfo: () => read('/proc/self/mountinfo') ?? '',
    swaps: () => read('/proc/swaps') ?? '',
    diskOf(mm) {
      const sys = `/sys/dev/block/${mm}`;
      if (!existsSync(sys)) return null;
      if (existsSync(`${sys}/partition`)) return read(`${sys}/../dev`);
      return mm;
    },
    familyOf(mm) {
      const sys = `/sys/dev/block/${mm}`;
      let name: string;
      try { name = realpathSync(sys).split('/').pop()!; } catch { return [mm]; }
      return [mm, ...list(sys).filter((e) => e.startsWith(name)).map((p) => devOfName(p)).filter((x): x is string => !!x)];
    },
    holdersOf(mm) {
      const seen: string[] = [];
      const walk = (m: string) => { for (const h of list(`/sys/dev/block/${m}/holders`)) { const hm = devOfName(h); if (hm && !seen.includes(hm)) { seen.push(hm); walk(hm); } } };
      walk(mm);
      return seen;
    },
    slavesOf(mm) {
      const seen: string[] = [];
      const walk = (m: string) => { for (const s of list(`/sys/dev/block/${m}/slaves`)) { const sm = devOfName(s); if (sm && !seen.includes(sm)) { seen.push(sm); walk(sm); } } };
      walk(mm);
      return seen;
    },
    blockSize(mm) {
      const s = read(`/sys/dev/block/${mm}/size`);
      return s === null ? null : Number(s) * 512;
    },
    openers(realPath) {
      const out: Array<{ pid: number; comm: string }> = [];
      for (const p of list('/proc')) {
        if (!/^\d+$/.test(p)) continue;
        for (const fd of list(`/proc/${p}/fd`)) {
          let l: string;
          try { l = readlinkSync(`/proc/${p}/fd/${fd}`); } catch { continue; }
          if (l === realPath) { out.push({ pid: Number(p), comm: read(`/proc/${p}/comm`) ?? '?' }); break; }
        }
      }
      return out;
    },
  };
}
