// Replaying a log through reducers, and seeking to any seq with in-memory snapshots every k
// entries (so a seek replays at most k entries).
import { decodeEntry } from './entry.ts';
import { stateHash } from './reducers/state-hash.ts';
import type { Entry, Reducer, Value } from './types.ts';
import { decodeValue } from './value.ts';

/** Applies entries to a set of reducers. Entries must already be verified. */
export class Replayer {
  readonly states: unknown[];
  /** The seq of the last applied entry, -1 before any. */
  seq = -1;
  constructor(readonly reducers: Reducer<any>[], states?: unknown[]) {
    this.states = states ?? reducers.map((r) => r.init());
  }
  /** Applies one decoded entry (payload decoded once, shared by all reducers). */
  apply(e: Entry, decoded?: Value): void {
    let payload = decoded;
    if (payload === undefined && this.wantsPayload(e)) { const v = decodeValue(e.payload); payload = v.ok ? v.value : undefined; }
    for (let i = 0; i < this.reducers.length; i++) this.states[i] = this.reducers[i]!.apply(this.states[i], e, payload);
    this.seq = e.seq;
  }
  private wantsPayload(e: Entry): boolean {
    for (const r of this.reducers) if (!r.needsPayload || r.needsPayload(e)) return true;
    return false;
  }
  /** Decodes and applies one encoded entry; returns false if it does not decode. */
  applyEncoded(b: Uint8Array): boolean {
    const d = decodeEntry(b);
    if (!d.ok) return false;
    this.apply(d.value);
    return true;
  }
  hashes(): Record<string, Uint8Array> {
    const out: Record<string, Uint8Array> = {};
    this.reducers.forEach((r, i) => { out[r.name] = stateHash(r, this.states[i]); });
    return out;
  }
  stateOf<S>(r: Reducer<S>): S | undefined { const i = this.reducers.indexOf(r); return i < 0 ? undefined : (this.states[i] as S); }
  clone(): Replayer {
    const r = new Replayer(this.reducers, this.reducers.map((x, i) => x.clone(this.states[i])));
    r.seq = this.seq;
    return r;
  }
}

/** Replays encoded entries from scratch and returns the final replayer. */
export function replay(reducers: Reducer<any>[], entries: Iterable<Uint8Array>): Replayer {
  const r = new Replayer(reducers);
  for (const b of entries) if (!r.applyEncoded(b)) throw new Error(`entry after seq ${r.seq} does not decode; verify the log first`);
  return r;
}

/**
 * Random access to the state after any entry. Holds the decoded entries and a snapshot of
 * every reducer's state every `k` entries; stateAt(seq) clones the nearest snapshot at or
 * before seq and replays at most k-1 entries.
 */
export class Seeker {
  private readonly entries: Entry[] = [];
  private readonly snapshots: Replayer[] = [];
  private readonly live: Replayer;
  /** Entries replayed by the last stateAt call (for tests and the debugger's status line). */
  lastReplayed = 0;
  constructor(readonly reducers: Reducer<any>[], readonly k = 256) {
    this.live = new Replayer(reducers);
    this.snapshots.push(this.live.clone()); // the state before entry 0
  }
  get length(): number { return this.entries.length; }
  entry(seq: number): Entry | undefined { return this.entries[seq]; }
  push(e: Entry): void {
    if (e.seq !== this.entries.length) throw new Error(`Seeker.push: expected seq ${this.entries.length}, got ${e.seq}`);
    this.entries.push(e);
    this.live.apply(e);
    if ((e.seq + 1) % this.k === 0) this.snapshots.push(this.live.clone());
  }
  /** The state after entry `seq` (seq = -1: the initial state). */
  stateAt(seq: number): Replayer {
    if (seq < -1 || seq >= this.entries.length) throw new RangeError(`seq ${seq} is outside 0..${this.entries.length - 1}`);
    const snap = Math.floor((seq + 1) / this.k);
    const r = this.snapshots[snap]!.clone();
    let n = 0;
    for (let s = snap * this.k; s <= seq; s++) { r.apply(this.entries[s]!); n++; }
    this.lastReplayed = n;
    return r;
  }
}
