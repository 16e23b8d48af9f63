// The lab's waiting line: a job that waits for a device (`--wait`) takes a ticket, and a device
// that becomes free goes to the job that has waited longest for it - not to whichever poll comes
// first, nor to a job that arrives later without waiting. One file per ticket in STATE/queue,
// named so that they sort by arrival; a ticket whose process is gone (killed, crashed) is stale
// and is removed by whoever finds it, as a stale device lock is.
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { defaultOwner, goneWhy, pidStartTime } from './lock.ts';

export interface Ticket {
  /** File name: arrival time (ms, zero-padded), pid and a random part; tickets sort by it. */
  name: string;
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

/** Takes a ticket; `leave()` (also done when the process exits) gives it up. */
export function joinQueue(stateDir: string, wants: string[], command: string): { ticket: Ticket; leave(): void } {
  mkdirSync(dirOf(stateDir), { recursive: true });
  const ticket: Ticket = {
    name: `${String(Date.now()).padStart(15, '0')}-${String(process.pid).padStart(8, '0')}-${randomBytes(4).toString('hex')}.json`,
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
 * The live tickets ahead of `mine` (every live ticket when mine is null), oldest first. Stale
 * tickets are removed on the way; one still being written (empty, young) is passed over.
 */
export function queueAhead(stateDir: string, mine: string | null): Ticket[] {
  let names: string[];
  try { names = readdirSync(dirOf(stateDir)).filter((n) => n.endsWith('.json')).sort(); } catch { return []; }
  const out: Ticket[] = [];
  for (const n of names) {
    if (mine !== null && n >= mine) break;
    const file = join(dirOf(stateDir), n);
    let t: Ticket | null = null;
    try { t = JSON.parse(readFileSync(file, 'utf8')) as Ticket; } catch { /* being written, or torn */ }
    if (!t || typeof t.pid !== 'number' || !Array.isArray(t.wants)) {
      try { if (Date.now() - statSync(file).mtimeMs > 5000) unlinkSync(file); } catch { /* gone */ }
      continue;
    }
    if (goneWhy(t)) { try { unlinkSync(file); } catch { /* gone */ } continue; }
    out.push({ ...t, name: n });
  }
  return out;
}

/** Each device wanted by a ticket ahead, with the first (oldest) such ticket. */
export function reservations(ahead: Ticket[]): Map<string, Ticket> {
  const m = new Map<string, Ticket>();
  for (const t of ahead) for (const d of t.wants) if (!m.has(d)) m.set(d, t);
  return m;
}
