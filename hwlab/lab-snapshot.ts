// A cache beside the lab log: STATE/lab.snapshot says where the log ended after the last append,
// the chain verifier's position there, the lab sequencer's state (Sequencer.snapshot) and the
// health streaks. Every flash, boot and run records in the lab log and reads its history, and
// both used to verify and replay the whole log: ~10 us an entry, 0.4 s a command once a busy lab
// had 20k records, growing for ever. With the snapshot they verify and replay only what was
// appended after it.
//
// Trust: the snapshot is used only when the log's bytes up to the snapshot's offset are exactly
// those it was taken of - their SHA-256 (node:crypto, ~1.8 GB/s: ~2 ms for a 4 MB log, where
// verifying and replaying it takes ~400 ms) is saved with it - its lab id matches, and its states
// still hash to the hashes saved with them. Anything else - no file, bytes that do not
// deserialize, another version, a log changed, cut short or replaced - means a full verify and
// replay, as before (so a log damaged in the middle is still refused, not appended to), and a new
// snapshot after the next append.
import { closeSync, openSync, readFileSync, readSync, renameSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { deserialize, serialize } from 'node:v8';
import { equalBytes, labReducer, stateHash, systemReducer, type ChainPosition, type Reducer, type SequencerSnapshot } from '../axiom/index.ts';
import { recordEndsWith } from '../axiom/node/trace-file.ts';
import { labHealthReducer } from './health.ts';

export interface LabSnapshot {
  v: 1;
  /** The lab id (STATE/lab-id) of the log it was taken of. */
  labId: Uint8Array;
  /** The log's size then: the offset just after its last record. */
  offset: number;
  chain: ChainPosition;
  seq: SequencerSnapshot;
  /** The lab-health reducer's state (not in the log's checkpoints: see health.ts). */
  health: unknown;
  /** SHA-256 of the log's bytes [0, offset). */
  logSha256: Uint8Array;
  /** stateHash of each of seq.states, then of health: a snapshot whose bytes changed is not used. */
  hashes: Uint8Array[];
}

export const labSnapshotPath = (stateDir: string) => join(stateDir, 'lab.snapshot');

const REDUCERS: Reducer<any>[] = [systemReducer, labReducer];

function hashesOf(seq: SequencerSnapshot, health: unknown): Uint8Array[] {
  return [...REDUCERS.map((r, i) => stateHash(r, seq.states[i])), stateHash(labHealthReducer, health)];
}

/** The snapshot, when it is one of this log as it stands; null otherwise (then replay it all). Never throws. */
export function loadLabSnapshot(stateDir: string, labId: Uint8Array, logPath: string): LabSnapshot | null {
  try {
    const s = deserialize(readFileSync(labSnapshotPath(stateDir))) as LabSnapshot;
    if (!s || s.v !== 1 || !(s.labId instanceof Uint8Array) || !equalBytes(s.labId, labId)) return null;
    if (!s.seq || !s.chain || s.seq.reducers?.join(',') !== REDUCERS.map((r) => r.name).join(',')) return null;
    if (s.seq.next !== s.chain.next || !equalBytes(s.seq.head, s.chain.head)) return null;
    const want = hashesOf(s.seq, s.health);
    if (!Array.isArray(s.hashes) || s.hashes.length !== want.length || !want.every((h, i) => equalBytes(h, s.hashes[i]!))) return null;
    if (!recordEndsWith(logPath, s.offset, s.chain.head)) return null;
    const sum = prefixSha256(logPath, s.offset);
    if (!sum || !(s.logSha256 instanceof Uint8Array) || !equalBytes(sum, s.logSha256)) return null;
    return s;
  } catch { return null; }
}

/** Writes the snapshot (temp file, rename). A cache: a failure to write it is not the command's failure. */
export function saveLabSnapshot(stateDir: string, logPath: string, s: Omit<LabSnapshot, 'v' | 'hashes' | 'logSha256'>): boolean {
  const path = labSnapshotPath(stateDir);
  try {
    const logSha256 = prefixSha256(logPath, s.offset);
    if (!logSha256) return false;
    const full: LabSnapshot = { v: 1, ...s, logSha256, hashes: hashesOf(s.seq, s.health) };
    writeFileSync(`${path}.tmp`, serialize(full));
    renameSync(`${path}.tmp`, path);
    return true;
  } catch { return false; }
}

/** SHA-256 of a file's first `n` bytes; null when it is shorter or cannot be read. */
function prefixSha256(path: string, n: number): Uint8Array | null {
  let fd: number;
  try { fd = openSync(path, 'r'); } catch { return null; }
  try {
    const h = createHash('sha256');
    const buf = Buffer.allocUnsafe(1 << 20);
    for (let pos = 0; pos < n;) {
      const got = readSync(fd, buf, 0, Math.min(buf.length, n - pos), pos);
      if (got <= 0) return null;
      h.update(buf.subarray(0, got));
      pos += got;
    }
    return new Uint8Array(h.digest());
  } catch { return null; } finally { closeSync(fd); }
}
