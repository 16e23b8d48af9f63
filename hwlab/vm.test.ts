// QMP power for a qemu device through the real `orbital-lab` command (child processes): `power on`
// leaves a lab-owned QEMU running after the command exits; console, boot and capture attach to it
// instead of starting a second one; `power off` ends it; a dead or reused pid makes the record
// stale. And a QEMU that a console command started itself dies with that command, even by SIGKILL.
import { expect, it, afterAll, beforeAll } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describeWithTools } from '../scripts/testkit.ts';
import { guestArtifacts, GUEST_BOOT } from './testguest.ts';
import { pidAlive, readVm, recordPath } from './vm.ts';
import { readLock } from './lock.ts';
import { parseLab } from './labfile.ts';
import { captureTrace } from './traces/capture.ts';
import { powerOnSession } from './boot.ts';
import { verifyTraceFile } from '../axiom/node/trace-file.ts';

const BIN = resolve(import.meta.dirname, '../bin/orbital-lab.mjs');
const dirs: string[] = [];
const pids: number[] = [];
afterAll(() => {
  for (const p of pids) { try { process.kill(p, 'SIGKILL'); } catch { /* gone */ } }
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function run(args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 120_000 });
  const lines = r.stdout.trim().split('\n');
  let last: any = null;
  try { last = JSON.parse(lines[lines.length - 1]!); } catch { /* not json */ }
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, last };
}

/** Live (not zombie) QEMU processes whose command line mentions `marker`. */
function qemusWith(marker: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    let cmd = '';
    try { cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8'); } catch { continue; }
    // QEMU itself, not the shell that runs a powered-on QEMU and waits for it (its argv holds QEMU's).
    if (/(^|\/)qemu-system[^\0]*$/.test(cmd.split('\0')[0]!) && cmd.includes(marker) && pidAlive(Number(d))) out.push(Number(d));
  }
  return out;
}

/** The CLI as a child process the event loop keeps running beside (a relay in this process must keep moving bytes). */
function runAsync(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string; last: any }> {
  const c = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  c.stdout!.on('data', (d: Buffer) => { stdout += d; });
  c.stderr!.on('data', (d: Buffer) => { stderr += d; });
  return new Promise((res) => c.once('close', (code) => {
    let last: any = null;
    try { last = JSON.parse(stdout.trim().split('\n').pop()!); } catch { /* not json */ }
    res({ code, stdout, stderr, last });
  }));
}

/**
 * A relay between QEMU's COM1 socket and the lab, as a console server (ser2net, conserver) or a
 * loaded machine's socket buffers are: it connects to QEMU at once and holds what QEMU sends; its
 * first client gets that backlog late, 32 bytes every 40 ms. Each client has its own connection
 * to QEMU, closed with it (so QEMU sees the client go). `held` is everything the first upstream
 * connection received.
 */
function slowRelay(upstream: string, listen: string): Promise<{ server: Server; held: () => string }> {
  let held = '';
  const backlog: Buffer[] = [];
  const first = connect({ path: upstream });
  first.on('error', () => { /* QEMU gone */ });
  first.on('data', (d: Buffer) => { held += d.toString('latin1'); backlog.push(d); });
  let served = false;
  const server = createServer((down: Socket) => {
    down.on('error', () => { /* lab gone */ });
    if (!served) {
      served = true;
      const timer = setInterval(() => {
        const b = backlog.shift();
        if (!b) return;
        if (b.length > 32) backlog.unshift(b.subarray(32));
        if (!down.destroyed) down.write(b.subarray(0, 32));
      }, 40);
      down.on('data', (d: Buffer) => first.write(d));
      down.on('close', () => { clearInterval(timer); backlog.length = 0; first.destroy(); });
      first.on('close', () => down.destroy());
    } else {
      const up = connect({ path: upstream });
      up.on('error', () => { /* QEMU gone */ });
      up.pipe(down);
      down.pipe(up);
      down.on('close', () => up.destroy());
      up.on('close', () => down.destroy());
    }
  });
  return new Promise((res) => first.once('connect', () => server.listen(listen, () => res({ server, held: () => held }))));
}

/** The guest's own timestamps ([  123.456 ms]) in console text. */
const stampsOf = (text: string) => [...text.matchAll(/\[\s*(\d+\.\d+) ms\]/g)].map((m) => Number(m[1]));

