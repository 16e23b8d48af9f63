// Power a device on with its console already attached and watch it boot.
//
// QEMU: the launcher listens on the chardev sockets before QEMU starts and QEMU starts paused
// (-S); the console is attached, the power-on mark is set, and only then does the CPU run - so
// the first byte is captured. A board: the serial port is opened and its stale input dropped
// before the power-on edge. Either way the log holds every line from power-on, and bytes from
// before the mark (an earlier boot) never count.
//
// A qemu device that `power on` started (vm.ts) is attached to, never started twice: `boot`
// pauses it, drops the console connection that carried the old boot, resets it, connects again
// and only then sets the mark and lets it run, so its log starts with the reset's first byte and
// holds no byte of the old boot however late that byte would arrive; `console` and `capture`
// join it as it runs (running: 'join'). Leaving detaches only.
//
// The virtio link of a QEMU the session starts itself is a socket QEMU serves (not one the
// launcher accepted once), so a capture whose link connection drops connects again.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { QemuMachine, type Qmp, type QemuExit } from '../kernel-link/node/qemu.ts';
import { LabError } from './errors.ts';
import type { Device, Lab } from './labfile.ts';
import { BootWatch, type BootOutcome, type LogLine } from './console/capture.ts';
import { ConsoleHub } from './console/hub.ts';
import { openSerial } from './console/serial.ts';
import { jobName, yieldKeeper, type Yielded } from './console/keeper.ts';
import type { LatencyTimer } from './console/latency.ts';
import { findConsolePort } from './devices.ts';
import { power } from './power.ts';
import { flash, type FlashProgress, type FlashResult } from './flash/flash.ts';
import { attachChardev, clearVm, openQmp, pidAlive, readVm, servedVirtioArgs, sleep, waitExit, type VmExit, type VmRecord } from './vm.ts';
import type { StreamTransport } from '../kernel-link/node/socket.ts';

export interface BootOptions {
  lab: Lab;
  device: Device;
  /** Flash this image first (flash failure = lab failure, the device is not powered). */
  image?: string;
  bmap?: string | null;
  /** For a signed .orbimg: keys besides the lab file's `trust:`, and the part to flash. */
  trust?: Uint8Array[];
  part?: string;
  force?: boolean;
  logPath?: string;
  timeoutMs?: number;
  /** Extra kernel command line for a qemu device booting qemu.kernel. */
  append?: string;
  signal?: AbortSignal;
  onLine?: (l: LogLine) => void;
  onFlashProgress?: (p: FlashProgress) => void;
  /** Keep the device running after the outcome (console, capture); the caller calls session.stop(). */
  keep?: boolean;
  /** A board: attach to the console without switching power (the mark is set at attach). */
  noPower?: boolean;
  /**
   * A qemu device already powered on (`power on`): 'reset' it after attaching, so the log starts
   * with the new boot's first byte (default; boot), or 'join' it as it runs (console, capture).
   */
  running?: 'reset' | 'join';
  /**
   * Boot again (power off, on) up to this many times after a failure that was the lab's
   * (boot-timeout, console-gone, power-failed) - never after the OS's (a fatal line, a reset, the
   * guest's exit), which is the result. Each attempt has its own boot id and log. Default 0.
   */
  retries?: number;
}

export interface BootResult extends BootOutcome {
  device: string;
  bootId: string;
  log: string;
  powerOnAt: string;
  flash?: FlashResult;
  qemuExit?: QemuExit;
  /** The boot reset a QEMU that `power on` started (it keeps running). */
  attached?: Session['attached'];
  /** A board's USB-serial latency timer (FTDI): lowered to 1 ms, or why not. */
  latencyTimer?: LatencyTimer;
  /** Earlier attempts that failed on the lab's side and were retried (`retries`), oldest first. */
  retried?: Array<{ bootId: string; log: string; failure: NonNullable<BootOutcome['failure']>; stage: string | null }>;
}

