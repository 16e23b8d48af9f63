// Test helper: the guest kernel (os-image/kernel, helper-5's) as the thing the lab boots. Built on
// demand with its own build script (run as a process - hwlab does not import os-image/kernel),
// then copied so a concurrent rebuild cannot change the bytes under a running test.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const KDIR = resolve(import.meta.dirname, '../os-image/kernel');
const OUT = join(KDIR, 'target', 'kernel');

/** Copies of the kernel (and ISO) in a temp dir the caller removes (`dir`). */
export function guestArtifacts(opts: { iso?: boolean } = {}): { elf: string; iso?: string; dir: string } {
  const elf = join(OUT, 'orbital-kernel.elf');
  const iso = join(OUT, 'orbital.iso');
  if (!existsSync(elf) || (opts.iso && !existsSync(iso))) {
    const r = spawnSync(process.execPath, [join(KDIR, 'build.mjs'), ...(opts.iso ? [] : ['--no-iso'])], { encoding: 'utf8', timeout: 600_000 });
    if (r.status !== 0) throw new Error(`guest kernel build failed:\n${r.stderr}`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'orbital-guest-copy-'));
  copyFileSync(elf, join(dir, 'kernel.elf'));
  if (opts.iso) copyFileSync(iso, join(dir, 'orbital.iso'));
  return { elf: join(dir, 'kernel.elf'), iso: opts.iso ? join(dir, 'orbital.iso') : undefined, dir };
}

/** Boot patterns for the guest kernel's stage lines (those `orbital-lab init` writes). */
export { GUEST_BOOT } from './guest-boot.ts';
