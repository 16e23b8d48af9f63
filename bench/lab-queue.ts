// `npm run bench -- lab-queue`: how long a freed device stays idle before the job waiting for it
// (`orbital-lab flash a IMG --wait`) takes it. The bench holds the device's lock, starts the waiter
// as a child process, lets it settle into its wait, releases the lock at a random moment and
// times until the waiter's own lock is on the device. handoff_ms: woken by inotify on the lab's
// state directories (the default); its baseline handoff_poll_ms: the 200 ms poll alone
// (ORBITAL_LAB_POLL_ONLY=1, what a file system without inotify gets).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { BenchContext, BenchResult } from './harness.ts';
import { round } from './harness.ts';
import { acquireLock, readLock } from '../hwlab/lock.ts';

const BIN = resolve(import.meta.dirname, '../bin/orbital-lab.mjs');

async function handoff(dir: string, pollOnly: boolean): Promise<number> {
  const state = join(dir, '.orbital', 'lab');
  const hold = acquireLock(state, 'a', 'bench: holds the device', 'bench');
  const child = spawn(process.execPath, [BIN, '--lab', join(dir, 'lab.yaml'), '--json', 'flash', 'a', join(dir, 'x.img'), '--no-bmap', '--force', '--wait', '60s'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ORBITAL_LAB_POLL_ONLY: pollOnly ? '1' : '0' } });
  let out = '';
  child.stdout.on('data', (d: Buffer) => { out += d; });
  const exited = new Promise<number | null>((r) => child.once('close', r));
  while (!out.includes('"event":"waiting"')) await new Promise((r) => setTimeout(r, 5));
  // A random point of the waiter's poll cycle.
  await new Promise((r) => setTimeout(r, 250 + Math.random() * 200));
  const t0 = performance.now();
  hold.release();
  for (;;) {
    const st = readLock(state, 'a');
    if (st.state === 'held' && st.info.pid === child.pid) break;
    await new Promise((r) => setImmediate(r));
    if (performance.now() - t0 > 10_000) throw new Error(`the waiter did not take the device: ${out}`);
  }
  const ms = performance.now() - t0;
  if ((await exited) !== 0) throw new Error(`the waiter failed: ${out}`);
  return ms;
}

export default async function run(ctx: BenchContext): Promise<BenchResult> {
  const reps = Number(ctx.args.find((a) => a.startsWith('--reps='))?.slice(7) ?? 8);
  const dir = mkdtempSync(join(tmpdir(), 'orbital-queue-bench-'));
  try {
    writeFileSync(join(dir, 'lab.yaml'), `version: 1\ndevices:\n  a:\n    kind: qemu\n    flash: { target: ${join(dir, 'a.img')} }\n`);
    writeFileSync(join(dir, 'x.img'), Buffer.alloc(64 << 10, 7));
    const watched: number[] = []; const polled: number[] = [];
    for (let i = 0; i < reps; i++) {
      ctx.progress(`rep ${i + 1}/${reps}`);
      // Alternated, so both see the same machine.
      watched.push(await handoff(dir, false));
      polled.push(await handoff(dir, true));
    }
    const median = (xs: number[]) => { const o = [...xs].sort((a, b) => a - b); return o.length % 2 ? o[(o.length - 1) / 2]! : (o[o.length / 2 - 1]! + o[o.length / 2]!) / 2; };
    const figures = {
      handoff_ms: round(median(watched), 1),
      handoff_poll_ms: round(median(polled), 1),
      handoff_max_ms: round(Math.max(...watched), 1),
      handoff_poll_max_ms: round(Math.max(...polled), 1),
      reps,
    };
    return {
      figures,
      goals: [{ text: `handoff_ms (${figures.handoff_ms}, woken by inotify) < handoff_poll_ms (${figures.handoff_poll_ms}, the 200 ms poll)`, met: figures.handoff_ms < figures.handoff_poll_ms }],
      notes: [`medians of ${reps} handoffs each, alternated; from the holder releasing the lock to the waiter's lock on the device (the waiter re-reads the lab log and the waiting line before it takes it)`],
    };
  } finally { rmSync(dir, { recursive: true, force: true }); }
}
