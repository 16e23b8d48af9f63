// The device inventory as it is right now: each device from the lab file with its lock holder,
// whether its console and flash target can be found, and how its last flash ended.
import { readKeeper, type KeeperRecord } from './console/keeper.ts';
import { lowerLatency, type LatencyTimer } from './console/latency.ts';
import { existsSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Device, Lab } from './labfile.ts';
import { readLock, type LockInfo } from './lock.ts';
import { readJournal, type JournalEntry } from './flash/journal.ts';
import { LabError } from './errors.ts';
import { readVm, type VmExit } from './vm.ts';
import { isOrbimg, openOrbimg } from './flash/orbimg.ts';

export interface DeviceStatus {
  name: string;
  kind: string;
  tags: string[];
  state: 'free' | 'in-use' | 'stale-lock';
  holder?: LockInfo;
  staleWhy?: string;
  console: { spec: string; found: string | null; why?: string; latencyTimer?: LatencyTimer };
  flashTarget: { path: string; exists: boolean } | null;
  lastFlash: JournalEntry | null;
  /**
   * What the last finished flash put on the target, from the journal (read only): its source and
   * BLAKE3, and for a signed .orbimg still at that path whose part has that BLAKE3 (checked against
   * the lab file's trust:), the image's name, version, id, key and part. `signedWhy` says why it is
   * not named (file gone or changed, no trusted key).
   */
  image?: { source: string; blake3: string | null; signed?: { id: string; name: string; version: string; key: string; part: string }; signedWhy?: string };
  /** A qemu device with QMP power: whether `power on` left its QEMU running (stale: the record's QEMU died, or its pid was reused). */
  /** A serial-board whose console `orbital-lab logger` keeps while no job holds it. */
  logger?: KeeperRecord;
  power?: { state: 'on' | 'off' | 'stale'; pid?: number; since?: string; owner?: string; consoleLog?: string; why?: string; exit?: VmExit | null };
}

export function consoleSpecText(d: Device): string {
  if (d.kind === 'qemu') return `qemu ${d.console.chardev}`;
  const c = d.console;
  if (!c.port && !c.byId && !c.usbSerial && !c.usbPath) return 'none';
  return c.port ?? (c.byId ? `by-id ${c.byId}` : c.usbSerial ? `usb-serial ${c.usbSerial}` : `usb-path ${c.usbPath}`);
}

/**
 * Finds a serial-board's console port now. A by-id or USB-serial-number name is resolved every
 * time, so a board that re-enumerated (ttyUSB0 -> ttyUSB1) is found again.
 */
export function findConsolePort(d: Device, roots: { sys: string; dev: string } = { sys: '/sys', dev: '/dev' }): string {
  const c = d.console;
  if (!c.port && !c.byId && !c.usbSerial && !c.usbPath) throw new LabError('bad-input', 'console-missing', `${d.name} has no console in the lab file`, 'usage');
  if (c.port) {
    if (!existsSync(c.port)) throw new LabError('disconnected', 'console-missing', `${d.name}: console port ${c.port} does not exist (unplugged? check the cable and the lab file)`);
    return c.port;
  }
  if (c.byId) {
    try { return realpathSync(c.byId); } catch {
      throw new LabError('disconnected', 'console-missing', `${d.name}: no serial port ${c.byId} (unplugged? see ls /dev/serial/by-id/)`);
    }
  }
  if (c.usbPath) return findByUsbPath(d.name, c.usbPath, roots);
  const serial = c.usbSerial!;
  // The USB device above the tty's interface holds the serial number.
  const found = ttyDevices(roots).filter(({ ups }) => ups.slice(1).some((up) => {
    try { return readFileSync(join(up, 'serial'), 'utf8').trim() === serial; } catch { return false; }
  })).map((t) => t.tty);
  if (found.length > 1) {
    // A multi-port adapter (FT2232/FT4232): one serial number, several ports. Which one is the board's is not ours to guess.
    const byId = join(roots.dev, 'serial/by-id');
    const names = safeList(byId).filter((n) => { try { return found.includes(realpathSync(join(byId, n)).split('/').pop()!); } catch { return false; } });
    throw new LabError('bad-input', 'console-ambiguous', `${d.name}: USB serial number ${serial} is shared by ${found.length} ports (${found.sort().join(', ')}): a multi-port adapter; name the board's port with console.by-id instead${names.length ? ` - ${names.map((n) => `by-id: ${n}`).join(', ')}` : ' (see ls -l /dev/serial/by-id/)'} (orbital-lab scan lists them)`, 'usage');
  }
  if (found.length === 1) return `/dev/${found[0]}`;
  throw new LabError('disconnected', 'console-missing', `${d.name}: no USB serial port with serial number ${serial} is attached`);
}

/**
 * The serial port plugged in at a USB bus-port path (`1-5.2`) or at one interface of it
 * (`1-4:1.2`): the tty whose device is under that USB device or interface in sysfs.
 */
function findByUsbPath(name: string, at: string, roots: { sys: string; dev: string }): string {
  const found: Array<{ tty: string; iface: string | undefined }> = [];
  for (const { tty, ups } of ttyDevices(roots)) {
    const names = ups.map((x) => x.split('/').pop()!);
    if (names.includes(at)) found.push({ tty, iface: names.find((u) => u.includes(':')) });
  }
  if (found.length > 1) {
    found.sort((a, b) => a.tty.localeCompare(b.tty));
    throw new LabError('bad-input', 'console-ambiguous', `${name}: USB port ${at} has ${found.length} serial ports (${found.map((f) => f.tty).join(', ')}): a multi-port adapter; name the board's by its interface - ${found.map((f) => `usb-path: ${f.iface ?? '?'}`).join(', ')} (orbital-lab scan lists them)`, 'usage');
  }
  if (found.length === 1) return `/dev/${found[0]!.tty}`;
  throw new LabError('disconnected', 'console-missing', `${name}: no serial port is plugged in at USB port ${at} (unplugged, or moved to another socket? orbital-lab scan shows where each adapter is)`);
}

