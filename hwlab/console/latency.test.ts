// The USB-serial latency timer (FTDI's 16 ms default) against a sysfs tree laid out as Linux's.
import { describe, expect, it, afterAll } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lowerLatency } from './latency.ts';

const dirs: string[] = [];
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });
function sysfs(tty: string, value: string | null): { root: string; file: string } {
  const root = mkdtempSync(join(tmpdir(), 'orbital-sysfs-'));
  dirs.push(root);
  const dir = join(root, 'bus/usb-serial/devices', tty);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'latency_timer');
  if (value !== null) writeFileSync(file, value);
  return { root, file };
}
// By-id links resolve to the kernel's name, as /dev/serial/by-id/usb-FTDI_… -> ../../ttyUSB3 does.
const asTty = (tty: string) => () => `/dev/${tty}`;

describe('USB-serial latency timer', () => {
  it('lowers an FTDI adapter\'s 16 ms timer to 1 ms, through a by-id name', () => {
    const s = sysfs('ttyUSB3', '16\n');
    const r = lowerLatency('/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A12345-if00-port0', { sysfs: s.root, resolve: asTty('ttyUSB3') });
    expect(r).toMatchObject({ tty: 'ttyUSB3', was: 16, now: 1 });
    expect(r!.error).toBeUndefined();
    expect(readFileSync(s.file, 'utf8').trim()).toBe('1');
  });

  it('leaves a timer already at 1 ms alone, and only reads it when asked to', () => {
    const s = sysfs('ttyUSB0', '1\n');
    expect(lowerLatency('/dev/ttyUSB0', { sysfs: s.root, resolve: asTty('ttyUSB0') })).toMatchObject({ was: 1, now: 1 });
    const t = sysfs('ttyUSB1', '16\n');
    expect(lowerLatency('/dev/ttyUSB1', { sysfs: t.root, resolve: asTty('ttyUSB1'), readOnly: true })).toMatchObject({ was: 16, now: 16 });
    expect(readFileSync(t.file, 'utf8').trim()).toBe('16');
  });

  it('ignores ports without a latency timer (a pty, a CDC-ACM port, a missing port) and junk in the file', () => {
    const s = sysfs('ttyUSB2', null);
    expect(lowerLatency('/dev/ttyUSB2', { sysfs: s.root, resolve: asTty('ttyUSB2') })).toBeNull();
    expect(lowerLatency('/dev/ttyACM0', { sysfs: s.root, resolve: asTty('ttyACM0') })).toBeNull();
    expect(lowerLatency('/dev/does-not-exist')).toBeNull();
    const j = sysfs('ttyUSB4', 'fast\n');
    expect(lowerLatency('/dev/ttyUSB4', { sysfs: j.root, resolve: asTty('ttyUSB4') })).toBeNull();
  });

  // A sysfs attribute that refuses writes even from root stands in for latency_timer without a udev rule.
  const readOnlyAttr = '/sys/kernel/mm/transparent_hugepage/hpage_pmd_size';
  const have = existsSync(readOnlyAttr);
  const why = `no ${readOnlyAttr} on this kernel to stand in for a read-only sysfs file`;
  if (!have) console.warn(`SKIP latency timer that cannot be lowered: ${why}${process.env.CI === 'true' ? ' (CI=true: this fails instead)' : ''}`);
  // Under CI=true a missing stand-in fails rather than silently stops being tested.
  (have || process.env.CI === 'true' ? it : it.skip)('says why a timer stays high and how to lower it for good', () => {
    if (!have) throw new Error(`cannot run: ${why}`);
    const s = sysfs('ttyUSB5', null);
    symlinkSync(readOnlyAttr, s.file);
    const r = lowerLatency('/dev/ttyUSB5', { sysfs: s.root, resolve: asTty('ttyUSB5') })!;
    expect(r.was).toBeGreaterThan(1);
    expect(r.now).toBe(r.was);
    expect(r.error).toMatch(/^E[A-Z]+$/);
    expect(r.hint).toContain(`echo 1 > ${s.file}`);
    expect(r.hint).toContain('ATTR{latency_timer}="1"');
  });
});
