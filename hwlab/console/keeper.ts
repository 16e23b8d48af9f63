// `orbital-lab logger`: conserver's always-on logger for serial-board consoles. Between jobs nobody
// reads a board's serial port, so whatever it prints then - a panic on an idle board, the boot
// after someone pressed its reset button, the output of a board switched on by `power on` - is
// lost (a qemu device has no such gap: its QEMU writes every console byte to a log itself).
//
// A keeper holds one board's port while no job uses it: every byte goes to a stamped log file
// (STATE/logs/DEVICE/...-logger.log, the format of a boot log) and to the device's console hub,
// so `console --watch` works on an idle board too; lines matching the board's fatal patterns are
// reported. A job that needs the port (boot, run, console, a capture over the console) asks the
// keeper to yield on its control socket (STATE/consoles/DEVICE.keeper) before it opens the port:
// the keeper closes the port and its hub, answers with its log and its most recent output, and
// takes the port back when that connection closes - when the job ends, or when the kernel closes
// it for a job that was killed. So two readers never share the port (they would steal each
// other's bytes), and the keeper needs no lock of its own: it only ever yields.
//
// A port that goes away (unplugged, the adapter reset) is looked for again every second, by the
// lab file's by-id / usb-serial / usb-path name, so a re-enumerated adapter is found again.
import { createServer, connect, type Server, type Socket } from 'node:net';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { LabError } from '../errors.ts';
import type { Device, Lab } from '../labfile.ts';
import { consoleSpecText, findConsolePort } from '../devices.ts';
import { goneWhy, pidStartTime, readLock } from '../lock.ts';
import { recordLab } from '../history.ts';
import { ConsoleHub, consoleSocketPath } from './hub.ts';
import { LineSplitter, patternHit } from './capture.ts';
import { openSerial, type SerialConsole } from './serial.ts';

/** Raw bytes of recent output a keeper hands to the job that takes the port (shown by `console`). */
const RECENT_BYTES = 8 * 1024;
/** How often a keeper looks for a port that is gone. */
const RETRY_MS = 1000;
/** A fatal line is recorded in the lab log at most once this often per device (the log file has every one). */
const RECORD_EVERY_MS = 60_000;

export function keeperPath(stateDir: string, device: string): string {
  return consoleSocketPath(stateDir, device, 'keeper');
}

/** What `devices` shows of a running logger: STATE/consoles/DEVICE.keeper.json, beside its socket. */
export interface KeeperRecord { pid: number; pidStart: number | null; since: string; log: string }

function recordPath(stateDir: string, device: string): string { return join(stateDir, 'consoles', `${device}.keeper.json`); }

/** The logger keeping `device`'s console, if one runs (a record whose process is gone is not one). */
export function readKeeper(stateDir: string, device: string): KeeperRecord | null {
  let r: KeeperRecord;
  try { r = JSON.parse(readFileSync(recordPath(stateDir, device), 'utf8')) as KeeperRecord; } catch { return null; }
  return goneWhy({ ...r, host: hostname() }) ? null : r;
}

export type KeeperEvent =
  | { event: 'logging'; device: string; port: string; log: string }
  | { event: 'yielded'; device: string; to: string }
  | { event: 'back'; device: string; port: string }
  | { event: 'port-gone'; device: string; why: string }
  | { event: 'rotated'; device: string; log: string }
  | { event: 'waiting'; device: string; why: string }
  | { event: 'fatal'; device: string; pattern: string; line: number; text: string }
  | { event: 'recorded'; device: string; seq: number; line: number }
  | { event: 'record-failed'; device: string; why: string };

/** One board's console, logged while no job holds it. */
export class Keeper {
  private sc: SerialConsole | null = null;
  private hub: ConsoleHub | null = null;
  /** Jobs the port is yielded to (their control connections). */
  private holders = new Set<Socket>();
  private stopped = false;
  private ops: Promise<void> = Promise.resolve();
  private retry: NodeJS.Timeout | null = null;
  private fd: number;
  private split: LineSplitter;
  private n = 0;
  private t0 = performance.now();
  private recent: Buffer[] = [];
  private recentBytes = 0;
  /** Whether the port has been held before (the next hold is a return). */
  private held = false;
  private lastGone = '';
  private written = 0;
  /** Jobs (pids) the port was yielded to: their lock does not keep the logger from taking it back. */
  private yieldedTo = new Set<number>();
  private lastWait = '';
  private lastRecord = -Infinity;
  /** Lab-log records still being written (stop waits for them). */
  private recording = new Set<Promise<void>>();
  lines = 0;
  /** The log files so far, oldest first (a new one after `rotateBytes`). */
  readonly logs: string[] = [];

