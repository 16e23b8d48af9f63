// `orbital-lab run`: commands typed on a console and their answers checked - on the real guest
// kernel in QEMU (its shell, over COM1 while the link runs on virtio), and on a "board" played on a
// socat pty pair whose UART drops characters typed at full speed (console.char-delay fixes it).
import { describe, expect, it, afterAll, beforeAll } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, write, writeFileSync, writeSync } from 'node:fs';
import { ReadStream } from 'node:tty';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeWithTools } from '../scripts/testkit.ts';
import { parseLab, type Lab } from './labfile.ts';
import { runCommands, type RunResult } from './run.ts';
import { main } from './cli.ts';
import { guestArtifacts, GUEST_BOOT } from './testguest.ts';
import { makeBmap, makeImage } from './flash/testimg.ts';

const dirs: string[] = [];
const kids: ChildProcess[] = [];
const closers: Array<() => void> = [];
afterAll(() => { for (const c of closers) c(); for (const k of kids) k.kill('SIGKILL'); for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
function labAt(dir: string, text: string): Lab {
  const path = join(dir, 'lab.yaml');
  writeFileSync(path, text);
  const r = parseLab(text, path);
  if (!r.ok) throw new Error(JSON.stringify(r.issues));
  return r.lab;
}
async function cli(args: string[]): Promise<{ code: number; r: RunResult & { error?: unknown } }> {
  const out: string[] = [];
  const code = await main([...args, '--json'], { out: (x) => out.push(x), err: () => {} });
  return { code, r: JSON.parse(out[out.length - 1]!) };
}

describeWithTools(['qemu-system-x86_64'], 'run commands on the guest kernel in QEMU', () => {
  let dir!: string;
  beforeAll(() => {
    const g = guestArtifacts();
    dirs.push(g.dir);
    dir = mkdtempSync(join(tmpdir(), 'orbital-run-'));
    dirs.push(dir);
    // The default qemu device: console on COM1, the link on virtio.
    labAt(dir, `version: 1\ndevices:\n  vm:\n    kind: qemu\n    qemu: { kernel: ${g.elf} }\n${GUEST_BOOT}    timeouts: { boot: 60s, console: 10s }\n`);
  });

  it('boots, types each command, checks its echo and the expectations after it, in order', async () => {
    const { code, r } = await cli(['--lab', join(dir, 'lab.yaml'), 'run', 'vm', 'set color blue', '--expect', '^color=(?<color>\\w+)$', 'get color', '--expect', '^blue$', 'echo one two', '--expect', 'one', '--expect', 'two$', '--junit', join(dir, 'run.xml')]);
    expect(code).toBe(0);
    expect(r.ok).toBe(true);
    expect(r.fields).toEqual({ color: 'blue' });
    expect(readFileSync(join(dir, 'run.xml'), 'utf8')).toMatch(/<testsuite name="run on vm" tests="4" failures="0" errors="0" skipped="0"[^]*<testcase classname="orbital-lab.vm" name="boot"[^]*name="echo one two"/);
    expect(r.boot?.ok).toBe(true);
    expect(r.steps.map((s) => s.cmd)).toEqual(['set color blue', 'get color', 'echo one two']);
    // The guest echoes typed characters on COM1 (where they were typed), then its shell `$ CMD` and the answer.
    expect(r.steps.map((s) => s.echo?.text)).toEqual(['set color blue', 'get color', 'echo one two']);
    expect(r.steps[1]!.output).toEqual(['$ get color', 'blue']);
    expect(r.steps[2]!.expect.map((e) => e.text)).toEqual(['one two', 'one two']);
    const log = readFileSync(r.log, 'utf8');
    expect(log).toMatch(/\+\d+\.\d{3}s \$ get color\n.*\+\d+\.\d{3}s blue\n/);
    // The boot and the run are in the lab log: devices shows the last boot, history both.
    const out: string[] = [];
    expect(await main(['--lab', join(dir, 'lab.yaml'), '--json', 'devices'], { out: (x) => out.push(x), err: () => {} })).toBe(0);
    const vm = (JSON.parse(out.pop()!).devices as Array<{ name: string; history?: { lastBoot: { ok: boolean; bootId: string }; runs: number } }>).find((d) => d.name === 'vm')!;
    expect(vm.history!.lastBoot).toMatchObject({ ok: true, bootId: r.bootId });
    expect(vm.history!.runs).toBeGreaterThanOrEqual(1);
  });

  it('fails as the OS\'s when an expectation is not met, naming what the device printed', async () => {
    const { code, r } = await cli(['--lab', join(dir, 'lab.yaml'), 'run', 'vm', 'get color', '--expect', '^blue$', 'set never typed', '--timeout', '1500ms']);
    expect(code).toBe(1);
    expect(r.failure).toMatchObject({ blame: 'os', code: 'expect-timeout' });
    // A fresh boot: the key is not there, and the device said so.
    expect(r.failure!.message).toContain('no such key: color (error)');
    // The run stops at the failed command.
    expect(r.steps.map((s) => s.cmd)).toEqual(['get color']);
  });

  it('refuses an --expect before any command, and a bad pattern, as bad usage', async () => {
    expect((await cli(['--lab', join(dir, 'lab.yaml'), 'run', 'vm', '--expect', 'x', 'echo x'])).code).toBe(2);
    expect((await cli(['--lab', join(dir, 'lab.yaml'), 'run', 'vm', 'echo x', '--expect', '(unclosed'])).code).toBe(2);
    expect((await cli(['--lab', join(dir, 'lab.yaml'), 'run', 'vm'])).code).toBe(2);
  });
});

/**
 * A board on a socat pty pair whose UART keeps only the first two bytes when more than five
 * arrive at once (its FIFO overflows when characters come back to back, as on a slow or busy board;
 * paced characters arrive one by one, or a few together on a loaded machine, and are all kept). It
 * echoes what it keeps, and on a newline answers: `sum A B` prints the sum, `panic` a kernel panic.
 */
async function flakyBoard(o: { kmsgAt?: number; lossless?: boolean; mention?: string } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'orbital-run-board-'));
  dirs.push(dir);
  const sp = spawn('socat', [`pty,raw,echo=0,link=${dir}/board`, `pty,raw,echo=0,link=${dir}/dut`], { stdio: 'ignore' });
  kids.push(sp);
  for (let i = 0; !(existsSync(`${dir}/board`) && existsSync(`${dir}/dut`)); i++) { if (i > 2000) throw new Error('socat ptys'); await sleep(10); }
  const lab = labAt(dir, `version: 1\ndevices:\n  b:\n    kind: serial-board\n    console: { port: ${dir}/dut, baud: 115200 }\n    timeouts: { console: 2s }\n`);
  const wfd = openSync(`${dir}/board`, 'w');
  let stopped = false;
  // One write at a time, in order: fs.write calls in flight together run on the thread pool and
  // may land out of order (a prompt after the answer it precedes: "# 5").
  let writes = Promise.resolve();
  const send = (s: string) => {
    if (stopped) return;
    const b = Buffer.from(s);
    writes = writes.then(() => new Promise<void>((r) => { if (stopped) r(); else write(wfd, b, 0, b.length, null, () => r()); }));
  };
  const rs = new ReadStream(openSync(`${dir}/board`, 'r'));
  let line = '';
  let dropped = 0;
  let typed = 0;
  rs.on('data', (chunk: Buffer) => {
    if (stopped) return;
    // A small FIFO: when more than 5 bytes arrive at once (a whole command typed at full speed),
    // all but the first two are lost. Paced characters arrive one by one, or a few together when
    // a loaded machine's serial writes queue up, and are kept.
    const kept = chunk.length > 5 && !o.lossless ? chunk.subarray(0, 2) : chunk;
    dropped += chunk.length - kept.length;
    for (const c of kept.toString('latin1')) {
      if (c === '\x15') { line = ''; send('^U\r\n'); continue; } // line kill, as a tty's VKILL
      if (c === '\n') {
        send('\r\n');
        const [cmd, ...a] = line.trim().split(/\s+/);
        if (cmd === 'sum') send(`${Number(a[0]) + Number(a[1])}\r\n`);
        else if (cmd === 'spam') timers.push(setInterval(() => send('tick\r\n'), 50));
        else if (cmd === 'panic') send('[  12.5] Kernel panic - not syncing: asked to\r\n[  12.6] ---[ end Kernel panic ]---\r\n');
        else if (cmd) send(`sh: ${cmd}: not found\r\n`);
        send('# ');
        line = '';
      } else {
        // A log line that mentions the command, printed as typing starts (not an echo of it).
        if (line === '' && o.mention) send(`\r\nsyslog: the last session ran "${o.mention}" twice\r\n`);
        line += c;
        send(c);
        // A kernel message in the middle of the echo, as printk writes it: no newline before it.
        if (++typed === o.kmsgAt) send('[   12.345678] usb 1-1: new high-speed USB device number 2 using xhci_hcd\r\n');
      }
    }
  });
  // (stopped with the board: its fd number is soon another board's)
  const timers: NodeJS.Timeout[] = [];
  // The write fd stays open until the file's end: a write still queued when the board stops must
  // not land on a later board that got the same fd number.
  const stop = () => { stopped = true; for (const t of timers) clearInterval(t); rs.destroy(); };
  /** Leaves characters on the board's input line, as a lost run or a person would. */
  const pollute = (text: string) => { line += text; };
  closers.push(() => { stop(); try { closeSync(wfd); } catch { /* closed */ } });
  send('# ');
  return { dir, lab, dev: lab.devices.get('b')!, dropped: () => dropped, stop, pollute };
}

