// `orbital-lab run DEVICE CMD [--expect RE]... [CMD [--expect RE]...]`: type commands on a device's
// console and check what it answers - the scripted half of a lab job (boot, then test), as LAVA's
// test shell or labgrid's `run` does.
//
// Typed input is checked, not hoped for: each command must come back in the console's echo (a
// line ending with the command as typed: a shell's echo, or the guest's `$ CMD`) before the next one
// is typed, so characters lost on a flaky UART show as "not echoed" at that command, not as a
// confusing failure three commands later. Boards whose UART drops characters typed at full speed
// get `console.char-delay` in the lab file (a pause between typed characters). Each `--expect`
// pattern must then appear, in order, on a line after the command's echo, within the console
// timeout. The device's fatal patterns are watched all the while: a panic during a command is the
// OS's failure however the expectations went. Every line goes to the boot log as for `boot`.
import { LabError, type LabErrorCode } from './errors.ts';
import type { FlashProgress, FlashResult } from './flash/flash.ts';
import type { Device, Lab, Pattern } from './labfile.ts';
import { BootWatch, patternHit, withoutStamp as bare, type BootOutcome, type FatalLine, type LogLine } from './console/capture.ts';
import { defaultLogPath, flashFirst, powerOnSession } from './boot.ts';
import { consoleSpecText } from './devices.ts';
import { readVm, sleep } from './vm.ts';
import { initAxiom } from '../axiom/index.ts';
import { connectLink } from '../kernel-link/node/client.ts';
import { TypedLines } from '../kernel-link/core/console.ts';
import { randomBytes } from 'node:crypto';

/** What a run needs of a console: its log and patterns (the watch), a way to type, and an end. */
interface RunConsole { bootId: string; watch: BootWatch; write(b: Uint8Array): void; stop(): Promise<void> }

export interface Step {
  /** The command line typed (without the newline). */
  cmd: string;
  /** Patterns that must appear, in this order, after the command's echo. */
  expect: Pattern[];
}

export interface StepResult {
  cmd: string;
  /** The echo line, or null when the command never came back. */
  echo: { line: number; t: number; text: string } | null;
  /**
   * Each expectation and the line that met it. `fields`: the pattern's named groups
   * (`(?<name>...)`) on that line, as twister's console harness records them.
   */
  expect: Array<{ pattern: string; line: number | null; t: number | null; text: string | null; fields?: Record<string, string> }>;
  /** Lines after the echo, up to the next command's (at most 1000 kept). */
  output: string[];
  ms: number;
}

export interface RunOptions {
  lab: Lab;
  device: Device;
  steps: Step[];
  /** Boot the device first (a qemu device that is off is booted either way); the run starts only after a successful boot. */
  boot?: boolean;
  /**
   * Flash this image first, then boot (implies `boot`): the whole job in one run. A flash that
   * fails is the lab's failure, in the result (`failure.stage: 'flash'`); the device is not powered.
   */
  image?: string;
  bmap?: string | null;
  /** For a signed .orbimg: keys besides the lab file's `trust:`, and the part to flash. */
  trust?: Uint8Array[];
  part?: string;
  /** Rewrite the target even if it already holds the image. */
  force?: boolean;
  onFlashProgress?: (p: FlashProgress) => void;
  /** Per command: the echo and then each expectation must come within this (default: the device's console timeout). */
  timeoutMs?: number;
  /** Boot timeout (default: the device's). */
  bootTimeoutMs?: number;
  logPath?: string;
  /** Overrides the lab file's console.char-delay. */
  charDelayMs?: number;
  /** Overrides the lab file's console.line-kill. */
  lineKill?: boolean;
  signal?: AbortSignal;
  onLine?: (l: LogLine) => void;
}

export interface RunResult {
  ok: boolean;
  device: string;
  bootId: string;
  log: string;
  /** The flash, when the run flashed the device first (`image`). */
  flash?: FlashResult;
  /** The boot, when the run booted the device. */
  boot?: BootOutcome;
  steps: StepResult[];
  fatal?: FatalLine[];
  failure?: NonNullable<BootOutcome['failure']> | { blame: 'lab' | 'os'; code: 'no-echo' | 'expect-timeout'; message: string; line?: number; text?: string }
    | { blame: 'lab'; code: LabErrorCode; message: string; stage: 'flash' };
  charDelayMs: number;
  /** Every named group the met expectations captured, in order (a later capture of a name wins; each step keeps its own). */
  fields: Record<string, string>;
}

