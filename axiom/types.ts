// The shared types of Axiom (docs/axiom.md). Pure: no DOM, no Node.

/** A canonical Axiom value (docs/axiom.md section 1). Ints beyond ±(2^53-1) are bigint. */
export type Value = null | boolean | number | bigint | string | Uint8Array | Value[] | ValueMap;
export interface ValueMap { [key: string]: Value }

export const Kind = { Boot: 1, Commit: 2, Reject: 3, Receipt: 4, Checkpoint: 5 } as const;
export type Kind = (typeof Kind)[keyof typeof Kind];
export const KIND_NAMES: Record<number, string> = { 1: 'BOOT', 2: 'COMMIT', 3: 'REJECT', 4: 'RECEIPT', 5: 'CHECKPOINT' };

export const Domain = { System: 0, Os: 1, Session: 2, Lab: 3 } as const;
export type Domain = (typeof Domain)[keyof typeof Domain];
export const DOMAIN_NAMES: Record<number, string> = { 0: 'system', 1: 'os', 2: 'session', 3: 'lab' };

export const ENTRY_VERSION = 1;
export const ENTRY_HEADER_BYTES = 64;
export const MAX_PAYLOAD = 1_048_576;
export const HASH_BYTES = 32;
export const DEFAULT_CHECKPOINT_INTERVAL = 256;

/** A decoded entry. u64 fields are numbers (the sequencer never exceeds 2^53). */
export interface Entry {
  version: number;
  kind: number;
  domain: number;
  seq: number;
  time: number;
  actor: number;
  prev: Uint8Array;
  /** The raw payload bytes: one canonical value. */
  payload: Uint8Array;
}

/** Why a chain or file is bad (docs/axiom.md section 10). */
export type VerifyReason = 'hash-mismatch' | 'gap' | 'reorder' | 'duplicate' | 'bad-encoding' | 'truncated-tail';

export type ErrorKind = 'bad-input' | 'protocol' | 'timeout' | 'disconnected' | 'bug';

/** A typed error: a kind code can check, a reason, and a message a person can act on. */
export interface AxiomError {
  kind: ErrorKind;
  reason: VerifyReason | 'not-a-trace' | 'unknown-version' | 'too-large' | 'empty' | 'io';
  message: string;
  /** The first bad seq, when the error is about an entry. */
  seq?: number;
  /** Byte offset in the input, when known. */
  offset?: number;
}

export type Result<T, E = AxiomError> = { ok: true; value: T } | { ok: false; error: E };
export const ok = <T>(value: T): Result<T, never> => ({ ok: true, value });
export const err = <E>(error: E): Result<never, E> => ({ ok: false, error });

/** A client's proposal of an action (docs/axiom.md section 4). */
export interface Proposal {
  actor: number;
  id: number;
  domain: number;
  action: string;
  args: ValueMap;
  /** The client's logical time (0 when it has none). */
  time: number;
}

export type RejectReason = 'unknown-domain' | 'unknown-action' | 'bad-args' | 'missing-capability' | 'duplicate';
export interface Rejection { reason: RejectReason; detail: string }

/** What executing a committed action yields: the content of its RECEIPT. */
export interface Outcome { outcome: 'ok' | 'error' | 'aborted'; result: Uint8Array }

/**
 * A domain reducer. `apply` is deterministic: its result depends only on (state, entry).
 * It may reuse the state object it is given (treat the argument as consumed); use `clone`
 * to keep a copy (snapshots for seeking do this).
 */
export interface Reducer<S = unknown> {
  domain: number;
  name: string;
  init(): S;
  apply(state: S, entry: Entry, payload: Value | undefined): S;
  /**
   * Optional: whether apply needs the decoded payload of this entry. A replayer skips decoding
   * payloads no reducer needs (apply then gets undefined). Omitted = always needs it.
   */
  needsPayload?(entry: Entry): boolean;
  /** The canonical value of the state; hash = BLAKE3(name ‖ 0x00 ‖ encodeValue(toValue(s))). */
  toValue(state: S): Value;
  clone(state: S): S;
  /** Sequencer-side check of a proposal for this reducer's domain; null = commit it. */
  check?(state: S, p: Proposal): Rejection | null;
  /** Sequencer-side execution of a committed action: the RECEIPT content. `before` is the state before the COMMIT. */
  execute?(before: S, p: Proposal): Outcome;
}
