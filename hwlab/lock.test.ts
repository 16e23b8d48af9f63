import { describe, expect, it, afterAll } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync, utimesSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir, hostname } from 'node:os';
import { join } from 'node:path';
import { acquireLock, readLock, lockPath } from './lock.ts';
import { LabError } from './errors.ts';

const dirs: string[] = [];
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });
const state = () => { const d = mkdtempSync(join(tmpdir(), 'orbital-lock-')); dirs.push(d); return d; };

describe('device lock', () => {
  it('gives one holder at a time and names the holder to the next', () => {
    const s = state();
    const a = acquireLock(s, 'dut', 'flash x', 'alice@lab');
    expect(readLock(s, 'dut')).toMatchObject({ state: 'held', mine: true });
    try { acquireLock(s, 'dut', 'boot', 'bob@lab'); throw new Error('second lock taken'); } catch (e) {
      expect(e).toBeInstanceOf(LabError);
      expect((e as LabError).code).toBe('device-locked');
      expect((e as LabError).message).toMatch(/alice@lab.*flash x/);
    }
    a.release();
    expect(readLock(s, 'dut').state).toBe('free');
    acquireLock(s, 'dut', 'boot', 'bob@lab').release();
  });

  it('takes over a lock whose process is gone, and says so', () => {
    const s = state();
    // A real process that has exited: its pid is free (or reused with another start time).
    const dead = spawnSync('sh', ['-c', 'echo $$']).stdout.toString().trim();
    mkdirSync(join(s, 'locks'), { recursive: true });
    writeFileSync(lockPath(s, 'dut'), JSON.stringify({ device: 'dut', owner: 'ghost@lab', pid: Number(dead), pidStart: 1, host: hostname(), since: 'then', command: 'flash' }));
    expect(readLock(s, 'dut').state).toBe('stale');
    const l = acquireLock(s, 'dut', 'boot');
    expect(l.tookOver?.info?.owner).toBe('ghost@lab');
    l.release();
  });

  it('treats a garbage lock file as stale only once it is old', () => {
    const s = state();
    mkdirSync(join(s, 'locks'), { recursive: true });
    writeFileSync(lockPath(s, 'dut'), '');
    expect(readLock(s, 'dut').state).toBe('held');
    const old = new Date(Date.now() - 60_000);
    utimesSync(lockPath(s, 'dut'), old, old);
    expect(readLock(s, 'dut').state).toBe('stale');
  });

  it('keeps a lock held by a live process of this host (pid reuse checked by start time)', () => {
    const s = state();
    mkdirSync(join(s, 'locks'), { recursive: true });
    writeFileSync(lockPath(s, 'dut'), JSON.stringify({ device: 'dut', owner: 'init', pid: 1, pidStart: null, host: hostname(), since: 'boot', command: 'x' }));
    expect(readLock(s, 'dut').state).toBe('held');
    writeFileSync(lockPath(s, 'dut'), JSON.stringify({ device: 'dut', owner: 'init', pid: process.pid, pidStart: 12345678999, host: hostname(), since: 'boot', command: 'x' }));
    expect(readLock(s, 'dut')).toMatchObject({ state: 'stale', why: expect.stringMatching(/another process/) });
  });
});
