// `orbital-lab console`: one writer owns the device's console, read-only watchers attach beside it
// and get the recent output replayed; the device shows as in use by the console.
import { expect, it, afterAll } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describeWithTools } from '../../scripts/testkit.ts';
import { guestArtifacts, GUEST_BOOT } from '../testguest.ts';

const BIN = resolve(import.meta.dirname, '../../bin/orbital-lab.mjs');
const kids: ChildProcess[] = [];
const dirs: string[] = [];
afterAll(() => { for (const k of kids) k.kill('SIGKILL'); for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

/** A lab file with one qemu device booting a copy of the guest kernel. */
function guestLab(prefix: string) {
  const g = guestArtifacts();
  dirs.push(g.dir);
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dir);
  const lab = join(dir, 'lab.yaml');
  writeFileSync(lab, `version: 1\ndevices:\n  vm:\n    kind: qemu\n    qemu: { kernel: ${g.elf} }\n${GUEST_BOOT}`);
  return { g, lab };
}

/** `orbital-lab --lab LAB ARGS...` as a child with piped stdio (killed after the tests). */
function consoleCli(lab: string, ...args: string[]): ChildProcess {
  const p = spawn(process.execPath, [BIN, '--lab', lab, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  kids.push(p);
  return p;
}

function collect(p: ChildProcess, stream: 'stdout' | 'stderr') {
  let text = '';
  p[stream]!.on('data', (d: Buffer) => { text += d.toString('latin1'); });
  return {
    get text() { return text; },
    until: (re: RegExp, ms = 30_000) => new Promise<void>((res, rej) => {
      const t0 = Date.now();
      const tick = () => { if (re.test(text)) res(); else if (Date.now() - t0 > ms) rej(new Error(`no ${re} in ${stream}: ${text.slice(-500)}`)); else setTimeout(tick, 20); };
      tick();
    }),
  };
}

describeWithTools(['qemu-system-x86_64'], 'orbital-lab console with read-only watchers', () => {
  it('serves watchers the replayed and live console while one writer holds the device', async () => {
    const { lab } = guestLab('orbital-console-');
    const writer = consoleCli(lab, 'console', 'vm');
    const wout = collect(writer, 'stdout');
    await wout.until(/ready: head/);
    const devs = spawnSync(process.execPath, [BIN, '--lab', lab, '--json', 'devices'], { encoding: 'utf8' });
    const vm = JSON.parse(devs.stdout.trim().split('\n').pop()!).devices[0];
    expect(vm.state).toBe('in-use');
    expect(vm.holder.command).toBe('console');
    // A second writer is refused (exit 3, device-locked) ...
    const second = spawnSync(process.execPath, [BIN, '--lab', lab, '--json', 'console', 'vm'], { encoding: 'utf8', input: '' });
    expect(second.status).toBe(3);
    expect(second.stdout).toMatch(/device-locked/);
    // ... but a watcher attaches, read-only, and gets what the boot printed.
    const watcher = consoleCli(lab, 'console', 'vm', '--watch');
    const wat = collect(watcher, 'stdout');
    await wat.until(/watching read-only/);
    await wat.until(/ready: head/);
    watcher.stdin!.write('typed by a watcher\n');
    // The writer leaves (stdin ends): QEMU is powered off, the watcher is told and exits.
    writer.stdin!.end();
    const code = await new Promise<number | null>((r) => writer.once('close', r));
    expect(code).toBe(0);
    await wat.until(/console closed/);
    await new Promise((r) => watcher.once('close', r));
    const after = spawnSync(process.execPath, [BIN, '--lab', lab, '--json', 'devices'], { encoding: 'utf8' });
    expect(JSON.parse(after.stdout.trim().split('\n').pop()!).devices[0].state).toBe('free');
  });
});

describeWithTools(['qemu-system-x86_64'], 'orbital-lab console escape keys', () => {
  it('Ctrl-] r resets the device mid-session (recorded as a power cycle), Ctrl-] ? lists the keys, Ctrl-] q quits', async () => {
    const { lab } = guestLab('orbital-console-esc-');
    const writer = consoleCli(lab, 'console', 'vm');
    const out = collect(writer, 'stdout');
    const err = collect(writer, 'stderr');
    await out.until(/ready: head/);
    writer.stdin!.write('\x1d?');
    await err.until(/Ctrl-\] then: q or \. quit - r reset the device/);
    writer.stdin!.write('\x1db');
    await err.until(/no BREAK: vm is a qemu device: its console is a socket to QEMU's serial port, which carries no BREAK/);
    // The reset: the guest boots again on the same console, and says it is ready a second time.
    const before = out.text.split('ready: head').length;
    writer.stdin!.write('\x1dr');
    await err.until(/reset \(QMP system_reset\)/);
    await out.until(new RegExp(`(ready: head[^]*){${before}}`), 60_000);
    writer.stdin!.write('\x1dq');
    const code = await new Promise<number | null>((r) => writer.once('close', r));
    expect(code, err.text).toBe(0);
    const h = spawnSync(process.execPath, [BIN, '--lab', lab, '--json', 'history', 'vm'], { encoding: 'utf8' });
    const vm = JSON.parse(h.stdout.trim().split('\n').pop()!).devices[0];
    expect(vm).toMatchObject({ power: 'on', powerFailures: 0 });
  });

  it('ends when the device goes away after the boot came up (its QEMU killed): a lab failure, exit 3', async () => {
    const { g, lab } = guestLab('orbital-console-gone-');
    const writer = consoleCli(lab, '--json', 'console', 'vm');
    const out = collect(writer, 'stdout');
    const err = collect(writer, 'stderr');
    await out.until(/ready: head/);
    // Well after the boot's outcome (ok): the QEMU behind the console dies.
    await new Promise((r) => setTimeout(r, 300));
    const pids = spawnSync('pgrep', ['-f', g.elf], { encoding: 'utf8' }).stdout.trim().split('\n').filter(Boolean);
    expect(pids.length).toBe(1);
    process.kill(Number(pids[0]), 'SIGKILL');
    const code = await new Promise<number | null>((r) => writer.once('close', r));
    expect(code, err.text).toBe(3);
    expect(err.text).toMatch(/QEMU killed by SIGKILL/);
    expect(JSON.parse(out.text.trim().split('\n').pop()!)).toMatchObject({ ok: false, failure: { blame: 'lab', code: 'console-gone' } });
  });
});
