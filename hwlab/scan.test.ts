// `orbital-lab scan` (what is attached, which lab device uses it, lab-file entries for the rest):
// USB serial adapters against a sysfs and /dev tree laid out as Linux lays them out (this machine
// has no USB adapter: an FT232R on ttyUSB0, a CDC-ACM board on ttyACM0, a 4-port FT4232H whose
// ports share one serial number); disks against the real system - its own disk (refused, as a flash
// onto it is) and a real loop device (needs root), mounted and not.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { inCI, scratchDisks } from '../scripts/testkit.ts';
import { parseLab } from './labfile.ts';
import { scan, scanText } from './scan.ts';
import { findConsolePort } from './devices.ts';
import { main } from './cli.ts';

const { dirs, loops, mounts } = scratchDisks();

const link = (target: string, at: string) => { mkdirSync(dirname(at), { recursive: true }); symlinkSync(relative(dirname(at), target), at); };
const file = (p: string, text: string) => { mkdirSync(dirname(p), { recursive: true }); writeFileSync(p, `${text}\n`); };

/** A /sys + /dev tree with three USB serial devices, as Linux lays them out. */
function usbTree() {
  const root = mkdtempSync(join(tmpdir(), 'orbital-scan-'));
  dirs.push(root);
  const sys = join(root, 'sys');
  const dev = join(root, 'dev');
  const hub = join(sys, 'devices/pci0000:00/0000:00:14.0/usb1');
  const usbDev = (port: string, attrs: Record<string, string>) => { const d = join(hub, port); for (const [k, v] of Object.entries(attrs)) file(join(d, k), v); return d; };
  // FT232R: /sys/class/tty/ttyUSB0 -> .../1-2/1-2:1.0/ttyUSB0/tty/ttyUSB0, device -> the usb-serial port .../1-2:1.0/ttyUSB0.
  const ftdiPort = (d: string, ifn: number, tty: string) => {
    const iface = join(d, `${basename(d)}:1.${ifn}`);
    file(join(iface, 'bInterfaceNumber'), `0${ifn}`);
    const port = join(iface, tty);
    mkdirSync(join(port, 'tty', tty), { recursive: true });
    link(port, join(port, 'tty', tty, 'device'));
    mkdirSync(join(sys, 'bus/usb-serial/drivers/ftdi_sio'), { recursive: true });
    link(join(sys, 'bus/usb-serial/drivers/ftdi_sio'), join(port, 'driver'));
    link(join(port, 'tty', tty), join(sys, 'class/tty', tty));
    file(join(dev, tty), '');
  };
  const basename = (p: string) => p.split('/').pop()!;
  const ft232 = usbDev('1-2', { idVendor: '0403', idProduct: '6001', serial: 'A12345', manufacturer: 'FTDI', product: 'FT232R USB UART' });
  ftdiPort(ft232, 0, 'ttyUSB0');
  link(join(dev, 'ttyUSB0'), join(dev, 'serial/by-id/usb-FTDI_FT232R_USB_UART_A12345-if00-port0'));
  // FT4232H: four ports, one serial number.
  const ft4232 = usbDev('1-4', { idVendor: '0403', idProduct: '6011', serial: 'FT4X9', manufacturer: 'FTDI', product: 'Quad RS232-HS' });
  for (let i = 0; i < 4; i++) {
    ftdiPort(ft4232, i, `ttyUSB${i + 1}`);
    link(join(dev, `ttyUSB${i + 1}`), join(dev, `serial/by-id/usb-FTDI_Quad_RS232-HS_FT4X9-if0${i}-port0`));
  }
  // A CDC-ACM board: /sys/class/tty/ttyACM0 -> .../1-3/1-3:1.0/tty/ttyACM0, device -> the interface (no by-id link: udev not run).
  const acm = usbDev('1-3', { idVendor: '2e8a', idProduct: '000a', serial: 'E6614C311B', manufacturer: 'Raspberry Pi', product: 'Pico' });
  const acmIf = join(acm, '1-3:1.0');
  file(join(acmIf, 'bInterfaceNumber'), '00');
  mkdirSync(join(acmIf, 'tty/ttyACM0'), { recursive: true });
  link(acmIf, join(acmIf, 'tty/ttyACM0/device'));
  link(join(acmIf, 'tty/ttyACM0'), join(sys, 'class/tty/ttyACM0'));
  file(join(dev, 'ttyACM0'), '');
  // A pty and an 8250 port with no UART behind it: not listed.
  mkdirSync(join(sys, 'devices/virtual/tty/ptmx'), { recursive: true });
  link(join(sys, 'devices/virtual/tty/ptmx'), join(sys, 'class/tty/ptmx'));
  const s8250 = join(sys, 'devices/platform/serial8250/serial8250:0/serial8250:0.1');
  mkdirSync(join(s8250, 'tty/ttyS1'), { recursive: true });
  link(s8250, join(s8250, 'tty/ttyS1/device'));
  file(join(s8250, 'tty/ttyS1/type'), '0');
  link(join(s8250, 'tty/ttyS1'), join(sys, 'class/tty/ttyS1'));
  /** A USB disk (sd*) on interface IFACE of the USB device at D, with a by-id name. */
  const usbDisk = (d: string, ifn: number, name: string, byId: string, sectors: number, model: string) => {
    const iface = join(d, `${basename(d)}:1.${ifn}`);
    file(join(iface, 'bInterfaceNumber'), `0${ifn}`);
    const sdev = join(iface, `host${name}/target0:0:0/0:0:0:0`);
    file(join(sdev, 'model'), model);
    file(join(sdev, 'vendor'), 'Generic');
    const b = join(sdev, 'block', name);
    file(join(b, 'size'), String(sectors));
    file(join(b, 'removable'), '1');
    file(join(b, 'dev'), '8:16');
    link(sdev, join(b, 'device'));
    link(b, join(sys, 'block', name));
    file(join(dev, name), '');
    link(join(dev, name), join(dev, 'disk/by-id', byId));
  };
  /** A CDC-ACM port on interface IFACE of the USB device at D. */
  const acmPort = (d: string, ifn: number, tty: string) => {
    const i = join(d, `${basename(d)}:1.${ifn}`);
    file(join(i, 'bInterfaceNumber'), `0${ifn}`);
    mkdirSync(join(i, 'tty', tty), { recursive: true });
    link(i, join(i, 'tty', tty, 'device'));
    link(join(i, 'tty', tty), join(sys, 'class/tty', tty));
    file(join(dev, tty), '');
  };
  return { root, sys, dev, usbDev, ftdiPort, usbDisk, acmPort };
}