/** A powered device with its console attached. */
export interface Session {
  device: Device;
  bootId: string;
  watch: BootWatch;
  write(b: Uint8Array): void;
  /** Raw console bytes, for an interactive console (already logged and published to watchers). */
  onBytes(fn: (b: Uint8Array) => void): void;
  machine?: QemuMachine;
  /** The QEMU's virtio link socket (QEMU serves it: connect again after a drop). */
  linkPath?: string;
  /** The console transport (a capture whose link shares the virtio console uses it). */
  console?: StreamTransport;
  /** A board's USB-serial latency timer (FTDI), lowered to 1 ms on open where the lab may. */
  latency?: LatencyTimer;
  /** Set when the session attached to a QEMU that `power on` started (it keeps running after stop). */
  attached?: { pid: number; since: string; consoleLog: string; reset: boolean; exit?: VmExit };
  hub: ConsoleHub;
  /** A board whose port `orbital-lab logger` kept until this session: its log, and its last output. */
  kept?: { log: string; recent: Buffer };
  /**
   * The reset button, in the middle of a session (the interactive console's Ctrl-] r): a qemu
   * device's QEMU gets system_reset over QMP; a board its power cycle (its `cycle` command, else
   * off and on). Resolves with how it was done; a board with manual power cannot be reset from here.
   */
  reset(): Promise<string>;
  /** A serial BREAK on a board's console (magic SysRq); a qemu device's console socket cannot carry one. */
  sendBreak(): Promise<void>;
  /**
   * Resolves when the device goes away at any time in the session - its QEMU exited, the serial
   * port vanished - not only before the boot's outcome (an interactive console ends then).
   */
  gone: Promise<NonNullable<BootOutcome['failure']>>;
  stop(): Promise<void>;
}

export function defaultLogPath(lab: Lab, device: string, bootId: string): string {
  const dir = join(lab.stateDir, 'logs', device);
  mkdirSync(dir, { recursive: true });
  return join(dir, `${new Date().toISOString().replace(/[:.]/g, '-')}-${bootId}.log`);
}

/** Powers the device on with the console attached first. Resolves once it runs. */
export async function powerOnSession(o: BootOptions): Promise<Session> {
  // A board's port may be kept by `orbital-lab logger` between jobs: it gives the port up first,
  // and takes it back when the session stops (or this process dies).
  const kept = o.device.kind === 'serial-board' ? await yieldKeeper(o.lab.stateDir, o.device.name, jobName()) : null;
  try {
    const s = await attachAndPower(o, kept);
    if (!kept) return s;
    const stop = s.stop;
    return { ...s, kept: { log: kept.log, recent: kept.recent }, stop: async () => { try { await stop(); } finally { kept.release(); } } };
  } catch (e) { kept?.release(); throw e; }
}

