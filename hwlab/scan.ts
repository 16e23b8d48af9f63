// `orbital-lab scan`: what is attached to this host that a lab file could name - USB serial ports
// (with their stable /dev/serial/by-id names, USB serial numbers, vendor and product) and disks
// (with their /dev/disk/by-id names, size, model, and whether the lab would flash them) - which lab
// device already uses each, and a lab-file entry for each one nothing uses. labgrid-suggest and
// Zephyr twister's --generate-hardware-map do this; without it a person reads `ls -l
// /dev/serial/by-id`, `lsblk` and `udevadm info` and copies names by hand.
//
// A disk's verdict is the flash's own check (target.ts checkBlock): "refused: the system disk" here
// means a flash onto it is refused too. A USB serial number shared by several ports (a multi-port
// adapter: FT2232/FT4232) cannot name one of them, so the entry offered names the port by-id.
// A disk and a serial port that are one USB device (a board whose USB gadget is both) or the only
// two on one USB hub (a hub per board: its console adapter and its SD-card reader or SD mux) are
// offered as one board: its console and its flash target.
// Everything is read from sysfs and /dev; `roots` lets the tests lay out a tree as Linux does.
import { existsSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Lab } from './labfile.ts';
import { LabError } from './errors.ts';
import { checkBlock, realSystemView, type SystemView } from './flash/target.ts';

export interface ScanRoots { sys: string; dev: string }

export interface SerialPortInfo {
  tty: string;
  /** /dev/TTY. */
  path: string;
  /** Names under /dev/serial/by-id that point at it. */
  byId: string[];
  /** The USB device it belongs to (absent for a UART on the board: ttyS*). */
  usb?: { vendorId: string; productId: string; serial?: string; manufacturer?: string; product?: string; interface?: string };
  driver?: string;
  /** Its USB serial number is also another port's: `usb-serial:` would not say which. */
  serialShared?: boolean;
  /** Lab devices whose console is this port. */
  usedBy: string[];
  /** Where it is on the USB bus: Linux's bus-port path of its USB device (`1-5.2`). */
  usbAt?: string;
  /** ... and of its USB interface (`1-5.2:1.0`): one port of a multi-port adapter. */
  usbInterfaceAt?: string;
}

export interface DiskInfo {
  name: string;
  /** /dev/NAME. */
  path: string;
  byId: string[];
  sizeBytes: number;
  removable: boolean;
  usb: boolean;
  model?: string;
  vendor?: string;
  /** A loop device's file. */
  backingFile?: string;
  /** Whether a flash onto it would be refused, and why (the flash's own check). */
  refused?: { code: string; message: string };
  /** Lab devices whose flash target is this disk. */
  usedBy: string[];
  /** Its USB device's bus-port path (a USB disk). */
  usbAt?: string;
}

/**
 * A serial port and a disk that look like one board's: the same USB device (`device`), or the only
 * port and the only disk nothing uses on one USB hub (`hub`: its bus-port path).
 */
export interface BoardPair { tty: string; disk: string; how: 'device' | 'hub'; at: string }

export interface ScanResult { serial: SerialPortInfo[]; disks: DiskInfo[]; pairs: BoardPair[]; suggestions: string }

const read = (p: string): string | undefined => { try { return readFileSync(p, 'utf8').trim(); } catch { return undefined; } };
const list = (p: string): string[] => { try { return readdirSync(p).sort(); } catch { return []; } };
const real = (p: string): string | null => { try { return realpathSync(p); } catch { return null; } };
/** Each USB port's and disk's USB device directory in sysfs (kept out of the JSON). */
const usbDirs = new WeakMap<object, string>();

/** by-id names under DIR pointing at NAME (whole-device names only: no -partN). */
function byIdNames(dir: string, name: string): string[] {
  return list(dir).filter((l) => !/-part\d+$/.test(l) && basename(real(join(dir, l)) ?? '') === name);
}

/**
 * The USB device a sysfs path is under (the nearest directory above it with idVendor), and the
 * interface number on the way. A USB tty's `device` is the USB interface (ttyACM) or a usb-serial
 * port under it (ttyUSB), 4 levels at most; a disk's block device is ~7 levels under its USB device.
 */
function usbOf(devicePath: string, levels = 4): { dir: string; iface?: string } | null {
  let d = devicePath;
  let iface: string | undefined;
  for (let i = 0; i < levels && d.length > 1; i++) {
    if (existsSync(join(d, 'idVendor'))) return { dir: d, iface };
    iface ??= read(join(d, 'bInterfaceNumber'));
    d = dirname(d);
  }
  return null;
}

