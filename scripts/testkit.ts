// Test helpers for tests that need a system tool (QEMU, Chromium, socat, cargo ...).
// Missing tool: the tests are skipped with a printed reason - except under CI=true, where
// a missing tool fails the run, so nothing silently stops being tested.
import { spawnSync } from 'node:child_process';
import { afterAll, describe, it } from 'vitest';
import { rmSync } from 'node:fs';

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
