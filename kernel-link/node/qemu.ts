// The QEMU launcher (docs/kernel-link.md; notes/guest-kernel-on-qemu.md): qemu-system-x86_64 with
// serial and virtio-console chardevs as unix sockets this process listens on BEFORE spawning
// (QEMU connects to them as a client, so not one byte of boot output is lost), QMP on a third
// socket, isa-debug-exit, TCG unless KVM really works, optionally started paused (-S).
//
// No orphans: QEMU runs under `setpriv --pdeathsig KILL` (the kernel kills it when this process
// dies, even by SIGKILL), and a watchdog shell that holds a pipe from this process kills it on EOF
// (the fallback when setpriv is missing, and a second guard). A normal exit kills it too.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LinkError } from '../core/errors.ts';
import { listenTransport, type Listener, type StreamTransport } from './socket.ts';

export interface QemuOptions {
  /** A multiboot kernel for -kernel. */
  kernel?: string;
  /** Extra -append for the kernel. */
  append?: string;
  /** A disk image (raw) attached as an IDE disk, or an ISO as a CD-ROM. */
  drive?: string;
  iso?: string;
  /** Guest RAM in MiB (default 128). */
  memoryMib?: number;
  /** Start with the CPU stopped (-S); call cont() once consoles are attached. */
  paused?: boolean;
  /** 'auto' (default): KVM only if /dev/kvm is usable and the CPU has vmx/svm; otherwise TCG. */
  accel?: 'auto' | 'tcg' | 'kvm';
  /** Attach a 16550 serial port (COM1) chardev (default true). */
  serial?: boolean;
  /** Attach a virtio-serial (legacy PCI) chardev (default true). */
  virtio?: boolean;
  /**
   * Which virtio-serial port carries it: 'serialport' (default) = `virtserialport` nr=1 named
   * org.orbital.link, which QEMU throttles when the host lags (lossless; the guest needs the
   * MULTIPORT feature, which the Orbital kernel has); 'console' = `virtconsole` nr=0, simpler for a
   * guest but QEMU drops guest→host bytes under load, even within credit (measured by the guest
   * kernel's tests: a 32 MiB stream lost a frame).
   */
  virtioPort?: 'serialport' | 'console';
  /** isa-debug-exit at 0xf4 (default true): writing v exits QEMU with status (v<<1)|1. */
  debugExit?: boolean;
  /** -no-reboot: a triple fault or reset request exits QEMU (status 0) instead of rebooting (default true). */
  noReboot?: boolean;
  /** Extra QEMU arguments. */
  extraArgs?: string[];
  qemuBinary?: string;
  /** Where the sockets live (default: a fresh temp dir, removed on exit). */
  dir?: string;
  /** Max ms to wait for QEMU to connect its chardevs (default 10 s). */
  startTimeoutMs?: number;
  /** Orphan guards (both on by default; tests turn one off to prove the other works alone). */
  guards?: { pdeathsig?: boolean; watchdog?: boolean };
}

export interface QemuExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The value the guest wrote to isa-debug-exit, when the exit status came from there (odd status). */
  debugExit?: number;
  /** A readable summary. */
  summary: string;
  /** What QEMU wrote to stderr (last 8 KiB). */
  stderr: string;
}

/** True when KVM would really work: /dev/kvm opens read-write and the CPU has vmx or svm. */
export function kvmUsable(): boolean {
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
    return /\b(vmx|svm)\b/.test(readFileSync('/proc/cpuinfo', 'utf8'));
  } catch { return false; }
}

const which = (cmd: string): string | null => {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() || null : null;
};

/** A QMP connection (JSON lines over the monitor socket). */
export class Qmp {
  private buf = '';
  private nextId = 1;
  private readonly waiting = new Map<string, { resolve(v: unknown): void; reject(e: Error): void }>();
  private readonly eventListeners = new Set<(e: { event: string; data?: unknown }) => void>();
  readonly events: Array<{ event: string; data?: unknown }> = [];
  private greeted!: Promise<void>;

  constructor(private readonly t: StreamTransport) {
    let greet!: () => void;
    this.greeted = new Promise((r) => { greet = r; });
    t.attach({
      data: (c) => {
        this.buf += new TextDecoder().decode(c);
        let nl: number;
        while ((nl = this.buf.indexOf('\n')) >= 0) {
          const line = this.buf.slice(0, nl).trim(); this.buf = this.buf.slice(nl + 1);
          if (!line) continue;
          let m: any;
          try { m = JSON.parse(line); } catch { continue; }
          if (m.QMP) greet();
          else if (m.event) { this.events.push(m); if (this.events.length > 1000) this.events.shift(); for (const l of this.eventListeners) l(m); }
          else if (m.id !== undefined && this.waiting.has(String(m.id))) {
            const w = this.waiting.get(String(m.id))!; this.waiting.delete(String(m.id));
            if (m.error) w.reject(new LinkError('protocol', 'request', `QMP: ${m.error.class}: ${m.error.desc}`)); else w.resolve(m.return);
          }
        }
      },
      close: () => { for (const w of this.waiting.values()) w.reject(new LinkError('disconnected', 'closed', 'QMP connection closed (QEMU exited)')); this.waiting.clear(); },
    });
  }