describeWithTools(['socat'], 'run commands on a serial board (socat pty, serialport)', () => {
  it('names the command whose characters were lost, and char-delay makes the same run pass', async () => {
    const b = await flakyBoard();
    const steps = [{ cmd: 'sum 2 3', expect: [{ name: '^5$', source: '^5$', regex: /^5$/ }] }];
    const lost = await runCommands({ lab: b.lab, device: b.dev, steps });
    expect(lost.ok).toBe(false);
    expect(lost.failure).toMatchObject({ blame: 'lab', code: 'no-echo' });
    expect(lost.failure!.message).toContain('"sum 2 3"');
    expect(lost.failure!.message).toContain('console.char-delay');
    expect(b.dropped()).toBeGreaterThan(0);
    // The pause between characters (the lab file's console.char-delay; here overridden per run).
    // The lost run left "su" on the board's input line: paced input alone then runs "susum 2 3"...
    const residue = await runCommands({ lab: b.lab, device: b.dev, steps, charDelayMs: 40 });
    expect(residue.failure).toMatchObject({ code: 'expect-timeout' });
    expect(residue.failure!.message).toContain('susum');
    b.stop();
    // ...so a board left that way needs the line killed first (console.line-kill), and then it works.
    const c = await flakyBoard();
    c.pollute('xx');
    const ok = await runCommands({ lab: c.lab, device: c.dev, steps, charDelayMs: 40, lineKill: true });
    expect(ok.failure).toBeUndefined();
    expect(ok.ok).toBe(true);
    expect(ok.charDelayMs).toBe(40);
    expect(ok.steps[0]!.echo!.text).toContain('sum 2 3');
    expect(ok.steps[0]!.expect[0]!.text).toBe('5');
    expect(c.dropped()).toBe(0);
    c.stop();
  });

  it('does not take a line that only mentions the command for its echo: lost characters are still no-echo', async () => {
    const b = await flakyBoard({ mention: 'sum 2 3' });
    const r = await runCommands({ lab: b.lab, device: b.dev, steps: [{ cmd: 'sum 2 3', expect: [{ name: '^5$', source: '^5$', regex: /^5$/ }] }] });
    expect(r.failure).toMatchObject({ blame: 'lab', code: 'no-echo' });
    expect(r.failure!.message).toContain('syslog: the last session ran');
    b.stop();
    // Paced, the echo comes whole (after the log line) and the run passes.
    const c = await flakyBoard({ mention: 'sum 2 3' });
    const ok = await runCommands({ lab: c.lab, device: c.dev, charDelayMs: 40, steps: [{ cmd: 'sum 2 3', expect: [{ name: '^5$', source: '^5$', regex: /^5$/ }] }] });
    expect(ok.failure).toBeUndefined();
    expect(ok.steps[0]!.echo!.text).toMatch(/sum 2 3$/);
    c.stop();
  });

  it('ends after the console timeout when the device never stops printing after the last command', async () => {
    const b = await flakyBoard({ lossless: true });
    // Without the bound this never returns (the test's timeout fails it).
    const r = await runCommands({ lab: b.lab, device: b.dev, charDelayMs: 15, steps: [{ cmd: 'spam', expect: [{ name: 'tick', source: 'tick', regex: /tick/ }] }] });
    expect(r.ok).toBe(true);
    expect(r.steps[0]!.output.length).toBeGreaterThan(5);
    b.stop();
  });

  it('finds an echo split by a kernel message printed in its middle', async () => {
    const b = await flakyBoard({ kmsgAt: 5, lossless: true });
    const r = await runCommands({ lab: b.lab, device: b.dev, charDelayMs: 15, steps: [{ cmd: 'sum 20 22', expect: [{ name: '^42$', source: '^42$', regex: /^42$/ }] }] });
    expect(r.failure).toBeUndefined();
    expect(r.ok).toBe(true);
    // The echo's second half, after the message (the first half shares a line with the message).
    expect(r.steps[0]!.echo!.text).toBe('0 22');
    const log = readFileSync(r.log, 'utf8');
    expect(log).toMatch(/ sum 2\[   12\.345678\] usb 1-1: new high-speed/);
    expect(log).toMatch(/--- run ok: 1 command\(s\) echoed, every expectation met ---\n$/);
    b.stop();
  });

  it('takes the lab file\'s console.char-delay, and a panic during a command is the OS\'s failure', async () => {
    const b = await flakyBoard({ lossless: true });
    const lab = labAt(b.dir, `version: 1\ndevices:\n  b:\n    kind: serial-board\n    console: { port: ${b.dir}/dut, baud: 115200, char-delay: 15ms }\n    timeouts: { console: 5s }\n`);
    const r = await runCommands({ lab, device: lab.devices.get('b')!, steps: [{ cmd: 'sum 1 1', expect: [] }, { cmd: 'panic', expect: [{ name: 'never', source: 'never', regex: /never/ }] }, { cmd: 'sum 2 2', expect: [] }] });
    expect(r.charDelayMs).toBe(15);
    expect(r.ok).toBe(false);
    expect(r.failure).toMatchObject({ blame: 'os', code: 'os-fatal' });
    expect(r.fatal![0]!.text).toContain('Kernel panic - not syncing');
    // Stopped at the panic: the third command was never typed.
    expect(r.steps.map((s) => s.cmd)).toEqual(['sum 1 1', 'panic']);
    expect(r.steps[0]!.output).toContain('2');
    b.stop();
  });
});

