// Boot-log capture: bytes from a console become lines, each stamped with host time and time since
// power-on, appended to the log as it arrives, and matched live against the device's patterns
// (milestones in order, success, fatal, reset). The watcher decides the boot's outcome and whose
// failure it was: the lab's (timeout, console gone, flash or power failed) or the OS's (a fatal
// pattern, a crash report, an unexpected reset).
import { openSync, writeSync, closeSync, fsyncSync } from 'node:fs';
import type { BootSpec, Pattern } from '../labfile.ts';

export interface LogLine {
  /** 1-based line number in this boot's log. */
  n: number;
  /** Host wall-clock time when the line's last byte arrived (ISO 8601). */
  host: string;
  /** Milliseconds since power-on when the line's last byte arrived. */
  t: number;
  text: string;
}

const MAX_LINE = 4096;

/** A device timestamp at the start of a line: `[  123.456 ms]` or `[   12.345678]`. */
const STAMP = /^\[\s*(\d+(?:\.\d+)?)\s*(ms)?\]\s?/;

/**
 * Whether a pattern matches a line: the line as it is, or the line without its device timestamp,
 * so `^CRASH\b` matches `[ 12.000 ms] CRASH ...` as it matches `CRASH ...`.
 */
/** A line without its leading device timestamp (as patterns also see it). */
export const withoutStamp = (text: string): string => text.replace(STAMP, '');

export function patternHit(p: Pattern, text: string): boolean {
  if (p.regex.test(text)) return true;
  const m = STAMP.exec(text);
  return m !== null && p.regex.test(text.slice(m[0].length));
}

/**
 * Splits a byte stream into lines (\n, \r\n or a lone \r), decoding UTF-8 leniently (garbage
 * becomes U+FFFD, never an exception). A line longer than 4 KiB is cut into pieces so a console
 * spewing noise without newlines cannot grow memory.
 */
export class LineSplitter {
  private dec = new TextDecoder('utf-8', { fatal: false });
  private partial = '';
  private lastCR = false;
  constructor(private emit: (text: string) => void) {}
  push(bytes: Uint8Array): void {
    const s = this.dec.decode(bytes, { stream: true });
    let start = 0;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c === 10 || c === 13) {
        if (c === 10 && this.lastCR && i === start && this.partial === '') { this.lastCR = false; start = i + 1; continue; }
        this.partial += s.slice(start, i);
        this.out();
        this.lastCR = c === 13;
        start = i + 1;
      } else if (this.lastCR) this.lastCR = false;
    }
    this.partial += s.slice(start);
    while (this.partial.length > MAX_LINE) { const head = this.partial.slice(0, MAX_LINE); this.partial = this.partial.slice(MAX_LINE); this.emit(clean(head)); }
  }
  /** Emits a pending partial line (at the end of capture). */
  flush(): void {
    this.partial += this.dec.decode();
    if (this.partial) this.out();
  }
  /** Drops a pending partial line (bytes from before power-on). */
  discard(): void { this.partial = ''; this.dec = new TextDecoder('utf-8', { fatal: false }); this.lastCR = false; }
  private out(): void { const l = this.partial; this.partial = ''; this.emit(clean(l)); }
}

