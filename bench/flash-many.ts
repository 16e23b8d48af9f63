// `npm run bench -- flash-many`: one xz-compressed image (512 MiB, 192 MiB of it real binaries from
// /usr/lib, the rest holes; with its bmap) flashed onto two file targets at once, as
// `orbital-lab flash A B IMAGE.xz` does it: one decoder feeding both (shared_s), against a decoder
// for each device (separate_s: how multi-device flash worked before) and one device alone (one_s).
// CPU seconds include the xz child processes.
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readSync, rmSync, statSync, statfsSync, unlinkSync, writeSync, ftruncateSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BenchContext, BenchResult } from './harness.ts';
import { round } from './harness.ts';
import { parseLab } from '../hwlab/labfile.ts';
import { flash } from '../hwlab/flash/flash.ts';
import { SharedDecode } from '../hwlab/flash/shared.ts';

const MiB = 1 << 20;

function diskTmp(): string {
  for (const d of [tmpdir(), '/var/tmp', process.cwd()]) {
    try { if (statfsSync(d).type !== 0x01021994) return d; } catch { /* next */ }
  }
  return process.cwd();
}

/** CPU seconds of this process and its reaped children (the decoders), from /proc/self/stat. */
function cpuAll(): number {
  const s = readFileSync('/proc/self/stat', 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ').map(Number);
  // fields 14-17 (utime stime cutime cstime) are at 11..14 after the command name
  return (f[11]! + f[12]! + f[13]! + f[14]!) / 100;
}

/** Fills buf with the bytes of real files under dir (sorted walk), as far as they go. */
function realBytes(dir: string, buf: Buffer): number {
  let at = 0;
  const walk = (d: string) => {
    let names: string[];
    try { names = readdirSync(d).sort(); } catch { return; }
    for (const n of names) {
      if (at >= buf.length) return;
      const p = join(d, n);
      let st; try { st = statSync(p, { throwIfNoEntry: false }); } catch { continue; }
      if (!st) continue;
      if (st.isDirectory()) walk(p);
      else if (st.isFile() && st.size > 0) {
        try { const fd = openSync(p, 'r'); at += readSync(fd, buf, at, Math.min(st.size, buf.length - at), 0); closeSync(fd); } catch { /* unreadable */ }
      }
    }
  };
  walk(dir);
  return at;
}

export default async function (ctx: BenchContext): Promise<BenchResult> {
  const reps = Number(ctx.args.find((a) => a.startsWith('--reps='))?.slice(7) ?? 3);
  const dir = mkdtempSync(join(diskTmp(), 'orbital-flash-many-bench-'));
  try {
    const size = 512 * MiB;
    const img = join(dir, 'os.img');
    ctx.progress('creating a 512 MiB image: 192 MiB of /usr/lib binaries in 48 extents, holes between');
    const data = Buffer.alloc(192 * MiB);
    const got = realBytes('/usr/lib', data);
    if (got < data.length) throw new Error(`only ${got} bytes of files under /usr/lib`);
    const fd = openSync(img, 'w');
    ftruncateSync(fd, size);
    const ext = 4 * MiB;
    for (let i = 0; i < 48; i++) writeSync(fd, data, i * ext, ext, (i * 10 + (i % 3)) * MiB);
    closeSync(fd);
    const bmap = join(dir, 'os.bmap');
    const bc = spawnSync('bmaptool', ['create', '-o', bmap, img], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
    if (bc.status !== 0) throw new Error(`bmaptool create failed (Debian package bmap-tools): ${bc.stderr}`);
    ctx.progress('compressing it with xz -1 -T2');
    const xz = spawnSync('xz', ['-1', '-T2', '-k', '-f', img], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
    if (xz.status !== 0) throw new Error(`xz failed (Debian package xz-utils): ${xz.stderr}`);
    const src = `${img}.xz`;
    rmSync(img);
    const lab = parseLab(`version: 1\nstate: ${join(dir, 'state')}\ndevices:\n  a:\n    kind: qemu\n    flash: { target: ${join(dir, 'a.img')} }\n  b:\n    kind: qemu\n    flash: { target: ${join(dir, 'b.img')} }\n`, join(dir, 'lab.yaml'));
    if (!lab.ok) throw new Error(JSON.stringify(lab.issues));
    writeFileSync(join(dir, 'lab.yaml'), '');
    const devs = ['a', 'b'].map((n) => lab.lab.devices.get(n)!);
    const clean = () => { for (const n of ['a.img', 'b.img']) if (existsSync(join(dir, n))) unlinkSync(join(dir, n)); };
    const opts = (d: (typeof devs)[number]) => ({ device: d, stateDir: lab.lab.stateDir, source: src, bmap, force: true });
    const time = async (fn: () => Promise<unknown>) => { clean(); const c = cpuAll(); const t = performance.now(); await fn(); return { s: (performance.now() - t) / 1000, cpu: cpuAll() - c }; };
    const one: number[] = []; const shared: number[] = []; const separate: number[] = [];
    const oneCpu: number[] = []; const sharedCpu: number[] = []; const separateCpu: number[] = [];
    let passes = 0;
    for (let r = 0; r < reps; r++) {
      ctx.progress(`rep ${r + 1}/${reps}: one device`);
      const o = await time(() => flash(opts(devs[0]!)));
      one.push(o.s); oneCpu.push(o.cpu);
      ctx.progress(`rep ${r + 1}/${reps}: two devices, one decoder`);
      const sd = new SharedDecode(src, ['a', 'b']);
      const s = await time(() => Promise.all(devs.map((d) => flash({ ...opts(d), openSource: sd.opener(d.name) }).finally(() => sd.leave(d.name)))));
      passes = sd.passes;
      shared.push(s.s); sharedCpu.push(s.cpu);
      ctx.progress(`rep ${r + 1}/${reps}: two devices, a decoder each`);
      const p = await time(() => Promise.all(devs.map((d) => flash(opts(d)))));
      separate.push(p.s); separateCpu.push(p.cpu);
    }
    clean();
    const best = (xs: number[]) => round(Math.min(...xs));
    const figures = {
      shared_s: best(shared),
      separate_s: best(separate),
      one_s: best(one),
      shared_cpu_s: best(sharedCpu),
      separate_cpu_s: best(separateCpu),
      one_cpu_s: best(oneCpu),
      decoder_passes: passes,
      xz_mib: round(statSync(src).size / MiB, 1),
      image_mib: size / MiB,
      mapped_mib: 192,
    };
    return {
      figures,
      goals: [{ text: `shared_s (${figures.shared_s}, two devices, one decoder) < separate_s (${figures.separate_s}, a decoder each)`, met: figures.shared_s < figures.separate_s }],
      notes: [
        `best of ${reps}; temp dir ${dir} (fs 0x${statfsSync(dir).type.toString(16)}); every flash writes, syncs and reads back (verify) its target, with the bmap`,
        'the decoder is Debian\'s xz (single-threaded decode) in a child process; *_cpu_s are user+sys of this process and its reaped children',
        `one_s: the same flash onto one device alone; two devices from one decoder take ${round(figures.shared_s / figures.one_s, 2)}x its time, a decoder each ${round(figures.separate_s / figures.one_s, 2)}x`,
      ],
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
