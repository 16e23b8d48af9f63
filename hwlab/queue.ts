// The lab's waiting line: a job that waits for a device (`--wait`) takes a ticket, and a device
// that becomes free goes to the job of the highest priority (`--priority`, LAVA's 0-100, default
// 50) that has waited longest for it - not to whichever poll comes first, nor to a job that
// arrives later without waiting. One file per ticket in STATE/queue, named so that they sort by
// priority, then arrival; a ticket whose process is gone (killed, crashed) is stale and is removed
// by whoever finds it, as a stale device lock is.
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { defaultOwner, goneWhy, pidStartTime } from './lock.ts';

export interface Ticket {
  /**
   * File name: `p` and 100 - priority (3 digits), arrival time (ms, zero-padded), pid and a random
   * part; tickets sort by it. (A name without the `p` part, from before priorities, is priority 50.)
   */
  name: string;
  /** 0-100, higher first; 50 unless the job said otherwise. */
  priority: number;
  pid: number;
  pidStart: number | null;
  host: string;
  owner: string;
  command: string;
  /** The devices the job would take (its device, or its pool's). */
  wants: string[];
  since: string;
}

const dirOf = (stateDir: string) => join(stateDir, 'queue');

export const DEFAULT_PRIORITY = 50;
const NAMED_PRIORITIES: Record<string, number> = { low: 0, medium: 50, high: 100 };

/** A `--priority` value: an integer 0-100, or LAVA's low / medium / high (0 / 50 / 100); null if it is neither. */
export function parsePriority(v: string): number | null {
  const named = NAMED_PRIORITIES[v.toLowerCase()];
  if (named !== undefined) return named;
  if (!/^\d{1,3}$/.test(v)) return null;
  const n = Number(v);
  return n <= 100 ? n : null;
}

const prefix = (priority: number) => `p${String(100 - priority).padStart(3, '0')}-`;
/** The key tickets are served by: priority first (a higher one sorts first), then arrival. */
const orderKey = (name: string) => (name.startsWith('p') ? name : prefix(DEFAULT_PRIORITY) + name);
const priorityOf = (name: string) => (/^p\d{3}-/.test(name) ? 100 - Number(name.slice(1, 4)) : DEFAULT_PRIORITY);

/**
 * Where a job of this priority that does not wait stands in the line, now: behind every ticket of
 * the same or a higher priority, ahead of those of a lower one. Pass it to queueAhead.
 */
export function placeOf(priority: number): string {
  return `${prefix(priority)}${String(Date.now()).padStart(15, '0')}-~`;
}

/** Takes a ticket; `leave()` (also done when the process exits) gives it up. */
export function joinQueue(stateDir: string, wants: string[], command: string, priority = DEFAULT_PRIORITY): { ticket: Ticket; leave(): void } {
  mkdirSync(dirOf(stateDir), { recursive: true });
  const ticket: Ticket = {
    name: `${prefix(priority)}${String(Date.now()).padStart(15, '0')}-${String(process.pid).padStart(8, '0')}-${randomBytes(4).toString('hex')}.json`,
    priority,
    pid: process.pid, pidStart: pidStartTime(process.pid), host: hostname(), owner: defaultOwner(), command: command.slice(0, 200), wants, since: new Date().toISOString(),
  };
  const file = join(dirOf(stateDir), ticket.name);
  const fd = openSync(file, 'wx', 0o644);
  try { writeSync(fd, JSON.stringify(ticket) + '\n'); fsyncSync(fd); } finally { closeSync(fd); }
  let left = false;
  const leave = () => {
    if (left) return;
    left = true;
    process.off('exit', leave);
    try { unlinkSync(file); } catch { /* removed already */ }
  };
  process.on('exit', leave);
  return { ticket, leave };
}

/**
 * The live tickets ahead of `mine` - a ticket's name, or placeOf(priority) for a job that does not
 * wait; every live ticket when mine is null - in the order they are served. Stale tickets are
 * removed on the way; one still being written (empty, young) is passed over.
 */
export function queueAhead(stateDir: string, mine: string | null): Ticket[] {
  let names: string[];
  try { names = readdirSync(dirOf(stateDir)).filter((n) => n.endsWith('.json')).sort((a, b) => (orderKey(a) < orderKey(b) ? -1 : 1)); } catch { return []; }
  const mineKey = mine === null ? null : orderKey(mine);
  const out: Ticket[] = [];
  for (const n of names) {
    if (mineKey !== null && orderKey(n) >= mineKey) break;
    const file = join(dirOf(stateDir), n);
    let t: Ticket | null = null;
    try { t = JSON.parse(readFileSync(file, 'utf8')) as Ticket; } catch { /* being written, or torn */ }
    if (!t || typeof t.pid !== 'number' || !Array.isArray(t.wants)) {
      try { if (Date.now() - statSync(file).mtimeMs > 5000) unlinkSync(file); } catch { /* gone */ }
      continue;
    }
    if (goneWhy(t)) { try { unlinkSync(file); } catch { /* gone */ } continue; }
    out.push({ ...t, name: n, priority: priorityOf(n) });
  }
  return out;
}

/** Each device wanted by a ticket ahead, with the first such ticket (the one it goes to). */
export function reservations(ahead: Ticket[]): Map<string, Ticket> {
  const m = new Map<string, Ticket>();
  for (const t of ahead) for (const d of t.wants) if (!m.has(d)) m.set(d, t);
  return m;
}
