// The chain verifier (docs/axiom.md section 10): feed it encoded entries in order (with their
// stored hashes when they come from a trace file); it stops at the first bad seq with a reason.
import { GENESIS, readHeader, u64At } from './entry.ts';
import { blake3, equalBytes } from './hash.ts';
import { scanValue } from './scan.ts';
import { receiptPayloadCommit } from './verify-fast.ts';
import { ENTRY_HEADER_BYTES, Kind, type VerifyReason } from './types.ts';

export interface VerifyFailure { seq: number; reason: VerifyReason; message: string; offset?: number }

/** Where a ChainVerifier stands: enough to go on checking a log from there (see ChainVerifier.resume). */
export interface ChainPosition {
  next: number;
  head: Uint8Array;
  time: number;
  /** Commits without a receipt yet. */
  open: number[];
  /** One bit per seq: was it a COMMIT. */
  commits: Uint8Array;
}

export class ChainVerifier {
  /** The seq the next entry must have. */
  next = 0;
  head: Uint8Array = GENESIS;
  time = 0;
  failure: VerifyFailure | null = null;
  private readonly open = new Set<number>();
  /** One bit per seq: was it a COMMIT (to tell a second receipt from a receipt for nothing). */
  private commits = new Uint8Array(1024);
  private offset: number | undefined;
  private spare: Uint8Array = new Uint8Array(32);

  /** Where this verifier stands (copies). Meaningless once it has failed. */
  position(): ChainPosition {
    return { next: this.next, head: this.head.slice(), time: this.time, open: [...this.open].sort((a, b) => a - b), commits: this.commits.slice(0, (this.next >> 3) + 1) };
  }

  /**
   * A verifier that goes on from a position() taken earlier: the entries before it are taken as
   * verified then (the caller vouches that the log still holds them: see hwlab/lab-snapshot.ts).
   */
  static resume(p: ChainPosition): ChainVerifier {
    const v = new ChainVerifier();
    v.next = p.next; v.head = p.head.slice(); v.time = p.time;
    for (const c of p.open) v.open.add(c);
    v.commits = new Uint8Array(Math.max(1024, p.commits.length));
    v.commits.set(p.commits);
    return v;
  }

  private fail(reason: VerifyReason, message: string, seq = this.next): VerifyFailure {
    return (this.failure = { seq, reason, message, ...(this.offset !== undefined ? { offset: this.offset } : {}) });
  }
  private markCommit(seq: number): void {
    if ((seq >> 3) >= this.commits.length) { const b = new Uint8Array(Math.max(this.commits.length * 2, (seq >> 3) + 1)); b.set(this.commits); this.commits = b; }
    this.commits[seq >> 3]! |= 1 << (seq & 7);
  }
  private wasCommit(seq: number): boolean { return (seq >> 3) < this.commits.length && (this.commits[seq >> 3]! & (1 << (seq & 7))) !== 0; }

  /**
   * Checks one entry. Returns null when it extends the chain; the failure otherwise (and sticks).
   * `trustStored`: take `storedHash` as the entry's hash without computing it — only when someone
   * else checks every stored hash (verifyAndReplayFile's worker does).
   */
  push(encoded: Uint8Array, storedHash?: Uint8Array, offset?: number, trustStored = false): VerifyFailure | null {
    if (this.failure) return this.failure;
    this.offset = offset;

    // Fast path: a well-formed header is read in place; anything odd goes through readHeader
    // for its precise message.
    const seq = encoded.length >= ENTRY_HEADER_BYTES ? u64At(encoded, 4) : -1;
    if (seq < 0 || encoded[0] !== 1 || encoded[1]! < 1 || encoded[1]! > 5 || u64At(encoded, 12) < 0 || u64At(encoded, 20) < 0 || payloadLen(encoded) !== encoded.length - ENTRY_HEADER_BYTES) {
      const h = readHeader(encoded);
      return this.fail('bad-encoding', h.ok ? 'bad entry header' : h.error.message);
    }
    const time = u64At(encoded, 12), kind = encoded[1]!;
    if (seq > this.next) return this.fail('gap', `expected seq ${this.next}, found ${seq}: ${seq - this.next} entr${seq - this.next === 1 ? 'y is' : 'ies are'} missing`);
    if (seq === this.next - 1) return this.fail('duplicate', `seq ${seq} appears twice`, this.next);
    if (seq < this.next) return this.fail('reorder', `expected seq ${this.next}, found earlier seq ${seq}`);
    let hash: Uint8Array;
    if (trustStored && storedHash) {
      // Two buffers in turn: the caller's view may be reused by its reader after this call.
      hash = this.spare; this.spare = this.head === GENESIS ? new Uint8Array(32) : this.head;
      hash.set(storedHash);
    } else hash = blake3(encoded);
    if (storedHash && !trustStored && !equalBytes(hash, storedHash)) return this.fail('hash-mismatch', `entry ${seq}: its bytes do not match its stored hash (the entry was changed or damaged)`);
    if (!prevMatches(encoded, this.head)) return this.fail('hash-mismatch', `entry ${seq}: prev does not match the hash of entry ${seq - 1} (an earlier entry was changed, or this one belongs to another chain)`);
    if (time < this.time || (seq > 0 && time === this.time)) return this.fail('reorder', `entry ${seq}: logical time ${time} does not advance past ${this.time}`);
    const bad = scanValue(encoded, ENTRY_HEADER_BYTES, encoded.length);
    if (bad) return this.fail('bad-encoding', `entry ${seq}: payload: ${bad}`);
    if (kind === Kind.Commit) { this.open.add(seq); this.markCommit(seq); }
    else if (kind === Kind.Receipt) {
      const c = receiptCommit(encoded);
      if (c === undefined) return this.fail('bad-encoding', `entry ${seq}: receipt without an int 'commit'`);
      if (!this.open.delete(c)) {
        if (this.wasCommit(c)) return this.fail('duplicate', `entry ${seq}: a second receipt for commit ${c}`);
        return this.fail('bad-encoding', `entry ${seq}: receipt for ${c}, which is not a commit`);
      }
    }
    this.next = seq + 1; this.head = hash; this.time = time;
    return null;
  }
}

const payloadLen = (b: Uint8Array): number => (b[60]! | (b[61]! << 8) | (b[62]! << 16) | (b[63]! << 24)) >>> 0;
function prevMatches(b: Uint8Array, head: Uint8Array): boolean {
  for (let i = 0; i < 32; i++) if (b[28 + i] !== head[i]) return false;
  return true;
}

function receiptCommit(b: Uint8Array): number | undefined {
  return receiptPayloadCommit(b.subarray(ENTRY_HEADER_BYTES));
}

/** Verifies an in-memory chain. */
export function verifyChain(entries: Iterable<Uint8Array>): { ok: true; count: number; head: Uint8Array } | { ok: false; failure: VerifyFailure } {
  const v = new ChainVerifier();
  for (const e of entries) { const f = v.push(e); if (f) return { ok: false, failure: f }; }
  return { ok: true, count: v.next, head: v.head };
}