  private constructor(private lab: Lab, readonly device: Device, private emit: (e: KeeperEvent) => void, private server: Server, readonly path: string, private dir: string, private rotateBytes: number) {
    this.fd = openSync(this.newLog(), 'a');
    this.split = new LineSplitter((text) => this.line(text));
    server.on('connection', (s) => this.client(s));
  }

  /** The log being written now. */
  get log(): string { return this.logs[this.logs.length - 1]!; }

  private newLog(): string {
    let p = join(this.dir, `${new Date().toISOString().replace(/[:.]/g, '-')}-logger.log`);
    // (two in one millisecond: a tiny rotate size)
    for (let i = 2; this.logs.includes(p) || existsSync(p); i++) p = join(this.dir, `${new Date().toISOString().replace(/[:.]/g, '-')}-${i}-logger.log`);
    this.logs.push(p);
    this.written = 0;
    writeFileSync(recordPath(this.lab.stateDir, this.device.name), JSON.stringify({ pid: process.pid, pidStart: pidStartTime(process.pid), since: new Date().toISOString(), log: p } satisfies KeeperRecord) + '\n');
    return p;
  }

  /** The log is past `rotateBytes`: the next one goes on where it stops, each naming the other. */
  private rotate(): void {
    const old = this.log;
    const next = this.newLog();
    writeSync(this.fd, `${new Date().toISOString()} ${'-'.padStart(10)} --- continued in ${next} ---\n`);
    closeSync(this.fd);
    this.fd = openSync(next, 'a');
    this.note(`continued from ${old}`);
    this.emit({ event: 'rotated', device: this.device.name, log: next });
  }

  /**
   * Starts keeping `dev`'s console; fails with logger-running when another logger keeps it. A log
   * past `rotateBytes` (default 64 MiB) is continued in a new file.
   */
  static async start(lab: Lab, dev: Device, emit: (e: KeeperEvent) => void, rotateBytes = 64 * 2 ** 20): Promise<Keeper> {
    if (dev.kind !== 'serial-board') throw new LabError('bad-input', 'bad-usage', `${dev.name} is a ${dev.kind} device: its QEMU logs its console itself (power on); the logger keeps serial-board consoles`);
    if (!hasConsolePort(dev)) throw new LabError('bad-input', 'bad-usage', `${dev.name} has no console port in the lab file (console: { port | by-id | usb-serial | usb-path }): nothing for the logger to keep`);
    const path = keeperPath(lab.stateDir, dev.name);
    mkdirSync(dirname(path), { recursive: true });
    if (existsSync(path)) {
      if (await answers(path)) throw new LabError('busy', 'logger-running', `${dev.name}: another orbital-lab logger already keeps its console (${path} answers)`, 'lab');
      rmSync(path, { force: true }); // left by a logger that was killed
    }
    const server = createServer();
    await new Promise<void>((res, rej) => { server.once('error', rej); server.listen(path, () => res()); });
    const dir = join(lab.stateDir, 'logs', dev.name);
    mkdirSync(dir, { recursive: true });
    const k = new Keeper(lab, dev, emit, server, path, dir, rotateBytes);
    k.note(`orbital-lab logger (pid ${process.pid}) keeps ${dev.name}'s console while no job uses it`);
    await k.serial(() => k.hold());
    return k;
  }

  /** Serialises taking and giving back the port: a yield never races a reopen. */
  private serial(f: () => Promise<void>): Promise<void> {
    const p = this.ops.then(f);
    this.ops = p.catch(() => {});
    return p;
  }

