// Boots the guest kernel in QEMU for tests and the bench: builds it when needed, listens on unix
// sockets BEFORE spawning QEMU (QEMU connects as a client, so no boot byte is lost), and speaks
// kernel-link to it with the TypeScript frame and message codecs. QEMU runs under
// `setpriv --pdeathsig KILL` and is killed on close() and on process exit: no orphans.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server as NetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeFrame, FrameDecoder, FRAME_OVERHEAD, type DropInfo } from '../../kernel-link/core/frame.ts';
import { decodeMessage, encodeMessage, type Message } from '../../kernel-link/core/messages.ts';

export const KERNEL_DIR = dirname(fileURLToPath(import.meta.url));
export const KERNEL_ELF = join(KERNEL_DIR, 'target', 'kernel', 'orbital-kernel.elf');
export const KERNEL_ISO = join(KERNEL_DIR, 'target', 'kernel', 'orbital.iso');
/** isa-debug-exit values the kernel writes (QEMU exits with (v << 1) | 1). */
export const EXIT_OK_STATUS = (0x10 << 1) | 1;
export const EXIT_CRASH_STATUS = (0x2a << 1) | 1;

/** Runs os-image/kernel/build.mjs (it skips work that is up to date). Throws with its output on failure. */
export function buildKernel(opts: { iso?: boolean } = {}): void {
  const r = spawnSync(process.execPath, [join(KERNEL_DIR, 'build.mjs'), ...(opts.iso ? [] : ['--no-iso'])], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`os:build failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  if (!existsSync(KERNEL_ELF)) throw new Error(`os:build did not produce ${KERNEL_ELF}`);
}

export interface BootOptions {
  kernel?: string;
  iso?: string;
  append?: string;
  /** Attach a virtio-serial device (legacy PCI); the kernel then runs the link there. Default false. */
  virtio?: boolean;
  /**
   * How the link's chardev is attached: 'serialport' (default) = `virtserialport` nr=1, which QEMU
   * throttles when the host lags (lossless); 'console' = `virtconsole` nr=0, which QEMU drops
   * bytes on when the host socket is full (credit must then keep the host ahead).
   */
  virtioPort?: 'serialport' | 'console';
  memoryMib?: number;
  /** More QEMU arguments (e.g. ['-bios', OVMF] for UEFI). */
  extraArgs?: string[];
}

const live = new Set<ChildProcess>();
process.on('exit', () => { for (const p of live) try { p.kill('SIGKILL'); } catch { /* gone */ } });

function listen(path: string): { server: NetServer; conn: Promise<Socket> } {
  const server = createServer();
  const conn = new Promise<Socket>((resolve) => server.once('connection', (s) => { s.setNoDelay(true); resolve(s); }));
  server.listen(path);
  return { server, conn };
}

export interface Guest {
  serial: Socket;
  virtio?: Socket;
  /** Resolves when QEMU exits: its status (odd = isa-debug-exit, 0 = triple fault). */
  exited: Promise<{ code: number | null; signal: string | null; stderr: string }>;
  spawnedAt: number;
  close(): Promise<void>;
}

export async function bootGuest(o: BootOptions): Promise<Guest> {
  const dir = mkdtempSync(join(tmpdir(), 'orbital-guest-'));
  const ser = listen(join(dir, 'serial.sock'));
  const vio = o.virtio ? listen(join(dir, 'virtio.sock')) : undefined;
  const args = ['-accel', 'tcg', '-m', String(o.memoryMib ?? 256), '-display', 'none', '-monitor', 'none', '-parallel', 'none', '-no-reboot',
    '-device', 'isa-debug-exit,iobase=0xf4,iosize=0x04',
    '-chardev', `socket,id=ser0,path=${join(dir, 'serial.sock')}`, '-serial', 'chardev:ser0'];
  if (o.virtio) {
    args.push('-device', 'virtio-serial-pci,id=vser0,disable-modern=on', '-chardev', `socket,id=vc0,path=${join(dir, 'virtio.sock')}`);
    args.push('-device', o.virtioPort === 'console' ? 'virtconsole,chardev=vc0,bus=vser0.0,nr=0' : 'virtserialport,chardev=vc0,bus=vser0.0,nr=1,name=org.orbital.link');
  }
  if (o.iso) args.push('-cdrom', o.iso, '-boot', 'd');
  else args.push('-kernel', o.kernel ?? KERNEL_ELF);
  if (o.append && !o.iso) args.push('-append', o.append);
  if (o.extraArgs) args.push(...o.extraArgs);
  const spawnedAt = performance.now();
  const useSetpriv = spawnSync('sh', ['-c', 'command -v setpriv']).status === 0;
  const child = useSetpriv ? spawn('setpriv', ['--pdeathsig', 'KILL', 'qemu-system-x86_64', ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
    : spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  live.add(child);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-8192); });
  const exited = new Promise<{ code: number | null; signal: string | null; stderr: string }>((resolve) => child.on('exit', (code, signal) => {
    live.delete(child); ser.server.close(); vio?.server.close(); rmSync(dir, { recursive: true, force: true });
    resolve({ code, signal, stderr });
  }));
  const timeout = (ms: number, what: string) => new Promise<never>((_, rej) => setTimeout(() => rej(new Error(`${what}: QEMU did not connect within ${ms} ms`)), ms).unref());
  const early = exited.then((e) => { throw new Error(`QEMU exited before connecting (${e.code}): ${e.stderr}`); });
  const serial = await Promise.race([ser.conn, early, timeout(15000, 'serial')]);
  const virtio = vio ? await Promise.race([vio.conn, early, timeout(15000, 'virtio')]) : undefined;
  return {
    serial, virtio, exited, spawnedAt,
    async close() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      serial.destroy(); virtio?.destroy();
      await exited;
    },
  };
}

/** A kernel-link host over one socket: console text, decoded messages, drops; auto-credit for a subscription. */
export class LinkClient {
  readonly messages: Message[] = [];
  text = '';
  textBytes: number[] = [];
  readonly drops: DropInfo[] = [];
  readonly badMessages: string[] = [];
  private readonly dec = new FrameDecoder();
  private waiters: Array<() => void> = [];
  private rid = 100;
  /** Entries received on the current stream, in order, and the credit bookkeeping. */
  entries: Uint8Array[] = [];
  entryBytes = 0;
  private stream: { rid: number; consumed: number; granted: number; window: number } | null = null;
  closed = false;

  constructor(readonly sock: Socket) {
    sock.on('data', (c: Buffer) => {
      this.dec.push(new Uint8Array(c.buffer, c.byteOffset, c.byteLength), {
        text: (b) => { this.text += new TextDecoder().decode(b, { stream: true }); if (this.textBytes.length < 1 << 20) for (const x of b) this.textBytes.push(x); },
        frame: (t, p) => this.onFrame(t, p),
        drop: (i) => this.drops.push({ ...i }),
      });
      this.wake();
    });
    sock.on('close', () => { this.closed = true; this.wake(); });
    sock.on('error', () => { /* close follows */ });
  }

  private onFrame(t: number, p: Uint8Array): void {
    const d = decodeMessage(t, p);
    if (!d.ok) { this.badMessages.push(d.error.detail); return; }
    const m = d.msg;
    if (m.t === 'entries' && this.stream && m.stream === this.stream.rid) {
      const s = this.stream;
      s.consumed += FRAME_OVERHEAD + p.length;
      if (m.seq === this.entries.length) for (const e of m.entries) { this.entries.push(e); this.entryBytes += e.length; }
      if (s.consumed - (s.granted - s.window) >= s.window / 2) {
        s.granted = s.consumed + s.window;
        this.send({ t: 'credit', stream: s.rid, limit: s.granted });
      }
      return;
    }
    this.messages.push(m);
  }

  private wake(): void { const w = this.waiters; this.waiters = []; for (const f of w) f(); }

  send(m: Message): void { const { type, payload } = encodeMessage(m); this.sock.write(encodeFrame(type, payload)); }
  writeRaw(b: Uint8Array | string): void { this.sock.write(typeof b === 'string' ? Buffer.from(b) : b); }
  nextRid(): number { return ++this.rid; }

  /** Waits until `pred` holds (checked after every chunk), or throws after `ms`. */
  async until<T>(pred: () => T | undefined | false, ms: number, what: string): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const v = pred();
      if (v) return v;
      if (this.closed) throw new Error(`${what}: the link closed (console so far:\n${this.text.slice(-2000)})`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${what}: timed out after ${ms} ms (console so far:\n${this.text.slice(-2000)})`);
      await new Promise<void>((r) => { const t = setTimeout(r, Math.min(left, 200)); this.waiters.push(() => { clearTimeout(t); r(); }); });
    }
  }

  /** Takes (removes) the first message matching `pred`. */
  async take<M extends Message>(pred: (m: Message) => m is M, ms: number, what: string): Promise<M>;
  async take(pred: (m: Message) => boolean, ms: number, what: string): Promise<Message>;
  async take(pred: (m: Message) => boolean, ms: number, what: string): Promise<Message> {
    return this.until(() => { const i = this.messages.findIndex(pred); return i >= 0 ? this.messages.splice(i, 1)[0] : undefined; }, ms, what);
  }

  /** HELLO (resent every 500 ms, as the protocol says) until the WELCOME answering it. */
  async handshake(consoleWindow = 65536, ms = 20000): Promise<Extract<Message, { t: 'welcome' }>> {
    const rids = new Set<number>();
    const hello = () => { const rid = this.nextRid(); rids.add(rid); this.send({ t: 'hello', rid, min: 1, max: 1, client: 'orbital-kernel-test', maxFrame: 2_097_152, consoleWindow, caps: [] }); };
    hello();
    const timer = setInterval(hello, 500);
    try {
      // The unsolicited WELCOME (rid 0) says the device just came up: say HELLO again at once
      // rather than wait for the next retransmit (the first one was sent while it was booting).
      return await this.take((m): m is Extract<Message, { t: 'welcome' }> => {
        if (m.t === 'welcome' && m.rid === 0) { hello(); return false; }
        return m.t === 'welcome' && rids.has(m.rid);
      }, ms, 'handshake');
    } finally { clearInterval(timer); }
  }

  async request<T extends Message['t']>(m: Message & { rid: number }, ms = 20000): Promise<Message> {
    this.send(m);
    return this.take((x) => 'rid' in x && x.rid === m.rid && x.t !== 'hello', ms, `answer to ${m.t} ${m.rid}`);
  }

  subscribe(from: number, prev: Uint8Array, window = 262144): number {
    const rid = this.nextRid();
    this.stream = { rid, consumed: 0, granted: window, window };
    this.entries = this.entries.slice(0, from);
    this.send({ t: 'subscribe', rid, from, prev, window });
    return rid;
  }
}
