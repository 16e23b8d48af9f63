// `orbital-lab logger` (console/keeper.ts) with socat pty pairs and real CLI child processes: the
// test plays a board that prints a numbered line every few ms; the logger keeps its console while no
// job holds it, gives the port to a job (boot) and takes it back, survives a job killed with SIGKILL
// and a port that disappears and comes back, and serves read-only watchers on an idle board.
import { afterAll, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, write, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeWithTools, labCli } from '../../scripts/testkit.ts';
import { keeperPath } from './keeper.ts';

const dirs: string[] = [];
const kids: ChildProcess[] = [];
afterAll(() => { for (const k of kids) k.kill('SIGKILL'); for (const d of dirs) rmSync(d, { recursive: true, force: true }); });
const { run, start } = labCli();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Waits until f() holds; `what` (or what it returns then) names it in the timeout's message. */
async function until(f: () => boolean, what: string | (() => string), ms = 20_000): Promise<void> {
  const t0 = Date.now();
  while (!f()) { if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${typeof what === 'string' ? what : what()}`); await sleep(10); }
}

/**
 * A socat pty pair: the lab's end is DIR/dut, the board's DIR/board; the board prints "line N;"
 * every 4 ms (the ";" tells a whole line from one an unplugged adapter cut short).
 */
async function board() {
  const dir = mkdtempSync(join(tmpdir(), 'orbital-keeper-'));
  dirs.push(dir);
  let socat!: ChildProcess;
  let fd = -1;
  const up = async () => {
    socat = spawn('socat', [`pty,raw,echo=0,link=${dir}/board`, `pty,raw,echo=0,link=${dir}/dut`], { stdio: 'ignore' });
    kids.push(socat);
    await until(() => existsSync(`${dir}/board`) && existsSync(`${dir}/dut`), 'socat ptys');
    fd = openSync(`${dir}/board`, 'w');
  };
  await up();
  let n = 0;
  let extra: string[] = [];
  // One write at a time: two fs.write calls in flight run on two threads and may land out of order.
  // Each takes the fd when it runs, and the fd is closed only once no write is in flight, so no
  // write ever lands on a closed fd's number reused for something else.
  let writing: Promise<void> = Promise.resolve();
  const tick = setInterval(() => {
    if (fd < 0) return;
    const b = Buffer.from(extra.splice(0).map((x) => `${x}\n`).join('') + `line ${n++};\n`);
    writing = writing.then(() => (fd < 0 ? undefined : new Promise<void>((res) => write(fd, b, 0, b.length, null, () => res()))));
  }, 4);
  const closeBoard = async () => { const f = fd; fd = -1; await writing; if (f >= 0) closeSync(f); };
  const lab = join(dir, 'lab.yaml');
  writeFileSync(lab, `version: 1\nstate: ${join(dir, 'state')}\ndevices:\n  b:\n    kind: serial-board\n    console: { port: ${dir}/dut, baud: 115200 }\n    power: { kind: command, on: "true", off: "true" }\n    boot:\n      success: "^BOOT OK$"\n      fatal: [{ name: panic, pattern: "^PANIC" }]\n    timeouts: { boot: 30s }\n`);
  return {
    dir, lab, state: join(dir, 'state'),
    count: () => n,
    /** Waits until the board has printed `k` more lines. */
    more: (k: number, what: string) => { const from = n; return until(() => n > from + k, what); },
    say: (line: string) => { extra.push(line); },
    /** The adapter unplugged: socat (both ptys) gone. */
    unplug: async () => { await closeBoard(); socat.kill('SIGKILL'); },
    plug: up,
    stop: async () => { clearInterval(tick); await closeBoard(); socat.kill('SIGKILL'); extra = []; },
  };
}

/** A logger child: its JSON events as they come. */
function logger(lab: string, ...more: string[]) {
  const child = spawn(process.execPath, [join(import.meta.dirname, '../../bin/orbital-lab.mjs'), '--lab', lab, '--json', 'logger', 'b', ...more], { stdio: ['ignore', 'pipe', 'pipe'] });
  kids.push(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => { out += d; });
  child.stderr!.on('data', (d: Buffer) => { err += d; });
  const events = () => out.split('\n').filter((l) => l.startsWith('{"event"')).map((l) => JSON.parse(l) as { event: string; [k: string]: unknown });
  const count = (ev: string) => events().filter((e) => e.event === ev).length;
  /** The last events and stderr, for a failure's message. */
  const tail = () => `events ${JSON.stringify(events().slice(-6))}; stderr ${err.slice(-300)}`;
  const closed = new Promise<{ code: number | null; last: Record<string, any> }>((r) => child.once('close', (code) => r({ code, last: JSON.parse(out.trim().split('\n').pop()!) })));
  return { child, events, count, closed, err: () => err, tail };
}

/** The board stops printing; then the logger is stopped (SIGTERM) and its result read. */
async function finish(b: { stop(): Promise<void> }, lg: ReturnType<typeof logger>) {
  await b.stop();
  await sleep(100);
  lg.child.kill('SIGTERM');
  return lg.closed;
}

/** The text of each line of a stamped log (ISO time, +secs or -, text), notes ("--- ... ---") apart. */
function logLines(path: string): { lines: string[]; notes: string[] } {
  const all = readFileSync(path, 'utf8').split('\n').filter(Boolean).map((l) => l.replace(/^\S+ +\S+ /, ''));
  return { lines: all.filter((l) => !l.startsWith('--- ')), notes: all.filter((l) => l.startsWith('--- ')) };
}
const numbers = (lines: string[]) => lines.filter((l) => /^line \d+;$/.test(l)).map((l) => Number(l.slice(5, -1)));
const increasing = (xs: number[]) => xs.every((x, i) => i === 0 || x > xs[i - 1]!);

describeWithTools(['socat'], 'orbital-lab logger: a serial-board console kept while no job holds it (socat ptys)', () => {
  it('logs the idle board, gives the port to a boot and takes it back: no line in both logs, none cut in two', async () => {
    const b = await board();
    const lg = logger(b.lab);
    await until(() => lg.count('logging') === 1, `the logger to start (${lg.err()})`);
    await b.more(60, 'idle output');
    b.say('PANIC: idle board fell over');
    await until(() => lg.count('fatal') === 1, 'the fatal line reported');
    expect(lg.events().find((e) => e.event === 'fatal')).toMatchObject({ device: 'b', pattern: 'panic', text: 'PANIC: idle board fell over' });
    // ... and recorded in the lab log, once (a second one within the minute is only in the logger's log).
    await until(() => lg.count('recorded') === 1, `the fatal line recorded (${lg.err()})`);
    b.say('PANIC: again');
    await until(() => lg.count('fatal') === 2, 'the second fatal line reported');
    // A job: the logger yields the port to it, and gets it back when it ends.
    const job = start(['--lab', b.lab, '--json', 'boot', 'b']);
    await until(() => lg.count('yielded') === 1, 'the logger to yield');
    expect(lg.events().find((e) => e.event === 'yielded')!.to).toMatch(new RegExp(`^pid ${job.child.pid} \\(orbital-lab --lab \\S+ --json boot b\\)$`));
    await sleep(300);
    b.say('BOOT OK');
    const r = await job.done;
    expect(r.code).toBe(0);
    expect(r.last).toMatchObject({ ok: true, device: 'b' });
    await until(() => lg.count('back') === 1, 'the port back with the logger');
    await b.more(60, 'output after the job');
    const end = await finish(b, lg);
    expect(end.code).toBe(0);
    expect(end.last).toMatchObject({ ok: true, devices: [{ device: 'b' }] });
    expect(existsSync(keeperPath(b.state, 'b'))).toBe(false);
    expect(run(['--lab', b.lab, '--json', 'devices']).last!.devices[0].logger).toBeUndefined();

    const idle = logLines(end.last.devices[0].log);
    const jobLog = logLines(r.last.log);
    // Whole lines only, everywhere: two readers never shared the port.
    for (const l of [...idle.lines, ...jobLog.lines]) expect(l).toMatch(/^(line \d+;|BOOT OK|PANIC: idle board fell over|PANIC: again)$/);
    const ni = numbers(idle.lines);
    const nj = numbers(jobLog.lines);
    expect(increasing(ni)).toBe(true);
    expect(increasing(nj)).toBe(true);
    expect(nj.length).toBeGreaterThan(20);
    // The job's lines lie between the logger's before and after, and none is in both logs.
    const before = ni.filter((x) => x < nj[0]!);
    const after = ni.filter((x) => x > nj[nj.length - 1]!);
    expect(before.length).toBeGreaterThan(60);
    expect(after.length).toBeGreaterThan(60);
    expect(before.length + after.length).toBe(ni.length);
    expect(jobLog.lines).toContain('BOOT OK');
    expect(idle.lines).not.toContain('BOOT OK');
    expect(idle.lines).toContain('PANIC: idle board fell over');
    expect(idle.notes.some((n) => n.startsWith(`--- yielded to pid ${job.child.pid} `))).toBe(true);
    expect(idle.notes.some((n) => n.startsWith('--- back: console '))).toBe(true);
    expect(jobLog.notes.some((n) => n.includes(`console taken from orbital-lab logger (its output while no job held the port: ${end.last.devices[0].log})`))).toBe(true);
    // The lab's history has the idle board's fatal line (one record: the second came within the minute).
    expect(lg.count('recorded')).toBe(1);
    const ev = run(['--lab', b.lab, '--json', 'history', 'b', '--events']);
    expect(ev.last!.events.filter((e: { action: string }) => e.action === 'console').map((e: { args: unknown }) => e.args)).toEqual([{ device: 'b', event: 'fatal', pattern: 'panic', text: 'PANIC: idle board fell over', log: end.last.devices[0].log }]);
    expect(run(['--lab', b.lab, 'history', 'b', '--events']).stdout).toMatch(/ b +console +FATAL line while no job held the console \(pattern "panic"\): PANIC: idle board fell over \(in \S+-logger\.log\)/);
    expect(run(['--lab', b.lab, '--json', 'history', 'b']).last!.devices[0].idleFatal).toMatchObject({ n: 1, pattern: 'panic', text: 'PANIC: idle board fell over' });
    expect(run(['--lab', b.lab, 'history', 'b']).stdout).toMatch(/1 fatal line\(s\) recorded while no job held the console; the last at \S+ \(pattern "panic"\): PANIC: idle board fell over/);
  }, 60_000);

  it('console on a kept board shows its recent output from the logger, then the live stream, and hands the port back', async () => {
    const b = await board();
    const lg = logger(b.lab);
    await until(() => lg.count('logging') === 1, `the logger to start (${lg.err()})`);
    await b.more(60, 'idle output');
    const c = spawn(process.execPath, [join(import.meta.dirname, '../../bin/orbital-lab.mjs'), '--lab', b.lab, 'console', 'b'], { stdio: ['pipe', 'pipe', 'pipe'] });
    kids.push(c);
    let out = '';
    let err = '';
    c.stdout!.on('data', (d: Buffer) => { out += d; });
    c.stderr!.on('data', (d: Buffer) => { err += d; });
    await until(() => lg.count('yielded') === 1 && err.includes('[live:]'), `the console to take the port (${err})`);
    const at = out.length;
    await until(() => (out.slice(at).match(/line \d+;\n/g) ?? []).length > 30, 'live lines');
    // Ctrl-] b: a BREAK (TIOCSBRK) on the port - which a pty refuses, as a driver without break support does.
    c.stdin!.write('\x1db');
    await until(() => /\[b: no BREAK: b: \S+\/dut takes no BREAK \(Inappropriate ioctl for device[^)]*: a pty, or an adapter whose driver has no break support\)\]/.test(err), `the BREAK refused (${err.slice(-300)})`);
    c.stdin!.end();
    const code = await new Promise<number | null>((r) => c.once('close', r));
    expect(code).toBe(0);
    await until(() => lg.count('back') === 1, 'the port back after the console');
    await finish(b, lg);
    expect(err).toMatch(/\[b console; taken from orbital-lab logger \(earlier output: \S+-logger\.log\);/);
    expect(err).toMatch(/\[recent output, from the logger:\]/);
    // The recent output (from before the console) and then the live stream: in order, none twice.
    const ns = (out.match(/line (\d+);\n/g) ?? []).map((l) => Number(l.slice(5, -2)));
    expect(ns.length).toBeGreaterThan(50);
    expect(increasing(ns)).toBe(true);
  }, 60_000);

  it('a logger started while a job has the port open waits for that job, and only then takes the port', async () => {
    const b = await board();
    const c = spawn(process.execPath, [join(import.meta.dirname, '../../bin/orbital-lab.mjs'), '--lab', b.lab, 'console', 'b'], { stdio: ['pipe', 'pipe', 'pipe'] });
    kids.push(c);
    let out = '';
    c.stdout!.on('data', (d: Buffer) => { out += d; });
    await until(() => (out.match(/line \d+;\n/g) ?? []).length > 20, 'the console to show lines');
    const lg = logger(b.lab);
    await until(() => lg.count('waiting') === 1, `the logger to wait (${lg.err()})`);
    expect(lg.events().find((e) => e.event === 'waiting')!.why).toMatch(new RegExp(`^pid ${c.pid} \\("console", \\S+\\) holds b and may have its console open; taking it when that job ends$`));
    await sleep(500);
    expect(lg.count('logging')).toBe(0);
    c.stdin!.end();
    expect(await new Promise<number | null>((r) => c.once('close', r))).toBe(0);
    await until(() => lg.count('logging') === 1, 'the logger to take the port');
    await b.more(30, 'output for the logger');
    const end = await finish(b, lg);
    // The console's lines, then the logger's: each whole, none in both (the two never read at once).
    const mine = out.split('\n').filter((l) => l.startsWith('line'));
    for (const l of mine) expect(l).toMatch(/^line \d+;$/);
    const nc = numbers(mine);
    const nl = numbers(logLines(end.last.devices[0].log).lines);
    expect(increasing(nc), JSON.stringify(nc)).toBe(true);
    expect(increasing(nl), JSON.stringify(nl)).toBe(true);
    expect(nl.length).toBeGreaterThan(30);
    expect(nl[0]!).toBeGreaterThan(nc[nc.length - 1]!);
  }, 60_000);

  it('--rotate: a log past the size goes on in a new file, each naming the other, not a line lost between them', async () => {
    const b = await board();
    expect(run(['--lab', b.lab, 'logger', 'b', '--rotate', 'lots']).code).toBe(2);
    // Nothing to keep: a qemu device, a board reached over its link socket alone.
    const other = join(b.dir, 'other.yaml');
    writeFileSync(other, `version: 1\nstate: ${join(b.dir, 'state2')}\ndevices:\n  vm:\n    kind: qemu\n  hosted:\n    kind: serial-board\n    link: { socket: ${join(b.dir, 'link.sock')} }\n`);
    expect(run(['--lab', other, '--json', 'logger']).last!.error.message).toMatch(/^no serial-board device with a console port in the lab file/);
    expect(run(['--lab', other, '--json', 'logger', 'vm']).last!.error.message).toMatch(/^vm is a qemu device: its QEMU logs its console itself/);
    const hosted = run(['--lab', other, '--json', 'logger', 'hosted']);
    expect(hosted.code).toBe(2);
    expect(hosted.last!.error.message).toMatch(/^hosted has no console port in the lab file/);
    // A lab log that cannot be appended to: a fatal line is still logged and reported, its record fails, and the logger goes on.
    mkdirSync(b.state, { recursive: true });
    writeFileSync(join(b.state, 'lab.orbtrace'), 'not an Axiom trace');
    const lg = logger(b.lab, '--rotate', '4KiB');
    await until(() => lg.count('logging') === 1, `the logger to start (${lg.err()})`);
    b.say('PANIC: with a damaged lab log');
    await until(() => lg.count('record-failed') === 1, 'the record to fail');
    expect(lg.events().find((e) => e.event === 'record-failed')!.why).toMatch(/lab\.orbtrace/);
    await until(() => lg.count('rotated') >= 4, 'four rotations');
    const end = await finish(b, lg);
    const logs: string[] = end.last.devices[0].logs;
    expect(logs.length).toBeGreaterThanOrEqual(5);
    expect(lg.events().filter((e) => e.event === 'rotated').map((e) => e.log)).toEqual(logs.slice(1));
    const parts = logs.map(logLines);
    parts.forEach((p, i) => {
      if (i > 0) expect(p.notes[0]).toBe(`--- continued from ${logs[i - 1]} ---`);
      if (i < logs.length - 1) {
        expect(p.notes[p.notes.length - 1]).toBe(`--- continued in ${logs[i + 1]} ---`);
        // (past the size by at most the line that crossed it, and a note written before the next line)
        expect(readFileSync(logs[i]!).length).toBeLessThan(4096 + 1024);
      }
    });
    expect(parts.some((p) => p.notes.some((x) => x.startsWith('--- could not record the fatal line (line ')))).toBe(true);
    // One port held all along: every line, in order, across the files.
    const ns = numbers(parts.flatMap((p) => p.lines));
    expect(ns.length).toBeGreaterThan(200);
    expect(ns.every((x, i) => i === 0 || x === ns[i - 1]! + 1)).toBe(true);
  }, 60_000);

  it('serves watchers on an idle board, refuses a second logger, and takes the port back from a killed job and from a re-plugged adapter', async () => {
    const b = await board();
    const lg = logger(b.lab);
    await until(() => lg.count('logging') === 1, `the logger to start (${lg.err()})`);
    // console --watch on a board no job holds: the logger's hub, recent output first.
    const w = spawn(process.execPath, [join(import.meta.dirname, '../../bin/orbital-lab.mjs'), '--lab', b.lab, 'console', 'b', '--watch'], { stdio: ['ignore', 'pipe', 'pipe'] });
    kids.push(w);
    let seen = '';
    w.stdout!.on('data', (d: Buffer) => { seen += d; });
    await until(() => (seen.match(/line \d+;\n/g) ?? []).length > 20, 'a watcher to see lines');
    expect(seen).toMatch(/kept by orbital-lab logger/);
    w.kill('SIGTERM');
    // devices says who keeps the console, and where its output goes.
    const dv = run(['--lab', b.lab, '--json', 'devices']);
    expect(dv.last!.devices[0].logger).toMatchObject({ pid: lg.child.pid, log: expect.stringMatching(/-logger\.log$/) });
    expect(run(['--lab', b.lab, 'devices']).stdout).toMatch(new RegExp(`console logged by orbital-lab logger \\(pid ${lg.child.pid}\\) into \\S+-logger\\.log while no job holds it`));
    // One logger per console.
    const second = run(['--lab', b.lab, '--json', 'logger', 'b']);
    expect(second.code).toBe(3);
    expect(second.last!.error).toMatchObject({ code: 'logger-running' });
    // A job killed while it holds the port: the kernel closes its connection, and the logger goes on.
    const job = start(['--lab', b.lab, '--json', 'boot', 'b']);
    await until(() => lg.count('yielded') === 1, 'the logger to yield');
    await sleep(200);
    job.child.kill('SIGKILL');
    await until(() => lg.count('back') === 1, () => `the port back after the SIGKILL (${lg.tail()})`);
    // The adapter unplugged and plugged back in: looked for every second, found again.
    await b.unplug();
    await until(() => lg.count('port-gone') >= 1, () => `the port gone (${lg.tail()})`);
    await sleep(1500);
    await b.plug();
    await until(() => lg.count('back') === 2, () => `the port back after re-plugging (${lg.tail()})`, 20_000);
    const n = b.count();
    await b.more(30, 'output after re-plugging');
    const end = await finish(b, lg);
    expect(end.code).toBe(0);
    const idle = logLines(end.last.devices[0].log);
    expect(idle.notes.some((x) => x.startsWith('--- console gone: '))).toBe(true);
    const ni = numbers(idle.lines);
    expect(increasing(ni)).toBe(true);
    expect(ni[ni.length - 1]!).toBeGreaterThan(n);
  }, 60_000);
});