/**
 * Each tty with a device, and the sysfs directories it hangs from: its `device` and the two above
 * (ttyUSB: the usb-serial port, its USB interface, its USB device; ttyACM: the interface, its USB
 * device, the hub). The link is resolved first: path.join would take `device/..` lexically, back
 * to the tty itself.
 */
function ttyDevices(roots: { sys: string }): Array<{ tty: string; ups: string[] }> {
  const cls = join(roots.sys, 'class/tty');
  const out: Array<{ tty: string; ups: string[] }> = [];
  for (const tty of safeList(cls)) {
    let dev: string;
    try { dev = realpathSync(join(cls, tty, 'device')); } catch { continue; }
    out.push({ tty, ups: [dev, dirname(dev), dirname(dirname(dev))] });
  }
  return out;
}

function safeList(dir: string): string[] {
  try { return readdirSync(dir); } catch { return []; }
}

export function deviceStatus(lab: Lab, d: Device): DeviceStatus {
  const lock = readLock(lab.stateDir, d.name);
  let found: string | null = null;
  let why: string | undefined;
  let spec = consoleSpecText(d);
  if (d.kind === 'qemu') found = 'qemu';
  else if (spec === 'none' && d.link.on === 'socket') {
    // No console: the device (the hosted OS) is reached over its link socket alone.
    spec = `link socket ${d.link.path}`;
    if (existsSync(d.link.path)) found = d.link.path;
    else why = `${d.name}: its link socket ${d.link.path} does not exist (is the hosted OS running? orbital-os serve)`;
  } else {
    try { found = findConsolePort(d); } catch (e) { why = (e as Error).message; }
  }
  let power: DeviceStatus['power'];
  if (d.kind === 'qemu' && d.power.kind === 'qemu') {
    const v = readVm(lab.stateDir, d.name);
    power = v.state === 'on' ? { state: 'on', pid: v.rec.pid, since: v.rec.since, owner: v.rec.owner, consoleLog: v.rec.consoleLog }
      : v.state === 'stale' ? { state: 'stale', pid: v.rec?.pid, since: v.rec?.since, why: v.why, exit: v.exit ?? null } : { state: 'off' };
  }
  // A USB-serial adapter's latency timer as it is now (opening the port for a boot lowers it).
  const latency = found && found !== 'qemu' ? lowerLatency(found, { readOnly: true }) : null;
  const journal = readJournal(lab.stateDir, d.name);
  const keeper = d.kind === 'serial-board' ? readKeeper(lab.stateDir, d.name) : null;
  const image = journal?.status === 'ok' ? flashedImage(lab, journal) : undefined;
  return {
    name: d.name,
    kind: d.kind,
    tags: d.tags,
    state: lock.state === 'free' ? 'free' : lock.state === 'held' ? 'in-use' : 'stale-lock',
    holder: lock.state === 'held' ? lock.info : lock.state === 'stale' ? lock.info ?? undefined : undefined,
    staleWhy: lock.state === 'stale' ? lock.why : undefined,
    console: { spec, found, why, ...(latency ? { latencyTimer: latency } : {}) },
    flashTarget: d.flashTarget ? { path: d.flashTarget, exists: existsSync(d.flashTarget) } : null,
    lastFlash: journal,
    ...(image ? { image } : {}),
    ...(power ? { power } : {}),
    ...(keeper ? { logger: keeper } : {}),
  };
}

/**
 * The signed image a finished flash wrote: as its journal recorded it, or (a journal from before
 * that was recorded) when its file is still there and still holds those bytes.
 */
function flashedImage(lab: Lab, j: JournalEntry): NonNullable<DeviceStatus['image']> {
  const out: NonNullable<DeviceStatus['image']> = { source: j.source, blake3: j.blake3 ?? null };
  // Recorded by the flash itself (after the signature and the part's BLAKE3 were checked).
  if (j.signed) return { ...out, signed: j.signed };
  if (!isOrbimg(j.source)) return out;
  const trust = lab.trust.map((t) => t.key);
  if (!trust.length) return { ...out, signedWhy: 'a signed image, but the lab file trusts no key to check it with' };
  try {
    const first = openOrbimg(j.source, trust, undefined);
    for (const name of [first.info.part.name, ...first.info.parts]) {
      const { info } = name === first.info.part.name ? first : openOrbimg(j.source, trust, name);
      if (info.part.blake3 === j.blake3) return { ...out, signed: { id: info.id, name: info.name, version: info.version, key: info.key, part: info.part.name } };
    }
    return { ...out, signedWhy: `${j.source} no longer holds a part with the flashed BLAKE3 (rebuilt since?)` };
  } catch (e) {
    return { ...out, signedWhy: (e as Error).message };
  }
}

export function inventory(lab: Lab, tags: string[] = []): DeviceStatus[] {
  return [...lab.devices.values()].filter((d) => tags.every((t) => d.tags.includes(t))).map((d) => deviceStatus(lab, d));
}