/** The hub a USB device is plugged into, unless that is the root hub (`usbN`: every device is under one). */
function hubOf(usbDir: string): string | null {
  const up = dirname(usbDir);
  return /^\d+-[\d.]+$/.test(basename(up)) && existsSync(join(up, 'idVendor')) ? up : null;
}

function serialPorts(roots: ScanRoots, all: boolean): SerialPortInfo[] {
  const out: SerialPortInfo[] = [];
  const cls = join(roots.sys, 'class/tty');
  for (const tty of list(cls)) {
    const dev = real(join(cls, tty, 'device'));
    if (!dev) continue; // a virtual terminal or pty: nothing attached
    const usb = usbOf(dev);
    if (!usb) {
      // A UART on the board (8250 ttyS*): the kernel makes ports that have no chip behind them;
      // `type` 0 is "no UART here". Listed with --all only.
      if (!all || read(join(cls, tty, 'type')) === '0') continue;
    }
    const driver = usb ? basename(real(join(dev, 'driver')) ?? '') || undefined : undefined;
    const info: SerialPortInfo = { tty, path: `/dev/${tty}`, byId: byIdNames(join(roots.dev, 'serial/by-id'), tty), ...(driver ? { driver } : {}), usedBy: [] };
    if (usb) {
      const r = (f: string) => read(join(usb.dir, f));
      info.usb = { vendorId: r('idVendor') ?? '', productId: r('idProduct') ?? '', serial: r('serial'), manufacturer: r('manufacturer'), product: r('product'), interface: usb.iface };
      for (const k of Object.keys(info.usb) as Array<keyof typeof info.usb>) if (info.usb[k] === undefined) delete info.usb[k];
      info.usbAt = basename(usb.dir);
      const iface = [dev, dirname(dev)].map((x) => basename(x)).find((x) => x.startsWith(`${info.usbAt}:`));
      if (iface) info.usbInterfaceAt = iface;
      usbDirs.set(info, usb.dir);
    }
    out.push(info);
  }
  const count = new Map<string, number>();
  for (const p of out) if (p.usb?.serial) count.set(p.usb.serial, (count.get(p.usb.serial) ?? 0) + 1);
  for (const p of out) if (p.usb?.serial && count.get(p.usb.serial)! > 1) p.serialShared = true;
  return out;
}

function disks(roots: ScanRoots, all: boolean, view: SystemView | null): DiskInfo[] {
  const out: DiskInfo[] = [];
  const blk = join(roots.sys, 'block');
  for (const name of list(blk)) {
    // Never a target: RAM disks, compressed swap, optical drives, device-mapper/md volumes (flash the disk under them).
    if (/^(ram|zram|sr|fd|dm-|md)/.test(name)) continue;
    const loop = name.startsWith('loop');
    if (loop && !all) continue;
    const sizeBytes = Number(read(join(blk, name, 'size')) ?? 0) * 512;
    if (sizeBytes === 0) continue; // an empty card reader slot, an unattached loop device
    const sysPath = real(join(blk, name)) ?? '';
    const info: DiskInfo = {
      name, path: `/dev/${name}`, byId: byIdNames(join(roots.dev, 'disk/by-id'), name), sizeBytes,
      removable: read(join(blk, name, 'removable')) === '1', usb: sysPath.includes('/usb'), usedBy: [],
    };
    const model = read(join(blk, name, 'device/model'));
    const vendor = read(join(blk, name, 'device/vendor'));
    const backing = read(join(blk, name, 'loop/backing_file'));
    if (model) info.model = model;
    if (vendor && !vendor.startsWith('0x')) info.vendor = vendor; // (a PCI id, on virtio disks: not a name)
    if (backing) info.backingFile = backing;
    const usbDir = info.usb ? usbOf(sysPath, 10)?.dir : undefined;
    if (usbDir) { info.usbAt = basename(usbDir); usbDirs.set(info, usbDir); }
    const mm = read(join(blk, name, 'dev'));
    if (view && mm) {
      try { checkBlock(name, info.path, info.path, mm, view); } catch (e) {
        if (!(e instanceof LabError)) throw e;
        info.refused = { code: e.code, message: e.message.replace(/^[^:]+: /, '').replace(` (${info.path})`, '') };
      }
    }
    out.push(info);
  }
  return out;
}