describeWithTools(['qemu-system-x86_64', 'grub-mkrescue', 'xorriso'], 'run --image: flash, boot and commands in one job', () => {
  it('flashes the guest ISO onto the disk, boots from it, runs the commands and reports all three in JUnit; a corrupt image fails at the flash', async () => {
    const g = guestArtifacts({ iso: true });
    dirs.push(g.dir);
    const dir = mkdtempSync(join(tmpdir(), 'orbital-run-image-'));
    dirs.push(dir);
    labAt(dir, `version: 1\ndevices:\n  vm:\n    kind: qemu\n    flash: { target: disk.img }\n${GUEST_BOOT}    timeouts: { boot: 60s, console: 10s }\n`);
    const lab = ['--lab', join(dir, 'lab.yaml')];
    const report = join(dir, 'job.xml');
    const a = await cli([...lab, 'run', 'vm', '--image', g.iso!, '--no-bmap', '--junit', report, 'set job 1', '--expect', '^job=(?<job>\\d+)$']);
    expect(a.code).toBe(0);
    expect(a.r.flash).toMatchObject({ status: 'written' });
    expect(a.r.boot?.ok).toBe(true);
    expect(a.r.fields).toEqual({ job: '1' });
    expect(readFileSync(a.r.log, 'utf8')).toMatch(/Booting from Hard Disk/);
    const xml = readFileSync(report, 'utf8');
    expect(xml).toMatch(/tests="3" failures="0" errors="0" skipped="0"/);
    expect(xml).toMatch(/name="flash" time="[\d.]+">\n\s*<system-out>written \d+ bytes of \d+ to [^;]*disk\.img; verified \d+ bytes/);
    expect(xml).toMatch(/name="boot"[^]*name="set job 1"/);
    // Again: the disk already holds the image, so the flash is skipped; the lab log has both flashes.
    const b = await cli([...lab, 'run', 'vm', '--image', g.iso!, '--no-bmap', 'echo again', '--expect', '^again$']);
    expect(b.code).toBe(0);
    expect(b.r.flash).toMatchObject({ status: 'skipped' });
    // A corrupt image (its bmap's checksum does not match) fails at the flash: the lab's failure, nothing booted or typed.
    const bad = join(dir, 'bad.img');
    const whole = makeImage(bad, 64 * 1024, [[0, 16 * 1024]]);
    makeBmap(join(dir, 'bad.bmap'), whole, [[0, 16 * 1024]]);
    const fd = openSync(bad, 'r+');
    writeSync(fd, Buffer.from([whole[100]! ^ 0xff]), 0, 1, 100);
    closeSync(fd);
    const c = await cli([...lab, 'run', 'vm', '--image', bad, '--bmap', join(dir, 'bad.bmap'), '--junit', report, 'get job']);
    const cr = c.r as RunResult & { error?: { code: string } };
    if (c.code === 2) throw new Error(`expected a flash failure, got bad usage: ${JSON.stringify(cr.error)}`);
    expect(c.code).toBe(3);
    expect(cr.failure).toMatchObject({ blame: 'lab', stage: 'flash' });
    expect(cr.boot).toBeUndefined();
    expect(cr.steps).toEqual([]);
    const x = readFileSync(report, 'utf8');
    expect(x).toMatch(/tests="3" failures="0" errors="1" skipped="2"/);
    expect(x).toMatch(/name="flash" time="0.000">\n\s*<error type="[a-z-]+" message="flash before run failed: /);
    expect(x).toMatch(/<skipped message="not booted: the flash failed"\/>[^]*<skipped message="not typed: the flash failed"\/>/);
    // Flash options without --image are bad usage.
    expect((await cli([...lab, 'run', 'vm', '--bmap', 'x.bmap', 'get job'])).code).toBe(2);
    const out: string[] = [];
    expect(await main([...lab, '--json', 'history', 'vm'], { out: (z) => out.push(z), err: () => {} })).toBe(0);
    const hv = (JSON.parse(out.pop()!).devices as Array<{ flashes: number; flashFailures: number; boots: number; runs: number }>)[0]!;
    expect(hv).toMatchObject({ flashes: 3, flashFailures: 1, boots: 2, runs: 3 });
  }, 240_000);
});

describe('run commands on the hosted OS (link socket, no console)', () => {
  it('runs each line as an sh action over the link, prints the answer as the guest does, and names a device that is not there', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'orbital-run-hosted-'));
    dirs.push(dir);
    const data = join(dir, 'data');
    // Through the package's bin, as `npx orbital-os serve` starts it.
    const os = spawn(process.execPath, [join(import.meta.dirname, '../bin/orbital-os.mjs'), 'serve', '--data', data], { stdio: ['ignore', 'pipe', 'pipe'] });
    kids.push(os);
    await new Promise<void>((res, rej) => {
      let out = '';
      os.stdout!.on('data', (d: Buffer) => { out += d; if (/kernel-link: unix:/.test(out)) res(); });
      os.once('exit', (c) => rej(new Error(`hosted OS exited ${c}: ${out}`)));
    });
    labAt(dir, `version: 1\ndevices:\n  hosted:\n    kind: serial-board\n    link: { socket: ${join(data, 'link.sock')} }\n    tags: [pool]\n`);
    const lab = ['--lab', join(dir, 'lab.yaml')];
    const a = await cli([...lab, 'run', 'hosted', 'set a 1', '--expect', '^a=1$', 'get nokey', '--expect', 'no such key']);
    expect(a.code).toBe(0);
    expect(a.r.steps.map((s) => s.echo?.text)).toEqual(['$ set a 1', '$ get nokey']);
    expect(a.r.steps[1]!.output).toEqual(['no such key: nokey (error)']);
    // The commands were committed to the device's log: a second run sees the state.
    const b = await cli([...lab, 'run', 'hosted', 'get a', '--expect', '^1$']);
    expect(b.code).toBe(0);
    // @pool: any free device with the tag (here the only one).
    const p = await cli([...lab, 'run', '@pool', 'get a', '--expect', '^1$']);
    expect(p.code).toBe(0);
    expect(p.r.device).toBe('hosted');
    // Ctrl-U first (--line-kill) is line editing there too, not part of the command.
    expect((await cli([...lab, 'run', 'hosted', '--line-kill', 'get a', '--expect', '^1$'])).code).toBe(0);
    expect((await cli([...lab, 'run', 'hosted', '--boot', 'get a'])).code).toBe(2);
    // Named groups are recorded; --junit writes the report of a failed run too.
    const report = join(dir, 'report.xml');
    const c = await cli([...lab, 'run', 'hosted', '--junit', report, '--timeout', '1500ms', 'set color green', '--expect', '^(?<key>\\w+)=(?<value>\\w+)$', 'get color', '--expect', '^blue$', 'get a']);
    expect(c.code).toBe(1);
    expect(c.r.steps[0]!.expect[0]!.fields).toEqual({ key: 'color', value: 'green' });
    expect(c.r.fields).toEqual({ key: 'color', value: 'green' });
    expect((c.r as RunResult & { junit?: string }).junit).toBe(report);
    const xml = readFileSync(report, 'utf8');
    expect(xml).toMatch(/<testsuite name="run on hosted" tests="3" failures="1" errors="0" skipped="1"/);
    expect(xml).toContain('<property name="field.value" value="green"/>');
    expect(xml).toMatch(/<testcase classname="orbital-lab.hosted" name="get color" time="[\d.]+">\n\s*<failure type="expect-timeout" message="hosted: after &quot;get color&quot; no line matched \/\^blue\$\/ within 1500 ms; it printed: &quot;green&quot;">unmet: \/\^blue\$\/<\/failure>/);
    expect(xml).toMatch(/<testcase classname="orbital-lab.hosted" name="get a" time="0.000">\n\s*<skipped message="not typed: an earlier command failed"\/>/);
    // A report folder that does not exist is bad usage, before anything is typed.
    expect((await cli([...lab, 'run', 'hosted', '--junit', join(dir, 'no/such/dir/r.xml'), 'get a'])).code).toBe(2);
    os.kill('SIGKILL');
    await new Promise((r) => os.once('exit', r));
    const gone = await cli([...lab, 'run', 'hosted', 'get a']);
    expect(gone.code).toBe(3);
    expect(JSON.stringify(gone.r)).toContain('cannot reach its link socket');
  });
});
