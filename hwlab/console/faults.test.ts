// Console faults with socat pty pairs: the lab's serial-board reads one end through serialport, the
// test plays the board on the other end - garbage, a port that vanishes mid-boot, a 10 MB flood,
// and the tail of an earlier boot arriving around the power-on edge.
import { describe, expect, it, afterAll } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, closeSync, write } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describeWithTools } from '../../scripts/testkit.ts';
import { parseLab } from '../labfile.ts';
import { boot } from '../boot.ts';

const dirs: string[] = [];
const kids: ChildProcess[] = [];
afterAll(() => { for (const k of kids) k.kill('SIGKILL'); for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(f: () => boolean, what: string, ms = 20_000): Promise<void> {
  const t0 = Date.now();
  while (!f()) { if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`); await sleep(10); }
}

async function board(offCmd = 'true') {
  const dir = mkdtempSync(join(tmpdir(), 'orbital-socat-'));
  dirs.push(dir);
  const sp = spawn('socat', [`pty,raw,echo=0,link=${dir}/board`, `pty,raw,echo=0,link=${dir}/dut`], { stdio: 'ignore' });
  kids.push(sp);
  await until(() => existsSync(`${dir}/board`) && existsSync(`${dir}/dut`), 'socat ptys');
  const text = `version: 1\ndevices:\n  b:\n    kind: serial-board\n    console: { port: ${dir}/dut, baud: 115200 }\n    power: { kind: command, off: "${offCmd.replace(/DIR/g, dir)}", on: "touch ${dir}/powered" }\n    boot:\n      milestones: [{ name: kernel, pattern: "KERNEL UP" }]\n      success: "BOOT OK"\n    timeouts: { boot: 60s }\n`;
  writeFileSync(join(dir, 'lab.yaml'), text);
  const r = parseLab(text, join(dir, 'lab.yaml'));
  if (!r.ok) throw new Error(JSON.stringify(r.issues));
  const fd = openSync(`${dir}/board`, 'w');
  const send = (b: Buffer | string) => new Promise<void>((res, rej) => { const buf = Buffer.from(b); write(fd, buf, 0, buf.length, null, (e) => (e ? rej(e) : res())); });
  return { dir, lab: r.lab, dev: r.lab.devices.get('b')!, socat: sp, send, powered: () => existsSync(`${dir}/powered`), done: () => closeSync(fd) };
}

describeWithTools(['socat'], 'console faults (socat pty pairs, serialport)', () => {
  it('survives garbage and still finds the boot', async () => {
    const b = await board();
    const p = boot({ lab: b.lab, device: b.dev });
    await until(b.powered, 'power-on');
    await b.send(randomBytes(64 * 1024));
    await b.send('\xff\xfe\x00\x1b[31m\r\nKERNEL UP\r\nBOOT OK\r\n');
    const r = await p;
    expect(r.ok).toBe(true);
    expect(r.milestones.map((m) => m.name)).toEqual(['kernel']);
    expect(r.bytes).toBeGreaterThan(64 * 1024);
    b.done();
  });

  it('blames the lab when the port disappears mid-boot', async () => {
    const b = await board();
    const p = boot({ lab: b.lab, device: b.dev });
    await until(b.powered, 'power-on');
    await b.send('KERNEL UP\n');
    await sleep(200);
    b.socat.kill('SIGKILL');
    const r = await p;
    expect(r.ok).toBe(false);
    expect(r.failure).toMatchObject({ blame: 'lab', code: 'console-gone' });
    expect(r.stage).toBe('kernel');
    b.done();
  });

  it('logs a 10 MB flood without losing or reordering a line', async () => {
    const b = await board();
    const p = boot({ lab: b.lab, device: b.dev });
    await until(b.powered, 'power-on');
    const pad = 'x'.repeat(78);
    const N = 120_000; // ~10.4 MB
    const per = 5000;
    for (let i = 0; i < N; i += per) {
      let chunk = '';
      for (let k = i; k < Math.min(N, i + per); k++) chunk += `L${String(k).padStart(7, '0')} ${pad}\n`;
      await b.send(chunk);
    }
    await b.send('BOOT OK\n');
    const r = await p;
    expect(r.ok).toBe(true);
    expect(r.bytes).toBeGreaterThan(10_000_000);
    const seen = readFileSync(r.log, 'utf8').split('\n').map((l) => / L(\d{7}) x+$/.exec(l)?.[1]).filter((x): x is string => !!x).map(Number);
    expect(seen.length).toBe(N);
    expect(seen.every((v, i) => v === i)).toBe(true);
    b.done();
  });

  it('never takes the tail of an earlier boot for this one', async () => {
    // The "off" step leaves the previous boot's success line on the wire just before power-on.
    // (the sleep lets those bytes reach the lab's end of the pty before the power-on edge)
    const b = await board(`printf 'KERNEL UP\\\\nBOOT OK\\\\n' > DIR/board; sleep 1`);
    const p = boot({ lab: b.lab, device: b.dev });
    await until(b.powered, 'power-on');
    await sleep(300);
    await b.send('noise\nKERNEL UP\n');
    await sleep(300);
    await b.send('BOOT OK\n');
    const r = await p;
    expect(r.ok).toBe(true);
    const log = readFileSync(r.log, 'utf8').split('\n');
    // The first line after the power-on mark is this boot's "noise", not the old success line.
    expect(log[0]).toMatch(/--- power on/);
    expect(log[1]).toMatch(/noise$/);
    expect(r.success!.line).toBe(3);
    b.done();
  });

  it('retries a boot that failed on the lab\'s side, never one the OS failed', async () => {
    const b = await board();
    const p = boot({ lab: b.lab, device: b.dev, timeoutMs: 700, retries: 2 });
    // 1st power-on: the board stays silent (a lab failure: boot-timeout). The power-on command
    // touches DIR/powered each time: remove it to see the next one.
    await until(b.powered, 'power-on 1');
    rmSync(join(b.dir, 'powered'));
    await until(b.powered, 'power-on 2');
    await b.send('KERNEL UP\nBOOT OK\n');
    const r = await p;
    expect(r.ok).toBe(true);
    expect(r.retried).toHaveLength(1);
    expect(r.retried![0]!.failure).toMatchObject({ blame: 'lab', code: 'boot-timeout' });
    expect(r.retried![0]!.bootId).not.toBe(r.bootId);
    expect(readFileSync(r.retried![0]!.log, 'utf8')).toMatch(/boot failed \(lab: boot-timeout\)/);
    rmSync(join(b.dir, 'powered'));
    // A panic is the OS's answer: not retried, even with retries left.
    const q = boot({ lab: b.lab, device: b.dev, timeoutMs: 5000, retries: 2 });
    await until(b.powered, 'power-on 3');
    rmSync(join(b.dir, 'powered'));
    await b.send('KERNEL UP\nKernel panic - not syncing: test\n');
    const f = await q;
    expect(f.failure).toMatchObject({ blame: 'os', code: 'os-fatal' });
    expect(f.retried).toBeUndefined();
    await sleep(300);
    expect(b.powered()).toBe(false);
    b.done();
  });

  it('console attached to a running board sees fatal lines after a device timestamp and after ready', async () => {
    const b = await board();
    const BIN = resolve(import.meta.dirname, '../../bin/orbital-lab.mjs');
    // console on a board attaches without switching power: the board has been up for minutes.
    const con = spawn(process.execPath, [BIN, '--lab', join(b.dir, 'lab.yaml'), '--json', 'console', 'b'], { stdio: ['pipe', 'pipe', 'pipe'] });
    kids.push(con);
    let out = '';
    let err = '';
    con.stdout!.on('data', (d: Buffer) => { out += d; });
    con.stderr!.on('data', (d: Buffer) => { err += d; });
    await until(() => /\[b console; boot/.test(err), 'the console banner');
    await sleep(100); // past the attach mark (the lab drops what the port held before it)
    // Stamped like a kernel that booted long ago; "BOOT OK" settles the watch's outcome first,
    // and the crash report's first line carries the timestamp before the anchored pattern.
    await b.send('[ 612345.000 ms] KERNEL UP\r\n[ 612345.100 ms] BOOT OK\r\n');
    await b.send('[ 712345.678 ms] CRASH vector=14 (#PF page fault)\r\n');
    await until(() => /fatal pattern "crash-report" at line 3/.test(err), 'the fatal line reported');
    con.stdin!.end();
    const code = await new Promise<number | null>((r) => con.once('close', (c) => r(c)));
    expect(code).toBe(1);
    const last = JSON.parse(out.trim().split('\n').pop()!);
    expect(last).toMatchObject({ ok: false, device: 'b', failure: { blame: 'os', code: 'os-fatal', line: 3 }, fatal: [{ name: 'crash-report', line: 3 }] });
    expect(last.fatal[0].text).toMatch(/CRASH vector=14/);
    expect(readFileSync(last.log, 'utf8')).toMatch(/--- attached to the running b \(no power switched\)/);
    expect(b.powered()).toBe(false);
    b.done();
  });
});