/** What is attached; `lab` (optional) says which device uses each. `view: null` skips the flash check (a test tree has no real disks). */
export function scan(lab: Lab | null, o: { all?: boolean; roots?: ScanRoots; view?: SystemView | null } = {}): ScanResult {
  const roots = o.roots ?? { sys: '/sys', dev: '/dev' };
  const view = o.view === undefined ? realSystemView() : o.view;
  const serial = serialPorts(roots, o.all ?? false);
  const ds = disks(roots, o.all ?? false, view);
  // A lab path under /dev is looked up in `roots.dev` (the same place, on a real system).
  const inRoots = (p: string) => (p.startsWith('/dev/') ? join(roots.dev, p.slice(5)) : p);
  for (const d of lab?.devices.values() ?? []) {
    const c = d.console;
    if (d.kind === 'serial-board' && (c.port || c.byId || c.usbSerial || c.usbPath)) {
      const at = c.usbSerial || c.usbPath ? null : basename(real(inRoots((c.port ?? c.byId)!)) ?? '');
      const onPath = (p: SerialPortInfo) => !!c.usbPath && (p.usbAt === c.usbPath || p.usbInterfaceAt === c.usbPath);
      for (const p of serial) if ((at && p.tty === at) || (c.usbSerial && p.usb?.serial === c.usbSerial) || onPath(p)) p.usedBy.push(d.name);
    }
    if (d.flashTarget) {
      const at = basename(real(inRoots(d.flashTarget)) ?? '');
      for (const k of ds) if (k.name === at && d.flashTarget.startsWith('/dev/')) k.usedBy.push(d.name);
    }
  }
  const pairs = pairUp(serial, ds);
  return { serial, disks: ds, pairs, suggestions: suggest(serial, ds, pairs, lab) };
}

/** Disks a lab file could still give a board: nothing uses them, a flash would not refuse them, not a loop device. */
const flashableFree = (ds: DiskInfo[]) => ds.filter((k) => !k.usedBy.length && !k.refused && !k.backingFile);

/**
 * Serial ports and disks that look like one board's (BoardPair). Only ports and disks nothing uses
 * are paired, and only when the USB device or hub holds exactly one of each: two adapters on one
 * hub could be anybody's, so those are left for the person to pair.
 */
function pairUp(serial: SerialPortInfo[], ds: DiskInfo[]): BoardPair[] {
  const ports = serial.filter((p) => !p.usedBy.length && usbDirs.has(p));
  const disks = flashableFree(ds).filter((k) => usbDirs.has(k));
  const pairs: BoardPair[] = [];
  const paired = new Set<object>();
  const match = (how: BoardPair['how'], keyOf: (dir: string) => string | null) => {
    const groups = new Map<string, { p: SerialPortInfo[]; k: DiskInfo[] }>();
    const group = (key: string) => { let g = groups.get(key); if (!g) groups.set(key, (g = { p: [], k: [] })); return g; };
    for (const p of ports) { const key = paired.has(p) ? null : keyOf(usbDirs.get(p)!); if (key) group(key).p.push(p); }
    for (const k of disks) { const key = paired.has(k) ? null : keyOf(usbDirs.get(k)!); if (key) group(key).k.push(k); }
    for (const [key, g] of groups) {
      if (g.p.length !== 1 || g.k.length !== 1) continue;
      pairs.push({ tty: g.p[0]!.tty, disk: g.k[0]!.name, how, at: basename(key) });
      paired.add(g.p[0]!); paired.add(g.k[0]!);
    }
  };
  match('device', (d) => d);
  match('hub', hubOf);
  return pairs;
}

