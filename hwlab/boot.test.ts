// Boots of real QEMU guests (the guest kernel): a qemu device booted directly and from its
// flashed disk image, and a serial-board whose "board" is QEMU with -serial pty, reached through
// the serialport library with power switched by commands over QEMU's monitor.
import { expect, it, afterAll, beforeAll } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeWithTools } from '../scripts/testkit.ts';
import { parseLab, type Lab, type Device } from './labfile.ts';
import { boot } from './boot.ts';
import { flash } from './flash/flash.ts';
import { guestArtifacts, GUEST_BOOT } from './testguest.ts';
import { captureTrace } from './traces/capture.ts';
import { replayTrace } from './traces/replay.ts';

const dirs: string[] = [];
const kids: ChildProcess[] = [];
afterAll(() => { for (const k of kids) k.kill('SIGKILL'); for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

function labOf(text: string): { lab: Lab; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'orbital-boot-'));
  dirs.push(dir);
  const path = join(dir, 'lab.yaml');
  writeFileSync(path, text);
  const r = parseLab(text, path);
  if (!r.ok) throw new Error(JSON.stringify(r.issues));
  return { lab: r.lab, dir };
}

describeWithTools(['qemu-system-x86_64'], 'boot a qemu device (guest kernel)', () => {
  // Built/copied in beforeAll, so a skipped suite (no QEMU) never builds the kernel.
  let g!: ReturnType<typeof guestArtifacts>;
  let lab!: Lab;
  let vm!: Device;
  beforeAll(() => {
    g = guestArtifacts();
    dirs.push(g.dir);
    lab = labOf(`version: 1\ndevices:\n  vm:\n    kind: qemu\n    qemu: { kernel: ${g.elf} }\n${GUEST_BOOT}    timeouts: { boot: 60s }\n`).lab;
    vm = lab.devices.get('vm')!;
  });

  it('captures the boot log from the very first byte, stamped, with every stage', async () => {
    const r = await boot({ lab, device: vm });
    expect(r.ok).toBe(true);
    expect(r.stage).toBe('axiom');
    expect(r.milestones.map((m) => m.name)).toEqual(['kernel', 'cpu', 'memory', 'axiom']);
    expect(r.bootMs).toBeGreaterThan(0);
    const log = readFileSync(r.log, 'utf8').split('\n');
    expect(log[0]).toMatch(/--- power on: device vm, boot [0-9a-f]{16}/);
    // SeaBIOS's first output is a terminal reset (ESC c): the log starts with the machine's first byte.
    expect(log[1]).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z\s+\+\d+\.\d{3}s \\ec/);
    expect(log.some((l) => /ready: head 1$/.test(l))).toBe(true);
  });

  it('blames the OS for a crash and keeps the whole crash report in the log', async () => {
    const r = await boot({ lab, device: vm, append: 'fault=page' });
    expect(r.ok).toBe(false);
    expect(r.failure).toMatchObject({ blame: 'os', code: 'os-fatal' });
    expect(r.stage).toBe('cpu');
    const crash = readFileSync(r.log, 'utf8').split('\n').filter((l) => /s CRASH /.test(l));
    expect(crash.length).toBe(6);
    expect(r.qemuExit?.debugExit).toBe(0x2a);
  });

  it('blames the lab for a timeout, naming the stage reached', async () => {
    const { lab: l2 } = labOf(`version: 1\ndevices:\n  vm:\n    kind: qemu\n    qemu: { kernel: ${g.elf} }\n    boot:\n      milestones: [{ name: kernel, pattern: "orbital kernel" }]\n      success: "this line never comes"\n    timeouts: { boot: 3s }\n`);
    const r = await boot({ lab: l2, device: l2.devices.get('vm')! });
    expect(r.failure).toMatchObject({ blame: 'lab', code: 'boot-timeout' });
    expect(r.stage).toBe('kernel');
  });
});

