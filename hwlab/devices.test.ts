import { describe, expect, it, afterAll } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { initAxiom, toHex } from '../axiom/index.ts';
import { buildImage, generateKeys } from '../os-image/image/image.ts';
import { makeLab, MiB } from './flash/testimg.ts';
import { journalPath } from './flash/journal.ts';
import { parseLab } from './labfile.ts';
import { findConsolePort, inventory } from './devices.ts';
import { acquireLock } from './lock.ts';
import { LabError } from './errors.ts';

const BIN = resolve(import.meta.dirname, '../bin/orbital-lab.mjs');
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

describe('devices names the signed image last flashed to a device', () => {
  it('as the flash recorded it (also once the file is rebuilt or gone); from the .orbimg for an older journal', async () => {
    await initAxiom();
    const key = generateKeys();
    const l = makeLab();
    dirs.push(l.dir);
    writeFileSync(join(l.dir, 'release.pub'), toHex(key.publicKey) + '\n');
    writeFileSync(l.labFile, readFileSync(l.labFile, 'utf8').replace('version: 1\n', 'version: 1\ntrust: [release.pub]\n'));
    const disk = join(l.dir, 'part-disk');
    writeFileSync(disk, randomBytes(2 * MiB));
    const img = join(l.dir, 'os.orbimg');
    const built = await buildImage(img, { name: 'orbital-guest', version: '0.3.0', created: 1_700_000_000, parts: [{ name: 'disk', path: disk }] }, key);
    const run = (args: string[]) => spawnSync(process.execPath, [BIN, '--lab', l.labFile, ...args], { encoding: 'utf8', timeout: 60_000 });
    expect(run(['flash', 'dut', img]).status).toBe(0);
    const j = JSON.parse(run(['--json', 'devices']).stdout.trim().split('\n').pop()!);
    expect(j.devices[0].image).toMatchObject({ source: img, signed: { id: built.id, name: 'orbital-guest', version: '0.3.0', key: toHex(key.publicKey), part: 'disk' } });
    expect(run(['devices']).stdout).toMatch(/last flash ok \S+ \(signed image orbital-guest 0\.3\.0, id [0-9a-f]{16}…, part 'disk'\)/);
    // The file rebuilt with other bytes, then deleted: the device still holds 0.3.0, as the flash
    // recorded it in the journal once it had checked the signature and the part's BLAKE3.
    writeFileSync(disk, randomBytes(2 * MiB));
    await buildImage(img, { name: 'orbital-guest', version: '0.4.0', created: 1_700_000_001, parts: [{ name: 'disk', path: disk }] }, key);
    const rebuilt = JSON.parse(run(['--json', 'devices']).stdout.trim().split('\n').pop()!).devices[0].image;
    expect(rebuilt.signed).toMatchObject({ id: built.id, version: '0.3.0' });
    rmSync(img);
    expect(run(['devices']).stdout).toMatch(/signed image orbital-guest 0\.3\.0, id [0-9a-f]{16}…, part 'disk'/);
    // A journal from before images were recorded: named only while the file still holds those bytes.
    await buildImage(img, { name: 'orbital-guest', version: '0.4.0', created: 1_700_000_001, parts: [{ name: 'disk', path: disk }] }, key);
    const jp = journalPath(l.lab.stateDir, 'dut');
    const legacy = JSON.parse(readFileSync(jp, 'utf8')); delete legacy.signed; writeFileSync(jp, JSON.stringify(legacy));
    const after = JSON.parse(run(['--json', 'devices']).stdout.trim().split('\n').pop()!).devices[0].image;
    expect(after.signed).toBeUndefined();
    expect(after.signedWhy).toMatch(/no longer holds a part with the flashed BLAKE3/);
    expect(run(['devices']).stdout).toMatch(/os\.orbimg, blake3 [0-9a-f]{16}…; .*no longer holds/);
  });
});