  async init(): Promise<void> { await this.greeted; await this.execute('qmp_capabilities'); }

  execute(command: string, args?: Record<string, unknown>, timeoutMs = 10_000): Promise<any> {
    const id = String(this.nextId++);
    return new Promise((resolve, reject) => {
      if (this.t.closed) { reject(new LinkError('disconnected', 'closed', `QMP ${command}: QEMU is gone`)); return; }
      const timer = setTimeout(() => { this.waiting.delete(id); reject(new LinkError('timeout', 'request', `QMP ${command}: no answer in ${timeoutMs} ms`)); }, timeoutMs);
      this.waiting.set(id, { resolve: (v) => { clearTimeout(timer); resolve(v); }, reject: (e) => { clearTimeout(timer); reject(e); } });
      this.t.write(new TextEncoder().encode(JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}), id }) + '\n'));
    });
  }

  onEvent(fn: (e: { event: string; data?: unknown }) => void): () => void { this.eventListeners.add(fn); return () => this.eventListeners.delete(fn); }
  close(): void { this.t.close(); }
}

const liveMachines = new Set<QemuMachine>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Synchronous last resort on a normal exit; SIGKILL of this process is covered by pdeathsig/watchdog.
  process.on('exit', () => { for (const m of liveMachines) m.killNow(); });
}

export class QemuMachine {
  /** COM1 as a transport (bytes from the first one the guest wrote; buffered until attached). */
  serial: StreamTransport | null = null;
  /** The virtio-serial port (see QemuOptions.virtioPort) as a transport. */
  virtio: StreamTransport | null = null;
  qmp!: Qmp;
  readonly exited: Promise<QemuExit>;
  private resolveExit!: (e: QemuExit) => void;
  private stderr = '';
  private exitInfo: QemuExit | null = null;
  private ownsDir = false;

  private constructor(readonly child: ChildProcess, readonly args: string[], readonly dir: string, private readonly watchdog: ChildProcess | null, readonly accel: 'tcg' | 'kvm') {
    this.exited = new Promise((r) => { this.resolveExit = r; });
    child.stderr?.on('data', (b: Buffer) => { this.stderr = (this.stderr + b.toString('utf8')).slice(-8192); });
    child.on('exit', (code, signal) => {
      const debugExit = code !== null && code % 2 === 1 ? (code - 1) / 2 : undefined;
      const summary = signal ? `QEMU killed by ${signal}` : debugExit !== undefined ? `guest exited through isa-debug-exit with value ${debugExit} (status ${code})` : code === 0 ? 'QEMU exited with status 0 (a power-off, quit, or a triple fault under -no-reboot)' : `QEMU exited with status ${code}: ${this.stderr.trim().split('\n').slice(-3).join(' | ')}`;
      this.exitInfo = { code, signal, ...(debugExit !== undefined ? { debugExit } : {}), summary, stderr: this.stderr };
      liveMachines.delete(this);
      try { watchdog?.stdin?.end(); } catch { /* gone */ }
      if (this.ownsDir) { try { rmSync(this.dir, { recursive: true, force: true }); } catch { /* gone */ } }
      this.resolveExit(this.exitInfo);
    });
  }

  get pid(): number { return this.child.pid!; }
  get running(): boolean { return this.exitInfo === null; }

