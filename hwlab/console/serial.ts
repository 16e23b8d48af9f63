// A serial-board's console through the `serialport` library - the path a real USB-serial adapter
// takes (the tests drive it with ptys from QEMU and socat).
import { SerialPort } from 'serialport';
import { LabError } from '../errors.ts';
import { lowerLatency, type LatencyTimer } from './latency.ts';

export interface SerialConsole {
  port: SerialPort;
  path: string;
  /** A USB-serial adapter's latency timer (FTDI), lowered to 1 ms on open where the lab may. */
  latency: LatencyTimer | null;
  write(b: Uint8Array): void;
  /** Called once when the port goes away (unplugged, pty closed) or is closed; `gone` is true for the former. */
  onClose(fn: (gone: boolean, why: string) => void): void;
  onData(fn: (b: Uint8Array) => void): void;
  /**
   * A serial BREAK: the line held at space for `ms` (TIOCSBRK, then TIOCCBRK) - Linux's magic SysRq
   * prefix on a serial console, picocom's C-a C-\. A pty accepts it and carries nothing.
   */
  sendBreak(ms?: number): Promise<void>;
  /** Drops input the OS has buffered but nobody read yet (an earlier boot's tail). */
  drop(): Promise<void>;
  close(): Promise<void>;
}

/** `flush: false` keeps what the port buffered before the open (the logger: it is still the board's output). */
export async function openSerial(path: string, baudRate: number, device: string, o: { flush?: boolean } = {}): Promise<SerialConsole> {
  const port = new SerialPort({ path, baudRate, autoOpen: false, hupcl: false });
  await new Promise<void>((res, rej) => port.open((e) => (e ? rej(new LabError('disconnected', 'console-missing', `${device}: cannot open console ${path}: ${e.message}`, 'lab')) : res())));
  const latency = lowerLatency(path);
  // Whatever the port buffered before now belongs to an earlier boot.
  if (o.flush !== false) await new Promise<void>((res) => port.flush(() => res()));
  let closing = false;
  const closers: Array<(gone: boolean, why: string) => void> = [];
  let closed = false;
  const fire = (gone: boolean, why: string) => { if (closed) return; closed = true; for (const f of closers) f(gone, why); };
  port.on('close', (e?: Error & { disconnected?: boolean }) => fire(!closing, e?.message ?? (closing ? 'closed' : 'the port closed')));
  port.on('error', (e: Error) => fire(!closing, e.message));
  return {
    port,
    path,
    latency,
    write: (b) => { port.write(Buffer.from(b)); },
    onClose: (fn) => { closers.push(fn); },
    onData: (fn) => { port.on('data', (b: Buffer) => fn(new Uint8Array(b.buffer, b.byteOffset, b.byteLength))); },
    sendBreak: async (ms = 250) => {
      // ENOTTY: the tty driver has no break support (a pty; some USB-serial drivers).
      const why = (e: Error) => (/Inappropriate ioctl/.test(e.message) ? `${path} takes no BREAK (${e.message.replace(/^Error: /, '')}: a pty, or an adapter whose driver has no break support)` : `cannot send a BREAK on ${path}: ${e.message}`);
      const set = (brk: boolean) => new Promise<void>((res, rej) => port.set({ brk }, (e) => (e ? rej(new LabError('io', 'io-error', `${device}: ${why(e)}`, 'lab')) : res())));
      await set(true);
      try { await new Promise((r) => setTimeout(r, ms)); } finally { await set(false); }
    },
    drop: () => new Promise<void>((res) => port.flush(() => res())),
    close: () => new Promise((res) => { closing = true; if (!port.isOpen) { res(); return; } port.close(() => res()); }),
  };
}