/** Lab-file entries (YAML, under `devices:`) for the USB serial ports and flashable disks no device uses. */
function suggest(serial: SerialPortInfo[], ds: DiskInfo[], pairs: BoardPair[], lab: Lab | null): string {
  const taken = new Set(lab?.devices.keys() ?? []);
  const nameFor = (base: string) => {
    let n = base.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 40) || 'board';
    if (!/^[a-z]/.test(n)) n = `board-${n}`;
    let k = n;
    for (let i = 2; taken.has(k); i++) k = `${n}-${i}`;
    taken.add(k);
    return k;
  };
  const out: string[] = [];
  const idOf = (k: DiskInfo) => k.byId.find((n) => n.startsWith('usb-')) ?? k.byId[0];
  const diskText = (k: DiskInfo) => `${k.name}, ${human(k.sizeBytes)}${k.model ? ` ${[k.vendor, k.model].filter(Boolean).join(' ')}` : ''}${k.usb ? ', USB' : ''}${k.removable ? ', removable' : ''}`;
  const given = new Set<string>();
  for (const p of serial) {
    if (p.usedBy.length || !p.usb) continue;
    // An adapter with no serial number of its own (CH340, PL2303 clones): by-id names are the same
    // for two of them, so it is named by where it is plugged in.
    const several = serial.filter((q) => q.usbAt === p.usbAt).length > 1;
    const where = several ? p.usbInterfaceAt : p.usbAt;
    const con = p.usb.serial && p.byId.length ? `by-id: ${p.byId[0]}` : p.usb.serial && !p.serialShared ? `usb-serial: ${p.usb.serial}` : where ? `usb-path: ${where}` : p.byId.length ? `by-id: ${p.byId[0]}` : `port: ${p.path}`;
    const why = con.startsWith('usb-path') ? '   # no serial number: named by the USB socket it is in (moving it to another socket loses it)' : con.startsWith('port') ? '   # no stable name: this path can change when USB re-enumerates' : '';
    out.push(`  ${nameFor(`${p.usb.product ?? 'board'}-${p.usb.serial ?? p.tty}${p.serialShared ? `-${p.usb.interface ?? p.tty}` : ''}`)}:`, '    kind: serial-board', `    console: { ${con}, baud: 115200 }${why}`, '    power: { kind: manual }');
    const pair = pairs.find((x) => x.tty === p.tty);
    const k = pair && ds.find((d) => d.name === pair.disk);
    const id = k && idOf(k);
    if (pair && k && id) {
      out.push(`    flash: { target: /dev/disk/by-id/${id} }   # ${diskText(k)}: ${pair.how === 'device' ? `the same USB device (${pair.at}) as the console` : `the only disk on the console's USB hub (${pair.at})`} - check that this board boots from it`);
      given.add(k.name);
    }
  }
  const named = flashableFree(ds).filter((k) => !given.has(k.name)).map((k) => ({ k, id: idOf(k) })).filter((x) => x.id);
  if (named.length) out.push('  # a disk: give it to the board that boots from it (it is written and read back by flash)');
  for (const { k, id } of named) out.push(`  #   flash: { target: /dev/disk/by-id/${id} }   # ${diskText(k)}`);
  return out.join('\n');
}

function human(n: number): string {
  if (n >= 1e12) return `${(n / 1e12).toFixed(1)} TB`;
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)} GB`;
  return `${(n / 1e6).toFixed(1)} MB`;
}

/** The text `orbital-lab scan` prints. */
export function scanText(r: ScanResult, labPath: string | null): string {
  const lines: string[] = [];
  lines.push(`serial ports (${r.serial.length})${r.serial.length ? '' : ': no USB serial adapter attached (--all lists the board\'s own UARTs too)'}`);
  for (const p of r.serial) {
    const usb = p.usb ? `${p.usb.vendorId}:${p.usb.productId}${p.usb.manufacturer || p.usb.product ? ` ${[p.usb.manufacturer, p.usb.product].filter(Boolean).join(' ')}` : ''}${p.usb.serial ? `, serial ${p.usb.serial}${p.serialShared ? ' (shared by several ports: name this one by-id)' : ''}` : ''}` : p.driver ?? 'on-board UART';
    lines.push(`  ${p.path.padEnd(14)} ${usb}`);
    for (const b of p.byId) lines.push(`  ${''.padEnd(14)} by-id: ${b}`);
    const pair = r.pairs.find((x) => x.tty === p.tty);
    const with_ = pair ? `; one board with ${pair.disk}? (${pair.how === 'device' ? 'the same USB device' : 'the only disk on its USB hub'}, ${pair.at})` : '';
    lines.push(`  ${''.padEnd(14)} ${p.usbAt ? `USB ${p.usbAt}; ` : ''}${p.usedBy.length ? `used by ${p.usedBy.join(', ')}` : 'not in the lab file'}${with_}`);
  }
  lines.push(`disks (${r.disks.length})`);
  for (const k of r.disks) {
    const what = [human(k.sizeBytes), [k.vendor, k.model].filter(Boolean).join(' '), k.usb ? 'USB' : '', k.removable ? 'removable' : '', k.backingFile ? `loop of ${k.backingFile}` : ''].filter(Boolean).join(', ');
    lines.push(`  ${k.path.padEnd(14)} ${what}`);
    for (const b of k.byId) lines.push(`  ${''.padEnd(14)} by-id: ${b}`);
    const pair = r.pairs.find((x) => x.disk === k.name);
    lines.push(`  ${''.padEnd(14)} ${k.usbAt ? `USB ${k.usbAt}; ` : ''}${k.refused ? `a flash is REFUSED (${k.refused.code}): ${k.refused.message}` : 'can be flashed'}${k.usedBy.length ? `; used by ${k.usedBy.join(', ')}` : ''}${pair ? `; one board with /dev/${pair.tty}?` : ''}`);
  }
  if (r.suggestions) lines.push(`\nlab-file entries for what ${labPath ? `${labPath} does not name` : 'no lab file names'} (under devices:; set power and baud):`, r.suggestions);
  return lines.join('\n');
}