  /** Starts QEMU. Resolves once QEMU has connected every chardev and QMP is ready. */
  static async launch(o: QemuOptions = {}): Promise<QemuMachine> {
    const qemu = o.qemuBinary ?? 'qemu-system-x86_64';
    if (!which(qemu)) throw new LinkError('bad-input', 'connect', `${qemu} not found: install the Debian package qemu-system-x86`);
    const dir = o.dir ?? mkdtempSync(join(tmpdir(), 'orbq-'));
    const accel = o.accel === 'kvm' ? 'kvm' : o.accel === 'tcg' ? 'tcg' : kvmUsable() ? 'kvm' : 'tcg';
    const listeners: Listener[] = [];
    const want: Array<['serial' | 'virtio' | 'qmp', string]> = [['qmp', join(dir, 'qmp.sock')]];
    if (o.serial ?? true) want.push(['serial', join(dir, 'serial.sock')]);
    if (o.virtio ?? true) want.push(['virtio', join(dir, 'virtio.sock')]);
    for (const [, path] of want) listeners.push(await listenTransport({ path }));

    const args = ['-nographic', '-nodefaults', '-no-user-config', '-accel', accel, '-m', String(o.memoryMib ?? 128)];
    if (accel === 'kvm') args.push('-cpu', 'host');
    args.push('-chardev', `socket,id=qmp0,path=${join(dir, 'qmp.sock')}`, '-mon', 'chardev=qmp0,mode=control');
    if (o.serial ?? true) args.push('-chardev', `socket,id=ser0,path=${join(dir, 'serial.sock')}`, '-serial', 'chardev:ser0');
    if (o.virtio ?? true) {
      args.push('-device', 'virtio-serial-pci,id=vser0,disable-modern=on', '-chardev', `socket,id=vc0,path=${join(dir, 'virtio.sock')}`);
      args.push('-device', o.virtioPort === 'console' ? 'virtconsole,chardev=vc0,bus=vser0.0,nr=0' : 'virtserialport,chardev=vc0,bus=vser0.0,nr=1,name=org.orbital.link');
    }
    if (o.debugExit ?? true) args.push('-device', 'isa-debug-exit,iobase=0xf4,iosize=0x04');
    if (o.noReboot ?? true) args.push('-no-reboot');
    if (o.paused) args.push('-S');
    if (o.kernel) args.push('-kernel', o.kernel);
    if (o.append) args.push('-append', o.append);
    if (o.drive) args.push('-drive', `file=${o.drive},format=raw,if=ide`);
    if (o.iso) args.push('-cdrom', o.iso);
    args.push(...(o.extraArgs ?? []));

    const setpriv = (o.guards?.pdeathsig ?? true) ? which('setpriv') : null;
    const [cmd, argv] = setpriv ? [setpriv, ['--pdeathsig', 'KILL', '--', qemu, ...args]] : [qemu, args];
    const child = spawn(cmd, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
    // Watchdog: holds the read end of a pipe from us; EOF (we died or closed it) kills QEMU.
    let watchdog: ChildProcess | null = null;
    if (child.pid && (o.guards?.watchdog ?? true)) {
      watchdog = spawn('sh', ['-c', `cat >/dev/null; kill -KILL ${child.pid} 2>/dev/null`], { stdio: ['pipe', 'ignore', 'ignore'], detached: true });
      watchdog.unref(); (watchdog.stdin as any)?.unref?.();
    }
    const m = new QemuMachine(child, args, dir, watchdog, accel);
    m.ownsDir = !o.dir;
    liveMachines.add(m); installExitHook();
    const spawnFailed = new Promise<never>((_, rej) => child.once('error', (e) => rej(new LinkError('bad-input', 'connect', `cannot start ${qemu}: ${e.message}`))));
    const early = m.exited.then((e) => { throw new LinkError('disconnected', 'connect', `QEMU exited before connecting its consoles: ${e.summary}`); });
    try {
      const timeout = o.startTimeoutMs ?? 10_000;
      const conns = await Promise.race([Promise.all(listeners.map((l) => l.accept(timeout))), spawnFailed, early]);
      want.forEach(([what], i) => {
        if (what === 'serial') m.serial = conns[i]!;
        else if (what === 'virtio') m.virtio = conns[i]!;
        else m.qmp = new Qmp(conns[i]!);
      });
      await Promise.race([m.qmp.init(), early]);
    } catch (e) {
      m.killNow();
      throw e;
    } finally {
      for (const l of listeners) void l.close();
    }
    early.catch(() => { /* handled by exited */ });
    return m;
  }

  /** Resumes the CPU (after paused: true, or stop()). */
  cont(): Promise<void> { return this.qmp.execute('cont'); }
  stop(): Promise<void> { return this.qmp.execute('stop'); }
  /** Hard reset (like the reset button). With -no-reboot QEMU exits instead. */
  reset(): Promise<void> { return this.qmp.execute('system_reset'); }
  /** ACPI power button (a guest without ACPI ignores it). */
  powerButton(): Promise<void> { return this.qmp.execute('system_powerdown'); }
  async status(): Promise<{ running: boolean; status: string }> { return this.qmp.execute('query-status'); }
  /** Cuts the power: QEMU quits at once. Resolves with the exit. */
  async powerOff(): Promise<QemuExit> {
    if (!this.running) return this.exited;
    await this.qmp.execute('quit').catch(() => { /* it may close before answering */ });
    return this.waitExit(3000);
  }
  /** Waits for the exit; kills QEMU if it takes longer than `ms`. */
  async waitExit(ms: number): Promise<QemuExit> {
    let timer: NodeJS.Timeout | undefined;
    const t = new Promise<void>((r) => { timer = setTimeout(r, ms); });
    await Promise.race([this.exited, t]);
    clearTimeout(timer);
    if (this.running) this.killNow();
    return this.exited;
  }
  /** SIGKILL, synchronously (safe to call any time). */
  killNow(): void {
    if (this.exitInfo) return;
    try { this.child.kill('SIGKILL'); } catch { /* gone */ }
  }
  /** Kills QEMU and waits for it to be gone. */
  async kill(): Promise<QemuExit> { this.killNow(); return this.exited; }
}