async function attachAndPower(o: BootOptions, kept: Yielded | null): Promise<Session> {
  const dev = o.device;
  const bootId = randomBytes(8).toString('hex');
  const logPath = o.logPath ?? defaultLogPath(o.lab, dev.name, bootId);
  const watch = new BootWatch(dev.boot, { logPath, timeoutMs: o.timeoutMs ?? dev.timeouts.boot, bootId, device: dev.name });
  if (o.onLine) watch.onLine(o.onLine);
  if (kept) watch.annotate(`console taken from orbital-lab logger (its output while no job held the port: ${kept.log})`);
  const hub = await ConsoleHub.serve(o.lab.stateDir, dev.name, `console of ${dev.name}, boot ${bootId}`);
  const byteFns: Array<(b: Uint8Array) => void> = [];
  const onBytes = (b: Uint8Array) => { watch.feed(b); hub.publish(b); for (const f of byteFns) f(b); };
  let wentAway!: (f: NonNullable<BootOutcome['failure']>) => void;
  const gone = new Promise<NonNullable<BootOutcome['failure']>>((r) => { wentAway = r; });
  /** The device went away: the boot fails (if it has not ended yet), and the session is told. */
  const goneNow = (f: NonNullable<BootOutcome['failure']>) => { watch.fail(f); wentAway(f); };

  if (dev.kind === 'qemu') {
    const q = dev.qemu!;
    const useVirtio = dev.console.chardev === 'virtio';
    const st = readVm(o.lab.stateDir, dev.name);
    if (st.state === 'stale') clearVm(o.lab.stateDir, dev.name, st.rec); // its QEMU is gone: the device is off
    if (st.state === 'on') {
      try { return await attachRunning(o, st.rec, { bootId, watch, hub, onBytes, byteFns, gone, goneNow }); } catch (e) { hub.close(); watch.close(); throw e; }
    }
    const drive = q.kernel ? undefined : dev.flashTarget;
    if (!q.kernel && !drive) { hub.close(); throw new LabError('bad-input', 'bad-usage', `${dev.name}: a qemu device needs qemu.kernel or a flash target to boot from`); }
    const dir = mkdtempSync(join(tmpdir(), 'orbq-'));
    const linkPath = useVirtio || dev.link.on === 'virtio' ? join(dir, 'virtio.sock') : undefined;
    let m: QemuMachine;
    let cons: StreamTransport;
    try {
      m = await QemuMachine.launch({ paused: true, kernel: q.kernel, append: o.append, drive, memoryMib: q.memory, serial: true, virtio: false, dir, extraArgs: [...(linkPath ? servedVirtioArgs(linkPath) : []), ...q.args], qemuBinary: q.binary });
    } catch (e) {
      hub.close(); watch.close(); rmSync(dir, { recursive: true, force: true });
      throw new LabError('io', 'power-failed', `${dev.name}: QEMU did not start: ${(e as Error).message}`, 'lab');
    }
    void m.exited.then(() => rmSync(dir, { recursive: true, force: true }));
    try {
      cons = useVirtio ? await attachChardev(m.qmp, linkPath!, 'vc0') : m.serial!;
    } catch (e) {
      await m.kill(); hub.close(); watch.close();
      throw new LabError('io', 'power-failed', `${dev.name}: ${(e as Error).message}`, 'lab');
    }
    cons.attach({
      data: onBytes,
      close: () => { /* QEMU's exit is reported below, with its status */ },
    });
    // The guest's exit: a crash exit or a triple fault is the OS's failure, a killed QEMU the lab's.
    void m.exited.then((ex) => {
      setTimeout(() => {
        const guestCrash = ex.debugExit !== undefined && ex.debugExit !== 0x10;
        const os = guestCrash || (ex.code === 0 && !ex.signal);
        goneNow({ blame: os ? 'os' : 'lab', code: os ? 'device-exit' : 'console-gone', message: `${dev.name}: ${ex.summary}` });
      }, 300);
    });
    watch.powerOn();
    try { await m.cont(); } catch (e) { watch.fail({ blame: 'lab', code: 'power-failed', message: `QEMU cont failed: ${(e as Error).message}` }); }
    return {
      device: dev, bootId, watch, machine: m, hub, linkPath, console: cons, gone,
      write: (b) => { cons.write(b); },
      onBytes: (fn) => { byteFns.push(fn); },
      reset: async () => {
        // This QEMU runs with -no-reboot (a triple fault ends a boot). A reset asked for from the
        // console makes it reboot from then on, as a board (and a QEMU that `power on` started)
        // does: SeaBIOS itself resets the machine once more on the way up, so the action cannot be
        // put back when the reset is done.
        await m.qmp.execute('set-action', { reboot: 'reset' });
        await m.qmp.execute('system_reset');
        watch.annotate('reset (QMP system_reset) from the console');
        return 'QMP system_reset';
      },
      sendBreak: noBreak(dev),
      stop: async () => { await m.powerOff().catch(() => m.kill()); watch.close(); hub.close(); },
    };
  }

  // A board on a serial port.
  let path: string;
  try { path = findConsolePort(dev); } catch (e) { hub.close(); watch.close(); throw e; }
  const sc = await openSerial(path, dev.console.baud, dev.name).catch((e) => { hub.close(); watch.close(); throw e; });
  sc.onData(onBytes);
  if (sc.latency && sc.latency.was !== sc.latency.now) watch.annotate(`console ${sc.latency.tty}: USB-serial latency timer lowered from ${sc.latency.was} ms to ${sc.latency.now} ms`);
  else if (sc.latency?.error) watch.annotate(`console ${sc.latency.tty}: USB-serial latency timer stays at ${sc.latency.was} ms (${sc.latency.error}): ${sc.latency.hint}`);
  sc.onClose((away, why) => { if (away) goneNow({ blame: 'lab', code: 'console-gone', message: `${dev.name}: console ${path} went away (${why}) - unplugged or the adapter reset` }); });
  // The power-on edge: drop what the port still holds from before (and let queued reads land
  // first), then mark. Bytes before the mark are an earlier boot's and never count.
  // Attached without a power-on edge (console on a running board), the board's own timestamps
  // count from its boot long ago, not from the mark: they cannot spot stale lines, and a line
  // dropped as stale would hide its fatal pattern.
  const mark = async () => { await new Promise((r) => setTimeout(r, 20)); await sc.drop(); if (o.noPower) watch.powerOn(performance.now(), `attached to the running ${dev.name} (no power switched)`, { stamps: false }); else watch.powerOn(); };
  try {
    if (o.noPower) await mark();
    else if (dev.power.kind === 'command') {
      await power(dev, 'off', { signal: o.signal });
      await power(dev, 'on', { signal: o.signal, beforeOn: mark });
    } else await power(dev, 'on', { signal: o.signal, beforeOn: mark });
  } catch (e) {
    const le = e instanceof LabError ? e : new LabError('io', 'power-failed', String(e), 'lab');
    watch.powerOn();
    watch.fail({ blame: le.blame === 'usage' ? 'lab' : 'lab', code: 'power-failed', message: le.message });
  }
  return {
    device: dev, bootId, watch, hub, gone, ...(sc.latency ? { latency: sc.latency } : {}),
    write: (b) => sc.write(b),
    onBytes: (fn) => { byteFns.push(fn); },
    reset: async () => {
      if (dev.power.kind !== 'command') throw new LabError('bad-input', 'bad-usage', `${dev.name}'s power is ${dev.power.kind}: press its reset button, or give it power commands in the lab file`);
      const r = await power(dev, 'cycle', { signal: o.signal });
      watch.annotate(`power cycle from the console (${r.how})`);
      return r.how;
    },
    sendBreak: async () => { await sc.sendBreak(); watch.annotate('BREAK (250 ms) sent from the console'); },
    stop: async () => { watch.close(); hub.close(); await sc.close(); },
  };
}

