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
import { createHash, type Hash } from 'node:crypto';
import { join } from 'node:path';
import { deserialize, serialize } from 'node:v8';
import { equalBytes, labReducer, stateHash, systemReducer, type ChainPosition, type Reducer, type SequencerSnapshot } from '../axiom/index.ts';
import { recordEndsWith } from '../axiom/node/trace-file.ts';
import { labHealthReducer } from './health.ts';

export interface LabSnapshot {
  v: 2;
  /** The lab id (STATE/lab-id) of the log it was taken of. */
  labId: Uint8Array;
  /** The log's size then: the offset just after its last record. */
  offset: number;
  chain: ChainPosition;
  seq: SequencerSnapshot;
  /** seq.states, as loaded: read without building the index's Maps (which reading seq does). */
  states?: unknown[];
  /** As loaded: the SHA-256 of the log's bytes [0, offset) still open, so the next save hashes only what was appended. */
  prefix?: Hash;
  /** The lab-health reducer's state (not in the log's checkpoints: see health.ts). */
  health: unknown;
  /** SHA-256 of the log's bytes [0, offset). */
  logSha256: Uint8Array;
  /** stateHash of each of seq.states, then of health: a snapshot whose bytes changed is not used. */
  hashes: Uint8Array[];
}

export const labSnapshotPath = (stateDir: string) => join(stateDir, 'lab.snapshot');

type IndexRecord = SequencerSnapshot['done'] extends Map<string, infer R> ? R : never;

/**
 * The sequencer's idempotency index in columns (version 2 of the file). A busy lab's index is one
 * entry per record - 40k at 40k records - and as Maps of objects it was most of the snapshot's cost:
 * v8 deserializing it (~40 ms) and the sequencer copying it in and out again (~60 ms). Typed-array
 * columns deserialize as one copy each; the Maps are built once, only by a command that appends
 * (`history` and a job's pick read the states alone), and handed to the sequencer without a copy.
 * done: one row per (actor, id); commitRecord (commits awaiting a receipt) names the done row whose
 * record it shares - a receipt updates both - or holds its own record (a commit without an id).
 */
export interface PackedIndex {
  actor: Float64Array; id: Float64Array; seq: Float64Array;
  /** NaN: no receipt yet. */
  receipt: Float64Array;
  rejected: Uint8Array;
  /** [commit seq, receipt seq] pairs. */
  receiptOf: Float64Array;
  /** [commit seq, done row or -1, record seq, record receipt (NaN), record rejected] per open commit. */
  open: Float64Array;
  /** [commit seq, domain] pairs. */
  domainOfCommit: Float64Array;
}

export function packIndex(seq: SequencerSnapshot): PackedIndex {
  const n = seq.done.size;
  const actor = new Float64Array(n), id = new Float64Array(n), sq = new Float64Array(n), receipt = new Float64Array(n), rejected = new Uint8Array(n);
  const rowOf = new Map<IndexRecord, number>();
  let i = 0;
  for (const [k, r] of seq.done) {
    const c = k.indexOf(':');
    actor[i] = Number(k.slice(0, c)); id[i] = Number(k.slice(c + 1)); sq[i] = r.seq;
    receipt[i] = r.receiptSeq ?? NaN; rejected[i] = r.status === 'rejected' ? 1 : 0;
    // Only records an open commit shares need looking up.
    if (r.receiptSeq === undefined && r.status === 'committed') rowOf.set(r, i);
    i++;
  }
  const pairs = (m: Map<number, number>) => { const a = new Float64Array(2 * m.size); let j = 0; for (const [x, y] of m) { a[j++] = x; a[j++] = y; } return a; };
  const open = new Float64Array(5 * seq.commitRecord.size);
  let j = 0;
  for (const [c, r] of seq.commitRecord) { open[j++] = c; open[j++] = rowOf.get(r) ?? -1; open[j++] = r.seq; open[j++] = r.receiptSeq ?? NaN; open[j++] = r.status === 'rejected' ? 1 : 0; }
  return { actor, id, seq: sq, receipt, rejected, receiptOf: pairs(seq.receiptOf), open, domainOfCommit: pairs(seq.domainOfCommit) };
}

export function unpackIndex(p: PackedIndex): Pick<SequencerSnapshot, 'done' | 'receiptOf' | 'commitRecord' | 'domainOfCommit'> {
  const rec = (seq: number, receipt: number, rejected: number): IndexRecord => {
    const r: IndexRecord = { status: rejected ? 'rejected' : 'committed', seq };
    if (!Number.isNaN(receipt)) r.receiptSeq = receipt;
    return r;
  };
  const rows: IndexRecord[] = new Array(p.seq.length);
  const done = new Map<string, IndexRecord>();
  for (let i = 0; i < p.seq.length; i++) { const r = rec(p.seq[i]!, p.receipt[i]!, p.rejected[i]!); rows[i] = r; done.set(`${p.actor[i]}:${p.id[i]}`, r); }
  const pairs = (a: Float64Array) => { const m = new Map<number, number>(); for (let j = 0; j + 1 < a.length; j += 2) m.set(a[j]!, a[j + 1]!); return m; };
  const commitRecord = new Map<number, IndexRecord>();
  for (let j = 0; j + 4 < p.open.length; j += 5) {
    const row = p.open[j + 1]!;
    commitRecord.set(p.open[j]!, row >= 0 && rows[row] ? rows[row]! : rec(p.open[j + 2]!, p.open[j + 3]!, p.open[j + 4]!));
  }
  return { done, receiptOf: pairs(p.receiptOf), commitRecord, domainOfCommit: pairs(p.domainOfCommit) };
}

