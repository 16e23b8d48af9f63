// `npm run bench -- flash`: write a 1 GiB image with ~25% data to a file target, with its bmap.
// orbital_s (write + sync + uncached read-back verify) against bmaptool copy (writes + syncs but never
// reads back), dd conv=fsync of the whole image, and the hash rate of Debian's b3sum on the image.
// orbital_blake3_s flashes the same image with a bmap without range checksums, so BLAKE3 runs over
// every mapped byte: the cost of the hash pass the checksummed bmap replaces.
import { spawnSync } from 'node:child_process';
import { constants, mkdtempSync, rmSync, statfsSync, openSync, writeSync, ftruncateSync, closeSync, unlinkSync, existsSync, writeFileSync } from 'node:fs';
import { randomFillSync } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BenchContext, BenchResult } from './harness.ts';
import { round } from './harness.ts';
import { parseLab } from '../hwlab/labfile.ts';
import { flash, verifyOnly } from '../hwlab/flash/flash.ts';
import { pageAligned } from '../hwlab/flash/direct.ts';
import { open } from 'node:fs/promises';


const MiB = 1 << 20;

function realDiskTmp(): string {
  // tmpfs would measure memory, not a disk: fall back to /var/tmp then the repo's own folder.
  for (const d of [tmpdir(), '/var/tmp', process.cwd()]) {
    try { if (statfsSync(d).type !== 0x01021994) return d; } catch { /* try next */ }
  }
  return process.cwd();
}

function run(cmd: string, args: string[]): number {
  return runCpu(cmd, args).wall;
}

