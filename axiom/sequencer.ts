// The sequencer: the single writer of a device's log (docs/axiom.md sections 4, 5, 7, 8).
// It decides commit or reject, assigns seq and logical time, appends receipts and checkpoints.
// It never reads a clock: time comes from proposals.
import { GENESIS, encodeEntry, entryHash } from './entry.ts';
import { blake3, equalBytes } from './hash.ts';
import { hasCap, osReducer, type OsState } from './reducers/os.ts';
import { stateHash } from './reducers/state-hash.ts';
import { systemReducer, type SystemState } from './reducers/system.ts';
import { DEFAULT_CHECKPOINT_INTERVAL, DOMAIN_NAMES, Domain, Kind, type Entry, type Outcome, type Proposal, type Reducer, type Rejection, type Value, type ValueMap } from './types.ts';
import { decodeValue, encodeValue, getInt, isMap, utf8Bytes } from './value.ts';

export interface Appended { seq: number; encoded: Uint8Array; hash: Uint8Array; entry: Entry }

export type ProposeResult =
  | { status: 'committed'; seq: number; receiptSeq: number; outcome: Outcome; entries: Appended[] }
  | { status: 'rejected'; seq: number; reason: Rejection['reason']; detail: string; entries: Appended[] }
  | { status: 'duplicate'; of: 'committed' | 'rejected'; seq: number; receiptSeq?: number; entries: Appended[] };

export interface SequencerOptions {
  deviceId: Uint8Array;
  bootId: Uint8Array;
  os: string;
  k?: number;
  /** Reducers the device runs itself; default system + os. */
  reducers?: Reducer<any>[];
}

/**
 * Everything restore() builds from a log: the chain position, every reducer's state and the
 * idempotency index. Plain data (Maps, Sets, objects, bytes), so a caller can keep it - serialized,
 * beside the log - and resume() from it instead of restoring every entry again.
 */
export interface SequencerSnapshot {
  next: number;
  head: Uint8Array;
  time: number;
  /** Reducer names, in order: a snapshot only resumes a sequencer with the same reducers. */
  reducers: string[];
  states: unknown[];
  done: Map<string, { status: 'committed' | 'rejected'; seq: number; receiptSeq?: number }>;
  receiptOf: Map<number, number>;
  commitRecord: Map<number, { status: 'committed' | 'rejected'; seq: number; receiptSeq?: number }>;
  domainOfCommit: Map<number, number>;
}

type IndexRecord = { status: 'committed' | 'rejected'; seq: number; receiptSeq?: number };
/** Copies index records, keeping the sharing between done and commitRecord (one record, two keys). */
function recordCopier(): (r: IndexRecord) => IndexRecord {
  const copy = new Map<IndexRecord, IndexRecord>();
  return (r) => { let c = copy.get(r); if (!c) { c = { ...r }; copy.set(r, c); } return c; };
}

const EMPTY = new Uint8Array(0);
const key = (actor: number, id: number) => `${actor}:${id}`;

export class Sequencer {
  readonly k: number;
  readonly reducers: Reducer<any>[];
  readonly states: unknown[];
  /** The seq the next entry gets. */
  next = 0;
  head: Uint8Array = GENESIS;
  time = 0;
  private done = new Map<string, IndexRecord>();
  private receiptOf = new Map<number, number>();
  private commitRecord = new Map<number, IndexRecord>();
  private booted = false;

  constructor(readonly opts: SequencerOptions) {
    this.k = opts.k ?? DEFAULT_CHECKPOINT_INTERVAL;
    if (!(this.k >= 2)) throw new RangeError('checkpoint interval k must be ≥ 2');
    this.reducers = opts.reducers ?? [systemReducer, osReducer];
    this.states = this.reducers.map((r) => r.init());
  }

  get system(): SystemState { return this.stateOf(systemReducer) as SystemState; }
  get os(): OsState { return this.stateOf(osReducer) as OsState; }
  stateOf<S>(r: Reducer<S>): S | undefined {
    const i = this.reducers.indexOf(r);
    return i < 0 ? undefined : (this.states[i] as S);
  }

  /**
   * Restores from an existing log (already verified): applies each entry to the reducers and
   * rebuilds the idempotency index. Call before boot().
   */
  restore(hash: Uint8Array, entry: Entry): void {
    if (entry.seq !== this.next || !equalBytes(entry.prev, this.head)) throw new Error(`restore: entry ${entry.seq} does not extend the chain at ${this.next}`);
    const v = decodeValue(entry.payload);
    this.applyToReducers(entry, v.ok ? v.value : undefined);
    this.index(entry, v.ok ? v.value : undefined);
    this.next = entry.seq + 1; this.head = hash; this.time = entry.time;
  }

