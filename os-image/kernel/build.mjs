#!/usr/bin/env node
// Builds the Orbital guest kernel (`npm run os:build`, and tests when needed):
//   target/kernel/orbital-kernel.elf  multiboot v1 image for `qemu-system-x86_64 -kernel`
//   target/kernel/orbital.iso         hybrid BIOS/UEFI ISO (grub-mkrescue) for QEMU disks and USB sticks
// Plain rustc against the host target's precompiled core/alloc (no crates, no rust-src):
// the pure library (src/lib.rs) as an rlib, the kernel (src/kernel/main.rs) as a staticlib,
// then ld with src/kernel/link.ld. Same sources → same bytes (paths remapped, one codegen unit,
// no build id). Skips work whose outputs are newer than every source. Flags: --force, --no-iso,
// --json (one JSON line at the end).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync, copyFileSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, 'target', 'kernel');
const args = process.argv.slice(2);
const force = args.includes('--force');
const wantIso = !args.includes('--no-iso');
const json = args.includes('--json');
const log = (m) => { if (!json) console.error(`os:build: ${m}`); };

function sources(dir) {
  const r = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) r.push(...sources(p)); else if (/\.(rs|s|ld)$/.test(e.name)) r.push(p);
  }
  return r;
}
const srcs = [...sources(join(here, 'src')), fileURLToPath(import.meta.url)];
const newest = Math.max(...srcs.map((p) => statSync(p).mtimeMs));
const fresh = (p) => !force && existsSync(p) && statSync(p).mtimeMs >= newest;

const elf = join(out, 'orbital-kernel.elf');
const iso = join(out, 'orbital.iso');
mkdirSync(out, { recursive: true });
const t0 = Date.now();
const rustc = process.env.RUSTC || 'rustc';
// Remap the checkout path so the bytes do not depend on where the repo lives.
const common = ['--edition', '2021', '-C', 'opt-level=3', '-C', 'panic=abort', '-C', 'relocation-model=static',
  '-C', 'codegen-units=1', '-C', 'debuginfo=0', '-C', 'code-model=small', '-C', 'no-redzone=yes',
  `--remap-path-prefix=${here}=kernel`, `--remap-path-prefix=${process.env.HOME || '/root'}=~`];
let built = false;
if (!fresh(elf)) {
  log('rustc: lib (pure parts)');
  execFileSync(rustc, [...common, '--crate-type', 'rlib', '--crate-name', 'orbital', join(here, 'src/lib.rs'), '-o', join(out, 'liborbital.rlib')], { stdio: 'inherit' });
  log('rustc: kernel');
  execFileSync(rustc, [...common, '--crate-type', 'staticlib', '--crate-name', 'orbital_kernel', join(here, 'src/kernel/main.rs'),
    '--extern', `orbital=${join(out, 'liborbital.rlib')}`, '-L', out, '-o', join(out, 'libkernel.a')], { stdio: 'inherit' });
  log('ld');
  execFileSync('ld', ['-n', '-static', '--gc-sections', '--no-dynamic-linker', '-z', 'noexecstack', '--build-id=none', '--strip-debug', '--no-warn-rwx-segments',
    '-T', join(here, 'src/kernel/link.ld'), '-o', elf, join(out, 'libkernel.a')], { stdio: 'inherit' });
  built = true;
}
let isoBuilt = false;
if (wantIso && (!existsSync(iso) || statSync(iso).mtimeMs < statSync(elf).mtimeMs || force)) {
  const which = spawnSync('sh', ['-c', 'command -v grub-mkrescue']);
  if (which.status !== 0) log('grub-mkrescue missing: no ISO (install grub-pc-bin, xorriso, mtools)');
  else {
    const root = join(out, 'iso-root');
    rmSync(root, { recursive: true, force: true });
    mkdirSync(join(root, 'boot', 'grub'), { recursive: true });
    copyFileSync(elf, join(root, 'boot', 'orbital-kernel.elf'));
    // GRUB stays off COM1: the serial stream belongs to the kernel (console text + link frames).
    writeFileSync(join(root, 'boot', 'grub', 'grub.cfg'), [
      'set timeout=0', 'set timeout_style=hidden', 'set default=0',
      'menuentry "Orbital OS" {', '  multiboot /boot/orbital-kernel.elf', '  boot', '}', ''].join('\n'));
    log('grub-mkrescue');
    // SOURCE_DATE_EPOCH pins xorriso's volume dates (the ISO is best-effort reproducible).
    const r = spawnSync('grub-mkrescue', ['-o', iso, root, '--', '-volume_date', 'all_file_dates', '=1700000000', '-volume_date', 'uuid', '2023111422132000', '-volume_date', 'c', '=1700000000', '-volume_date', 'm', '=1700000000', '-boot_image', 'any', 'gpt_disk_guid=volume_date_uuid'],
      { env: { ...process.env, SOURCE_DATE_EPOCH: '1700000000' }, encoding: 'utf8' });
    if (r.status !== 0) { console.error(r.stderr); process.exit(1); }
    pinFatSerials(iso);
    isoBuilt = true;
  }
}
/** mformat gives the EFI system partition image (FAT) a random volume serial: pin it, so the ISO
 *  is the same bytes for the same kernel. Finds FAT boot sectors made by mtools on 2048-byte sectors. */
function pinFatSerials(path) {
  const b = readFileSync(path);
  let n = 0;
  for (let at = 0; at + 512 <= b.length; at += 2048) {
    if (b[at] === 0xeb && b.toString('latin1', at + 3, at + 7) === 'MTOO' && b[at + 510] === 0x55 && b[at + 511] === 0xaa && b[at + 38] === 0x29) {
      b.writeUInt32LE(0x0b17a100, at + 39); n++;
    }
  }
  if (n) writeFileSync(path, b);
}
const sha = (p) => existsSync(p) ? createHash('sha256').update(readFileSync(p)).digest('hex') : null;
const summary = { elf: relative(process.cwd(), elf), iso: existsSync(iso) ? relative(process.cwd(), iso) : null,
  built, isoBuilt, ms: Date.now() - t0, elfSha256: sha(elf), elfBytes: statSync(elf).size };
if (json) console.log(JSON.stringify(summary));
else log(`${built ? 'built' : 'up to date'} ${summary.elf} (${summary.elfBytes} bytes, sha256 ${summary.elfSha256.slice(0, 16)}…)${summary.iso ? `, ${summary.iso}` : ''} in ${summary.ms} ms`);
