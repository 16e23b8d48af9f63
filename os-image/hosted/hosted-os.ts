// The hosted Orbital OS: a real process that owns a sequencer and the os-domain reducer, keeps
// its log in a trace file (durable before any result is returned), and recovers after kill -9:
// the torn tail is cut, the log is replayed, a new BOOT is appended and commits left without a
// receipt are closed as `aborted` (docs/axiom.md section 8).
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Sequencer, decodeEntry, toHex, type Appended, type Proposal, type ProposeResult } from '../../axiom/index.ts';
import { initAxiom } from '../../axiom/index.ts';
import { TraceWriter, type FsyncPolicy } from '../../axiom/node/trace-file.ts';

export const HOSTED_OS_NAME = 'orbital-hosted 0.1';

export interface HostedOsOptions {
  /** Where the device keeps its log and identity. Created if missing. */
  dataDir: string;
  /** Checkpoint interval for a new log. */
  k?: number;
  /** 'always' (default): fdatasync before a result is returned. 'never': for benchmarks of the in-memory path only. */
  fsync?: FsyncPolicy;
  /** Boot id; random by default (tests pass one to be deterministic). */
  bootId?: Uint8Array;
}

export class DeviceBusyError extends Error {
  readonly kind = 'bad-input' as const;
  constructor(readonly dataDir: string, readonly pid: number) { super(`the hosted OS in ${dataDir} is already running as pid ${pid}: one writer per log (stop it, or use another --data directory)`); }
}

type EntryListener = (a: Appended) => void;
type ConsoleListener = (text: Uint8Array) => void;

export class HostedOs {
  readonly seq: Sequencer;
  /** Every entry of the log, encoded, by seq (the hosted OS keeps its log in memory too). */
  readonly entries: Uint8Array[] = [];
  readonly hashes: Uint8Array[] = [];
  private readonly entryListeners = new Set<EntryListener>();
  private readonly consoleListeners = new Set<ConsoleListener>();
  /** The console so far (bounded), for late attachers. */
  private consoleLog: Uint8Array[] = [];
  private consoleBytes = 0;
  private closed = false;
  readonly bootedAt = Date.now();
  readonly recovered: { entries: number; cutBytes: number; aborted: number };

  private constructor(readonly opts: HostedOsOptions, readonly deviceId: Uint8Array, readonly bootId: Uint8Array, private readonly writer: TraceWriter, seq: Sequencer, recovered: HostedOs['recovered']) {
    this.seq = seq;
    this.recovered = recovered;
  }

  static async start(opts: HostedOsOptions): Promise<HostedOs> {
    await initAxiom();
    mkdirSync(opts.dataDir, { recursive: true });
    takeLock(opts.dataDir);
    try {
      const idFile = join(opts.dataDir, 'device-id');
      if (!existsSync(idFile)) writeFileSync(idFile, toHex(randomBytes(16)) + '\n');
      const deviceId = Uint8Array.from(Buffer.from(readFileSync(idFile, 'utf8').trim(), 'hex'));
      if (deviceId.length !== 16) throw new Error(`${idFile} does not hold a 16-byte hex device id`);
      const bootId = opts.bootId ?? new Uint8Array(randomBytes(16));
      const path = join(opts.dataDir, 'log.orbtrace');
      const restored: { encoded: Uint8Array; hash: Uint8Array }[] = [];
      const { writer, header, cutBytes } = TraceWriter.open(path, { deviceId, bootId, k: opts.k ?? 256 }, (encoded, hash) => restored.push({ encoded, hash }), opts.fsync ?? 'always');
      const seq = new Sequencer({ deviceId, bootId, os: HOSTED_OS_NAME, k: header.k });
      const os = new HostedOs(opts, deviceId, bootId, writer, seq, { entries: restored.length, cutBytes, aborted: 0 });
      for (const r of restored) {
        const d = decodeEntry(r.encoded);
        if (!d.ok) throw new Error(`log entry does not decode after verification: ${d.error.message}`);
        seq.restore(r.hash, d.value);
        os.entries.push(r.encoded); os.hashes.push(r.hash);
      }
      os.print(`orbital-hosted: device ${toHex(deviceId)} boot ${toHex(bootId)}`);
      if (restored.length) os.print(`axiom: recovered ${restored.length} entries${cutBytes ? `, cut a torn tail of ${cutBytes} bytes` : ''}`);
      const open = seq.system.open.size;
      os.commit(seq.boot());
      os.recovered.aborted = open;
      if (open) os.print(`axiom: closed ${open} interrupted action(s) as aborted`);
      os.print(`ready: head ${seq.next}`);
      return os;
    } catch (e) {
      releaseLock(opts.dataDir);
      throw e;
    }
  }