/** A qemu device's console is a raw socket to QEMU's serial chardev: there is no line to hold at space. */
const noBreak = (dev: Device) => (): Promise<void> => Promise.reject(new LabError('bad-input', 'bad-usage', `${dev.name} is a qemu device: its console is a socket to QEMU's serial port, which carries no BREAK (for the guest's SysRq, use its own keys)`));

/** Attaches a session to a QEMU that `power on` started; resets it first unless running: 'join'. */
async function attachRunning(o: BootOptions, rec: VmRecord, s: { bootId: string; watch: BootWatch; hub: ConsoleHub; onBytes: (b: Uint8Array) => void; byteFns: Array<(b: Uint8Array) => void>; gone: Session['gone']; goneNow: (f: NonNullable<BootOutcome['failure']>) => void }): Promise<Session> {
  const dev = o.device;
  const { watch } = s;
  const reset = (o.running ?? 'reset') === 'reset';
  if (o.append) throw new LabError('bad-input', 'bad-usage', `${dev.name} is powered on (QEMU pid ${rec.pid}, since ${rec.since}) with its own kernel command line; --append needs a fresh start: orbital-lab power ${dev.name} off first`);
  const gone = () => (pidAlive(rec.pid) ? null : `${dev.name}'s QEMU (pid ${rec.pid}) is gone`);
  let qmp;
  try { qmp = await openQmp(rec.qmp, 5000, gone); } catch (e) {
    throw new LabError('io', 'power-failed', `${dev.name} is powered on (QEMU pid ${rec.pid}) but its QMP socket does not answer: ${(e as Error).message}; try orbital-lab power ${dev.name} off`, 'lab');
  }
  const useVirtio = dev.console.chardev === 'virtio';
  const label = useVirtio ? 'vc0' : 'ser0';
  let cons: StreamTransport | null;
  try {
    if (useVirtio && !rec.virtio) throw new LabError('bad-input', 'bad-usage', `${dev.name} was powered on without a virtio port; power it off and on again`);
    cons = await attachChardev(qmp, useVirtio ? rec.virtio! : rec.serial, label);
  } catch (e) { qmp.close(); throw e instanceof LabError ? e : new LabError('io', 'power-failed', `${dev.name}: ${(e as Error).message}`, 'lab'); }
  let stopping = false;
  let shutdown: { guest: boolean; reason: string } | null = null;
  qmp.onEvent((e) => { if (e.event === 'SHUTDOWN') { const d = e.data as { guest?: boolean; reason?: string } | undefined; shutdown = { guest: !!d?.guest, reason: d?.reason ?? 'unknown' }; } });
  const attached: NonNullable<Session['attached']> = { pid: rec.pid, since: rec.since, consoleLog: rec.consoleLog, reset };
  const listen = (c: StreamTransport) => c.attach({
    data: s.onBytes,
    // QEMU closes the console when it exits. How it ended comes from the exit status its shell
    // recorded (vm.ts) and QMP's SHUTDOWN event: a guest that crashed out through isa-debug-exit,
    // or shut the machine down, is the OS's; a QEMU killed under us or failing is the lab's.
    // A connection the boot itself let go of (the old boot's, below) is not the console's end.
    close: () => {
      if (stopping || c !== cons) return;
      void (async () => {
        // QEMU closes the console as it dies: give a loaded machine a moment to finish the exit.
        for (let i = 0; i < 40 && pidAlive(rec.pid); i++) await sleep(50);
        const ex = pidAlive(rec.pid) ? null : await waitExit(rec);
        await sleep(300); // the last lines (a crash report) land first
        const sd = shutdown as { guest: boolean; reason: string } | null;
        let os: boolean;
        let how: string;
        if (ex) {
          attached.exit = ex;
          const guestCrash = ex.debugExit !== undefined && ex.debugExit !== 0x10;
          os = guestCrash || (ex.code === 0 && (sd ? sd.guest : true));
          how = `exited: ${ex.summary}${sd ? ` (QMP SHUTDOWN: ${sd.reason})` : ''}`;
        } else {
          os = !!sd?.guest;
          how = `went away (${sd ? `QMP SHUTDOWN: ${sd.reason}` : 'no SHUTDOWN event'}; its exit status is unknown: ${pidAlive(rec.pid) ? 'QEMU still runs but closed the console' : 'no exit status was recorded (powered on by an older orbital-lab?)'})`;
        }
        s.goneNow({ blame: os ? 'os' : 'lab', code: os ? 'device-exit' : 'console-gone', message: `${dev.name}: its QEMU (pid ${rec.pid}, powered on ${rec.since}) ${how}` });
      })();
    },
  });
  listen(cons);
  const what = `attached to the running QEMU (pid ${rec.pid}, powered on ${rec.since}; its whole console is in ${rec.consoleLog})`;
  try {
    if (reset) {
      // The boundary between the old boot and this one is a connection, not a delay: pause the
      // CPU (no new output), let go of the connection that carried the old boot - bytes still on
      // their way in it, in the kernel's socket buffer or in any relay between QEMU and us, go
      // with it -, wait until QEMU has seen it closed, reset the machine while it is paused and
      // disconnected (the UART's FIFO is cleared; whatever QEMU still flushes goes nowhere), then
      // connect again and wait until QEMU has accepted that connection. Only then mark and run:
      // every byte on the new connection was written after the reset, and the log starts with the
      // reset's first byte, however late the old boot's bytes would have arrived.
      await qmp.execute('stop');
      const old = cons;
      cons = null; // the old connection's close is not the console's end
      old.close();
      await chardevDisconnected(qmp, label, dev.name);
      const resetSeen = new Promise<void>((res) => { const off = qmp.onEvent((e) => { if (e.event === 'RESET') { off(); res(); } }); setTimeout(res, 5000); });
      await qmp.execute('system_reset');
      await resetSeen;
      cons = await attachChardev(qmp, useVirtio ? rec.virtio! : rec.serial, label);
      listen(cons);
      watch.powerOn(performance.now(), `reset (${what})`, { stamps: false });
      await qmp.execute('cont');
    } else watch.powerOn(performance.now(), what, { stamps: false });
  } catch (e) {
    watch.fail({ blame: 'lab', code: 'power-failed', message: `${dev.name}: QMP ${reset ? 'reset' : 'attach'} failed: ${(e as Error).message}` });
    // A failed reset can leave the CPU paused: let it run again rather than leave the device hung.
    if (reset) await qmp.execute('cont').catch(() => { /* QEMU gone */ });
  }
  return {
    device: dev, bootId: s.bootId, watch, hub: s.hub, gone: s.gone, linkPath: rec.virtio ?? undefined, console: cons ?? undefined,
    attached,
    write: (b) => { cons?.write(b); },
    onBytes: (fn) => { s.byteFns.push(fn); },
    reset: async () => { await qmp.execute('system_reset'); watch.annotate('reset (QMP system_reset) from the console'); return 'QMP system_reset'; },
    sendBreak: noBreak(dev),
    stop: async () => { stopping = true; cons?.close(); qmp.close(); watch.close(); s.hub.close(); },
  };
}

