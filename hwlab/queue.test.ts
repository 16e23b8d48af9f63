// The lab's waiting line (queue.ts) through the real CLI as child processes: a freed device goes to
// the job that has waited longest for it, a job that does not wait cannot take a device a waiting
// job wants (but takes another of its pool), and a waiter killed with SIGKILL holds nobody up.
import { afterAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { makeImage, MiB } from './flash/testimg.ts';
import { acquireLock } from './lock.ts';
import { joinQueue, queueAhead } from './queue.ts';

const BIN = resolve(import.meta.dirname, '../bin/orbital-lab.mjs');
const dirs: string[] = [];
const kids: ChildProcess[] = [];
afterAll(() => { for (const k of kids) k.kill('SIGKILL'); for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

function run(args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 120_000 });
  let last: Record<string, any> | null = null;
  try { last = JSON.parse(r.stdout.trim().split('\n').pop()!); } catch { /* not json */ }
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, last };
}

/** A child CLI; resolves `waiting` once it has said it waits, and `done` with its exit and last JSON line. */
function start(args: string[]) {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  kids.push(child);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => { out += d; });
  const done = new Promise<{ code: number | null; last: Record<string, any> }>((r) => child.once('close', (code) => r({ code, last: JSON.parse(out.trim().split('\n').pop()!) })));
  const waiting = (async () => {
    for (let i = 0; i < 600; i++) {
      const m = out.split('\n').find((x) => x.includes('"event":"waiting"'));
      if (m) return JSON.parse(m) as { ahead: number; why: string };
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`never said it waits: ${out}`);
  })();
  return { child, done, waiting };
}

function lab() {
  const dir = mkdtempSync(join(tmpdir(), 'orbital-queue-'));
  dirs.push(dir);
  writeFileSync(join(dir, 'lab.yaml'), `version: 1\ndevices:\n  a:\n    kind: qemu\n    flash: { target: ${join(dir, 'a.img')} }\n    tags: [pool]\n  b:\n    kind: qemu\n    flash: { target: ${join(dir, 'b.img')} }\n    tags: [pool]\n`);
  const x = makeImage(join(dir, 'x.img'), 2 * MiB, [[0, MiB]]);
  const y = makeImage(join(dir, 'y.img'), 2 * MiB, [[MiB / 2, MiB]]);
  return { dir, file: join(dir, 'lab.yaml'), state: join(dir, '.orbital', 'lab'), x, y };
}

describe('the waiting line', () => {
  it('gives a freed device to the job that waited longest, not to the one that polls first', async () => {
    const l = lab();
    const hold = acquireLock(l.state, 'a', 'someone\'s long job', 'tester');
    const first = start(['--lab', l.file, '--json', 'flash', 'a', join(l.dir, 'x.img'), '--no-bmap', '--wait', '60s']);
    expect((await first.waiting).ahead).toBe(0);
    const second = start(['--lab', l.file, '--json', 'flash', 'a', join(l.dir, 'y.img'), '--no-bmap', '--wait', '60s']);
    expect((await second.waiting).ahead).toBe(1);
    // devices shows who waits, oldest first.
    const dv = run(['--lab', l.file, '--json', 'devices']).last!;
    expect(dv.devices[0].waiting.map((w: { command: string }) => w.command)).toEqual([`flash ${join(l.dir, 'x.img')}`, `flash ${join(l.dir, 'y.img')}`]);
    expect(run(['--lab', l.file, 'devices']).stdout).toMatch(/^a +qemu +in use by tester .*; 2 job\(s\) waiting for it \(first: /m);
    hold.release();
    const [r1, r2] = await Promise.all([first.done, second.done]);
    expect([r1.code, r2.code]).toEqual([0, 0]);
    expect([r1.last.status, r2.last.status]).toEqual(['written', 'written']);
    // The first waiter wrote x, then the second wrote y over it: a holds y.
    expect(readFileSync(join(l.dir, 'a.img')).equals(l.y)).toBe(true);
    expect(readdirSync(join(l.state, 'queue'))).toEqual([]);
  });

  it('a job that does not wait cannot take a device a waiting job wants, but takes another of the pool; a SIGKILLed waiter holds nobody up', async () => {
    const l = lab();
    // This test process waits for a (its ticket is live as long as it runs).
    const mine = joinQueue(l.state, ['a'], 'flash a (the test)');
    try {
      const named = run(['--lab', l.file, '--json', 'flash', 'a', join(l.dir, 'x.img'), '--no-bmap']);
      expect(named.code).toBe(3);
      expect(named.last!.error).toMatchObject({ code: 'device-locked', device: 'a', queuedBefore: { command: 'flash a (the test)', pid: process.pid } });
      expect(named.stderr).toMatch(/device a is free, but kept for a job that has waited longer .*"flash a \(the test\)"/);
      expect(run(['--lab', l.file, '--json', 'flash', '@pool', join(l.dir, 'x.img'), '--no-bmap']).last).toMatchObject({ ok: true, device: 'b' });
      // A later waiter queues behind this one even though a is free, and gets it once this one leaves.
      const later = start(['--lab', l.file, '--json', 'flash', 'a', join(l.dir, 'y.img'), '--no-bmap', '--wait', '60s']);
      const w = await later.waiting;
      expect(w.ahead).toBe(1);
      expect(w.why).toMatch(/kept for a job that has waited longer/);
      mine.leave();
      expect(await later.done).toMatchObject({ code: 0, last: { ok: true, device: 'a', status: 'written' } });
    } finally { mine.leave(); }
    // A waiter killed with SIGKILL leaves its ticket behind; it is stale, and removed by the next job.
    const hold = acquireLock(l.state, 'a', 'job', 'tester');
    const doomed = start(['--lab', l.file, '--json', 'flash', 'a', join(l.dir, 'x.img'), '--no-bmap', '--wait', '60s']);
    await doomed.waiting;
    doomed.child.kill('SIGKILL');
    await new Promise((r) => doomed.child.once('close', r));
    expect(readdirSync(join(l.state, 'queue')).length).toBe(1);
    hold.release();
    expect(run(['--lab', l.file, '--json', 'flash', 'a', join(l.dir, 'x.img'), '--no-bmap']).last).toMatchObject({ ok: true, device: 'a', status: 'written' });
    expect(readdirSync(join(l.state, 'queue'))).toEqual([]);
    expect(queueAhead(l.state, null)).toEqual([]);
  });
});
