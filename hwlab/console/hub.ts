// One writer, many read-only watchers (conserver's model). The process that owns a device's
// console publishes every byte on a unix socket; `orbital-lab console DEVICE --watch` connects,
// gets the recent output replayed, then the live stream. Watchers cannot type: anything they send
// is dropped, so two readers never steal each other's bytes and a watcher never garbles input.
import { createServer, connect, type Server, type Socket } from 'node:net';
import { mkdirSync, rmSync, existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LabError } from '../errors.ts';

const REPLAY_BYTES = 64 * 1024;

/**
 * A unix socket in STATE/consoles named for the device (`.sock`: the hub; `.keeper`: its logger).
 * Unix socket paths are limited to ~107 bytes: a longer one moves to the temp dir, by its hash.
 */
export function consoleSocketPath(stateDir: string, device: string, ext: 'sock' | 'keeper'): string {
  const p = join(stateDir, 'consoles', `${device}.${ext}`);
  return p.length < 100 ? p : join(tmpdir(), `orbital-lab-${createHash('sha1').update(p).digest('hex').slice(0, 16)}.${ext}`);
}

export function hubPath(stateDir: string, device: string): string {
  return consoleSocketPath(stateDir, device, 'sock');
}

export class ConsoleHub {
  private clients = new Set<Socket>();
  private ring: Buffer[] = [];
  private ringBytes = 0;
  private constructor(private server: Server, readonly path: string, private banner: string) {
    server.on('connection', (s) => {
      s.on('error', () => { this.clients.delete(s); });
      s.on('close', () => { this.clients.delete(s); });
      s.on('data', () => { /* watchers are read-only */ });
      s.write(`--- ${this.banner}; you are watching read-only (recent output first) ---\r\n`);
      for (const b of this.ring) s.write(b);
      this.clients.add(s);
    });
  }

  static async serve(stateDir: string, device: string, banner: string): Promise<ConsoleHub> {
    const path = hubPath(stateDir, device);
    mkdirSync(join(stateDir, 'consoles'), { recursive: true });
    // A socket file left by a killed owner: nobody listens on it any more (we hold the device lock).
    if (existsSync(path)) rmSync(path, { force: true });
    const server = createServer();
    await new Promise<void>((res, rej) => { server.once('error', rej); server.listen(path, () => res()); });
    server.unref();
    return new ConsoleHub(server, path, banner);
  }

  publish(bytes: Uint8Array): void {
    const b = Buffer.from(bytes);
    this.ring.push(b);
    this.ringBytes += b.length;
    while (this.ringBytes > REPLAY_BYTES && this.ring.length > 1) this.ringBytes -= this.ring.shift()!.length;
    for (const c of this.clients) {
      // A watcher that cannot keep up is dropped rather than slowing the capture down.
      if (c.writableLength > 4 * 1024 * 1024) { c.destroy(); continue; }
      c.write(b);
    }
  }

  get watchers(): number { return this.clients.size; }

  close(): void {
    for (const c of this.clients) c.end(`\r\n--- console closed ---\r\n`);
    this.server.close();
    rmSync(this.path, { force: true });
  }
}

/** Connects as a read-only watcher. Rejects with console-missing when nobody owns the console. */
export function watchConsole(stateDir: string, device: string): Promise<Socket> {
  const path = hubPath(stateDir, device);
  return new Promise((res, rej) => {
    const s = connect({ path });
    s.once('connect', () => { s.removeAllListeners('error'); res(s); });
    s.once('error', () => rej(new LabError('disconnected', 'console-missing', `nobody has ${device}'s console open (no ${path}); start one with orbital-lab console ${device} or boot ${device}`, 'lab')));
  });
}
