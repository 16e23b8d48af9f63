// QMP power for qemu devices: `orbital-lab power DEVICE on` starts the device's QEMU as a
// lab-owned background process that outlives the command (a board stays on after its relay
// clicked, too); `off` asks QEMU to power down, `cycle` resets it. Later commands (boot, console,
// capture, power off, devices) find it through a record in the state dir.
//
// A powered-on QEMU serves its chardevs itself (QMP, COM1 and the virtio link as unix sockets,
// server=on,wait=off), so any lab command can attach, leave and attach again. COM1 also has a
// chardev logfile: QEMU writes every console byte there from the first one, whether or not a lab
// command is attached. It starts paused (-S); the lab connects QMP, writes the record, then `cont`.
//
// It runs as the child of a small shell that waits for it and records its exit status in a file
// (a later command is not QEMU's parent and could not learn how it ended otherwise).
// It runs detached (its own session, stderr to a file), with neither of the orphan guards the
// launcher puts on a command's QEMU (pdeathsig, watchdog): outliving the command is the point. A
// QEMU started by boot/console/capture still goes through kernel-link/node/qemu.ts with both guards.
//
// The record holds the pid and the pid's start time (as a lock does): a QEMU that died, or a pid
// now used by another process, makes the record stale, and `devices` says so.
import { spawn } from 'node:child_process';
import { accessSync, closeSync, constants as fsConstants, mkdirSync, mkdtempSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { constants as osConstants, hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Qmp, kvmUsable } from '../kernel-link/node/qemu.ts';
import { connectTransport, type StreamTransport } from '../kernel-link/node/socket.ts';
import { LabError } from './errors.ts';
import { defaultOwner, pidStartTime } from './lock.ts';
import type { Device, Lab } from './labfile.ts';

export interface VmRecord {
  device: string;
  pid: number;
  /** Start time of the pid (/proc/PID/stat field 22): detects pid reuse. */
  pidStart: number | null;
  host: string;
  owner: string;
  since: string;
  /** Where QEMU serves QMP, COM1 and (when the device has one) the virtio link. */
  qmp: string;
  serial: string;
  virtio: string | null;
  /** Every console byte since power-on, written by QEMU (the chardev logfile). */
  consoleLog: string;
  /** QEMU's stderr. */
  stderrLog: string;
  /**
   * Where the shell that runs QEMU writes QEMU's exit status once it ends (absent in records of
   * an older orbital-lab): a command that attached to this QEMU is not its parent and cannot wait for it.
   */
  exitFile?: string;
  /** The directory holding the sockets (removed at power off). */
  dir: string;
  args: string[];
}

export type VmState =
  | { state: 'off' }
  | { state: 'on'; rec: VmRecord }
  | { state: 'stale'; rec: VmRecord | null; why: string; exit?: VmExit | null };

/** How a powered-on QEMU ended, from the exit status its shell recorded (QemuExit's reading of it). */
export interface VmExit { code: number | null; signal: string | null; debugExit?: number; summary: string }

/** Reads a shell's `$?` for QEMU: 128+N is signal N; an odd status is the guest's isa-debug-exit value. */
export function describeExit(status: number): VmExit {
  if (status > 128) {
    const n = status - 128;
    const name = Object.entries(osConstants.signals).find(([, v]) => v === n)?.[0] ?? `signal ${n}`;
    return { code: null, signal: name, summary: `QEMU killed by ${name}` };
  }
  if (status % 2 === 1 && status !== 1) {
    const v = (status - 1) / 2;
    return { code: status, signal: null, debugExit: v, summary: `guest exited through isa-debug-exit with value ${v === 0x10 ? '0x10 (ok)' : `0x${v.toString(16)}`} (status ${status})` };
  }
  return { code: status, signal: null, summary: status === 0 ? 'QEMU exited with status 0 (a power-off, a guest shutdown or QMP quit)' : `QEMU exited with status ${status} (an error of QEMU's; see its stderr log)` };
}

/** The recorded exit of a powered-on QEMU: undefined while none is recorded yet, null when the record has no exit file (unknown). */
export function readExit(rec: VmRecord): VmExit | null | undefined {
  if (!rec.exitFile) return null;
  let text: string;
  try { text = readFileSync(rec.exitFile, 'utf8'); } catch { return undefined; }
  const n = Number(text.trim());
  return Number.isInteger(n) && n >= 0 ? describeExit(n) : null;
}

/** Waits up to `ms` for the exit status of a QEMU that is gone (its shell writes it right after). */
export async function waitExit(rec: VmRecord, ms = 2000): Promise<VmExit | null> {
  const t0 = Date.now();
  for (;;) {
    const e = readExit(rec);
    if (e !== undefined) return e;
    if (Date.now() - t0 > ms) return null;
    await sleep(25);
  }
}

export function recordPath(stateDir: string, device: string): string {
  return join(stateDir, 'power', `${device}.json`);
}

/** Alive and not a zombie (a killed QEMU whose parent is gone may never be reaped). */
export function pidAlive(pid: number): boolean {
  try { process.kill(pid, 0); } catch (e) { if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false; }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch { return true; }
}

export function readVm(stateDir: string, device: string): VmState {
  let text: string;
  try { text = readFileSync(recordPath(stateDir, device), 'utf8'); } catch { return { state: 'off' }; }
  let rec: VmRecord | null = null;
  try { rec = JSON.parse(text) as VmRecord; } catch { /* torn or foreign */ }
  if (!rec || typeof rec.pid !== 'number') return { state: 'stale', rec: null, why: 'unreadable power record' };
  if (rec.host !== hostname()) return { state: 'on', rec };
  if (!pidAlive(rec.pid)) return { state: 'stale', rec, why: `QEMU (pid ${rec.pid}) is gone`, exit: readExit(rec) ?? null };
  const start = pidStartTime(rec.pid);
  if (rec.pidStart !== null && start !== null && start !== rec.pidStart) return { state: 'stale', rec, why: `pid ${rec.pid} now belongs to another process`, exit: readExit(rec) ?? null };
  return { state: 'on', rec };
}

/** Removes the record and the socket directory (the console log stays). */
export function clearVm(stateDir: string, device: string, rec: VmRecord | null): void {
  rmSync(recordPath(stateDir, device), { force: true });
  if (rec?.dir) rmSync(rec.dir, { recursive: true, force: true });
}

/** Unix socket paths are limited to ~107 bytes: a long state dir gets its sockets under /tmp. */
function socketDir(stateDir: string, device: string): string {
  const d = join(stateDir, 'power', device);
  if (join(d, 'serial.sock').length < 100) { rmSync(d, { recursive: true, force: true }); mkdirSync(d, { recursive: true }); return d; }
  return mkdtempSync(join(tmpdir(), `orbital-vm-${createHash('sha1').update(d).digest('hex').slice(0, 8)}-`));
}

/** A QEMU option value with commas escaped. */
const esc = (s: string) => s.replace(/,/g, ',,');

/** A virtio-serial link port whose chardev QEMU serves on `path` (same port as the launcher's). */
export function servedVirtioArgs(path: string): string[] {
  return ['-device', 'virtio-serial-pci,id=vser0,disable-modern=on', '-chardev', `socket,id=vc0,path=${esc(path)},server=on,wait=off`, '-device', 'virtserialport,chardev=vc0,bus=vser0.0,nr=1,name=org.orbital.link'];
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** An executable on PATH (or a path), resolved as the shell would. */
function findBinary(name: string): string | null {
  const dirs = name.includes('/') ? [''] : (process.env.PATH ?? '/usr/bin:/bin').split(':');
  for (const d of dirs) {
    const p = d ? join(d, name) : name;
    try { accessSync(p, fsConstants.X_OK); return p; } catch { /* next */ }
  }
  return null;
}

/** Connects to a socket QEMU serves, retrying while QEMU is still creating it. */
async function connectServed(path: string, timeoutMs: number, gone: () => string | null): Promise<StreamTransport> {
  const t0 = Date.now();
  for (;;) {
    try { return await connectTransport({ path }, Math.max(500, timeoutMs)); } catch (e) {
      const why = gone();
      if (why) throw new LabError('io', 'power-failed', why, 'lab');
      if (Date.now() - t0 > timeoutMs) throw new LabError('timeout', 'power-failed', `QEMU did not open ${path} within ${timeoutMs} ms: ${(e as Error).message}`, 'lab');
      await sleep(25);
    }
  }
}

export async function openQmp(path: string, timeoutMs = 5000, gone: () => string | null = () => null): Promise<Qmp> {
  const q = new Qmp(await connectServed(path, timeoutMs, gone));
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([q.init(), new Promise((_, rej) => { timer = setTimeout(() => rej(new LabError('timeout', 'power-failed', `QMP on ${path} did not greet within ${timeoutMs} ms (is another client connected?)`, 'lab')), timeoutMs); })]);
  } catch (e) { q.close(); throw e; } finally { clearTimeout(timer); }
  return q;
}

/**
 * Connects to a chardev QEMU serves and waits until QEMU has accepted the connection (query-chardev
 * no longer says "disconnected:"), so no byte written after this resolves is dropped.
 */
export async function attachChardev(qmp: Qmp, path: string, label: string, timeoutMs = 5000): Promise<StreamTransport> {
  const t = await connectServed(path, timeoutMs, () => null);
  const t0 = Date.now();
  for (;;) {
    const list = (await qmp.execute('query-chardev')) as Array<{ label: string; filename: string }>;
    const c = list.find((x) => x.label === label);
    if (c && !c.filename.startsWith('disconnected:')) return t;
    if (Date.now() - t0 > timeoutMs) { t.close(); throw new LabError('timeout', 'power-failed', `QEMU did not accept the connection to its ${label} chardev (${path}) within ${timeoutMs} ms`, 'lab'); }
    await sleep(10);
  }
}

export interface PowerOnResult { device: string; pid: number; since: string; consoleLog: string; already: boolean; tookOver?: string }

/** `power on`: starts the device's QEMU detached, paused; records it; then lets the CPU run. */
export async function vmPowerOn(lab: Lab, dev: Device, o: { append?: string } = {}): Promise<PowerOnResult> {
  const q = dev.qemu!;
  const st = readVm(lab.stateDir, dev.name);
  if (st.state === 'on') return { device: dev.name, pid: st.rec.pid, since: st.rec.since, consoleLog: st.rec.consoleLog, already: true };
  let tookOver: string | undefined;
  if (st.state === 'stale') { clearVm(lab.stateDir, dev.name, st.rec); tookOver = st.why; }
  const drive = q.kernel ? undefined : dev.flashTarget;
  if (!q.kernel && !drive) throw new LabError('bad-input', 'bad-usage', `${dev.name}: a qemu device needs qemu.kernel or a flash target to boot from`);
  // A missing QEMU is the person's setup (exit 2), any other spawn failure the lab's.
  const bin = findBinary(q.binary);
  if (!bin) throw new LabError('bad-input', 'missing-tool', `${dev.name}: cannot start ${q.binary}: not found (install the Debian package qemu-system-x86)`, 'usage');

  const dir = socketDir(lab.stateDir, dev.name);
  const id = randomBytes(4).toString('hex');
  const logDir = join(lab.stateDir, 'logs', dev.name);
  mkdirSync(logDir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const consoleLog = join(logDir, `${stamp}-power-${id}.console`);
  const stderrLog = join(logDir, `${stamp}-power-${id}.qemu-stderr`);
  const qmpPath = join(dir, 'qmp.sock');
  const serialPath = join(dir, 'serial.sock');
  const virtioPath = dev.link.on === 'virtio' || dev.console.chardev === 'virtio' ? join(dir, 'virtio.sock') : null;
  const accel = kvmUsable() ? 'kvm' : 'tcg';
  // The launcher's machine (kernel-link/node/qemu.ts), except: QEMU serves the chardevs, COM1 has
  // a logfile, and no -no-reboot (a reset reboots, as a board does; `power cycle` relies on it).
  const args = ['-nographic', '-nodefaults', '-no-user-config', '-accel', accel, '-m', String(q.memory), ...(accel === 'kvm' ? ['-cpu', 'host'] : []),
    '-chardev', `socket,id=qmp0,path=${esc(qmpPath)},server=on,wait=off`, '-mon', 'chardev=qmp0,mode=control',
    '-chardev', `socket,id=ser0,path=${esc(serialPath)},server=on,wait=off,logfile=${esc(consoleLog)}`, '-serial', 'chardev:ser0',
    ...(virtioPath ? servedVirtioArgs(virtioPath) : []),
    '-device', 'isa-debug-exit,iobase=0xf4,iosize=0x04', '-S',
    ...(q.kernel ? ['-kernel', q.kernel] : []), ...(o.append ? ['-append', o.append] : []),
    ...(drive ? ['-drive', `file=${esc(drive)},format=raw,if=ide`] : []), ...q.args];

  // QEMU runs as the child of a small shell that waits for it and writes its exit status to
  // exitFile: the commands that attach later are not QEMU's parent and could not learn it otherwise.
  const exitFile = join(logDir, `${stamp}-power-${id}.exit`);
  const script = 'f=$1; shift; "$@" </dev/null >/dev/null & q=$!; echo "$q"; exec >/dev/null; wait "$q"; s=$?; echo "$s" >"$f.tmp" && mv "$f.tmp" "$f"';
  const errFd = openSync(stderrLog, 'a');
  let child;
  try {
    child = spawn('sh', ['-c', script, 'sh', exitFile, bin, ...args], { detached: true, stdio: ['ignore', 'pipe', errFd] });
  } finally { closeSync(errFd); }
  const spawnError = new Promise<string>((res) => child.once('error', (e) => res(`cannot start ${q.binary}: ${e.message}`)));
  let exitWhy: string | null = null;
  child.once('exit', () => {
    let err = '';
    try { err = readFileSync(stderrLog, 'utf8').trim().split('\n').slice(-3).join(' | '); } catch { /* none */ }
    let how = 'its shell ended';
    try { how = describeExit(Number(readFileSync(exitFile, 'utf8').trim())).summary; } catch { /* not written */ }
    exitWhy = `QEMU exited at power on (${how})${err ? `: ${err}` : ''}`;
  });
  void spawnError.then((w) => { exitWhy ??= w; });
  // The shell's first line is QEMU's pid.
  const pid = await new Promise<number | null>((res) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => { out += d; const nl = out.indexOf('\n'); if (nl >= 0) res(Number(out.slice(0, nl)) || null); });
    child.stdout!.once('close', () => res(null));
    void spawnError.then(() => res(null));
  });
  child.stdout!.destroy();
  child.unref();
  if (!pid) {
    rmSync(dir, { recursive: true, force: true });
    throw new LabError('io', 'power-failed', `${dev.name}: ${exitWhy ?? (await Promise.race([spawnError, sleep(100).then(() => 'QEMU did not start')]))}`, 'lab');
  }
  const rec: VmRecord = { device: dev.name, pid, pidStart: pidStartTime(pid), host: hostname(), owner: defaultOwner(), since: new Date().toISOString(), qmp: qmpPath, serial: serialPath, virtio: virtioPath, consoleLog, stderrLog, exitFile, dir, args };
  // Recorded before anything can fail, so a `power on` killed half-way leaves a QEMU that `power off` finds.
  writeRecord(lab.stateDir, rec);
  let qmp: Qmp | null = null;
  try {
    qmp = await openQmp(qmpPath, 10_000, () => exitWhy);
    await qmp.execute('cont');
  } catch (e) {
    qmp?.close();
    try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    clearVm(lab.stateDir, dev.name, rec);
    const le = e instanceof LabError ? e : new LabError('io', 'power-failed', (e as Error).message, 'lab');
    throw new LabError(le.kind, 'power-failed', `${dev.name}: QEMU did not start: ${exitWhy ?? le.message}`, 'lab');
  }
  qmp.close();
  return { device: dev.name, pid, since: rec.since, consoleLog, already: false, tookOver };
}