/** Waits until QEMU has seen the chardev's client go (query-chardev says "disconnected:"). */
async function chardevDisconnected(qmp: Qmp, label: string, device: string, timeoutMs = 5000): Promise<void> {
  const t0 = Date.now();
  for (;;) {
    const list = (await qmp.execute('query-chardev')) as Array<{ label: string; filename: string }>;
    if (list.find((x) => x.label === label)?.filename.startsWith('disconnected:')) return;
    if (Date.now() - t0 > timeoutMs) throw new LabError('timeout', 'power-failed', `${device}: QEMU still shows a client on its ${label} chardev ${timeoutMs} ms after the lab let go of it (is another program connected to the console socket?)`, 'lab');
    await sleep(10);
  }
}

/** What a flash before a boot (`boot --image`, `run --image`) needs. */
export type FlashFirst = Pick<BootOptions, 'lab' | 'device' | 'bmap' | 'trust' | 'part' | 'force' | 'signal' | 'onFlashProgress'> & { image: string };

/**
 * Flashes the device's image before it is booted: the lab file's trusted keys and the extra ones.
 * A flash that failed is the lab's failure (or the person's, for a bad image path or bmap), never
 * the OS's: it throws a LabError blamed so, its message starting `flash before WHAT failed:`.
 */
export async function flashFirst(o: FlashFirst, what: string): Promise<FlashResult> {
  try {
    return await flash({ device: o.device, stateDir: o.lab.stateDir, source: o.image, bmap: o.bmap, trust: [...o.lab.trust.map((t) => t.key), ...(o.trust ?? [])], part: o.part, force: o.force, signal: o.signal, onProgress: o.onFlashProgress });
  } catch (e) {
    const le = e instanceof LabError ? e : new LabError('io', 'io-error', String(e), 'lab');
    throw new LabError(le.kind, le.code, `flash before ${what} failed: ${le.message}`, le.blame === 'usage' ? 'usage' : 'lab', le.detail);
  }
}

