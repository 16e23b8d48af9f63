// The `orbital-lab` command as a real child process: exit codes, --json, a SIGKILL mid-flash and a
// full target. The flash's source is a FIFO fed by the test, so the kill lands mid-write for sure.
import { describe, expect, it, afterAll } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { parseLab } from './labfile.ts';
import { dirname, join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describeWithTools } from '../scripts/testkit.ts';
import { makeImage, makeLab, MiB } from './flash/testimg.ts';
import { readJournal } from './flash/journal.ts';
import { readLock } from './lock.ts';
import { main, COMMANDS } from './cli.ts';

const BIN = resolve(import.meta.dirname, '../bin/orbital-lab.mjs');
const dirs: string[] = [];
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

function lab() { const l = makeLab(); dirs.push(l.dir); return l; }
function run(args: string[], opts: { cwd?: string } = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', cwd: opts.cwd, timeout: 60_000 });
  const lines = r.stdout.trim().split('\n');
  let last: Record<string, unknown> | null = null;
  try { last = JSON.parse(lines[lines.length - 1]!); } catch { /* not json */ }
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, last };
}

describe('orbital-lab CLI', () => {
  it('COMMAND --help prints that command\'s usage and exits 0, for every command', async () => {
    for (const c of COMMANDS()) {
      const out: string[] = [];
      const err: string[] = [];
      expect(await main([c, '--help'], { out: (x) => out.push(x), err: (x) => err.push(x) })).toBe(0);
      expect(out.join('\n')).toMatch(new RegExp(`^  ${c}( |$)`, 'm'));
      // ... and the closing paragraph whole, from its first line.
      expect(out.join('\n')).toMatch(/\n\nDEVICE may be @TAG [^]*Exit codes: 0 ok/);
      expect(err).toEqual([]);
    }
    const out: string[] = [];
    expect(await main(['flash', 'dut', '-h'], { out: (x) => out.push(x), err: () => {} })).toBe(0);
    expect(out.join('\n')).not.toMatch(/^  capture /m);
  });
  it('init writes a starter lab file that parses, and does not overwrite one without --force', async () => {
    const l = lab();
    const file = join(l.dir, 'starter', 'lab.yaml');
    mkdirSync(dirname(file));
    const out: string[] = [];
    const io = { out: (x: string) => out.push(x), err: () => {} };
    expect(await main(['--lab', file, '--json', 'init'], io)).toBe(0);
    expect(JSON.parse(out.pop()!)).toMatchObject({ ok: true, file, devices: ['vm-1', 'hosted'] });
    const parsed = parseLab(readFileSync(file, 'utf8'), file);
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    // The guest kernel of this checkout, and a target folder ready for `flash vm-1 IMG`.
    expect(parsed.lab.devices.get('vm-1')!.qemu!.kernel).toBe(resolve(import.meta.dirname, '../os-image/kernel/target/kernel/orbital-kernel.elf'));
    expect(existsSync(dirname(parsed.lab.devices.get('vm-1')!.flashTarget!))).toBe(true);
    expect(await main(['--lab', file, 'init'], io)).toBe(2);
    expect(await main(['--lab', file, 'init', '--force'], io)).toBe(0);
    expect(await main(['--lab', file, '--json', 'devices'], io)).toBe(0);
    const devs = JSON.parse(out.pop()!).devices as Array<{ name: string; console: { spec: string; found: string | null } }>;
    expect(devs.find((d) => d.name === 'hosted')!.console).toMatchObject({ spec: expect.stringMatching(/^link socket .*link\.sock$/), found: null });
  });

  it('exit codes: 0 ok, 2 bad usage / bad lab file / unknown device, 3 lab failure', () => {
    const l = lab();
    expect(run(['--lab', l.labFile, 'devices']).code).toBe(0);
    expect(run(['--lab', l.labFile, 'frobnicate']).code).toBe(2);
    expect(run(['--lab', l.labFile, 'flash', 'nope', 'x.img']).code).toBe(2);
    writeFileSync(join(l.dir, 'bad.yaml'), 'version: 1\ndevices:\n  x:\n    kind: toaster\n');
    const bad = run(['--lab', join(l.dir, 'bad.yaml'), '--json', 'devices']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/bad\.yaml:4:\d+: devices\.x\.kind/);
    expect((bad.last as { error: { code: string } }).error.code).toBe('bad-lab-file');
    const img = join(l.dir, 'os.img');
    makeImage(img, 2 * MiB, [[0, 8192]]);
    const ok = run(['--lab', l.labFile, '--json', 'flash', 'dut', img]);
    expect(ok.code).toBe(0);
    expect(ok.last).toMatchObject({ ok: true, status: 'written' });
    // Without --json and without a terminal: progress as JSON lines on stderr, the result as text.
    const plain = run(['--lab', l.labFile, 'flash', 'dut', img, '--force']);
    expect(plain.code).toBe(0);
    const events = plain.stderr.trim().split('\n').map((x) => JSON.parse(x) as { event: string; phase: string });
    expect(events.every((e) => e.event === 'progress')).toBe(true);
    expect(new Set(events.map((e) => e.phase))).toEqual(new Set(['write', 'sync', 'verify']));
    expect(plain.stdout).toMatch(/dut: wrote .* verified/);
    makeImage(join(l.dir, 'other.img'), 2 * MiB, [[0, 8192]]);
    const mismatch = run(['--lab', l.labFile, '--json', 'verify', 'dut', join(l.dir, 'other.img')]);
    expect(mismatch.code).toBe(3);
  });

  it('flashes an image piped to stdin as IMAGE "-" (a gzip stream), verified', () => {
    const l = lab();
    const img = join(l.dir, 'os.img');
    const whole = makeImage(img, 3 * MiB, [[0, 8192], [2 * MiB, 64 * 1024]]);
    const r = spawnSync(process.execPath, [BIN, '--lab', l.labFile, '--json', 'flash', 'dut', '-'], { input: gzipSync(whole), encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(0);
    const last = JSON.parse(r.stdout.trim().split('\n').pop()!) as { status: string; source: { path: string; format: string }; imageSize: number; verify: { bytes: number } };
    expect(last).toMatchObject({ status: 'written', source: { path: '-', format: 'gzip' }, imageSize: 3 * MiB });
    expect(readFileSync(l.target).equals(whole)).toBe(true);
    expect(readJournal(l.lab.stateDir, 'dut')?.status).toBe('ok');
    // A file redirected to stdin is a file: compared first (and read again from its start to be written).
    const gz = join(l.dir, 'os.img.gz');
    writeFileSync(gz, gzipSync(whole));
    const again = spawnSync('sh', ['-c', `"${process.execPath}" "${BIN}" --lab "${l.labFile}" --json flash dut - < "${gz}"`], { encoding: 'utf8', timeout: 60_000 });
    expect(again.status).toBe(0);
    expect(JSON.parse(again.stdout.trim().split('\n').pop()!)).toMatchObject({ status: 'skipped' });
    writeFileSync(l.target, Buffer.alloc(3 * MiB));
    const rewrite = spawnSync('sh', ['-c', `"${process.execPath}" "${BIN}" --lab "${l.labFile}" --json flash dut - < "${gz}"`], { encoding: 'utf8', timeout: 60_000 });
    expect(rewrite.status).toBe(0);
    expect(JSON.parse(rewrite.stdout.trim().split('\n').pop()!)).toMatchObject({ status: 'written' });
    expect(readFileSync(l.target).equals(whole)).toBe(true);
  });

  it('a SIGKILL mid-flash never reports success; the next flash starts clean', async () => {
    const l = lab();
    const img = join(l.dir, 'os.img');
    const whole = makeImage(img, 12 * MiB, [[0, 12 * MiB]]);
    const fifo = join(l.dir, 'feed');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const child = spawn(process.execPath, [BIN, '--lab', l.labFile, '--json', 'flash', 'dut', fifo, '--no-bmap'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const writing = new Promise<void>((res) => child.stdout!.on('data', (d: Buffer) => { out += d; if (/"phase":"write"/.test(out)) res(); }));
    const feed = createWriteStream(fifo);
    feed.on('error', () => {});
    feed.write(whole.subarray(0, 6 * MiB));
    await writing;
    // The device is locked by the flashing process and its journal says in progress.
    expect(readLock(l.lab.stateDir, 'dut').state).toBe('held');
    child.kill('SIGKILL');
    const exit = await new Promise<{ code: number | null; signal: string | null }>((r) => child.once('close', (code, signal) => r({ code, signal })));
    feed.destroy();
    expect(exit.signal).toBe('SIGKILL');
    expect(out).not.toMatch(/"ok":true/);
    expect(readJournal(l.lab.stateDir, 'dut')!.status).toBe('interrupted');
    expect(readLock(l.lab.stateDir, 'dut').state).toBe('stale');
    // The half-written target does not pass as the image...
    expect(run(['--lab', l.labFile, 'verify', 'dut', img, '--no-bmap']).code).toBe(3);
    // ...and the next flash takes the stale lock, starts clean and says the last one was cut.
    const again = run(['--lab', l.labFile, '--json', 'flash', 'dut', img, '--no-bmap']);
    expect(again.code).toBe(0);
    expect(again.last).toMatchObject({ ok: true, status: 'written', previous: { status: 'interrupted' } });
    expect(readFileSync(l.target).equals(whole)).toBe(true);
  });
});

describe('orbital-lab power', () => {
  it('runs a board\'s power commands, reports a failing one as the lab\'s, and refuses what it cannot do', () => {
    const l = lab();
    const f = join(l.dir, 'powered');
    const text = `version: 1\ndevices:\n  b:\n    kind: serial-board\n    console: { port: /dev/null }\n    power: { kind: command, on: "touch ${f}", off: "rm -f ${f}" }\n  broken:\n    kind: serial-board\n    console: { port: /dev/zero }\n    power: { kind: command, on: "echo relay offline >&2; exit 7", off: "true" }\n  manual:\n    kind: serial-board\n    console: { port: /dev/full }\n    power: { kind: manual }\n  vm:\n    kind: qemu\n`;
    const labFile = join(l.dir, 'power.yaml');
    writeFileSync(labFile, text);
    expect(run(['--lab', labFile, 'power', 'b', 'on']).code).toBe(0);
    expect(existsSync(f)).toBe(true);
    expect(run(['--lab', labFile, 'power', 'b', 'off']).code).toBe(0);
    expect(existsSync(f)).toBe(false);
    const broken = run(['--lab', labFile, '--json', 'power', 'broken', 'on']);
    expect(broken.code).toBe(3);
    expect(broken.last).toMatchObject({ ok: false, error: { code: 'power-failed' } });
    expect(broken.stderr).toMatch(/exited 7.*\n.*relay offline/);
    // Manual power needs a person at a terminal; the test's stdin is not one.
    expect(run(['--lab', labFile, 'power', 'manual', 'on']).code).toBe(2);
    expect(run(['--lab', labFile, 'power', 'vm', 'on']).code).toBe(2);
    expect(run(['--lab', labFile, 'power', 'b', 'sideways']).code).toBe(2);
  });
});

describeWithTools(['gzip'], 'orbital-lab flash onto a full target', () => {
  it('fails with target-full and exit 3 when the target runs out of space mid-write', () => {
    const l = lab();
    const img = join(l.dir, 'os.img');
    makeImage(img, 12 * MiB, [[0, 12 * MiB]]);
    spawnSync('gzip', ['-1', '-k', img]);
    // A file-size limit makes the target "full" at ~2 MiB (ulimit -f counts 512- or 1024-byte blocks).
    const r = spawnSync('sh', ['-c', `ulimit -f 4096; exec "${process.execPath}" "${BIN}" --lab "${l.labFile}" --json flash dut "${img}.gz" --no-bmap`], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(3);
    const last = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(last).toMatchObject({ ok: false, error: { code: 'target-full' } });
    expect(readJournal(l.lab.stateDir, 'dut')!.status).toBe('failed');
  });
});