/** The named groups of a pattern on a line (matched as patternHit does: with or without the device's timestamp), or undefined. */
export function fieldsOf(p: Pattern, text: string): Record<string, string> | undefined {
  const m = p.regex.exec(text) ?? p.regex.exec(bare(text));
  if (!m?.groups) return undefined;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(m.groups)) if (v !== undefined) out[k] = v;
  return Object.keys(out).length ? out : undefined;
}

/** A kernel message from its timestamp to the end of the line, wherever it starts (printk does not start a new line). */
const KMSG = /\[\s*\d+(?:\.\d+)?\s*(?:ms)?\][^]*$/;

/** Types the commands and checks the answers. Throws only for bad usage; device trouble is in the result. */
export async function runCommands(o: RunOptions): Promise<RunResult> {
  const dev = o.device;
  if (o.steps.length === 0) throw new LabError('bad-input', 'bad-usage', 'run needs at least one command');
  for (const s of o.steps) {
    if (s.cmd.trim() === '') throw new LabError('bad-input', 'bad-usage', 'run: a command must not be empty');
    if (/[\r\n]/.test(s.cmd)) throw new LabError('bad-input', 'bad-usage', `run: one command per argument, without newlines (got ${JSON.stringify(s.cmd)})`);
  }
  const charDelayMs = o.charDelayMs ?? dev.console.charDelayMs;
  const lineKill = o.lineKill ?? dev.console.lineKill;
  const timeoutMs = o.timeoutMs ?? dev.timeouts.console;
  // A qemu device that is off has no console to type on until it boots; boot it then.
  const vmOn = dev.kind === 'qemu' && readVm(o.lab.stateDir, dev.name).state === 'on';
  const booting = o.boot || o.image !== undefined || (dev.kind === 'qemu' && !vmOn);
  const overLink = dev.link.on === 'socket' && consoleSpecText(dev) === 'none';
  if (overLink && (o.boot || o.image !== undefined)) throw new LabError('bad-input', 'bad-usage', `${dev.name} is reached over its link socket only (no console, no power): it cannot be ${o.image !== undefined ? 'flashed or ' : ''}booted from here; run without --boot${o.image !== undefined ? ' and --image' : ''}`);
  let flashed: FlashResult | undefined;
  if (o.image !== undefined) {
    try { flashed = await flashFirst({ ...o, image: o.image }, 'run'); } catch (e) {
      // The person's mistake (no such image, a bad bmap path) is bad usage; any other flash failure is the lab's, in the result.
      const le = e as LabError;
      if (le.blame === 'usage') throw le;
      return { ok: false, device: dev.name, bootId: '', log: '', steps: [], failure: { blame: 'lab', code: le.code, message: le.message, stage: 'flash' }, charDelayMs, fields: {} };
    }
  }
  // A device reached only over a link socket (the hosted OS) has no console to type on: its shell is its `sh` action.
  const s: RunConsole = overLink && dev.link.on === 'socket' ? await linkConsole(o, dev.link.path) : await powerOnSession({
    lab: o.lab, device: dev, logPath: o.logPath, signal: o.signal, keep: true, onLine: o.onLine,
    timeoutMs: booting ? o.bootTimeoutMs ?? dev.timeouts.boot : 7 * 24 * 3600_000,
    running: booting ? 'reset' : 'join',
    noPower: dev.kind !== 'qemu' && !booting,
  });
  const results: StepResult[] = [];
  const fatal: FatalLine[] = [];
  const base = { device: dev.name, bootId: s.bootId, log: s.watch.logPath ?? '', charDelayMs, ...(flashed ? { flash: flashed } : {}) };
  try {
    // Every line from here on, for the steps to look at in order.
    const lines: LogLine[] = [];
    let wake: (() => void) | null = null;
    /**
     * The command typed whose echo has not come yet, and the last echo seen. The echo is found as
     * its line arrives (not when a step gets to look), so the lines right behind it - a panic the
     * command caused - are already the device's. An echo is not the device's output: it does not
     * count as fatal even if it matches a fatal pattern (`run b 'dmesg | grep panic'`).
     */
    let echoDue: string | null = null;
    let echoSeen: LogLine | null = null;
    /**
     * The lines since the command was typed, without kernel messages: a message the kernel printed
     * while the command was being echoed splits the echo over two lines (`# sum 2[ 12.3] usb 1-1:
     * new device` and ` 3`); joined without it, the echo is whole again.
     */
    let echoAcc = '';
    const offLine = s.watch.onLine((l) => {
      lines.push(l);
      if (echoDue !== null) {
        echoAcc += bare(l.text).replace(KMSG, '');
        // The echo is the line that ENDS with the command (after a prompt, `# ` or `$ `; trailing
        // blanks and CR aside): a line that only mentions it - output still arriving from the
        // command before, a log line - is not taken for it.
        const want = echoDue.trimEnd();
        if (bare(l.text).trimEnd().endsWith(want) || echoAcc.trimEnd().endsWith(want)) { echoSeen = l; echoDue = null; }
      }
      wake?.();
    });
    let ended: NonNullable<BootOutcome['failure']> | null = null;
    // A line ending with the command typed is an echo of it (a terminal's, then a shell's `$ CMD`),
    // not the device's output: not fatal, and not what an expectation is matched against.
    let typedCmd: string | null = null;
    const isEcho = (text: string) => typedCmd !== null && bare(text).trimEnd().endsWith(typedCmd.trimEnd());
    s.watch.onFatal((f) => { if ((echoSeen && f.line === echoSeen.n) || isEcho(f.text)) return; fatal.push(f); wake?.(); });
    const onAbort = () => s.watch.fail({ blame: 'lab', code: 'cancelled', message: 'run cancelled' });
    o.signal?.addEventListener('abort', onAbort, { once: true });
    let bootOutcome: BootOutcome | undefined;
    if (booting) {
      bootOutcome = await s.watch.done;
      if (!bootOutcome.ok) return { ...base, ok: false, boot: bootOutcome, steps: [], failure: bootOutcome.failure!, fields: {}, ...(fatal.length ? { fatal } : {}) };
    }
    // The console going away (or the run being cancelled) ends the run at once.
    // (A fatal line settles a joined device's watch too: fatal lines are taken from onFatal above, where a command's own echo is told apart.)
    const gone = (f: NonNullable<BootOutcome['failure']>) => { if (f.code !== 'boot-timeout' && f.code !== 'os-fatal') { ended ??= f; wake?.(); } };
    void s.watch.done.then((x) => { if (!x.ok && x.failure) gone(x.failure); });
    s.watch.onLateFailure(gone);
    let from = lines.length;
    /** Waits for the first line from `from` on that `test` accepts, until `deadline`; null on timeout, a fatal line or the end. */
    const waitFor = async (test: (l: LogLine) => boolean, deadline: number): Promise<LogLine | null> => {
      for (;;) {
        while (from < lines.length) { const l = lines[from++]!; if (test(l)) return l; }
        if (fatal.length || ended || o.signal?.aborted) return null;
        const left = deadline - performance.now();
        if (left <= 0) return null;
        await new Promise<void>((r) => { const t = setTimeout(r, left); wake = () => { clearTimeout(t); r(); }; });
        wake = null;
      }
    };
    let failure: RunResult['failure'];
    for (const step of o.steps) {
      const t0 = performance.now();
      const r: StepResult = { cmd: step.cmd, echo: null, expect: step.expect.map((p) => ({ pattern: p.name, line: null, t: null, text: null })), output: [], ms: 0 };
      results.push(r);
      const outStart = lines.length;
      echoDue = step.cmd;
      typedCmd = step.cmd;
      echoSeen = null;
      echoAcc = '';
      // Ctrl-U first: whatever an earlier run or a person left on the device's input line goes.
      await type(s, `${lineKill ? '\x15' : ''}${step.cmd}\n`, charDelayMs, o.signal);
      const deadline = performance.now() + timeoutMs;
      const echo = await waitFor((l) => l === echoSeen, deadline);
      echoDue = null;
      if (!echo) {
        if (!fatal.length && !ended) {
          const seen = lines.slice(outStart).map((l) => l.text).filter((t) => t.trim() !== '').slice(-3);
          failure = { blame: 'lab', code: 'no-echo', message: `${dev.name} did not echo the command ${JSON.stringify(step.cmd)} within ${timeoutMs} ms: characters typed were lost (a UART that drops input at full speed: set console.char-delay, e.g. 10ms, now ${charDelayMs} ms) or the device does not read its console${seen.length ? `; it printed: ${seen.map((t) => JSON.stringify(t.slice(0, 120))).join(', ')}` : '; it printed nothing'}` };
        }
        r.ms = performance.now() - t0;
        break;
      }
      r.echo = { line: echo.n, t: echo.t, text: echo.text };
      const echoAt = from;
      for (let i = 0; i < step.expect.length; i++) {
        const p = step.expect[i]!;
        const hit = await waitFor((l) => !isEcho(l.text) && patternHit(p, l.text), deadline);
        // The next expectation may match the same line again (`--expect one --expect two` on "one two").
        if (hit) from--;
        if (!hit) {
          if (!fatal.length && !ended) {
            const got = lines.slice(echoAt).map((l) => l.text).slice(-5);
            failure = { blame: 'os', code: 'expect-timeout', message: `${dev.name}: after ${JSON.stringify(step.cmd)} no line matched /${p.name}/ within ${timeoutMs} ms${got.length ? `; it printed: ${got.map((t) => JSON.stringify(t.slice(0, 120))).join(', ')}` : '; it printed nothing after the echo'}` };
          }
          break;
        }
        const fields = fieldsOf(p, hit.text);
        r.expect[i] = { pattern: p.name, line: hit.n, t: hit.t, text: hit.text, ...(fields ? { fields } : {}) };
      }
      r.ms = performance.now() - t0;
      if (failure || fatal.length || ended) break;
    }
    // The last command's output: lines until the console has been quiet for a moment (at most the
    // console timeout: a device that never stops printing does not hold the run).
    if (!failure && !fatal.length && !ended) {
      const until = performance.now() + timeoutMs;
      for (let n = -1; n !== lines.length && !fatal.length && !ended && performance.now() < until;) { n = lines.length; await sleep(200); }
      if (fatal.length) await sleep(300); // the whole crash report lands in the log
    }
    // Each command's output: the lines after its echo, up to the next command's echo.
    for (let i = 0; i < results.length; i++) {
      const r = results[i]!;
      if (!r.echo) continue;
      const next = results[i + 1]?.echo?.line ?? Infinity;
      r.output = lines.filter((l) => l.n > r.echo!.line && l.n < next).slice(0, 1000).map((l) => l.text);
    }
    offLine();
    o.signal?.removeEventListener('abort', onAbort);
    const end = ended as NonNullable<BootOutcome['failure']> | null;
    // Whose failure: the console going away is the lab's (or the OS's, for a guest that crashed
    // QEMU), a fatal line the OS's, then the first unmet step.
    const why: RunResult['failure'] = end && end.blame === 'lab' ? end
      : fatal.length ? { blame: 'os', code: 'os-fatal', message: `fatal pattern "${fatal[0]!.name}" at line ${fatal[0]!.line}: ${fatal[0]!.text.slice(0, 200)}${fatal.length > 1 ? ` (${fatal.length} fatal lines in all)` : ''}`, line: fatal[0]!.line, text: fatal[0]!.text }
      : end ?? failure;
    s.watch.endNote = why ? `run failed (${why.blame}: ${why.code}) at ${JSON.stringify(results[results.length - 1]?.cmd ?? '')}` : `run ok: ${results.length} command(s) echoed, every expectation met`;
    if (s.watch.endNote && booting) s.watch.annotate(s.watch.endNote);
    const fields: Record<string, string> = {};
    for (const r of results) for (const e of r.expect) Object.assign(fields, e.fields);
    return { ...base, ok: !why, ...(bootOutcome ? { boot: bootOutcome } : {}), steps: results, ...(fatal.length ? { fatal } : {}), ...(why ? { failure: why } : {}), fields };
  } finally {
    await s.stop();
  }
}