describeWithTools(['qemu-system-x86_64', 'grub-mkrescue', 'xorriso'], 'flash a qemu device disk, then boot it', () => {
  it('flashes the guest ISO onto the device disk image and boots from it', async () => {
    const g = guestArtifacts({ iso: true });
    dirs.push(g.dir);
    const { lab, dir } = labOf(`version: 1\ndevices:\n  vm:\n    kind: qemu\n    flash: { target: disk.img }\n${GUEST_BOOT}    timeouts: { boot: 60s }\n`);
    const vm = lab.devices.get('vm')!;
    const r = await boot({ lab, device: vm, image: g.iso, bmap: null });
    expect(r.flash?.status).toBe('written');
    expect(r.flash?.verify?.bytes).toBe(r.flash?.imageSize);
    expect(r.ok).toBe(true);
    const log = readFileSync(r.log, 'utf8');
    expect(log).toMatch(/Booting from Hard Disk/);
    expect(log).toMatch(/GRUB/);
    // Same image again: the flash is skipped after an uncached compare.
    const r2 = await boot({ lab, device: vm, image: g.iso, bmap: null });
    expect(r2.flash?.status).toBe('skipped');
    expect(r2.ok).toBe(true);
    // The whole path on the flashed disk: boot it again, stream its log over virtio, replay it.
    const out = join(dir, 'disk.orbtrace');
    const cap = await captureTrace({ lab, device: vm, out, untilSeq: 0 });
    expect(cap.stopped).toBe('until-seq');
    const rep = await replayTrace(out);
    expect(rep.ok).toBe(true);
    expect(rep.verify.count).toBeGreaterThanOrEqual(1);
  });
});

describeWithTools(['qemu-system-x86_64', 'socat'], 'a serial-board that is QEMU on a pty (through serialport)', () => {
  it('boots through the serialport library with power switched by monitor commands, then captures its trace over the same port', async () => {
    const g = guestArtifacts();
    dirs.push(g.dir);
    const dir = mkdtempSync(join(tmpdir(), 'orbital-board-'));
    dirs.push(dir);
    const mon = join(dir, 'mon.sock');
    // The "board": paused until its power-on command, console on a pty, link on COM1 after "ready".
    const q = spawn('qemu-system-x86_64', ['-nographic', '-nodefaults', '-accel', 'tcg', '-m', '128', '-S', '-serial', 'pty', '-monitor', `unix:${mon},server=on,wait=off`, '-kernel', g.elf, '-append', 'link=serial fill=50000 k=8', '-device', 'isa-debug-exit,iobase=0xf4,iosize=0x04', '-no-reboot'], { stdio: ['ignore', 'pipe', 'pipe'] });
    kids.push(q);
    // QEMU names the pty on stdout ("char device redirected to /dev/pts/N").
    const pty = await new Promise<string>((res, rej) => {
      let err = '';
      const look = (d: Buffer) => { err += d; const m = /redirected to (\/dev\/pts\/\d+)/.exec(err); if (m) res(m[1]!); };
      q.stdout!.on('data', look);
      q.stderr!.on('data', look);
      q.once('exit', () => rej(new Error(`qemu exited: ${err}`)));
    });
    const hmp = (cmd: string) => `printf '${cmd}\\n' | socat - UNIX-CONNECT:${mon} >/dev/null`;
    const { lab } = labOf(`version: 1\ndevices:\n  board:\n    kind: serial-board\n    console: { port: ${pty}, baud: 115200 }\n    power: { kind: command, on: "${hmp('cont')}", off: "${hmp('stop')}" }\n${GUEST_BOOT}    timeouts: { boot: 60s }\n`);
    const r = await boot({ lab, device: lab.devices.get('board')! });
    expect(r.failure).toBeUndefined();
    expect(r.ok).toBe(true);
    expect(r.milestones.map((m) => m.name)).toEqual(['kernel', 'cpu', 'memory', 'axiom']);
    expect(readFileSync(r.log, 'utf8')).toMatch(/SeaBIOS/);
    // The same port then carries kernel-link (the guest's link is on COM1): capture its log
    // through serialport and replay it against its checkpoints.
    const out = join(dir, 'board.orbtrace');
    const cap = await captureTrace({ lab, device: lab.devices.get('board')!, out, untilSeq: 20 });
    expect(cap.stopped).toBe('until-seq');
    const rep = await replayTrace(out);
    expect(rep.ok).toBe(true);
    expect(rep.checkpoints).toBeGreaterThanOrEqual(2);
    q.kill('SIGKILL');
  });
});