  /**
   * The state restore() built (and whatever was appended since): copies, safe to keep while this
   * sequencer goes on. `share`: the idempotency index's maps are this sequencer's own, not copies
   * (copying 40k entries costs ~30 ms) - for a caller that serializes them before it proposes again.
   */
  snapshot(o: { share?: boolean } = {}): SequencerSnapshot {
    if (o.share) {
      return {
        next: this.next, head: this.head.slice(), time: this.time,
        reducers: this.reducers.map((r) => r.name),
        states: this.reducers.map((r, i) => r.clone(this.states[i])),
        done: this.done, receiptOf: this.receiptOf, commitRecord: this.commitRecord, domainOfCommit: this.domainOfCommit,
      };
    }
    const rec = recordCopier();
    return {
      next: this.next, head: this.head.slice(), time: this.time,
      reducers: this.reducers.map((r) => r.name),
      states: this.reducers.map((r, i) => r.clone(this.states[i])),
      done: new Map([...this.done].map(([k, r]) => [k, rec(r)])),
      receiptOf: new Map(this.receiptOf),
      commitRecord: new Map([...this.commitRecord].map(([k, r]) => [k, rec(r)])),
      domainOfCommit: new Map(this.domainOfCommit),
    };
  }

  /**
   * A sequencer in the state a snapshot() recorded, as if restore() had been called with every
   * entry up to it (the caller vouches that the log still ends there: see hwlab/lab-snapshot.ts).
   * Throws when the snapshot is of other reducers. restore() the later entries, then boot().
   * `adopt`: the snapshot's index maps become this sequencer's own instead of being copied (a
   * caller that built them for it and does not use the snapshot again).
   */
  static resume(opts: SequencerOptions, snap: SequencerSnapshot, o: { adopt?: boolean } = {}): Sequencer {
    const s = new Sequencer(opts);
    const names = s.reducers.map((r) => r.name);
    if (names.join(',') !== snap.reducers.join(',') || snap.states.length !== names.length) throw new Error(`resume: the snapshot is of reducers ${snap.reducers.join(', ')}, this sequencer runs ${names.join(', ') || 'none'}`);
    s.next = snap.next; s.head = snap.head.slice(); s.time = snap.time;
    snap.states.forEach((st, i) => { s.states[i] = s.reducers[i]!.clone(st); });
    if (o.adopt) {
      s.done = snap.done; s.receiptOf = snap.receiptOf; s.commitRecord = snap.commitRecord; s.domainOfCommit = snap.domainOfCommit;
      return s;
    }
    const rec = recordCopier();
    for (const [k, r] of snap.done) s.done.set(k, rec(r));
    for (const [k, v] of snap.receiptOf) s.receiptOf.set(k, v);
    for (const [k, r] of snap.commitRecord) s.commitRecord.set(k, rec(r));
    for (const [k, v] of snap.domainOfCommit) s.domainOfCommit.set(k, v);
    return s;
  }

  /** Appends BOOT and closes commits left without a receipt (docs/axiom.md section 8). */
  boot(): Appended[] {
    if (this.booted) throw new Error('already booted');
    this.booted = true;
    const out: Appended[] = [];
    out.push(...this.append(Kind.Boot, Domain.System, 0, 0, { device: this.opts.deviceId, boot: this.opts.bootId, os: this.opts.os, k: this.k }));
    const open = [...(this.system?.open ?? [])].sort((a, b) => a - b);
    for (const seq of open) out.push(...this.appendReceipt(seq, this.domainOfCommit.get(seq) ?? Domain.System, { outcome: 'aborted', result: utf8Bytes('interrupted by reboot') }));
    return out;
  }

  private domainOfCommit = new Map<number, number>();

  /** Decides a proposal and appends its entries. */
  propose(p: Proposal): ProposeResult {
    if (!this.booted) throw new Error('sequencer has not booted');
    const prior = this.done.get(key(p.actor, p.id));
    if (prior) return { status: 'duplicate', of: prior.status, seq: prior.seq, ...(prior.receiptSeq !== undefined ? { receiptSeq: prior.receiptSeq } : {}), entries: [] };
    const rejection = this.check(p);
    const entries: Appended[] = [];
    if (rejection) {
      entries.push(...this.append(Kind.Reject, p.domain, p.actor, p.time, { id: p.id, action: p.action, reason: rejection.reason, detail: rejection.detail }));
      const seq = entries[entries.length - 1]!.seq;
      return { status: 'rejected', seq, reason: rejection.reason, detail: rejection.detail, entries };
    }
    const r = this.reducers.findIndex((x) => x.domain === p.domain);
    const outcome: Outcome = r >= 0 && this.reducers[r]!.execute ? this.reducers[r]!.execute!(this.states[r], p) : { outcome: 'ok', result: EMPTY };
    entries.push(...this.append(Kind.Commit, p.domain, p.actor, p.time, { id: p.id, action: p.action, args: p.args }));
    const seq = entries[entries.length - 1]!.seq;
    entries.push(...this.appendReceipt(seq, p.domain, outcome));
    const receiptSeq = entries[entries.length - 1]!.seq;
    return { status: 'committed', seq, receiptSeq, outcome, entries };
  }