// Control characters other than tab are shown as U+FFFD-free escapes so a log stays one line per line.
// eslint-disable-next-line no-control-regex
const clean = (s: string) => s.replace(/[\x00-\x08\x0b-\x1f\x7f]/g, (c) => (c === '\x1b' ? '\\e' : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`));

export type Blame = 'lab' | 'os';

/** A line that matched a fatal pattern. */
export interface FatalLine { name: string; line: number; t: number; text: string }
export type FailureCode = 'boot-timeout' | 'console-gone' | 'flash-failed' | 'power-failed' | 'os-fatal' | 'os-reset' | 'device-exit' | 'cancelled';

export interface BootOutcome {
  ok: boolean;
  /** The last milestone reached (in the order the lab file lists them), or null. */
  stage: string | null;
  milestones: Array<{ name: string; t: number; line: number }>;
  /** ms from power-on to the success pattern. */
  bootMs: number | null;
  success?: { name: string; t: number; line: number };
  failure?: { blame: Blame; code: FailureCode; message: string; line?: number; text?: string };
  lines: number;
  bytes: number;
  /** Lines that carried a device timestamp later than possible for this boot: an earlier boot's output. */
  staleLines: number;
}

/**
 * Watches one boot: feed it bytes, it writes the log and settles the outcome. `done` resolves
 * once success, a fatal pattern (after a short grace so the whole crash report is logged), a
 * failure reported by the caller, or the timeout.
 */
export class BootWatch {
  readonly done: Promise<BootOutcome>;
  private resolve!: (o: BootOutcome) => void;
  private settled = false;
  private fd: number | null;
  private n = 0;
  private bytes = 0;
  private stale = 0;
  private powerOnAt: number | null = null;
  private split: LineSplitter;
  private milestones: BootOutcome['milestones'] = [];
  private nextMilestone = 0;
  private timer: NodeJS.Timeout | null = null;
  private fatalTimer: NodeJS.Timeout | null = null;
  private pendingFatal: BootOutcome['failure'] | null = null;
  private listeners = new Set<(l: LogLine) => void>();
  private fatalListeners = new Set<(f: FatalLine) => void>();
  private lateListeners = new Set<(f: NonNullable<BootOutcome['failure']>) => void>();
  private stampsFromMark = true;

  constructor(private spec: BootSpec, private opts: { logPath?: string; timeoutMs: number; fatalGraceMs?: number; bootId: string; device: string}) {
    this.done = new Promise((r) => { this.resolve = r; });
    this.fd = opts.logPath ? openSync(opts.logPath, 'a') : null;
    this.split = new LineSplitter((text) => this.line(text));
  }

  get logPath(): string | undefined { return this.opts.logPath; }
  /** Host time of the power-on mark (ISO 8601), once set. */
  powerOnIso: string | null = null;

  onLine(fn: (l: LogLine) => void): () => void { this.listeners.add(fn); return () => this.listeners.delete(fn); }

  /**
   * Every line that matches a fatal pattern, also after the outcome is settled: a console or
   * capture runs long past "ready", and a device that panics then must still be seen to.
   */
  onFatal(fn: (f: FatalLine) => void): () => void { this.fatalListeners.add(fn); return () => this.fatalListeners.delete(fn); }

  /**
   * Marks power-on: from here lines count for this boot; anything before is dropped. `what` names
   * the mark in the log when it is not a power-on (a reset of a running device, an attach).
   * `stamps: false`: device timestamps do not count from this mark (a reset does not restart a
   * QEMU guest's TSC; an attach joins a boot long under way), so they are not used to spot stale lines.
   */
  powerOn(at = performance.now(), what = 'power on', o: { stamps?: boolean } = {}): void {
    this.split.discard();
    this.stampsFromMark = o.stamps ?? true;
    this.powerOnAt = at;
    this.powerOnIso = new Date().toISOString();
    this.note(`--- ${what}: device ${this.opts.device}, boot ${this.opts.bootId}, ${new Date().toISOString()} ---`);
    this.timer = setTimeout(() => this.fail({ blame: 'lab', code: 'boot-timeout', message: `no success pattern within ${this.opts.timeoutMs} ms of power-on (stage reached: ${this.stage() ?? 'none'}${this.n === 0 ? '; the console printed nothing - check the cable, baud rate and power' : ''})` }), this.opts.timeoutMs);
  }

  feed(bytes: Uint8Array): void {
    if (this.powerOnAt === null) return; // before power-on: an earlier boot's bytes
    this.bytes += bytes.length;
    this.split.push(bytes);
  }

  /** A failure seen by the caller (console gone, QEMU exited, power command failed). */
  fail(f: NonNullable<BootOutcome['failure']>): void {
    if (this.settled) { for (const fn of this.lateListeners) fn(f); return; }
    this.finish(false, f);
  }

  /**
   * Failures reported after the boot's outcome was settled (the console went away, QEMU exited):
   * they no longer change the boot's result, but a run or console that goes on after a good boot
   * must still learn that its device is gone.
   */
  onLateFailure(fn: (f: NonNullable<BootOutcome['failure']>) => void): () => void { this.lateListeners.add(fn); return () => this.lateListeners.delete(fn); }

  /**
   * How the log ends when the capture stops before a boot outcome (a console or run attached to a
   * running device has no boot to finish): this line instead of "boot failed (cancelled)".
   */
  endNote: string | null = null;

  /** Ends capture: flushes the partial line and closes the log. */
  close(): void {
    this.split.flush();
    if (!this.settled) this.finish(false, { blame: 'lab', code: 'cancelled', message: 'capture stopped before the boot finished' }, undefined, this.endNote ?? undefined);
    if (this.fd !== null) { try { fsyncSync(this.fd); closeSync(this.fd); } catch { /* closed */ } this.fd = null; }
  }

  /** A line of the lab's own in the log (not the device's output; not matched). */
  annotate(text: string): void { this.note(`--- ${text} ---`); }

  private stage(): string | null { return this.milestones.length ? this.milestones[this.milestones.length - 1]!.name : null; }

  private note(text: string): void {
    if (this.fd !== null) writeSync(this.fd, `${new Date().toISOString()} ${'-'.padStart(10)} ${text}\n`);
  }

  private line(text: string): void {
    const t = performance.now() - (this.powerOnAt ?? performance.now());
    const l: LogLine = { n: ++this.n, host: new Date().toISOString(), t: Math.round(t * 10) / 10, text };
    if (this.fd !== null) writeSync(this.fd, `${l.host} ${(`+${(l.t / 1000).toFixed(3)}s`).padStart(10)} ${text}\n`);
    for (const f of this.listeners) f(l);
    // A device timestamp ([  123.456 ms] or [   12.345678]) beyond the time since power-on (plus
    // slack for clock skew) cannot be from this boot.
    const stamp = this.stampsFromMark ? STAMP.exec(text) : null;
    if (stamp) {
      const devMs = Number(stamp[1]) * (stamp[2] ? 1 : 1000);
      if (devMs > l.t + 2000) { if (!this.settled) this.stale++; return; }
    }
    const hit = (ps: Pattern[]) => ps.find((p) => patternHit(p, text));
    const fatal = hit(this.spec.fatal);
    if (fatal) for (const f of this.fatalListeners) f({ name: fatal.name, line: l.n, t: l.t, text });
    if (this.settled) return;
    if (fatal) {
      // Keep logging briefly so the whole crash report lands in the log, then settle.
      if (!this.pendingFatal) {
        this.pendingFatal = { blame: 'os', code: 'os-fatal', message: `fatal pattern "${fatal.name}" at line ${l.n} (+${(l.t / 1000).toFixed(3)} s, stage ${this.stage() ?? 'none'}): ${text.slice(0, 200)}`, line: l.n, text };
        this.fatalTimer = setTimeout(() => this.finish(false, this.pendingFatal!), this.opts.fatalGraceMs ?? 300);
      }
      return;
    }
    const reset = hit(this.spec.reset);
    if (reset && this.milestones.length > 0) {
      this.finish(false, { blame: 'os', code: 'os-reset', message: `the device reset during boot ("${reset.name}" seen again at line ${l.n}, after stage ${this.stage()})`, line: l.n, text });
      return;
    }
    // Milestones are ordered: the next expected one or any later one is recorded (a skipped
    // milestone is simply absent from the list), so the stage is the furthest one reached.
    for (let i = this.nextMilestone; i < this.spec.milestones.length; i++) {
      if (this.spec.milestones[i]!.regex.test(text)) {
        this.milestones.push({ name: this.spec.milestones[i]!.name, t: l.t, line: l.n });
        this.nextMilestone = i + 1;
        break;
      }
    }
    const ok = hit(this.spec.success);
    if (ok && !this.pendingFatal) this.finish(true, undefined, { name: ok.name, t: l.t, line: l.n });
  }

  private finish(ok: boolean, failure?: BootOutcome['failure'], success?: BootOutcome['success'], endNote?: string): void {
    if (this.settled) return;
    this.settled = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.fatalTimer) clearTimeout(this.fatalTimer);
    this.note(endNote !== undefined ? `--- ${endNote} ---` : ok ? `--- boot ok: ${success!.name} at +${(success!.t / 1000).toFixed(3)}s ---` : `--- boot failed (${failure!.blame}: ${failure!.code}): ${failure!.message} ---`);
    this.resolve({ ok, stage: this.stage(), milestones: this.milestones, bootMs: success ? success.t : null, success, failure, lines: this.n, bytes: this.bytes, staleLines: this.stale });
  }
}