/**
 * The console of a device reached over a kernel-link socket (the hosted OS): its console lines
 * come as link console frames, and a typed line is proposed as an `sh` action of the os domain -
 * what the guest kernel does with a line typed on its console. The device prints the committed
 * line and its answer on its console (`$ CMD`, the output, ` (error)`), as the guest does; a line it
 * refuses is shown as `rejected: REASON`. Everything is logged as for a boot.
 */
async function linkConsole(o: RunOptions, path: string): Promise<RunConsole> {
  const dev = o.device;
  await initAxiom();
  const bootId = randomBytes(8).toString('hex');
  const watch = new BootWatch(dev.boot, { logPath: o.logPath ?? defaultLogPath(o.lab, dev.name, bootId), timeoutMs: 7 * 24 * 3600_000, bootId, device: dev.name });
  if (o.onLine) watch.onLine(o.onLine);
  let c;
  try { c = await connectLink({ path }, { client: 'orbital-lab run', actor: 1, subscribe: false, reconnect: false, handshakeTimeoutMs: 3000 }); } catch (e) {
    watch.close();
    throw new LabError('disconnected', 'console-missing', `${dev.name}: cannot reach its link socket ${path}: ${(e as Error).message} (is the hosted OS running? orbital-os serve)`, 'lab');
  }
  const link = c;
  watch.powerOn(performance.now(), `attached over the link socket ${path} (typed lines run as sh actions)`, { stamps: false });
  const enc = new TextEncoder();
  link.onConsole((l) => watch.feed(enc.encode(`${l.text}\n`)));
  let closed = false;
  link.onEvent((e) => {
    if (closed) return;
    if (e.t === 'disconnected') watch.fail({ blame: 'lab', code: 'console-gone', message: `${dev.name}: the link socket ${path} went away (${e.error.message})` });
    else if (e.t === 'closed-by-device') watch.fail({ blame: 'lab', code: 'console-gone', message: `${dev.name} closed the link (${e.reason}${e.detail ? `: ${e.detail}` : ''})` });
  });
  const typed = new TypedLines();
  let chain = Promise.resolve();
  const idBase = Date.now() * 1000;
  let n = 0;
  const runLine = async (line: string) => {
    try {
      const r = await link.propose({ id: idBase + n++, domain: 1, action: 'sh', args: { line } });
      // A committed line comes back on the device's console (`$ CMD`, then the answer); a refused one never ran.
      if (r.status !== 'committed') watch.feed(enc.encode(`$ ${line}\nrejected: ${r.reason}${r.detail ? ` (${r.detail})` : ''}\n`));
    } catch (e) {
      watch.fail({ blame: 'lab', code: 'console-gone', message: `${dev.name}: the link failed while running ${JSON.stringify(line)}: ${(e as Error).message}` });
    }
  };
  return {
    bootId, watch,
    write: (b) => {
      // Split and edited as the device reads a line typed on its console (Enter, Backspace, Ctrl-U), then proposed.
      for (const line of typed.push(new TextDecoder().decode(b))) chain = chain.then(() => runLine(line));
    },
    stop: async () => { await chain; closed = true; link.close(); watch.close(); },
  };
}

/** Types a line on the console: at once, or a character at a time with a pause between. */
async function type(s: RunConsole, text: string, delayMs: number, signal?: AbortSignal): Promise<void> {
  const bytes = new TextEncoder().encode(text);
  if (delayMs <= 0) { s.write(bytes); return; }
  for (let i = 0; i < bytes.length; i++) {
    if (signal?.aborted) return;
    // One UTF-8 sequence at a time (its continuation bytes go with it).
    let j = i + 1;
    while (j < bytes.length && (bytes[j]! & 0xc0) === 0x80) j++;
    s.write(bytes.subarray(i, j));
    i = j - 1;
    if (j < bytes.length) await sleep(delayMs);
  }
}