  get head(): number { return this.seq.next; }
  get headHash(): Uint8Array { return this.seq.head; }
  get info() { return { deviceId: this.deviceId, bootId: this.bootId, os: HOSTED_OS_NAME, head: this.seq.next }; }

  /** Decides a proposal; its entries are durable (fsync policy) before this returns. */
  propose(p: Proposal): ProposeResult {
    if (this.closed) throw new Error('the hosted OS is shut down');
    const r = this.seq.propose(p);
    this.commit(r.entries);
    if (r.status === 'committed' && p.domain === 1 && p.action === 'sh') {
      const text = new TextDecoder().decode(r.outcome.result);
      this.print(`$ ${String(p.args.line)}${text ? `\n${text}` : ''}${r.outcome.outcome === 'error' ? ' (error)' : ''}`);
    }
    return r;
  }

  private commit(as: Appended[]): void {
    if (as.length === 0) return;
    this.writer.append(as);
    for (const a of as) { this.entries.push(a.encoded); this.hashes.push(a.hash); }
    for (const a of as) for (const l of this.entryListeners) l(a);
  }

  /** Writes a console line (the OS's own messages). */
  print(line: string): void {
    const b = new TextEncoder().encode(line.endsWith('\n') ? line : line + '\n');
    this.consoleLog.push(b); this.consoleBytes += b.length;
    while (this.consoleBytes > 256 * 1024 && this.consoleLog.length > 1) this.consoleBytes -= this.consoleLog.shift()!.length;
    for (const l of this.consoleListeners) l(b);
  }
  consoleHistory(): Uint8Array[] { return [...this.consoleLog]; }

  onEntry(l: EntryListener): () => void { this.entryListeners.add(l); return () => this.entryListeners.delete(l); }
  onConsole(l: ConsoleListener): () => void { this.consoleListeners.add(l); return () => this.consoleListeners.delete(l); }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.print('orbital-hosted: shutting down');
    this.writer.close();
    releaseLock(this.opts.dataDir);
  }
}

function pidAlive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM'; }
}

/** One writer per data directory: a lock file with the owner's pid; a dead owner's lock is stale. */
const heldHere = new Set<string>();
function takeLock(dir: string): void {
  const lock = join(dir, 'lock');
  if (heldHere.has(lock)) throw new DeviceBusyError(dir, process.pid);
  for (let tries = 0; tries < 3; tries++) {
    try {
      const fd = openSync(lock, 'wx');
      writeFileSync(fd, `${process.pid}\n`); closeSync(fd);
      heldHere.add(lock);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = Number.parseInt(readFileSync(lock, 'utf8'), 10);
      if (Number.isFinite(pid) && pid !== process.pid && pidAlive(pid)) throw new DeviceBusyError(dir, pid);
      try { unlinkSync(lock); } catch { /* raced with another taker */ }
    }
  }
  throw new Error(`could not take the lock ${lock}`);
}
function releaseLock(dir: string): void {
  const lock = join(dir, 'lock');
  heldHere.delete(lock);
  try { if (Number.parseInt(readFileSync(lock, 'utf8'), 10) === process.pid) unlinkSync(lock); } catch { /* already gone */ }
}
