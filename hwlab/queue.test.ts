// The lab's waiting line (queue.ts) through the real CLI as child processes: a freed device goes to
// the job that has waited longest for it, a job that does not wait cannot take a device a waiting
// job wants (but takes another of its pool), a waiter killed with SIGKILL holds nobody up, and a
// job of a higher --priority goes before those that waited longer.
import { afterAll, describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { labCli, poolLab } from '../scripts/testkit.ts';
import { acquireLock } from './lock.ts';
import { joinQueue, parsePriority, placeOf, queueAhead } from './queue.ts';

const dirs: string[] = [];
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });
const { run, start } = labCli();

const lab = () => poolLab('orbital-queue-', dirs);

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

  it('a job of a higher --priority goes first, whenever it came; a job that does not wait may take a device kept for a lower one', async () => {
    const l = lab();
    const hold = acquireLock(l.state, 'a', 'someone\'s long job', 'tester');
    const low = start(['--lab', l.file, '--json', 'flash', 'a', join(l.dir, 'y.img'), '--no-bmap', '--wait', '60s', '--priority', 'low']);
    expect((await low.waiting).ahead).toBe(0);
    const high = start(['--lab', l.file, '--json', 'flash', 'a', join(l.dir, 'x.img'), '--no-bmap', '--wait', '60s', '--priority', '90']);
    // It came later, but nobody is ahead of it.
    expect((await high.waiting).ahead).toBe(0);
    const dv = run(['--lab', l.file, '--json', 'devices']).last!;
    expect(dv.devices[0].waiting.map((w: { priority: number }) => w.priority)).toEqual([90, 0]);
    expect(run(['--lab', l.file, 'devices']).stdout).toMatch(/2 job\(s\) waiting for it \(first: [^,]+, priority 90, /);
    hold.release();
    expect(await high.done).toMatchObject({ code: 0, last: { ok: true, status: 'written' } });
    expect(await low.done).toMatchObject({ code: 0, last: { ok: true, status: 'written' } });
    // high wrote x first, then low wrote y over it.
    expect(readFileSync(join(l.dir, 'a.img')).equals(l.y)).toBe(true);

    // The test process waits for a at the default priority: a job of the same priority that does
    // not wait is refused it, one of a higher priority takes it.
    const mine = joinQueue(l.state, ['a'], 'flash a (the test)');
    try {
      const same = run(['--lab', l.file, '--json', 'flash', 'a', join(l.dir, 'x.img'), '--no-bmap', '--priority', '50']);
      expect(same.code).toBe(3);
      expect(same.stderr).toMatch(/kept for a job that has waited longer/);
      const lower = run(['--lab', l.file, '--json', 'flash', 'a', join(l.dir, 'x.img'), '--no-bmap', '--priority', '10']);
      expect(lower.code).toBe(3);
      expect(lower.stderr).toMatch(/kept for a job of a higher priority \(50, this job's 10\)/);
      expect(run(['--lab', l.file, '--json', 'flash', 'a', join(l.dir, 'x.img'), '--no-bmap', '--priority', 'high']).last).toMatchObject({ ok: true, device: 'a', status: 'written' });
    } finally { mine.leave(); }
    const bad = run(['--lab', l.file, '--json', 'flash', 'a', join(l.dir, 'x.img'), '--priority', '101']);
    expect(bad.code).toBe(2);
    expect(bad.last!.error).toMatchObject({ code: 'bad-usage' });
    expect(bad.stderr).toMatch(/--priority must be a whole number from 0 to 100/);
  });
});

describe('the line\'s order', () => {
  it('is priority, then arrival; a ticket from before priorities is priority 50', () => {
    const l = lab();
    const q = join(l.state, 'queue');
    const t = (name: string, command: string) => writeFileSync(join(q, name), JSON.stringify({ pid: process.pid, pidStart: null, host: 'h', owner: 'o', command, wants: ['a'], since: '' }));
    const a = joinQueue(l.state, ['a'], 'mid, first', 50);
    t(`000000000000001-${String(process.pid).padStart(8, '0')}-00000000.json`, 'legacy');
    const b = joinQueue(l.state, ['a'], 'top', 100);
    const c = joinQueue(l.state, ['a'], 'bottom', 0);
    try {
      expect(queueAhead(l.state, null).map((x) => [x.command, x.priority])).toEqual([['top', 100], ['legacy', 50], ['mid, first', 50], ['bottom', 0]]);
      expect(queueAhead(l.state, a.ticket.name).map((x) => x.command)).toEqual(['top', 'legacy']);
      expect(queueAhead(l.state, c.ticket.name).map((x) => x.command)).toEqual(['top', 'legacy', 'mid, first']);
      // A job that does not wait stands behind its own priority and above, ahead of lower ones.
      expect(queueAhead(l.state, placeOf(50)).map((x) => x.command)).toEqual(['top', 'legacy', 'mid, first']);
      expect(queueAhead(l.state, placeOf(100)).map((x) => x.command)).toEqual(['top']);
      expect(queueAhead(l.state, placeOf(0)).length).toBe(4);
    } finally { a.leave(); b.leave(); c.leave(); }
    expect([parsePriority('0'), parsePriority('100'), parsePriority('High'), parsePriority('medium'), parsePriority('101'), parsePriority('-1'), parsePriority('5.5'), parsePriority('')]).toEqual([0, 100, 100, 50, null, null, null, null]);
  });
});