/** The file's form: the sequencer snapshot with its index packed. */
type Stored = Omit<LabSnapshot, 'seq'> & { seq: Omit<SequencerSnapshot, 'done' | 'receiptOf' | 'commitRecord' | 'domainOfCommit'> & { index: PackedIndex } };

const isPacked = (x: unknown): x is PackedIndex => {
  const p = x as PackedIndex;
  if (!p || !(p.actor instanceof Float64Array) || !(p.id instanceof Float64Array) || !(p.seq instanceof Float64Array) || !(p.receipt instanceof Float64Array) || !(p.rejected instanceof Uint8Array)) return false;
  const n = p.seq.length;
  return p.actor.length === n && p.id.length === n && p.receipt.length === n && p.rejected.length === n
    && p.receiptOf instanceof Float64Array && p.receiptOf.length % 2 === 0 && p.open instanceof Float64Array && p.open.length % 5 === 0
    && p.domainOfCommit instanceof Float64Array && p.domainOfCommit.length % 2 === 0;
};

const REDUCERS: Reducer<any>[] = [systemReducer, labReducer];

function hashesOf(states: unknown[], health: unknown): Uint8Array[] {
  return [...REDUCERS.map((r, i) => stateHash(r, states[i])), stateHash(labHealthReducer, health)];
}

/** The snapshot, when it is one of this log as it stands; null otherwise (then replay it all). Never throws. */
export function loadLabSnapshot(stateDir: string, labId: Uint8Array, logPath: string): LabSnapshot | null {
  try {
    const s = deserialize(readFileSync(labSnapshotPath(stateDir))) as Stored;
    if (!s || s.v !== 2 || !(s.labId instanceof Uint8Array) || !equalBytes(s.labId, labId)) return null;
    if (!s.seq || !s.chain || s.seq.reducers?.join(',') !== REDUCERS.map((r) => r.name).join(',') || !isPacked(s.seq.index)) return null;
    if (s.seq.next !== s.chain.next || !equalBytes(s.seq.head, s.chain.head)) return null;
    const want = hashesOf(s.seq.states, s.health);
    if (!Array.isArray(s.hashes) || s.hashes.length !== want.length || !want.every((h, i) => equalBytes(h, s.hashes[i]!))) return null;
    if (!recordEndsWith(logPath, s.offset, s.chain.head)) return null;
    const prefix = hashPrefix(logPath, 0, s.offset);
    if (!prefix || !(s.logSha256 instanceof Uint8Array) || !equalBytes(new Uint8Array(prefix.copy().digest()), s.logSha256)) return null;
    const { index, ...rest } = s.seq;
    let seq: SequencerSnapshot | null = null;
    // The index's Maps are built only if asked for (a command that appends; not history).
    return { ...s, states: rest.states, prefix, get seq() { return (seq ??= { ...rest, ...unpackIndex(index) }); } };
  } catch { return null; }
}

/**
 * Writes the snapshot (temp file, rename). A cache: a failure to write it is not the command's
 * failure. `from`: the snapshot this command loaded - the log's bytes up to its offset were hashed
 * then (and are unchanged: the log only grows, under the lock the caller holds), so only the bytes
 * appended since are read and hashed.
 */
export function saveLabSnapshot(stateDir: string, logPath: string, s: Omit<LabSnapshot, 'v' | 'hashes' | 'logSha256'>, from?: Pick<LabSnapshot, 'offset' | 'prefix'> | null): boolean {
  const path = labSnapshotPath(stateDir);
  try {
    const h = from?.prefix && from.offset <= s.offset ? hashPrefix(logPath, from.offset, s.offset, from.prefix.copy()) : hashPrefix(logPath, 0, s.offset);
    if (!h) return false;
    const logSha256 = new Uint8Array(h.digest());
    const { done, receiptOf, commitRecord, domainOfCommit, ...rest } = s.seq;
    const { states: _states, prefix: _prefix, ...plain } = s;
    const full: Stored = { v: 2, ...plain, seq: { ...rest, index: packIndex({ ...s.seq, done, receiptOf, commitRecord, domainOfCommit }) }, logSha256, hashes: hashesOf(s.seq.states, s.health) };
    writeFileSync(`${path}.tmp`, serialize(full));
    renameSync(`${path}.tmp`, path);
    return true;
  } catch { return false; }
}

/** A SHA-256 (`h`, else a new one) fed a file's bytes [from, to); null when it is shorter or cannot be read. */
function hashPrefix(path: string, from: number, to: number, h: Hash = createHash('sha256')): Hash | null {
  let fd: number;
  try { fd = openSync(path, 'r'); } catch { return null; }
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    for (let pos = from; pos < to;) {
      const got = readSync(fd, buf, 0, Math.min(buf.length, to - pos), pos);
      if (got <= 0) return null;
      h.update(buf.subarray(0, got));
      pos += got;
    }
    return h;
  } catch { return null; } finally { closeSync(fd); }
}