  private check(p: Proposal): Rejection | null {
    if (!Number.isSafeInteger(p.id) || p.id < 0 || !Number.isSafeInteger(p.actor) || p.actor < 0 || !Number.isSafeInteger(p.time) || p.time < 0) return { reason: 'bad-args', detail: 'actor, id and time must be non-negative integers' };
    if (!isMap(p.args as Value)) return { reason: 'bad-args', detail: 'args must be a map' };
    if (encodedSize(p) > 1_000_000) return { reason: 'bad-args', detail: 'the proposal is larger than an entry payload may be' };
    const r = this.reducers.findIndex((x) => x.domain === p.domain);
    if (r >= 0 && this.reducers[r]!.check) return this.reducers[r]!.check!(this.states[r], p);
    if (p.domain === Domain.Session || p.domain === Domain.Lab) {
      return hasCap(this.os, p.actor, 'console') ? null : { reason: 'missing-capability', detail: `actor ${p.actor} lacks capability 'console' needed for ${DOMAIN_NAMES[p.domain]} actions` };
    }
    return { reason: 'unknown-domain', detail: `domain ${p.domain} takes no proposals on this device (os = 1, session = 2, lab = 3)` };
  }

  private appendReceipt(commitSeq: number, domain: number, o: Outcome): Appended[] {
    if (this.receiptOf.has(commitSeq)) throw new Error(`commit ${commitSeq} already has receipt ${this.receiptOf.get(commitSeq)}`);
    return this.append(Kind.Receipt, domain, 0, 0, { commit: commitSeq, outcome: o.outcome, result: o.result, result_hash: blake3(o.result) });
  }

  /** Appends one entry, preceded by a CHECKPOINT when its seq falls on one. */
  private append(kind: number, domain: number, actor: number, t: number, payload: ValueMap): Appended[] {
    const out: Appended[] = [];
    if (this.next % this.k === this.k - 1) {
      const states: ValueMap = {};
      this.reducers.forEach((r, i) => { states[r.name] = stateHash(r, this.states[i]); });
      out.push(this.appendOne(Kind.Checkpoint, Domain.System, 0, 0, { upto: this.next - 1, states }));
    }
    out.push(this.appendOne(kind, domain, actor, t, payload));
    return out;
  }

  private appendOne(kind: number, domain: number, actor: number, t: number, payload: ValueMap): Appended {
    const entry: Entry = { version: 1, kind, domain, seq: this.next, time: Math.max(this.time + 1, t), actor, prev: this.head, payload: encodeValue(payload) };
    const encoded = encodeEntry(entry);
    const hash = entryHash(encoded);
    this.applyToReducers(entry, payload);
    this.index(entry, payload);
    this.next++; this.head = hash; this.time = entry.time;
    return { seq: entry.seq, encoded, hash, entry };
  }

  private applyToReducers(entry: Entry, payload: Value | undefined): void {
    for (let i = 0; i < this.reducers.length; i++) this.states[i] = this.reducers[i]!.apply(this.states[i], entry, payload);
  }

  private index(e: Entry, payload: Value | undefined): void {
    if (!isMap(payload)) return;
    if (e.kind === Kind.Commit || e.kind === Kind.Reject) {
      const id = getInt(payload, 'id');
      const rec = { status: e.kind === Kind.Commit ? 'committed' as const : 'rejected' as const, seq: e.seq };
      if (id !== undefined) this.done.set(key(e.actor, id), rec);
      if (e.kind === Kind.Commit) { this.domainOfCommit.set(e.seq, e.domain); this.commitRecord.set(e.seq, rec); }
    } else if (e.kind === Kind.Receipt) {
      const c = getInt(payload, 'commit');
      if (c !== undefined) {
        this.receiptOf.set(c, e.seq);
        this.domainOfCommit.delete(c);
        const rec = this.commitRecord.get(c);
        if (rec) { rec.receiptSeq = e.seq; this.commitRecord.delete(c); }
      }
    }
  }

  /** The state hashes of every reducer now (what a checkpoint at the next seq would record). */
  stateHashes(): Record<string, Uint8Array> {
    const out: Record<string, Uint8Array> = {};
    this.reducers.forEach((r, i) => { out[r.name] = stateHash(r, this.states[i]); });
    return out;
  }
}

function encodedSize(p: Proposal): number {
  try { return encodeValue({ id: p.id, action: p.action, args: p.args }).length; } catch { return Infinity; }
}