async function until<T>(what: string, fn: () => T | undefined | null | false): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() - t0 > 60_000) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describeWithTools(['qemu-system-x86_64'], 'orbital-lab power for a qemu device (QMP)', () => {
  let g!: ReturnType<typeof guestArtifacts>;
  let dir!: string;
  let labFile!: string;
  let stateDir!: string;
  beforeAll(() => {
    g = guestArtifacts();
    dirs.push(g.dir);
    dir = mkdtempSync(join(tmpdir(), 'orbital-vm-'));
    dirs.push(dir);
    labFile = join(dir, 'lab.yaml');
    stateDir = join(dir, '.orbital/lab');
    // timeouts.power: how long power off waits for the guest after the ACPI button (this kernel has no ACPI).
    writeFileSync(labFile, `version: 1\ndevices:\n  vm:\n    kind: qemu\n    qemu: { kernel: ${g.elf} }\n${GUEST_BOOT}    timeouts: { boot: 60s, power: 1s }\n`);
  });

  it('power on outlives the command; devices, console, boot and capture attach to it; power off ends it', async () => {
    const on = run(['--lab', labFile, '--json', 'power', 'vm', 'on', '--append', 'fill=600000 k=8']);
    expect(on.code).toBe(0);
    expect(on.last).toMatchObject({ ok: true, how: 'qmp', qemu: { done: 'started' } });
    const pid: number = on.last.qemu.pid;
    pids.push(pid);
    // The command has exited; its QEMU runs on, unlocked, and says so in devices.
    expect(pidAlive(pid)).toBe(true);
    expect(qemusWith(g.dir)).toEqual([pid]);
    expect(readLock(stateDir, 'vm').state).toBe('free');
    const dev = run(['--lab', labFile, '--json', 'devices']);
    expect(dev.code).toBe(0);
    expect(dev.last.devices[0]).toMatchObject({ name: 'vm', state: 'free', power: { state: 'on', pid } });
    expect(run(['--lab', labFile, 'devices']).stdout).toMatch(new RegExp(`power on \\(QEMU pid ${pid} `));
    // QEMU wrote the console from its first byte while nobody was attached.
    const consoleLog: string = on.last.qemu.consoleLog;
    await until('the guest to boot', () => /ready: head/.test(readFileSync(consoleLog, 'utf8')));
    expect(readFileSync(consoleLog, 'latin1').startsWith('\x1bc')).toBe(true);
    // Nobody is attached to watch; the refusal names the file QEMU writes the console to.
    const watch = run(['--lab', labFile, '--json', 'console', 'vm', '--watch']);
    expect(watch.code).toBe(3);
    expect(watch.last.error.message).toContain(consoleLog);
    // Powering on again is a no-op that names the running QEMU.
    expect(run(['--lab', labFile, '--json', 'power', 'vm', 'on']).last).toMatchObject({ ok: true, qemu: { done: 'already-on', pid } });

    // console joins the running guest (no reset, no second QEMU) and leaves it running.
    const con = spawn(process.execPath, [BIN, '--lab', labFile, '--json', 'console', 'vm'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let conErr = '';
    let conOut = '';
    con.stderr!.on('data', (d: Buffer) => { conErr += d; });
    con.stdout!.on('data', (d: Buffer) => { conOut += d; });
    await until('the console banner', () => /attached to the running QEMU pid/.test(conErr));
    expect(readLock(stateDir, 'vm').state).toBe('held');
    expect(qemusWith(g.dir)).toEqual([pid]);
    con.stdin!.end();
    const conCode = await new Promise<number | null>((r) => con.once('close', (c) => r(c)));
    expect(conCode).toBe(0);
    expect(JSON.parse(conOut.trim().split('\n').pop()!)).toMatchObject({ ok: true, attached: { pid, reset: false } });
    expect(pidAlive(pid)).toBe(true);

    // boot resets the running QEMU after attaching: its log starts with the reset's first byte.
    const b = run(['--lab', labFile, '--json', 'boot', 'vm']);
    expect(b.code).toBe(0);
    expect(b.last).toMatchObject({ ok: true, stage: 'axiom', attached: { pid, reset: true } });
    const log = readFileSync(b.last.log, 'utf8').split('\n');
    expect(log[0]).toMatch(/--- reset \(attached to the running QEMU \(pid \d+/);
    expect(log[1]).toMatch(/^\S+\s+\+\d+\.\d{3}s \\ec/);
    expect(log.filter((l) => /ready: head/.test(l)).length).toBe(1);
    // --append cannot change a running QEMU's command line: bad usage, nothing touched.
    const appendRunning = run(['--lab', labFile, '--json', 'boot', 'vm', '--append', 'k=4']);
    expect(appendRunning.code).toBe(2);
    expect(appendRunning.last.error.message).toMatch(/power vm off/);
    expect(qemusWith(g.dir)).toEqual([pid]);

    // capture joins it over the virtio link (served by that QEMU) and the trace replays.
    const out = join(dir, 'vm.orbtrace');
    const cap = run(['--lab', labFile, '--json', 'capture', 'vm', '-o', out, '--until', '30']);
    expect(cap.code).toBe(0);
    expect(cap.last).toMatchObject({ ok: true, stopped: 'until-seq' });
    expect(run(['--lab', labFile, '--json', 'replay', out]).last).toMatchObject({ ok: true });
    expect(qemusWith(g.dir)).toEqual([pid]);
    // Resume that file in-process, cutting the link connection mid-stream: the capture connects
    // to the running QEMU's virtio socket again and the file goes on with no gap or duplicate.
    const parsed = parseLab(readFileSync(labFile, 'utf8'), labFile);
    if (!parsed.ok) throw new Error('lab file');
    const links: Array<{ close(): void }> = [];
    let cut = false;
    const had = verifyTraceFile(out).count;
    const more = await captureTrace({ lab: parsed.lab, device: parsed.lab.devices.get('vm')!, out, untilSeq: had + 40, onLink: (t) => { links.push(t); }, onProgress: (p) => { if (!cut && p.seq >= had + 5) { cut = true; links[0]!.close(); } } });
    expect(cut).toBe(true);
    expect(links.length).toBeGreaterThanOrEqual(2);
    expect(more).toMatchObject({ resumedFrom: had, stopped: 'until-seq' });
    expect(more.reconnects).toBeGreaterThanOrEqual(1);
    expect(verifyTraceFile(out)).toMatchObject({ ok: true, count: more.lastSeq + 1 });
    expect(pidAlive(pid)).toBe(true);

    // power cycle: a QMP reset of the same QEMU.
    expect(run(['--lab', labFile, '--json', 'power', 'vm', 'cycle']).last).toMatchObject({ ok: true, qemu: { done: 'reset', pid } });

    // power off: the guest ignores the ACPI button (no ACPI), so QMP quit ends QEMU.
    const off = run(['--lab', labFile, '--json', 'power', 'vm', 'off']);
    expect(off.code).toBe(0);
    expect(off.last).toMatchObject({ ok: true, qemu: { done: 'quit', pid } });
    expect(pidAlive(pid)).toBe(false);
    expect(qemusWith(g.dir)).toEqual([]);
    expect(readVm(stateDir, 'vm').state).toBe('off');
    expect(run(['--lab', labFile, '--json', 'devices']).last.devices[0].power).toEqual({ state: 'off' });
    expect(run(['--lab', labFile, '--json', 'power', 'vm', 'off']).last).toMatchObject({ ok: true, qemu: { done: 'already-off' } });
  });

  it('boot on a powered-on device takes no byte of the earlier boot, however late it arrives', async () => {
    const on = run(['--lab', labFile, '--json', 'power', 'vm', 'on']);
    expect(on.code).toBe(0);
    const pid: number = on.last.qemu.pid;
    pids.push(pid);
    const consoleLog: string = on.last.qemu.consoleLog;
    await until('the guest to boot', () => /ready: head/.test(readFileSync(consoleLog, 'utf8')));
    // COM1 reaches the lab through a relay that holds the bytes of the boot before this one and
    // hands them over late (the power record names the relay's socket instead of QEMU's).
    const rp = recordPath(stateDir, 'vm');
    const rec = JSON.parse(readFileSync(rp, 'utf8'));
    const relay = await slowRelay(rec.serial, join(dir, 'relay.sock'));
    writeFileSync(rp, JSON.stringify({ ...rec, serial: join(dir, 'relay.sock') }));
    try {
      // An earlier boot that the relay holds whole: a reset (power cycle) while the relay listens.
      expect((await runAsync(['--lab', labFile, '--json', 'power', 'vm', 'cycle'])).last).toMatchObject({ ok: true, qemu: { done: 'reset', pid } });
      await until('the relay to hold the earlier boot', () => /ready: head/.test(relay.held()));
      // The earlier boots' own timestamps: QEMU keeps the TSC running across a reset, so every
      // line of the boot to come is stamped later than all of them.
      const before = Math.max(...stampsOf(readFileSync(consoleLog, 'latin1')));
      expect(before).toBeGreaterThan(0);
      const b = await runAsync(['--lab', labFile, '--json', 'boot', 'vm']);
      expect(b.code).toBe(0);
      expect(b.last).toMatchObject({ ok: true, stage: 'axiom', attached: { pid, reset: true } });
      const log = readFileSync(b.last.log, 'utf8');
      const lines = log.split('\n');
      expect(lines[0]).toMatch(/--- reset \(attached to the running QEMU/);
      expect(lines[1]).toMatch(/^\S+\s+\+\d+\.\d{3}s \\ec/);
      const stamps = stampsOf(log);
      expect(stamps.length).toBeGreaterThanOrEqual(5);
      // Not one line of the earlier boot (which the relay still held when the boot began).
      expect(stamps.filter((t) => t <= before)).toEqual([]);
      expect(lines.filter((l) => /ready: head/.test(l)).length).toBe(1);
    } finally { relay.server.close(); }
    expect(run(['--lab', labFile, '--json', 'power', 'vm', 'off']).last).toMatchObject({ ok: true, qemu: { pid } });
    expect(pidAlive(pid)).toBe(false);
  });

  it('detects a stale record: QEMU killed, or its pid now another process', async () => {
    const on = run(['--lab', labFile, '--json', 'power', 'vm', 'on']);
    expect(on.code).toBe(0);
    const pid: number = on.last.qemu.pid;
    pids.push(pid);
    // A pid reused by another process: same pid, different start time.
    const rp = recordPath(stateDir, 'vm');
    const rec = JSON.parse(readFileSync(rp, 'utf8'));
    writeFileSync(rp, JSON.stringify({ ...rec, pidStart: rec.pidStart + 1 }));
    expect(run(['--lab', labFile, '--json', 'devices']).last.devices[0].power).toMatchObject({ state: 'stale', why: `pid ${pid} now belongs to another process` });
    writeFileSync(rp, JSON.stringify(rec));
    expect(readVm(stateDir, 'vm').state).toBe('on');
    // The QEMU dies under the lab.
    process.kill(pid, 'SIGKILL');
    await until('QEMU to die', () => !pidAlive(pid));
    const dev = run(['--lab', labFile, '--json', 'devices']);
    expect(dev.last.devices[0].power).toMatchObject({ state: 'stale', pid, why: `QEMU (pid ${pid}) is gone` });
    // How it ended, though no lab command was its parent: the exit status its shell recorded.
    expect(dev.last.devices[0].power.exit).toMatchObject({ code: null, signal: 'SIGKILL' });
    expect(run(['--lab', labFile, 'devices']).stdout).toMatch(/power off \(stale record: QEMU \(pid \d+\) is gone; it ended: QEMU killed by SIGKILL\)/);
    // The next power on takes over the stale record and says so; power off then ends it.
    const again = run(['--lab', labFile, '--json', 'power', 'vm', 'on']);
    expect(again.last).toMatchObject({ ok: true, qemu: { done: 'started', staleRecord: `QEMU (pid ${pid}) is gone` } });
    const pid2: number = again.last.qemu.pid;
    pids.push(pid2);
    // A console attached to it sees its QEMU killed: the lab's failure (console-gone), not the OS's.
    const parsed = parseLab(readFileSync(labFile, 'utf8'), labFile);
    if (!parsed.ok) throw new Error('lab file');
    const s = await powerOnSession({ lab: parsed.lab, device: parsed.lab.devices.get('vm')!, keep: true, timeoutMs: 600_000, running: 'join' });
    expect(s.attached?.pid).toBe(pid2);
    process.kill(pid2, 'SIGKILL');
    const outcome = await s.watch.done;
    await s.stop();
    expect(outcome.failure).toMatchObject({ blame: 'lab', code: 'console-gone' });
    expect(outcome.failure!.message).toMatch(new RegExp(`QEMU \\(pid ${pid2}, .*exited: QEMU killed by SIGKILL`));
    expect(s.attached?.exit).toMatchObject({ signal: 'SIGKILL' });
    await until('QEMU to die', () => !pidAlive(pid2));
    // boot on a device whose record is stale: the device is off, so boot starts (and ends) its own QEMU.
    const b = run(['--lab', labFile, '--json', 'boot', 'vm']);
    expect(b.code).toBe(0);
    expect(b.last.ok).toBe(true);
    expect(b.last.attached).toBeUndefined();
    expect(readVm(stateDir, 'vm').state).toBe('off');
    expect(qemusWith(g.dir)).toEqual([]);
    // power off on a stale record removes it and says so.
    const third = run(['--lab', labFile, '--json', 'power', 'vm', 'on']);
    expect(third.last.qemu.done).toBe('started');
    const pid3: number = third.last.qemu.pid;
    pids.push(pid3);
    process.kill(pid3, 'SIGKILL');
    await until('QEMU to die', () => !pidAlive(pid3));
    expect(run(['--lab', labFile, '--json', 'power', 'vm', 'off']).last).toMatchObject({ ok: true, qemu: { done: 'stale-record', pid: pid3 } });
    expect(readVm(stateDir, 'vm').state).toBe('off');
    // A guest that crashed out of a powered-on QEMU (page fault -> isa-debug-exit 0x2a): its
    // status is known to every later command, and it is the guest's.
    const crash = run(['--lab', labFile, '--json', 'power', 'vm', 'on', '--append', 'fault=page']);
    expect(crash.last.qemu.done).toBe('started');
    pids.push(crash.last.qemu.pid);
    await until('the guest to crash out of QEMU', () => !pidAlive(crash.last.qemu.pid));
    await until('its exit status', () => run(['--lab', labFile, '--json', 'devices']).last.devices[0].power.exit);
    expect(run(['--lab', labFile, '--json', 'devices']).last.devices[0].power).toMatchObject({ state: 'stale', exit: { code: 85, debugExit: 0x2a } });
    expect(run(['--lab', labFile, 'devices']).stdout).toMatch(/it ended: guest exited through isa-debug-exit with value 0x2a \(status 85\)/);
    expect(run(['--lab', labFile, '--json', 'power', 'vm', 'off']).last).toMatchObject({ ok: true, qemu: { done: 'stale-record' } });
  });

  it('a QEMU that console started itself dies with the console command, even by SIGKILL', async () => {
    expect(readVm(stateDir, 'vm').state).toBe('off');
    const con = spawn(process.execPath, [BIN, '--lab', labFile, 'console', 'vm'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let err = '';
    con.stderr!.on('data', (d: Buffer) => { err += d; });
    await until('the console banner', () => /\[vm console; boot [0-9a-f]+/.test(err));
    const [q] = await until('its QEMU', () => { const l = qemusWith(g.dir); return l.length === 1 && l; });
    pids.push(q!);
    con.kill('SIGKILL');
    await new Promise((r) => con.once('close', r));
    await until('the orphan guards to kill QEMU', () => !pidAlive(q!));
    expect(qemusWith(g.dir)).toEqual([]);
    // It was never a powered-on device, and the killed command's lock is stale, not held.
    expect(readVm(stateDir, 'vm').state).toBe('off');
    expect(readLock(stateDir, 'vm').state).toBe('stale');
  });

  it('bad usage: typed errors with exit 2', () => {
    const bad = run(['--lab', labFile, '--json', 'power', 'vm', 'off', '--append', 'k=4']);
    expect(bad.code).toBe(2);
    expect(bad.last).toMatchObject({ ok: false, error: { kind: 'bad-input', code: 'bad-usage' } });
    expect(run(['--lab', labFile, '--json', 'power', 'vm', 'sideways']).code).toBe(2);
    // A QEMU binary that is not installed: the person's setup, named, and no record left behind.
    const noQemu = join(dir, 'noqemu.yaml');
    writeFileSync(noQemu, `version: 1\nstate: noqemu-state\ndevices:\n  vm:\n    kind: qemu\n    qemu: { binary: qemu-system-nonesuch, kernel: ${g.elf} }\n`);
    const missing = run(['--lab', noQemu, '--json', 'power', 'vm', 'on']);
    expect(missing.code).toBe(2);
    expect(missing.last).toMatchObject({ ok: false, error: { code: 'missing-tool' } });
    expect(missing.last.error.message).toMatch(/qemu-system-nonesuch.*install/);
    expect(readVm(join(dir, 'noqemu-state'), 'vm').state).toBe('off');
  });
});
