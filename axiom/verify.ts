// The chain verifier (docs/axiom.md section 10): feed it encoded entries in order (with their
// stored hashes when they come from a trace file); it stops at the first bad seq with a reason.
import { GENESIS, readHeader } from './entry.ts';
import { blake3, equalBytes } from './hash.ts';
import { scanValue } from './scan.ts';
import { ENTRY_HEADER_BYTES, Kind, type VerifyReason } from './types.ts';

export interface VerifyFailure { seq: number; reason: VerifyReason; message: string; offset?: number }

export class ChainVerifier {
  /** The seq the next entry must have. */
  next = 0;
  head: Uint8Array = GENESIS;
  time = 0;
  failure: VerifyFailure | null = null;
  private readonly open = new Set<number>();
  private readonly closed = new Set<number>();

  /** Checks one entry. Returns null when it extends the chain; the failure otherwise (and sticks). */
  push(encoded: Uint8Array, storedHash?: Uint8Array, offset?: number): VerifyFailure | null {
    if (this.failure) return this.failure;
    const fail = (reason: VerifyReason, message: string, seq = this.next): VerifyFailure =>
      (this.failure = { seq, reason, message, ...(offset !== undefined ? { offset } : {}) });
    const h = readHeader(encoded);
    if (!h.ok) return fail('bad-encoding', h.error.message);
    const { seq, time, kind } = h.value;
    if (seq > this.next) return fail('gap', `expected seq ${this.next}, found ${seq}: ${seq - this.next} entr${seq - this.next === 1 ? 'y is' : 'ies are'} missing`);
    if (seq === this.next - 1) return fail('duplicate', `seq ${seq} appears twice`, this.next);
    if (seq < this.next) return fail('reorder', `expected seq ${this.next}, found earlier seq ${seq}`);
    const hash = blake3(encoded);
    if (storedHash && !equalBytes(hash, storedHash)) return fail('hash-mismatch', `entry ${seq}: its bytes do not match its stored hash (the entry was changed or damaged)`);
    if (!equalBytes(encoded.subarray(28, 60), this.head)) return fail('hash-mismatch', `entry ${seq}: prev does not match the hash of entry ${seq - 1} (an earlier entry was changed, or this one belongs to another chain)`);
    if (time < this.time || (seq > 0 && time === this.time)) return fail('reorder', `entry ${seq}: logical time ${time} does not advance past ${this.time}`);
    const bad = scanValue(encoded, ENTRY_HEADER_BYTES, encoded.length);
    if (bad) return fail('bad-encoding', `entry ${seq}: payload: ${bad}`);
    if (kind === Kind.Commit) this.open.add(seq);
    else if (kind === Kind.Receipt) {
      const c = receiptCommit(encoded);
      if (c === undefined) return fail('bad-encoding', `entry ${seq}: receipt without an int 'commit'`);
      if (this.closed.has(c)) return fail('duplicate', `entry ${seq}: a second receipt for commit ${c}`);
      if (!this.open.delete(c)) return fail('bad-encoding', `entry ${seq}: receipt for ${c}, which is not an open commit`);
      this.closed.add(c);
    }
    this.next = seq + 1; this.head = hash; this.time = time;
    return null;
  }
}

/** Finds the int `commit` field of a RECEIPT payload without decoding the whole value. */
function receiptCommit(b: Uint8Array): number | undefined {
  // payload: map; keys sorted: commit, outcome, result, result_hash. `commit` is the first key.
  const p = ENTRY_HEADER_BYTES;
  if (b[p] !== 8 || b.length < p + 5 + 4 + 6 + 9) return undefined;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (dv.getUint32(p + 5, true) !== 6) return undefined;
  const k = p + 9;
  if (b[k] !== 0x63 || b[k + 1] !== 0x6f || b[k + 2] !== 0x6d || b[k + 3] !== 0x6d || b[k + 4] !== 0x69 || b[k + 5] !== 0x74 || b[k + 6] !== 3) return undefined;
  const v = dv.getBigInt64(k + 7, true);
  return v >= 0n && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : undefined;
}

/** Verifies an in-memory chain. */
export function verifyChain(entries: Iterable<Uint8Array>): { ok: true; count: number; head: Uint8Array } | { ok: false; failure: VerifyFailure } {
  const v = new ChainVerifier();
  for (const e of entries) { const f = v.push(e); if (f) return { ok: false, failure: f }; }
  return { ok: true, count: v.next, head: v.head };
}