  private async hold(): Promise<void> {
    if (this.stopped || this.holders.size > 0 || this.sc) return;
    // A job that holds the device without having asked (it began while no logger ran) may have the
    // port open: wait for it to end, so two readers never share the port.
    const lock = readLock(this.lab.stateDir, this.device.name);
    if (lock.state === 'held' && !this.yieldedTo.has(lock.info.pid)) {
      const why = `pid ${lock.info.pid} ("${lock.info.command}", ${lock.info.owner}) holds ${this.device.name} and may have its console open; taking it when that job ends`;
      if (why !== this.lastWait) { this.lastWait = why; this.note(`waiting: ${why}`); this.emit({ event: 'waiting', device: this.device.name, why }); }
      this.later();
      return;
    }
    this.lastWait = '';
    if (lock.state !== 'held') this.yieldedTo.clear();
    let port: string;
    let sc: SerialConsole;
    try {
      port = findConsolePort(this.device);
      // No flush on open: what the board printed while the port changed hands is still its output.
      sc = await openSerial(port, this.device.console.baud, this.device.name, { flush: false });
    } catch (e) {
      this.gone((e as Error).message);
      return;
    }
    this.sc = sc;
    this.lastGone = '';
    sc.onData((b) => this.bytes(b));
    sc.onClose((away, why) => {
      if (this.sc !== sc) return;
      this.sc = null;
      this.hub?.close();
      this.hub = null;
      // A line the port's end cut short is logged as it is, not joined to the first one after it comes back.
      this.split.flush();
      if (away) this.gone(why);
    });
    try { this.hub = await ConsoleHub.serve(this.lab.stateDir, this.device.name, `console of ${this.device.name}, kept by orbital-lab logger (no job holds it)`); } catch { this.hub = null; }
    this.note(this.held ? `back: console ${port} (no job holds it)` : `logging console ${port}`);
    this.emit(this.held ? { event: 'back', device: this.device.name, port } : { event: 'logging', device: this.device.name, port, log: this.log });
    this.held = true;
  }

  /** Closes the port and the hub (a job takes them); the partial line so far is logged. */
  private async release(): Promise<void> {
    if (this.retry) { clearTimeout(this.retry); this.retry = null; }
    const sc = this.sc;
    this.sc = null;
    this.hub?.close();
    this.hub = null;
    if (sc) await sc.close();
    this.split.flush();
  }

  private gone(why: string): void {
    if (why !== this.lastGone) {
      this.lastGone = why;
      this.note(`console gone: ${why}; looking for it every ${RETRY_MS / 1000} s`);
      this.emit({ event: 'port-gone', device: this.device.name, why });
    }
    this.later();
  }

  /** Tries to take the port again in a second. */
  private later(): void {
    if (this.stopped || this.retry) return;
    this.retry = setTimeout(() => { this.retry = null; void this.serial(() => this.hold()); }, RETRY_MS);
  }

  private client(s: Socket): void {
    let buf = '';
    let asked = false;
    s.on('error', () => {});
    s.on('data', (d) => {
      if (asked) return;
      buf += d.toString('utf8');
      const i = buf.indexOf('\n');
      if (i < 0) { if (buf.length > 4096) s.destroy(); return; }
      const m = /^yield (\d+) (.*)$/.exec(buf.slice(0, i));
      if (!m) { s.end(JSON.stringify({ ok: false, error: 'expected "yield PID WHO"' }) + '\n'); return; }
      asked = true;
      this.yieldedTo.add(Number(m[1]));
      const to = m[2]!.slice(0, 300);
      this.holders.add(s);
      void this.serial(async () => {
        await this.release();
        if (s.destroyed) return;
        this.note(`yielded to ${to}`);
        this.emit({ event: 'yielded', device: this.device.name, to });
        s.write(JSON.stringify({ ok: true, log: this.log, recent: Buffer.concat(this.recent).toString('base64') }) + '\n');
      });
    });
    s.on('close', () => {
      if (!this.holders.delete(s) || this.holders.size > 0) return;
      void this.serial(() => this.hold());
    });
  }

  private bytes(b: Uint8Array): void {
    const buf = Buffer.from(b);
    this.recent.push(buf);
    this.recentBytes += buf.length;
    while (this.recentBytes > RECENT_BYTES && this.recent.length > 1) this.recentBytes -= this.recent.shift()!.length;
    this.hub?.publish(b);
    this.split.push(b);
  }

  private line(text: string): void {
    this.n++;
    this.lines++;
    const t = (performance.now() - this.t0) / 1000;
    const log = this.log;
    this.written += writeSync(this.fd, `${new Date().toISOString()} ${`+${t.toFixed(3)}s`.padStart(10)} ${text}\n`);
    if (this.written >= this.rotateBytes) this.rotate();
    const fatal = this.device.boot.fatal.find((p) => patternHit(p, text));
    if (!fatal) return;
    this.emit({ event: 'fatal', device: this.device.name, pattern: fatal.name, line: this.n, text: text.slice(0, 300) });
    // Into the lab log too (history --events shows it), the first and then at most one a minute.
    const now = performance.now();
    if (now - this.lastRecord < RECORD_EVERY_MS) return;
    this.lastRecord = now;
    const line = this.n;
    const args = { device: this.device.name, event: 'fatal', pattern: bytesAtMost(fatal.name, 64), text: bytesAtMost(text, 1024), log: bytesAtMost(log, 4096) };
    const p: Promise<void> = recordLab(this.lab.stateDir, [{ action: 'console', args }]).then(
      ([seq]) => this.emit({ event: 'recorded', device: this.device.name, seq: seq!, line }),
      (e: unknown) => { const why = (e as Error).message; this.note(`could not record the fatal line (line ${line}) in the lab log: ${why}`); this.emit({ event: 'record-failed', device: this.device.name, why }); },
    ).finally(() => this.recording.delete(p));
    this.recording.add(p);
  }

