// Uncached I/O helpers. O_DIRECT needs the buffer address, offset and length aligned to the
// device's logical block size. Node does not expose buffer addresses, so an over-allocated buffer
// is probed: the first sub-offset at which an O_DIRECT read of 4 KiB succeeds is aligned for this
// very target (512- and 4096-byte devices alike).
//
// Accepted is not fast: a buffer that is 512- but not page-aligned (what the probe finds in a
// malloc'd buffer, which sits 16 bytes into its pages) spreads every 4 KiB block over two pages,
// and a virtual disk then writes 5-10x slower (measured on virtio-blk: 128 MiB in 0.75-1.2 s
// instead of 0.13-0.19 s). So the buffers are cut from a WebAssembly memory, which V8 maps on
// pages of its own: its first byte starts a page, and the probe confirms offset 0.
import { constants } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';

export const ALIGN = 4096;
export const O_DIRECT = constants.O_DIRECT ?? 0;

/**
 * Allocates `count` buffers of `size` usable bytes aligned for O_DIRECT on `fh`; null if none aligns.
 * They are cut from one allocation, so one probe finds the alignment for all of them (they lie at
 * multiples of 4 KiB from the first). The probe must touch allocated blocks: a filesystem does not
 * check alignment when reading a hole. `write` probes by writing 4 KiB of zeros at offset 0 (only
 * for a target about to be overwritten, whose head is rewritten last anyway); `read` reads 4 KiB at
 * offset 0, which every flash writes.
 */
export async function alignedBuffers(fh: FileHandle, count: number, size: number, probe: 'read' | 'write', shared = false): Promise<Buffer[] | null> {
  const stride = alignUp(size);
  const raw = pageAligned(count * stride + ALIGN) ?? newBuffer(count * stride + ALIGN, shared);
  if (probe === 'write') raw.fill(0, 0, 2 * ALIGN);
  let found = -1;
  for (let off = 0; off < ALIGN; off += 16) {
    try {
      if (probe === 'write') await fh.write(raw, off, ALIGN, 0);
      else await fh.read(raw, off, ALIGN, 0);
      found = off;
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EINVAL') throw e;
    }
  }
  if (found < 0) return null;
  return Array.from({ length: count }, (_, i) => raw.subarray(found + i * stride, found + i * stride + size));
}

export const alignDown = (x: number) => Math.floor(x / ALIGN) * ALIGN;
export const alignUp = (x: number) => Math.ceil(x / ALIGN) * ALIGN;

/** Reads exactly [pos, pos+len) or until EOF; returns bytes read. */
export async function readFull(fh: FileHandle, buf: Buffer, len: number, pos: number): Promise<number> {
  let got = 0;
  while (got < len) {
    const { bytesRead } = await fh.read(buf, got, len - got, pos + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got;
}

export async function writeFull(fh: FileHandle, buf: Uint8Array, len: number, pos: number): Promise<void> {
  let done = 0;
  while (done < len) {
    const { bytesWritten } = await fh.write(buf, done, len - done, pos + done);
    if (bytesWritten === 0) throw Object.assign(new Error('write returned 0 bytes'), { code: 'ENOSPC' });
    done += bytesWritten;
  }
}

const WASM_PAGE = 64 * 1024;

/**
 * `size` bytes (or more) starting at a page boundary, in a SharedArrayBuffer (a worker can read
 * it): a shared WebAssembly memory. null where it cannot be had (an address-space limit).
 */
export function pageAligned(size: number): Buffer | null {
  const pages = Math.ceil(size / WASM_PAGE);
  try {
    const mem = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
    return Buffer.from(mem.buffer as unknown as SharedArrayBuffer, 0, size);
  } catch { return null; }
}

/** A buffer outside Node's pool; `shared` puts it in a SharedArrayBuffer a worker can read. */
export function newBuffer(size: number, shared: boolean): Buffer {
  return shared ? Buffer.from(new SharedArrayBuffer(size)) : Buffer.allocUnsafeSlow(size);
}
