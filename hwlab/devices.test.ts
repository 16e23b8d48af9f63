import { describe, expect, it, afterAll } from 'vitest';
import { mkdtempSync, rmSync, symlinkSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseLab } from './labfile.ts';
import { findConsolePort, inventory } from './devices.ts';
import { acquireLock } from './lock.ts';
import { LabError } from './errors.ts';

const dirs: string[] = [];
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

describe('device inventory', () => {
  it('finds a by-id console again after the board re-enumerates, and says when it is unplugged', () => {
    const dir = mkdtempSync(join(tmpdir(), 'orbital-dev-')); dirs.push(dir);
    const byId = join(dir, 'usb-FTDI_FT232R_A12345-if00-port0');
    const r = parseLab(`version: 1\ndevices:\n  b:\n    kind: serial-board\n    console: { by-id: ${byId}, baud: 115200 }\n`, join(dir, 'lab.yaml'));
    if (!r.ok) throw new Error(JSON.stringify(r.issues));
    const b = r.lab.devices.get('b')!;
    symlinkSync('/dev/null', byId); // "ttyUSB0"
    expect(findConsolePort(b)).toBe('/dev/null');
    unlinkSync(byId); symlinkSync('/dev/zero', byId); // re-enumerated as "ttyUSB1"
    expect(findConsolePort(b)).toBe('/dev/zero');
    unlinkSync(byId); // unplugged
    try { findConsolePort(b); throw new Error('found a missing port'); } catch (e) {
      expect((e as LabError).code).toBe('console-missing');
      expect((e as LabError).blame).toBe('lab');
    }
  });

  it('lists devices with who holds them, filtered by tag', () => {
    const dir = mkdtempSync(join(tmpdir(), 'orbital-dev-')); dirs.push(dir);
    const r = parseLab(`version: 1\ndevices:\n  a:\n    kind: qemu\n    tags: [x86]\n  b:\n    kind: qemu\n    tags: [arm]\n`, join(dir, 'lab.yaml'));
    if (!r.ok) throw new Error(JSON.stringify(r.issues));
    const lock = acquireLock(r.lab.stateDir, 'a', 'boot', 'alice@lab');
    const all = inventory(r.lab);
    expect(all.map((d) => [d.name, d.state])).toEqual([['a', 'in-use'], ['b', 'free']]);
    expect(all[0]!.holder).toMatchObject({ owner: 'alice@lab', command: 'boot', pid: process.pid });
    expect(inventory(r.lab, ['arm']).map((d) => d.name)).toEqual(['b']);
    lock.release();
    expect(inventory(r.lab)[0]!.state).toBe('free');
  });
});