  private note(text: string): void { this.written += writeSync(this.fd, `${new Date().toISOString()} ${'-'.padStart(10)} --- ${text} ---\n`); }

  /** Stops keeping the console: the port, the hub and the control socket are closed. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retry) { clearTimeout(this.retry); this.retry = null; }
    await this.serial(() => this.release());
    await Promise.allSettled([...this.recording]);
    for (const s of this.holders) s.destroy();
    this.server.close();
    rmSync(this.path, { force: true });
    rmSync(recordPath(this.lab.stateDir, this.device.name), { force: true });
    this.note('logger stopped');
    closeSync(this.fd);
  }
}

/** `text` cut to at most `max` UTF-8 bytes, on a character boundary. */
function bytesAtMost(text: string, max: number): string {
  if (Buffer.byteLength(text) <= max) return text;
  let t = text.slice(0, max);
  while (Buffer.byteLength(t) > max) t = t.slice(0, -1);
  return t;
}

/** A serial-board with a console port to keep (not one reached over its link socket alone). */
export function hasConsolePort(dev: Device): boolean {
  return dev.kind === 'serial-board' && consoleSpecText(dev) !== 'none';
}

/** Whether something listens on a unix socket (a running logger). */
function answers(path: string): Promise<boolean> {
  return new Promise((res) => {
    const s = connect({ path });
    s.once('connect', () => { s.destroy(); res(true); });
    s.once('error', () => res(false));
  });
}

/** The port as a logger handed it over: its log, and the output it saw last. */
export interface Yielded { log: string; recent: Buffer; release(): void }

/**
 * Asks the logger keeping `device`'s console (if one runs) to give the port up, and keeps it given
 * up until `release()` - or until this process exits, which closes the connection. null when no
 * logger keeps it.
 */
export function yieldKeeper(stateDir: string, device: string, who: string, timeoutMs = 10_000): Promise<Yielded | null> {
  const path = keeperPath(stateDir, device);
  if (!existsSync(path)) return Promise.resolve(null);
  return new Promise((res, rej) => {
    const s = connect({ path });
    let buf = '';
    let settled = false;
    const done = (f: () => void) => { if (settled) return; settled = true; clearTimeout(timer); f(); };
    const timer = setTimeout(() => done(() => { s.destroy(); rej(new LabError('timeout', 'console-busy', `${device}: the orbital-lab logger keeping its console did not give it up within ${timeoutMs} ms (${path}); stop that logger, or try again`, 'lab')); }), timeoutMs);
    // Nobody listens (a logger that was killed): the port is free.
    s.on('error', () => done(() => res(null)));
    s.on('close', () => done(() => res(null)));
    s.once('connect', () => s.write(`yield ${process.pid} ${who}\n`));
    s.on('data', (d) => {
      buf += d.toString('utf8');
      const i = buf.indexOf('\n');
      if (i < 0) return;
      let m: { ok?: boolean; log?: string; recent?: string; error?: string };
      try { m = JSON.parse(buf.slice(0, i)) as typeof m; } catch { m = { ok: false, error: 'not JSON' }; }
      if (!m.ok) { done(() => { s.destroy(); rej(new LabError('io', 'console-busy', `${device}: the orbital-lab logger keeping its console refused to give it up: ${m.error}`, 'lab')); }); return; }
      // Held open (without keeping this process alive) for as long as the job has the port.
      s.unref();
      done(() => res({ log: m.log ?? '', recent: Buffer.from(m.recent ?? '', 'base64'), release: () => { s.end(); } }));
    });
  });
}

/** Who a job is, as a logger's log names it. */
export function jobName(): string {
  return `pid ${process.pid} (orbital-lab ${process.argv.slice(2).join(' ')})`.slice(0, 300);
}
