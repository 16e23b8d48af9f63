// USB-serial latency: an FTDI adapter (Linux's ftdi_sio) holds received bytes for up to its
// latency timer, 16 ms by default, before sending a short USB packet. A request/response protocol
// (the kernel link's handshake, a propose and its commit) then waits ~16 ms per turn - 5x slower
// than the wire. The kernel exposes the timer as
// /sys/bus/usb-serial/devices/ttyUSBn/latency_timer; the lab lowers it to 1 ms when it opens a
// board's port, and says so (or says why it could not: the file is root's unless a udev rule opens
// it). Ports without the file (a pty, a CDC-ACM /dev/ttyACM*, a UART) are left alone.
import { readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';

export interface LatencyTimer {
  /** The kernel's name of the port (ttyUSB0). */
  tty: string;
  file: string;
  /** ms before the lab touched it. */
  was: number;
  /** ms now. */
  now: number;
  /** Why it could not be lowered (EACCES: not root, and no udev rule). */
  error?: string;
  /** What to do about it, when it stays high. */
  hint?: string;
}

/** The latency timer the lab sets (1 ms: the adapter's lowest). */
export const LOW_LATENCY_MS = 1;

/**
 * Lowers a USB-serial port's latency timer (FTDI) to 1 ms where the port has one. `path` may be a
 * by-id link; returns null for a port without a latency timer. Never throws.
 */
export function lowerLatency(path: string, o: { sysfs?: string; resolve?: (p: string) => string; readOnly?: boolean } = {}): LatencyTimer | null {
  let tty: string;
  try { tty = basename((o.resolve ?? realpathSync)(path)); } catch { return null; }
  const file = join(o.sysfs ?? '/sys', 'bus/usb-serial/devices', tty, 'latency_timer');
  let was: number;
  try { was = Number.parseInt(readFileSync(file, 'utf8').trim(), 10); } catch { return null; }
  if (!Number.isFinite(was)) return null;
  if (was <= LOW_LATENCY_MS || o.readOnly) return { tty, file, was, now: was };
  try {
    writeFileSync(file, `${LOW_LATENCY_MS}\n`);
    const now = Number.parseInt(readFileSync(file, 'utf8').trim(), 10);
    return { tty, file, was, now };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? String(e);
    return {
      tty, file, was, now: was, error: code,
      hint: `request/response over ${tty} waits up to ${was} ms per turn; as root: echo ${LOW_LATENCY_MS} > ${file}, or for good a udev rule: ACTION=="add", SUBSYSTEM=="usb-serial", DRIVER=="ftdi_sio", ATTR{latency_timer}="${LOW_LATENCY_MS}"`,
    };
  }
}
