// The flash journal: one small JSON file per device saying whether its target holds a finished,
// verified image. It is written `in-progress` before the first byte goes to the target, so a flash
// that was killed or lost power is seen as interrupted by the next run - never as success.
import { mkdirSync, readFileSync, renameSync, writeFileSync, openSync, fsyncSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { pidStartTime } from '../lock.ts';

export interface JournalEntry {
  device: string;
  target: string;
  source: string;
  status: 'in-progress' | 'ok' | 'failed' | 'cancelled' | 'interrupted';
  pid: number;
  pidStart: number | null;
  started: string;
  ended?: string;
  /**
   * The image's BLAKE3 id: of the bytes written (the mapped ranges with a bmap, else the whole
   * image), or - `blake3Of: "bmap-sha256"` - of the bmap's range table with each range's SHA-256,
   * every one of which was checked against the bytes written.
   */
  blake3?: string;
  blake3Of?: 'bytes' | 'bmap-sha256';
  /**
   * A signed .orbimg: what its manifest said when the flash checked it (signature, trusted key,
   * and the part's BLAKE3 = `blake3`), so the device can be named after the file is gone.
   */
  signed?: { id: string; name: string; version: string; key: string; part: string };
  error?: string;
}

export function journalPath(stateDir: string, device: string): string {
  return join(stateDir, 'flash', `${device}.json`);
}

/** The device's last flash; an `in-progress` entry whose process is gone is reported as `interrupted`. */
export function readJournal(stateDir: string, device: string): JournalEntry | null {
  let e: JournalEntry;
  try { e = JSON.parse(readFileSync(journalPath(stateDir, device), 'utf8')) as JournalEntry; } catch { return null; }
  if (e.status === 'in-progress') {
    const start = pidStartTime(e.pid);
    if (start === null || (e.pidStart !== null && start !== e.pidStart)) return { ...e, status: 'interrupted' };
  }
  return e;
}

export function writeJournal(stateDir: string, e: JournalEntry): void {
  const p = journalPath(stateDir, e.device);
  mkdirSync(join(stateDir, 'flash'), { recursive: true });
  const tmp = `${p}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(e, null, 2) + '\n');
  const fd = openSync(tmp, 'r');
  try { fsyncSync(fd); } finally { closeSync(fd); }
  renameSync(tmp, p);
}