function writeRecord(stateDir: string, rec: VmRecord): void {
  const p = recordPath(stateDir, rec.device);
  mkdirSync(join(stateDir, 'power'), { recursive: true });
  writeFileSync(`${p}.tmp`, JSON.stringify(rec, null, 1) + '\n');
  renameSync(`${p}.tmp`, p);
}

async function waitGone(pid: number, ms: number): Promise<boolean> {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) { if (!pidAlive(pid)) return true; await sleep(25); }
  return !pidAlive(pid);
}

export interface PowerOffResult { device: string; pid?: number; how: 'acpi' | 'quit' | 'kill' | 'already-off' | 'stale-record'; detail?: string }

/**
 * `power off`: the ACPI power button (system_powerdown) and up to timeouts.power for the guest to
 * shut down, then QMP quit, then SIGKILL as a last resort. The record and sockets are removed.
 */
export async function vmPowerOff(lab: Lab, dev: Device): Promise<PowerOffResult> {
  const st = readVm(lab.stateDir, dev.name);
  if (st.state === 'off') return { device: dev.name, how: 'already-off' };
  if (st.state === 'stale') { clearVm(lab.stateDir, dev.name, st.rec); return { device: dev.name, pid: st.rec?.pid, how: 'stale-record', detail: st.why }; }
  const rec = st.rec;
  if (rec.host !== hostname()) throw new LabError('refused', 'power-failed', `${dev.name}'s QEMU runs on ${rec.host} (pid ${rec.pid}); power it off there`, 'lab');
  let how: PowerOffResult['how'] = 'kill';
  let qmp: Qmp | null = null;
  try { qmp = await openQmp(rec.qmp, 3000, () => (pidAlive(rec.pid) ? null : 'QEMU is gone')); } catch { /* fall through to SIGKILL */ }
  if (qmp) {
    await qmp.execute('system_powerdown', undefined, 3000).catch(() => { /* gone while asked */ });
    if (await waitGone(rec.pid, dev.timeouts.power)) how = 'acpi';
    else {
      await qmp.execute('quit', undefined, 3000).catch(() => { /* it may close before answering */ });
      if (await waitGone(rec.pid, 3000)) how = 'quit';
    }
    qmp.close();
  }
  if (how === 'kill' && pidAlive(rec.pid) && pidStartTime(rec.pid) === rec.pidStart) {
    try { process.kill(rec.pid, 'SIGKILL'); } catch { /* gone */ }
    if (!(await waitGone(rec.pid, 3000))) throw new LabError('io', 'power-failed', `${dev.name}: QEMU (pid ${rec.pid}) survived SIGKILL`, 'lab');
  }
  clearVm(lab.stateDir, dev.name, rec);
  return { device: dev.name, pid: rec.pid, how };
}

export interface CycleResult { device: string; pid: number; how: 'reset' | 'on'; since?: string; consoleLog: string }

/** `power cycle`: a running QEMU gets system_reset (the reset button); one that is off is switched on. */
export async function vmPowerCycle(lab: Lab, dev: Device): Promise<CycleResult> {
  const st = readVm(lab.stateDir, dev.name);
  if (st.state !== 'on') {
    const r = await vmPowerOn(lab, dev);
    return { device: dev.name, pid: r.pid, how: 'on', since: r.since, consoleLog: r.consoleLog };
  }
  const qmp = await openQmp(st.rec.qmp, 3000, () => (pidAlive(st.rec.pid) ? null : `QEMU (pid ${st.rec.pid}) is gone`));
  try { await qmp.execute('system_reset'); } finally { qmp.close(); }
  return { device: dev.name, pid: st.rec.pid, how: 'reset', consoleLog: st.rec.consoleLog };
}
