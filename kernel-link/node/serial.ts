// Serial ports through the `serialport` package (real USB-serial adapters and ptys), and pty
// pairs made with socat so a test or a hosted OS can look like a board on a serial line.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SerialPort } from 'serialport';
import { LinkError } from '../core/errors.ts';
import { StreamTransport } from './socket.ts';

export interface SerialOptions { baudRate?: number }

/** Opens a serial port (e.g. /dev/ttyUSB0, or a pty) as a transport. */
export function openSerial(path: string, o: SerialOptions = {}): Promise<StreamTransport> {
  return new Promise((resolve, reject) => {
    const port = new SerialPort({ path, baudRate: o.baudRate ?? 115200, autoOpen: false });
    port.open((err) => {
      if (err) { reject(new LinkError('disconnected', 'connect', `cannot open serial port ${path}: ${err.message} (is it there, and are you in the dialout group?)`)); return; }
      resolve(new StreamTransport(port, `serial:${path}`));
    });
  });
}

export interface PtyPair { a: string; b: string; close(): void; process: ChildProcess }

/** Two linked ptys (socat): bytes written to one come out of the other, like a null-modem cable. */
export async function ptyPair(): Promise<PtyPair> {
  if (spawnSync('sh', ['-c', 'command -v socat']).status !== 0) throw new LinkError('bad-input', 'connect', 'socat not found: install the Debian package socat');
  const dir = mkdtempSync(join(tmpdir(), 'orbpty-'));
  const a = join(dir, 'a'), b = join(dir, 'b');
  const hasSetpriv = spawnSync('sh', ['-c', 'command -v setpriv']).status === 0;
  const args = [`pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`];
  const p = hasSetpriv ? spawn('setpriv', ['--pdeathsig', 'KILL', '--', 'socat', ...args], { stdio: 'ignore' }) : spawn('socat', args, { stdio: 'ignore' });
  const t0 = Date.now();
  while (!(existsSync(a) && existsSync(b))) {
    if (p.exitCode !== null || Date.now() - t0 > 5000) { p.kill('SIGKILL'); throw new LinkError('disconnected', 'connect', 'socat did not create the pty pair'); }
    await new Promise((r) => setTimeout(r, 10));
  }
  const close = () => { p.kill('SIGTERM'); rmSync(dir, { recursive: true, force: true }); };
  process.once('exit', () => p.kill('SIGKILL'));
  return { a, b, close, process: p };
}
