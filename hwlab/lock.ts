// One user per device: a lock file created with O_EXCL holding owner, pid and the pid's start time.
// A lock whose process is gone (or whose pid was reused by another process, seen from the start
// time in /proc) is stale and is taken over - with the take-over reported, never silently.
import { mkdirSync, openSync, readFileSync, unlinkSync, writeSync, closeSync, fsyncSync, statSync } from 'node:fs';
import { hostname, userInfo } from 'node:os';
import { join } from 'node:path';
import { LabError } from './errors.ts';

export interface LockInfo {
  device: string;
  owner: string;
  pid: number;
  /** Start time of the pid (clock ticks since boot, /proc/PID/stat field 22): detects pid reuse. */
  pidStart: number | null;
  host: string;
  since: string;
  command: string;
}

export type LockState =
  | { state: 'free' }
  | { state: 'held'; info: LockInfo; mine: boolean }
  | { state: 'stale'; info: LockInfo | null; why: string };

export function lockPath(stateDir: string, device: string): string {
  return join(stateDir, 'locks', `${device}.lock`);
}

export function defaultOwner(): string {
  if (process.env.ORBITAL_LAB_OWNER) return process.env.ORBITAL_LAB_OWNER;
  let user = 'unknown';
  try { user = userInfo().username; } catch { /* no passwd entry in some containers */ }
  return `${user}@${hostname()}`;
}

/** Start time of a process, or null when it does not exist (or /proc is not there). */
export function pidStartTime(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 2 (comm) may contain spaces and parens; the fields after the last ')' are fixed.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(rest[19]);
  } catch { return null; }
}

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM'; }
}

/**
 * Why the process that wrote a lock (or a queue ticket) is gone - it exited, or its pid now
 * belongs to another process (start time differs) - or null while it runs. A process on another
 * host cannot be checked from here: taken as running.
 */
export function goneWhy(o: { pid: number; pidStart: number | null; host: string }): string | null {
  if (o.host !== hostname()) return null;
  if (!alive(o.pid)) return `process ${o.pid} is gone`;
  const start = pidStartTime(o.pid);
  if (o.pidStart !== null && start !== null && start !== o.pidStart) return `pid ${o.pid} now belongs to another process`;
  return null;
}

export function readLock(stateDir: string, device: string): LockState {
  const p = lockPath(stateDir, device);
  let text: string;
  try { text = readFileSync(p, 'utf8'); } catch { return { state: 'free' }; }
  let info: LockInfo | null = null;
  try { info = JSON.parse(text) as LockInfo; } catch { /* torn or foreign content */ }
  if (!info || typeof info.pid !== 'number') {
    // A lock being written right now is briefly empty; only call it stale once it is old.
    let age = Infinity;
    try { age = Date.now() - statSync(p).mtimeMs; } catch { /* gone meanwhile */ }
    return age > 5000 ? { state: 'stale', info: null, why: 'unreadable lock file' } : { state: 'held', info: { device, owner: '?', pid: -1, pidStart: null, host: '?', since: '?', command: '?' }, mine: false };
  }
  const gone = goneWhy(info);
  if (gone) return { state: 'stale', info, why: gone };
  return { state: 'held', info, mine: info.host === hostname() && info.pid === process.pid };
}

export interface Lock {
  info: LockInfo;
  /** Set when a stale lock was taken over. */
  tookOver?: { info: LockInfo | null; why: string };
  release(): void;
}

/** Takes the device lock or throws `device-locked` naming who holds it. */
export function acquireLock(stateDir: string, device: string, command: string, owner = defaultOwner()): Lock {
  const p = lockPath(stateDir, device);
  mkdirSync(join(stateDir, 'locks'), { recursive: true });
  const info: LockInfo = { device, owner, pid: process.pid, pidStart: pidStartTime(process.pid), host: hostname(), since: new Date().toISOString(), command };
  let tookOver: Lock['tookOver'];
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      const fd = openSync(p, 'wx', 0o644);
      try { writeSync(fd, JSON.stringify(info) + '\n'); fsyncSync(fd); } finally { closeSync(fd); }
      let released = false;
      return {
        info,
        tookOver,
        release() {
          if (released) return;
          released = true;
          const now = readLock(stateDir, device);
          if (now.state === 'held' && now.info.pid === info.pid && now.info.since === info.since) { try { unlinkSync(p); } catch { /* already gone */ } }
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new LabError('io', 'io-error', `cannot create lock ${p}: ${(e as Error).message}`);
    }
    const st = readLock(stateDir, device);
    if (st.state === 'held') {
      const h = st.info;
      throw new LabError('busy', 'device-locked', `device ${device} is in use by ${h.owner} (pid ${h.pid} on ${h.host}, since ${h.since}, running "${h.command}"); wait, or ask them to release it`, 'lab', { holder: h });
    }
    if (st.state === 'stale') {
      // Two processes may see the same stale lock; a guard file makes the take-over one at a time,
      // and the lock is re-read under the guard so a fresh lock is never removed.
      const guard = `${p}.takeover`;
      try {
        closeSync(openSync(guard, 'wx'));
      } catch {
        try { if (Date.now() - statSync(guard).mtimeMs > 10_000) unlinkSync(guard); } catch { /* gone */ }
        continue;
      }
      try {
        const again = readLock(stateDir, device);
        if (again.state === 'stale') { unlinkSync(p); tookOver = { info: again.info, why: again.why }; }
      } catch { /* removed meanwhile */ } finally { try { unlinkSync(guard); } catch { /* ignore */ } }
    }
  }
  throw new LabError('busy', 'device-locked', `device ${device}: could not take the lock ${p} (contended); try again`);
}