/** Wall seconds, and CPU seconds (user+sys) from bash's `time`, of one command. */
function runCpu(cmd: string, args: string[]): { wall: number; cpu: number } {
  const quoted = [cmd, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const t0 = performance.now();
  const r = spawnSync('bash', ['-c', `TIMEFORMAT='%U %S'; time ${quoted} >/dev/null 2>/tmp/.orbital-bench-err-$$ || { cat /tmp/.orbital-bench-err-$$ >&2; rm -f /tmp/.orbital-bench-err-$$; exit 1; }; rm -f /tmp/.orbital-bench-err-$$`], { encoding: 'utf8' });
  const wall = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  const [u, sy] = r.stderr.trim().split('\n').pop()!.split(' ').map(Number);
  return { wall, cpu: (u ?? 0) + (sy ?? 0) };
}

function dropCache(path: string): void {
  spawnSync('dd', [`if=${path}`, 'iflag=nocache', 'count=0'], { stdio: 'ignore' });
}

/**
 * The disk's floor for a flash's I/O, with nothing else: the image's mapped extents written to a new
 * sparse file with O_DIRECT in 2 MiB requests, 4 in flight (as the flash writes), then one datasync.
 * With `readBack`, each chunk is also read back O_DIRECT (3 in flight) once its write completed, as
 * the flash's verify does - no hashing, no compare, no source read, no safety checks. What the disk
 * gives a tool that writes the mapped bytes (write_floor_s) and one that also reads them back
 * (readback_floor_s), in this run.
 */
async function diskFloor(path: string, extents: Array<[number, number]>, size: number, readBack: boolean): Promise<number> {
  const chunk = 2 * MiB;
  const jobs: Array<[number, number]> = [];
  for (const [base, len] of extents) for (let o = 0; o < len; o += chunk) jobs.push([base + o, Math.min(chunk, len - o)]);
  const wbufs = Array.from({ length: 4 }, () => { const b = pageAligned(chunk); if (!b) throw new Error('no page-aligned memory'); randomFillSync(b); return b; });
  const rbufs = Array.from({ length: readBack ? 3 : 0 }, () => pageAligned(chunk)!);
  const t0 = performance.now();
  const fh = await open(path, constants.O_RDWR | constants.O_CREAT | constants.O_TRUNC | constants.O_DIRECT, 0o644);
  const rh = readBack ? await open(path, constants.O_RDONLY | constants.O_DIRECT) : null;
  try {
    await fh.truncate(size);
    let next = 0;
    let writing = true;
    const written: Array<[number, number]> = [];
    const wake: Array<() => void> = [];
    const ping = () => { for (const f of wake.splice(0)) f(); };
    const writers = Promise.all(wbufs.map(async (b) => {
      while (next < jobs.length) { const [pos, len] = jobs[next++]!; await fh.write(b, 0, len, pos); written.push([pos, len]); ping(); }
    })).finally(() => { writing = false; ping(); });
    const readers = Promise.all(rbufs.map(async (b) => {
      for (;;) {
        const j = written.shift();
        if (j) { await rh!.read(b, 0, j[1], j[0]); continue; }
        if (!writing) return;
        await new Promise<void>((r) => wake.push(r));
      }
    }));
    await Promise.all([writers, readers]);
    await fh.datasync();
  } finally {
    await fh.close();
    await rh?.close();
  }
  return (performance.now() - t0) / 1000;
}

export default async function (ctx: BenchContext): Promise<BenchResult> {
  const reps = Number(ctx.args.find((a) => a.startsWith('--reps='))?.slice(7) ?? 3);
  const size = Number(ctx.args.find((a) => a.startsWith('--mib='))?.slice(6) ?? 1024) * MiB;
  const base = realDiskTmp();
  const dir = mkdtempSync(join(base, 'orbital-flash-bench-'));
  const notes: string[] = [`temp dir ${dir} (fs type 0x${statfsSync(dir).type.toString(16)})`];
  try {
    // The image: 64 extents of size/256 random bytes at spread-out offsets = 25% data, holes elsewhere.
    const img = join(dir, 'image.img');
    ctx.progress(`creating a ${size / MiB} MiB image with 25% data`);
    const fd = openSync(img, 'w');
    ftruncateSync(fd, size);
    const extent = size / 256;
    const buf = Buffer.allocUnsafe(extent);
    const extents: Array<[number, number]> = [];
    for (let i = 0; i < 64; i++) {
      randomFillSync(buf);
      writeSync(fd, buf, 0, extent, i * 4 * extent + (i % 3) * extent);
      extents.push([i * 4 * extent + (i % 3) * extent, extent]);
    }
    closeSync(fd);
    const bmap = join(dir, 'image.bmap');
    const bc = spawnSync('bmaptool', ['create', '-o', bmap, img], { stdio: ['ignore', 'ignore', 'pipe'] });
    if (bc.status !== 0) throw new Error(`bmaptool create failed: ${bc.stderr}`);
    const bmapNoSum = join(dir, 'image-nosum.bmap');
    const bn = spawnSync('bmaptool', ['create', '--no-checksum', '-o', bmapNoSum, img], { stdio: ['ignore', 'ignore', 'pipe'] });
    if (bn.status !== 0) throw new Error(`bmaptool create --no-checksum failed: ${bn.stderr}`);
    const lab = parseLab(`version: 1\nstate: ${join(dir, 'state')}\ndevices:\n  bench:\n    kind: qemu\n    flash: { target: ${join(dir, 'orbital.img')} }\n`, join(dir, 'lab.yaml'));
    if (!lab.ok) throw new Error(JSON.stringify(lab.issues));
    const dev = lab.lab.devices.get('bench')!;
    writeFileSync(join(dir, 'lab.yaml'), '');

    const targets = ['orbital.img', 'bmaptool.img', 'dd.img', 'floor.img'].map((n) => join(dir, n));
    const clean = () => { for (const t of targets) if (existsSync(t)) unlinkSync(t); };
    const orbital: number[] = []; const bmaptool: number[] = []; const dd: number[] = []; const verify: number[] = []; const b3: number[] = []; const b3cold: number[] = [];
    const orbitalCpu: number[] = []; const bmaptoolCpu: number[] = []; const devRead: number[] = []; const readback: number[] = [];
    const orbitalB3: number[] = []; const orbitalB3Cpu: number[] = []; const verifyCmd: number[] = [];
    const writeFloor: number[] = []; const readbackFloor: number[] = [];
    let verifyMethod = '';
    const deltaS: number[] = [];
    let deltaWritten = 0;
    let last: Awaited<ReturnType<typeof flash>> | null = null;
    let bestRun: Awaited<ReturnType<typeof flash>> | null = null;
    // The disk's own uncached read rate, on 256 MiB of data: what a read-back verify can reach at best.
    const data = join(dir, 'data.bin');
    { const f = openSync(data, 'w'); const b = Buffer.allocUnsafe(16 * MiB); for (let i = 0; i < 16; i++) { randomFillSync(b); writeSync(f, b); } closeSync(f); spawnSync('sync'); }
    for (let r = 0; r < reps; r++) {
      // Same starting point for every tool: the image in the page cache, the target absent.
      clean();
      ctx.progress(`rep ${r + 1}/${reps}: bmaptool copy`);
      const bt = runCpu('bmaptool', ['-q', 'copy', '--bmap', bmap, img, targets[1]!]);
      bmaptool.push(bt.wall); bmaptoolCpu.push(bt.cpu);
      clean();
      ctx.progress(`rep ${r + 1}/${reps}: orbital flash`);
      const t0 = performance.now();
      const c0 = process.cpuUsage();
      last = await flash({ device: dev, stateDir: lab.lab.stateDir, source: img, bmap, force: true });
      const c = process.cpuUsage(c0);
      orbital.push((performance.now() - t0) / 1000);
      orbitalCpu.push((c.user + c.system) / 1e6);
      if (!bestRun || orbital[orbital.length - 1]! <= Math.min(...orbital)) bestRun = last;
      // flash_verify_mb_s: image bytes (holes included: the bmap says they need no reading) per second of
      // read-back; readback_mb_s: bytes actually read back from the target per second, same seconds.
      verify.push(last.verify!.seconds > 0 ? size / 1e6 / last.verify!.seconds : 0);
      readback.push(last.verify!.mbPerS);
      // An update: the target holds the image but for 4 changed bytes in 4 chunks (an earlier
      // version): the flash writes only those chunks and the head (delta), against orbital_s.
      {
        const f = openSync(targets[0]!, 'r+');
        for (let i = 0; i < 4; i++) writeSync(f, Buffer.from([i + 1]), 0, 1, (i * 16) * 4 * extent + ((i * 16) % 3) * extent + 12345);
        closeSync(f);
        dropCache(targets[0]!);
        const td = performance.now();
        const d = await flash({ device: dev, stateDir: lab.lab.stateDir, source: img, bmap });
        deltaS.push((performance.now() - td) / 1000);
        if (!d.delta || d.delta.differed !== 4) throw new Error(`delta flash: expected 4 chunks to differ, got ${JSON.stringify(d.delta)}`);
        deltaWritten = d.bytesWritten;
      }
      // `orbital-lab verify`: the flashed target read back uncached and compared with the image,
      // alone (no write beside it) - a job like b3sum's: read every byte of the image once, check it.
      dropCache(targets[0]!);
      const tv = performance.now();
      const vr = await verifyOnly({ device: dev, stateDir: lab.lab.stateDir, source: img, bmap });
      if (!vr.same) throw new Error('verify found the flashed target differs from the image');
      verifyCmd.push((performance.now() - tv) / 1000);
      verifyMethod = vr.method;
      clean();
      ctx.progress(`rep ${r + 1}/${reps}: orbital flash, bmap without checksums (BLAKE3 over the bytes)`);
      const t1 = performance.now();
      const c1 = process.cpuUsage();
      await flash({ device: dev, stateDir: lab.lab.stateDir, source: img, bmap: bmapNoSum, force: true });
      const cb = process.cpuUsage(c1);
      orbitalB3.push((performance.now() - t1) / 1000);
      orbitalB3Cpu.push((cb.user + cb.system) / 1e6);
      // After the flashes, so bmaptool and orbital still run back to back as before.
      clean();
      ctx.progress(`rep ${r + 1}/${reps}: the disk's floor (O_DIRECT write, then write + read-back)`);
      writeFloor.push(await diskFloor(targets[3]!, extents, size, false));
      clean();
      readbackFloor.push(await diskFloor(targets[3]!, extents, size, true));
      clean();
      dropCache(data);
      devRead.push(256 / 1.048576 / run('dd', [`if=${data}`, 'of=/dev/null', 'bs=4M', 'iflag=direct']));
      clean();
      ctx.progress(`rep ${r + 1}/${reps}: dd conv=fsync`);
      dd.push(run('dd', [`if=${img}`, `of=${targets[2]}`, 'bs=4M', 'conv=fsync']));
      clean();
      ctx.progress(`rep ${r + 1}/${reps}: b3sum`);
      b3.push(size / 1e6 / run('b3sum', [img]));
      dropCache(img);
      b3cold.push(size / 1e6 / run('b3sum', [img]));
    }
    const py = run('bmaptool', ['--version']);
    const best = (xs: number[]) => Math.min(...xs);
    const most = (xs: number[]) => Math.max(...xs);
    const median = (xs: number[]) => { const o = [...xs].sort((x, y) => x - y); return o.length % 2 ? o[(o.length - 1) / 2]! : (o[o.length / 2 - 1]! + o[o.length / 2]!) / 2; };
    const figures = {
      orbital_s: round(best(orbital)),
      bmaptool_s: round(best(bmaptool)),
      orbital_median_s: round(median(orbital)),
      bmaptool_median_s: round(median(bmaptool)),
      dd_s: round(best(dd)),
      write_floor_s: round(best(writeFloor)),
      readback_floor_s: round(best(readbackFloor)),
      verify_mb_s: round(size / 1e6 / best(verifyCmd), 1),
      verify_s: round(best(verifyCmd)),
      flash_verify_mb_s: round(most(verify), 1),
      readback_mb_s: round(most(readback), 1),
      b3sum_mb_s: round(most(b3), 1),
      b3sum_uncached_mb_s: round(most(b3cold), 1),
      device_read_mb_s: round(most(devRead), 1),
      orbital_cpu_s: round(Math.min(...orbitalCpu)),
      bmaptool_cpu_s: round(Math.min(...bmaptoolCpu)),
      orbital_blake3_s: round(best(orbitalB3)),
      orbital_blake3_cpu_s: round(Math.min(...orbitalB3Cpu)),
      orbital_delta_s: round(best(deltaS)),
      delta_written_mib: round(deltaWritten / MiB, 1),
      orbital_write_s: round(bestRun!.seconds.write + bestRun!.seconds.sync),
      orbital_verify_tail_s: round(bestRun!.seconds.verify),
      mapped_mib: round(last!.mappedBytes / MiB, 1),
      image_mib: size / MiB,
    };
    notes.push(`best of ${reps}; image in page cache for every tool; targets are new files on the same disk. *_median_s: the median of the same ${reps} runs (not a goal; bmaptool's buffered write varies more from run to run than orbital's O_DIRECT one, so its best run is further from its typical one)`);
    notes.push(`verify reads back ${figures.mapped_mib} MiB through ${last!.verify!.method} and compares it byte for byte with the written bytes, kept in memory until then; the image is hashed once while it is written: the bmap's SHA-256 per range (checked, on a worker), its BLAKE3 id over that checked range table (${last!.blake3Of})`);
    notes.push(`orbital_delta_s: the same flash onto the target holding the image but for 4 bytes in 4 of its chunks (an earlier version): every mapped chunk compared uncached, only those 4 and the head written and read back (${figures.delta_written_mib} MiB); its baseline is orbital_s, the whole image written and read back`);
    notes.push(`orbital_blake3_s: the same flash with a bmap without range checksums, where BLAKE3 (WebAssembly, ~1 GB/s) runs over every mapped byte instead`);
    notes.push(`verify_mb_s: \`orbital-lab verify\` (verifyOnly) of the flashed target, alone: ${figures.mapped_mib} MiB read back through ${verifyMethod} (cache dropped first) and compared byte for byte with the image (in the page cache, as for b3sum), the bmap's SHA-256 per range checked on the worker; counted in IMAGE bytes (${figures.image_mib} MiB, holes included - the bmap says they need no reading) per second, the unit of b3sum_mb_s (verify_s ${figures.verify_s}). Per byte actually read back that is ${round(figures.mapped_mib * 1.048576 / figures.verify_s, 1)} MB/s (device_read_mb_s ${figures.device_read_mb_s}: dd iflag=direct of other data on the disk)`);
    notes.push(`flash_verify_mb_s (${figures.flash_verify_mb_s}) and readback_mb_s (${figures.readback_mb_s}): the verify inside the flash, in image bytes and in bytes read back per wall second during which a read-back was in flight - it runs beside the write and shares the disk with it, so these seconds are not a separate phase (before this bench measured the verify command, verify_mb_s was this figure)`);
    notes.push(`b3sum_mb_s hashes the whole ${size / MiB} MiB file from the page cache (75% holes, multi-threaded); b3sum_uncached_mb_s after dropping the file's cache`);
    notes.push('device_read_mb_s: dd iflag=direct bs=4M of 256 MiB of data on the same disk - the ceiling for any uncached read-back');
    notes.push(`verify runs beside the write: with O_DIRECT (directIo ${last!.directIo}) 2 MiB chunks are read back in 4 MiB batches once their writes completed, and the target is synced twice (before and after the head); through the page cache, after each 32 MiB sync. orbital_verify_tail_s is what is left after the final sync`);
    notes.push('bmaptool copy to a file target: buffered writes and one fsync at the end (its default; it syncs every 6 MiB only on block devices), same image and bmap, a new file on the same filesystem');
    notes.push('*_cpu_s: user+sys CPU seconds (orbital: the whole process incl. the hash worker; bmaptool: bash time) - steadier than wall time on a shared machine');
    notes.push(`write_floor_s (${figures.write_floor_s}) and readback_floor_s (${figures.readback_floor_s}): the disk alone, in this run - the same ${figures.mapped_mib} MiB of extents written O_DIRECT in 2 MiB requests (4 in flight) to a new sparse file and synced, without and with each chunk read back as its write completes (3 in flight): no source read, hashing, compare or safety checks. bmaptool's job needs the first from the disk, orbital's (write + read-back) the second: orbital_s - readback_floor_s is orbital's own cost (${round(figures.orbital_s - figures.readback_floor_s)} s), bmaptool_s - write_floor_s bmaptool's (${round(figures.bmaptool_s - figures.write_floor_s)} s)`);
    notes.push(`orbital runs in-process; bmaptool's figure includes Python start-up (bmaptool --version takes ${round(py, 2)} s)`);
    return {
      figures,
      goals: [
        { text: `orbital_s (${figures.orbital_s}, write+verify) <= bmaptool_s (${figures.bmaptool_s}, write only)`, met: figures.orbital_s <= figures.bmaptool_s },
        { text: `verify_mb_s (${figures.verify_mb_s}, orbital-lab verify, image bytes/s) >= 0.5 x b3sum_mb_s (${figures.b3sum_mb_s})`, met: figures.verify_mb_s >= 0.5 * figures.b3sum_mb_s },
      ],
      notes,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

