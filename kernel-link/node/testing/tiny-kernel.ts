// A 60-byte multiboot kernel for testing the QEMU launcher without the real guest kernel: it
// prints a line on COM1, then echoes COM1 input back until it reads 'q', then exits QEMU through
// isa-debug-exit with value 0x21. Built with binutils (as, ld) into a cache directory.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const SOURCE = `
.code32
.section .text
.global _start
.align 4
mb: .long 0x1BADB002
    .long 0
    .long -0x1BADB002
_start:
  mov $msg, %esi
1: lodsb
  test %al, %al
  jz 2f
  mov $0x3f8, %dx
  out %al, %dx
  jmp 1b
2: mov $0x3fd, %dx
  in %dx, %al
  test $1, %al
  jz 2b
  mov $0x3f8, %dx
  in %dx, %al
  cmp $0x71, %al
  je 3f
  out %al, %dx
  jmp 2b
3: mov $0xf4, %dx
  mov $0x21, %al
  out %al, %dx
4: hlt
  jmp 4b
msg: .asciz "tiny kernel up\\n"
`;

export const TINY_KERNEL_BANNER = 'tiny kernel up\n';
export const TINY_KERNEL_EXIT = 0x21;

/** Path of the built kernel; builds it once per machine (needs `as` and `ld`). */
export function tinyKernel(): string {
  const dir = join(tmpdir(), 'orbital-tiny-kernel-v1');
  const elf = join(dir, 'tiny.elf');
  if (existsSync(elf)) return elf;
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'tiny.s'), SOURCE);
  const as = spawnSync('as', ['--32', '-o', join(dir, 'tiny.o'), join(dir, 'tiny.s')], { encoding: 'utf8' });
  if (as.status !== 0) throw new Error(`as failed: ${as.stderr}`);
  const tmp = `${elf}.${process.pid}`;
  const ld = spawnSync('ld', ['-m', 'elf_i386', '-Ttext', '0x100000', '-e', '_start', '-o', tmp, join(dir, 'tiny.o')], { encoding: 'utf8' });
  if (ld.status !== 0) throw new Error(`ld failed: ${ld.stderr}`);
  spawnSync('mv', [tmp, elf]);
  return elf;
}
