// Test helpers for tests that need a system tool (QEMU, Chromium, socat, cargo ...).
// Missing tool: the tests are skipped with a printed reason - except under CI=true, where
// a missing tool fails the run, so nothing silently stops being tested.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { afterAll, describe, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { makeImage, MiB } from '../hwlab/flash/testimg.ts';

const cache = new Map<string, string | null>();

/** Returns the absolute path of `cmd`, or null. */
export function which(cmd: string): string | null {
  if (cache.has(cmd)) return cache.get(cmd)!;
  const r = spawnSync('sh', ['-c', `command -v ${JSON.stringify(cmd)}`], { encoding: 'utf8' });
  const p = r.status === 0 ? r.stdout.trim() || null : null;
  cache.set(cmd, p);
  return p;
}

export const inCI = process.env.CI === 'true';

/** The tools that are missing from `tools`, as a reason string, or null when all are there. */
export function missing(tools: string[]): string | null {
  const gone = tools.filter((t) => !which(t));
  return gone.length ? `missing tool(s): ${gone.join(', ')} (see README: system packages)` : null;
}

/**
 * describe() that needs system tools. Missing locally: skipped with a printed reason.
 * Missing under CI=true: one failing test that names the tool.
 */
export function describeWithTools(tools: string[], name: string, fn: () => void): void {
  const why = missing(tools);
  if (!why) { describe(name, fn); return; }
  if (inCI) {
    describe(name, () => { it('has the tools it needs', () => { throw new Error(`${name}: ${why} - CI=true, so this fails instead of skipping`); }); });
    return;
  }
  console.warn(`SKIP ${name}: ${why}`);
  describe.skip(name, fn);
}

/**
 * What a disk test sets up, torn down after the file's tests in the safe order: mounts unmounted,
 * then loop devices detached, then temp dirs removed. Push onto the lists as things are made.
 */
export function scratchDisks(): { dirs: string[]; loops: string[]; mounts: string[] } {
  const s = { dirs: [] as string[], loops: [] as string[], mounts: [] as string[] };
  afterAll(() => {
    for (const m of s.mounts) spawnSync('umount', [m]);
    for (const l of s.loops) spawnSync('losetup', ['-d', l]);
    for (const d of s.dirs) rmSync(d, { recursive: true, force: true });
  });
  return s;
}

const LAB_BIN = resolve(import.meta.dirname, '../bin/orbital-lab.mjs');

/**
 * `orbital-lab` as child processes, optionally run as a named person (ORBITAL_LAB_OWNER): `run`
 * waits for one and parses its last stdout line as JSON; `start` leaves it running - `waiting`
 * resolves once it says it waits in the lab's line (a `--json` `waiting` event), `done` with its
 * exit code and last JSON line. Children still running after the file's tests are killed.
 */
export function labCli() {
  const kids: ChildProcess[] = [];
  afterAll(() => { for (const k of kids) k.kill('SIGKILL'); });
  const envOf = (who?: string) => (who === undefined ? process.env : { ...process.env, ORBITAL_LAB_OWNER: who });
  const run = (args: string[], who?: string) => {
    const r = spawnSync(process.execPath, [LAB_BIN, ...args], { encoding: 'utf8', timeout: 120_000, env: envOf(who) });
    let last: Record<string, any> | null = null;
    try { last = JSON.parse(r.stdout.trim().split('\n').pop()!); } catch { /* not json */ }
    return { code: r.status, stdout: r.stdout, stderr: r.stderr, last };
  };
  const start = (args: string[], who?: string) => {
    const child = spawn(process.execPath, [LAB_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: envOf(who) });
    kids.push(child);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => { out += d; });
    // (a child killed before it printed its result has none: last is {})
    const lastOf = () => { try { return JSON.parse(out.trim().split('\n').pop()!) as Record<string, any>; } catch { return {}; } };
    const done = new Promise<{ code: number | null; last: Record<string, any> }>((r) => child.once('close', (code) => r({ code, last: lastOf() })));
    const waiting = (async () => {
      for (let i = 0; i < 600; i++) {
        const m = out.split('\n').find((x) => x.includes('"event":"waiting"'));
        if (m) return JSON.parse(m) as { ahead: number; why: string };
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`never said it waits: ${out}`);
    })();
    // Awaited only by tests of waiting jobs: for any other job its timeout is no one's error.
    waiting.catch(() => {});
    return { child, done, waiting };
  };
  return { run, start };
}

/**
 * A lab of two qemu devices, a and b, both tagged pool, with file targets, and two 2 MiB images x
 * and y whose data differ (for jobs that flash). Its directory goes into `dirs` for the caller's cleanup.
 */
export function poolLab(prefix: string, dirs: string[]) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dir);
  writeFileSync(join(dir, 'lab.yaml'), `version: 1\ndevices:\n  a:\n    kind: qemu\n    flash: { target: ${join(dir, 'a.img')} }\n    tags: [pool]\n  b:\n    kind: qemu\n    flash: { target: ${join(dir, 'b.img')} }\n    tags: [pool]\n`);
  const x = makeImage(join(dir, 'x.img'), 2 * MiB, [[0, MiB]]);
  const y = makeImage(join(dir, 'y.img'), 2 * MiB, [[MiB / 2, MiB]]);
  return { dir, file: join(dir, 'lab.yaml'), state: join(dir, '.orbital', 'lab'), x, y };
}