/** Boots a device (optionally flashing it first) and reports how far it got. */
export async function boot(o: BootOptions): Promise<BootResult> {
  const dev = o.device;
  const flashed = o.image ? await flashFirst({ ...o, image: o.image }, 'boot') : undefined;
  const retried: NonNullable<BootResult['retried']> = [];
  for (let attempt = 0; ; attempt++) {
    const s = await powerOnSession(o);
    const onAbort = () => s.watch.fail({ blame: 'lab', code: 'cancelled', message: 'boot cancelled' });
    o.signal?.addEventListener('abort', onAbort, { once: true });
    const outcome = await s.watch.done;
    o.signal?.removeEventListener('abort', onAbort);
    // Only the lab's own trouble is worth another try: what the OS did is the answer.
    const again = !outcome.ok && attempt < (o.retries ?? 0) && outcome.failure!.blame === 'lab' && outcome.failure!.code !== 'cancelled' && !o.signal?.aborted;
    let qemuExit: QemuExit | undefined;
    if (!o.keep || again) {
      await s.stop();
      if (s.machine) qemuExit = await s.machine.exited;
    }
    if (again) { retried.push({ bootId: s.bootId, log: s.watch.logPath!, failure: outcome.failure!, stage: outcome.stage }); continue; }
    return { ...outcome, device: dev.name, bootId: s.bootId, log: s.watch.logPath!, powerOnAt: s.watch.powerOnIso ?? '', flash: flashed, qemuExit, ...(s.attached ? { attached: s.attached } : {}), ...(s.latency ? { latencyTimer: s.latency } : {}), ...(retried.length ? { retried } : {}) };
  }
}
