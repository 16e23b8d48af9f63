import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, expect, it } from 'vitest';
import { describeWithTools } from '../../scripts/testkit.ts';
import { QemuMachine } from './qemu.ts';
import { TINY_KERNEL_BANNER, TINY_KERNEL_EXIT, tinyKernel } from './testing/tiny-kernel.ts';

const machines: QemuMachine[] = [];
afterEach(async () => { for (const m of machines.splice(0)) await m.kill(); });

const collect = (m: QemuMachine) => {
  const out: number[] = [];
  m.serial!.attach({ data: (c) => out.push(...c), close: () => {} });
  return { text: () => new TextDecoder().decode(Uint8Array.from(out)) };
};
const until = async (cond: () => boolean, ms = 10_000) => {
  const t0 = Date.now();
  while (!cond()) { if (Date.now() - t0 > ms) throw new Error('condition not met in time'); await new Promise((r) => setTimeout(r, 20)); }
};
/** True when `pid` is gone or a zombie (killed, waiting to be reaped by init). */
const dead = (pid: number) => { try { return !existsSync(`/proc/${pid}`) || /^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8')); } catch { return true; } };

describeWithTools(['qemu-system-x86_64', 'as', 'ld'], 'QEMU launcher', () => {
  it('starts paused, keeps every serial byte from the first, runs, echoes and reports isa-debug-exit', async () => {
    const m = await QemuMachine.launch({ kernel: tinyKernel(), paused: true });
    machines.push(m);
    expect(m.accel).toBe('tcg'); // no vmx/svm here: KVM must not be chosen
    expect((await m.status()).running).toBe(false);
    expect(m.virtio).not.toBeNull(); // virtio-console chardev connected (legacy PCI 1af4:1003 present)
    expect(await m.qmp.execute('human-monitor-command', { 'command-line': 'info pci' })).toMatch(/1af4:1003/);
    await new Promise((r) => setTimeout(r, 300));
    const out = collect(m);
    expect(out.text()).toBe(''); // paused: not a byte yet
    await m.cont();
    await until(() => out.text().includes(TINY_KERNEL_BANNER));
    expect(out.text().startsWith('\u001bc')).toBe(true); // the firmware's very first bytes are there
    m.serial!.write(new TextEncoder().encode('ping'));
    await until(() => out.text().endsWith(`${TINY_KERNEL_BANNER}ping`));
    m.serial!.write(new TextEncoder().encode('q'));
    const exit = await m.waitExit(5000);
    expect(exit.debugExit).toBe(TINY_KERNEL_EXIT);
    expect(exit.code).toBe((TINY_KERNEL_EXIT << 1) | 1);
  });

  it('stops, continues, resets (an exit under -no-reboot) and powers off through QMP', async () => {
    const m = await QemuMachine.launch({ kernel: tinyKernel() });
    machines.push(m);
    const out = collect(m);
    await until(() => out.text().includes(TINY_KERNEL_BANNER));
    await m.stop();
    expect((await m.status()).status).toBe('paused');
    await m.cont();
    expect((await m.status()).running).toBe(true);
    await m.reset();
    const exit = await m.waitExit(5000);
    expect(exit.code).toBe(0);
    expect(exit.debugExit).toBeUndefined();

    const qtree = async (mm: QemuMachine) => String(await mm.qmp.execute('human-monitor-command', { 'command-line': 'info qtree' }));
    const mp = await QemuMachine.launch({ kernel: tinyKernel(), virtioPort: 'serialport' });
    machines.push(mp);
    expect(await qtree(mp)).toMatch(/virtserialport[\s\S]*org\.orbital\.link/);
    const mc = await QemuMachine.launch({ kernel: tinyKernel(), virtioPort: 'console' });
    machines.push(mc);
    expect(await qtree(mc)).toMatch(/virtconsole/);

    const m2 = await QemuMachine.launch({ kernel: tinyKernel(), noReboot: false, virtio: false });
    machines.push(m2);
    const e2 = await m2.powerOff();
    expect(m2.running).toBe(false);
    expect(e2.signal === null || e2.signal === 'SIGKILL').toBe(true);
  });

  const launchChild = async (guard: string) => {
    const script = fileURLToPath(new URL('./testing/launch-and-wait.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', script, guard], { stdio: ['ignore', 'pipe', 'inherit'] });
    let line = '';
    child.stdout!.on('data', (b: Buffer) => { line += b.toString(); });
    await until(() => line.includes('\n'), 30_000);
    return { child, qemu: JSON.parse(line).qemu as number };
  };

  it('control: with both guards off, QEMU does outlive its killed parent (so the tests below can fail)', async () => {
    const { child, qemu } = await launchChild('none');
    child.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 1500));
    const survived = !dead(qemu);
    try { process.kill(qemu, 'SIGKILL'); } catch { /* gone */ }
    expect(survived).toBe(true);
  });

  for (const guard of ['both', 'pdeathsig', 'watchdog']) {
    it(`leaves no orphan QEMU when its parent is SIGKILLed (guard: ${guard})`, async () => {
      const { child, qemu } = await launchChild(guard);
      expect(dead(qemu)).toBe(false);
      child.kill('SIGKILL');
      await until(() => dead(qemu), 10_000);
      expect(dead(qemu)).toBe(true);
    });
  }
});