describe('orbital-lab scan', () => {
  it('lists USB serial ports with their by-id names, serial numbers and users, and offers lab-file entries for the rest', () => {
    const t = usbTree();
    const labText = `version: 1\ndevices:\n  rpi:\n    kind: serial-board\n    console: { by-id: usb-FTDI_FT232R_USB_UART_A12345-if00-port0, baud: 115200 }\n  pico:\n    kind: serial-board\n    console: { usb-serial: E6614C311B, baud: 115200 }\n`;
    const lab = parseLab(labText.replaceAll('by-id: usb-', `by-id: ${t.dev}/serial/by-id/usb-`), join(t.root, 'lab.yaml'));
    if (!lab.ok) throw new Error(JSON.stringify(lab.issues));
    const r = scan(lab.lab, { roots: { sys: t.sys, dev: t.dev }, view: null });
    expect(r.serial.map((p) => p.tty)).toEqual(['ttyACM0', 'ttyUSB0', 'ttyUSB1', 'ttyUSB2', 'ttyUSB3', 'ttyUSB4']);
    const [acm, ft232, quad1] = r.serial;
    expect(ft232).toMatchObject({ path: '/dev/ttyUSB0', byId: ['usb-FTDI_FT232R_USB_UART_A12345-if00-port0'], driver: 'ftdi_sio', usb: { vendorId: '0403', productId: '6001', serial: 'A12345', product: 'FT232R USB UART', interface: '00' }, usedBy: ['rpi'] });
    expect(ft232!.serialShared).toBeUndefined();
    expect(acm).toMatchObject({ byId: [], usb: { vendorId: '2e8a', serial: 'E6614C311B', product: 'Pico', interface: '00' }, usedBy: ['pico'] });
    expect(quad1).toMatchObject({ serialShared: true, usb: { serial: 'FT4X9', interface: '00' }, usedBy: [] });
    // The quad adapter's ports share one serial number: each entry names its port by-id.
    expect(r.suggestions).toContain('console: { by-id: usb-FTDI_Quad_RS232-HS_FT4X9-if03-port0, baud: 115200 }');
    expect(r.suggestions).not.toContain('usb-serial: FT4X9');
    expect(r.suggestions.match(/kind: serial-board/g)).toHaveLength(4);
    // The suggested entries are a valid lab file.
    const suggested = parseLab(`version: 1\ndevices:\n${r.suggestions}\n`, join(t.root, 'suggested.yaml'));
    expect(suggested.ok, JSON.stringify(!suggested.ok && suggested.issues)).toBe(true);
    const text = scanText(r, join(t.root, 'lab.yaml'));
    expect(text).toMatch(/\/dev\/ttyUSB0 +0403:6001 FTDI FT232R USB UART, serial A12345\n +by-id: usb-FTDI_FT232R_USB_UART_A12345-if00-port0\n +USB 1-2; used by rpi/);
    expect(text).toMatch(/serial FT4X9 \(shared by several ports: name this one by-id\)/);
    // --all adds on-board UARTs that have a chip behind them (ttyS1's type 0 says it has none).
    expect(scan(null, { all: true, roots: { sys: t.sys, dev: t.dev }, view: null }).serial.map((p) => p.tty)).not.toContain('ttyS1');
  });

  it('offers a port and a disk as one board when they are one USB device, or the only two on a USB hub', () => {
    const t = usbTree();
    const hub = (at: string) => t.usbDev(at, { idVendor: '05e3', idProduct: '0610', product: 'USB2.0 Hub' });
    // A hub per board: its FT232 console adapter and its SD-card reader.
    hub('1-5');
    t.ftdiPort(t.usbDev('1-5/1-5.2', { idVendor: '0403', idProduct: '6001', serial: 'B777', manufacturer: 'FTDI', product: 'FT232R USB UART' }), 0, 'ttyUSB5');
    t.usbDisk(t.usbDev('1-5/1-5.1', { idVendor: '0bda', idProduct: '0109', serial: '0001', product: 'SD Reader' }), 0, 'sdb', 'usb-Generic_SD_Reader_0001-0:0', 31116288, 'SD Reader');
    // A board whose USB gadget is a serial console and a disk at once.
    const gadget = t.usbDev('1-6', { idVendor: '1d6b', idProduct: '0104', serial: 'ORB42', product: 'Orbital Board' });
    t.acmPort(gadget, 0, 'ttyACM1');
    t.usbDisk(gadget, 2, 'sdc', 'usb-Orbital_Board_ORB42-0:0', 2097152, 'Board eMMC');
    // A hub with two adapters and one reader: whose is the disk? Not paired.
    hub('1-7');
    t.ftdiPort(t.usbDev('1-7/1-7.1', { idVendor: '0403', idProduct: '6001', serial: 'C1', product: 'FT232R USB UART' }), 0, 'ttyUSB6');
    t.ftdiPort(t.usbDev('1-7/1-7.2', { idVendor: '0403', idProduct: '6001', serial: 'C2', product: 'FT232R USB UART' }), 0, 'ttyUSB7');
    t.usbDisk(t.usbDev('1-7/1-7.3', { idVendor: '0bda', idProduct: '0109', serial: '0002', product: 'SD Reader' }), 0, 'sdd', 'usb-Generic_SD_Reader_0002-0:0', 31116288, 'SD Reader');
    const r = scan(null, { roots: { sys: t.sys, dev: t.dev }, view: null });
    expect(r.disks.map((k) => [k.name, k.usbAt, k.usb])).toEqual([['sdb', '1-5.1', true], ['sdc', '1-6', true], ['sdd', '1-7.3', true]]);
    expect(r.serial.find((p) => p.tty === 'ttyUSB5')!.usbAt).toBe('1-5.2');
    expect(r.pairs).toEqual([{ tty: 'ttyACM1', disk: 'sdc', how: 'device', at: '1-6' }, { tty: 'ttyUSB5', disk: 'sdb', how: 'hub', at: '1-5' }]);
    // The board's entry carries its disk; the unpaired one is left for the person.
    expect(r.suggestions).toMatch(/ {2}ft232r-usb-uart-b777:\n {4}kind: serial-board\n {4}console: \{ usb-serial: B777, baud: 115200 \}\n {4}power: \{ kind: manual \}\n {4}flash: \{ target: \/dev\/disk\/by-id\/usb-Generic_SD_Reader_0001-0:0 \} +# sdb, 15\.9 GB Generic SD Reader, USB, removable: the only disk on the console's USB hub \(1-5\)/);
    expect(r.suggestions).toMatch(/console: \{ usb-serial: ORB42, baud: 115200 \}\n {4}power: \{ kind: manual \}\n {4}flash: \{ target: \/dev\/disk\/by-id\/usb-Orbital_Board_ORB42-0:0 \} +# sdc, .*the same USB device \(1-6\) as the console/);
    expect(r.suggestions).toMatch(/^ {2}# {3}flash: \{ target: \/dev\/disk\/by-id\/usb-Generic_SD_Reader_0002-0:0 \}/m);
    expect(r.suggestions).not.toMatch(/^ {2}# {3}flash: .*(0001|ORB42)/m);
    const suggested = parseLab(`version: 1\ndevices:\n${r.suggestions}\n`, join(t.root, 'suggested.yaml'));
    expect(suggested.ok, JSON.stringify(!suggested.ok && suggested.issues)).toBe(true);
    if (!suggested.ok) return;
    expect(suggested.lab.devices.get('ft232r-usb-uart-b777')!.flashTarget).toBe('/dev/disk/by-id/usb-Generic_SD_Reader_0001-0:0');
    expect(scanText(r, null)).toMatch(/\/dev\/ttyUSB5 .*\n +USB 1-5\.2; not in the lab file; one board with sdb\? \(the only disk on its USB hub, 1-5\)/);
    // Once the lab file gives the board's console, its disk is no longer paired with anything else.
    const lab = parseLab(`version: 1\ndevices:\n  b:\n    kind: serial-board\n    console: { usb-serial: B777, baud: 115200 }\n`, join(t.root, 'lab.yaml'));
    if (!lab.ok) throw new Error(JSON.stringify(lab.issues));
    expect(scan(lab.lab, { roots: { sys: t.sys, dev: t.dev }, view: null }).pairs.map((x) => x.disk)).toEqual(['sdc']);
  });

  it('names an adapter with no serial number by the USB socket it is in (usb-path), and finds its port there', () => {
    const t = usbTree();
    // Two CH340s: no serial number, so udev gives both one by-id name (the last one plugged in wins).
    const ch = (at: string, tty: string) => t.ftdiPort(t.usbDev(at, { idVendor: '1a86', idProduct: '7523', product: 'USB Serial' }), 0, tty);
    ch('1-8', 'ttyUSB8');
    ch('1-9', 'ttyUSB9');
    symlinkSync('../../ttyUSB9', join(t.dev, 'serial/by-id/usb-1a86_USB_Serial-if00-port0'));
    const r = scan(null, { roots: { sys: t.sys, dev: t.dev }, view: null });
    expect(r.serial.find((p) => p.tty === 'ttyUSB8')).toMatchObject({ usbAt: '1-8', usbInterfaceAt: '1-8:1.0' });
    expect(r.suggestions).toMatch(/console: \{ usb-path: 1-8, baud: 115200 \} +# no serial number: named by the USB socket/);
    expect(r.suggestions).toContain('console: { usb-path: 1-9, baud: 115200 }');
    expect(r.suggestions).not.toContain('by-id: usb-1a86');
    // One port of the quad adapter (its four share a serial number and a USB device) by its interface.
    expect(r.suggestions).not.toContain('usb-path: 1-4');
    const open = (spec: string) => {
      const lab = parseLab(`version: 1\ndevices:\n  b:\n    kind: serial-board\n    console: { ${spec}, baud: 115200 }\n`, join(t.root, 'lab.yaml'));
      if (!lab.ok) throw new Error(JSON.stringify(lab.issues));
      return { lab: lab.lab, port: () => findConsolePort(lab.lab.devices.get('b')!, { sys: t.sys, dev: t.dev }) };
    };
    expect(open('usb-path: 1-9').port()).toBe('/dev/ttyUSB9');
    expect(open('usb-path: 1-4:1.2').port()).toBe('/dev/ttyUSB3');
    expect(open('usb-path: 1-3').port()).toBe('/dev/ttyACM0');
    expect(() => open('usb-path: 1-4').port()).toThrow(/USB port 1-4 has 4 serial ports \(ttyUSB1, ttyUSB2, ttyUSB3, ttyUSB4\).*usb-path: 1-4:1\.0, usb-path: 1-4:1\.1/);
    expect(() => open('usb-path: 1-11').port()).toThrow(/no serial port is plugged in at USB port 1-11 \(unplugged, or moved to another socket/);
    // scan knows which device uses it.
    const used = open('usb-path: 1-8');
    expect(scan(used.lab, { roots: { sys: t.sys, dev: t.dev }, view: null }).serial.find((p) => p.tty === 'ttyUSB8')!.usedBy).toEqual(['b']);
    // A path that is not one is a lab-file error at its line.
    const bad = parseLab('version: 1\ndevices:\n  b:\n    kind: serial-board\n    console: { usb-path: /dev/ttyUSB0, baud: 115200 }\n', join(t.root, 'lab.yaml'));
    expect(!bad.ok && bad.issues.find((i) => i.field === 'devices.b.console.usb-path')).toMatchObject({ line: 5, message: expect.stringMatching(/not a USB bus-port path: it looks like 1-5\.2/) });
  });

  it('a usb-serial name that several ports share is refused when the console is opened, naming the by-id names to use', () => {
    const t = usbTree();
    const lab = parseLab('version: 1\ndevices:\n  b:\n    kind: serial-board\n    console: { usb-serial: FT4X9, baud: 115200 }\n', join(t.root, 'lab.yaml'));
    if (!lab.ok) throw new Error(JSON.stringify(lab.issues));
    expect(() => findConsolePort(lab.lab.devices.get('b')!, { sys: t.sys, dev: t.dev })).toThrow(/serial number FT4X9 is shared by 4 ports \(ttyUSB1, ttyUSB2, ttyUSB3, ttyUSB4\).*by-id: usb-FTDI_Quad_RS232-HS_FT4X9-if00-port0/);
    const one = parseLab('version: 1\ndevices:\n  b:\n    kind: serial-board\n    console: { usb-serial: E6614C311B, baud: 115200 }\n', join(t.root, 'lab.yaml'));
    if (!one.ok) throw new Error(JSON.stringify(one.issues));
    expect(findConsolePort(one.lab.devices.get('b')!, { sys: t.sys, dev: t.dev })).toBe('/dev/ttyACM0');
  });

  it('lists this machine\'s disks with the flash\'s verdict: its own disk refused; a loop device (--all) flashable until it is mounted', async () => {
    const own = scan(null);
    const sys = own.disks.filter((d) => d.refused?.code === 'target-system-disk');
    expect(sys.length, JSON.stringify(own.disks)).toBeGreaterThanOrEqual(1);
    expect(own.suggestions).not.toContain(sys[0]!.name);
    if (process.getuid?.() !== 0) {
      if (inCI) throw new Error('scan of a loop device needs root; under CI=true this must run');
      console.warn('SKIP scan of a loop device: needs root');
      return;
    }
    const dir = mkdtempSync(join(tmpdir(), 'orbital-scan-loop-'));
    dirs.push(dir);
    const backing = join(dir, 'disk.img');
    writeFileSync(backing, Buffer.alloc(0));
    expect(spawnSync('truncate', ['-s', '32M', backing]).status).toBe(0);
    const l = spawnSync('losetup', ['-f', '--show', backing], { encoding: 'utf8' });
    if (l.status !== 0) throw new Error(`losetup: ${l.stderr}`);
    const loopDev = l.stdout.trim();
    loops.push(loopDev);
    const name = loopDev.replace('/dev/', '');
    expect(scan(null).disks.map((d) => d.name)).not.toContain(name);
    const mine = () => scan(null, { all: true }).disks.find((d) => d.name === name)!;
    expect(mine()).toMatchObject({ path: loopDev, sizeBytes: 32 << 20, backingFile: backing });
    expect(mine().refused).toBeUndefined();
    expect(spawnSync('mkfs.ext4', ['-q', '-F', loopDev]).status).toBe(0);
    const mnt = join(dir, 'mnt');
    mkdirSync(mnt);
    expect(spawnSync('mount', [loopDev, mnt]).status).toBe(0);
    mounts.push(mnt);
    expect(mine().refused).toMatchObject({ code: 'target-mounted' });
    expect(mine().refused!.message).toContain(`is mounted on ${mnt}`);
    // The CLI: --json, and without a lab file.
    const out: string[] = [];
    expect(await main(['--lab', join(dir, 'none.yaml'), '--json', 'scan', '--all'], { out: (x) => out.push(x), err: () => {} })).toBe(0);
    const j = JSON.parse(out.pop()!);
    expect(j.ok).toBe(true);
    expect(j.disks.find((d: { name: string }) => d.name === name)).toMatchObject({ refused: { code: 'target-mounted' } });
    const txt: string[] = [];
    expect(await main(['--lab', join(dir, 'none.yaml'), 'scan', '--all'], { out: (x) => txt.push(x), err: () => {} })).toBe(0);
    expect(txt.join('\n')).toMatch(new RegExp(`${loopDev} +33\\.6 MB, loop of ${backing}\\n(?: +by-id: .*\\n)* +a flash is REFUSED \\(target-mounted\\)`));
  });
});
