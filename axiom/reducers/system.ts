// The `system` domain reducer (docs/os-domain.md): counts, and which commits still await a receipt.
import { Domain, Kind, type Entry, type Reducer, type Value } from '../types.ts';
import { decodeValue, getInt, isMap } from '../value.ts';
import { receiptPayloadCommit } from '../verify-fast.ts';

export interface SystemState { boots: number; commits: number; rejects: number; receipts: number; open: Set<number>; errors: number }

/** The `commit` of a RECEIPT payload: the fast in-place read, else a full decode. */
function receiptCommitOf(p: Uint8Array): number | undefined {
  const fast = receiptPayloadCommit(p);
  if (fast !== undefined) return fast;
  const v = decodeValue(p);
  return v.ok && isMap(v.value) ? getInt(v.value, 'commit') : undefined;
}

export const systemReducer: Reducer<SystemState> = {
  domain: Domain.System,
  name: 'system',
  init: () => ({ boots: 0, commits: 0, rejects: 0, receipts: 0, open: new Set(), errors: 0 }),
  apply(s, e: Entry, payload: Value | undefined) {
    switch (e.kind) {
      case Kind.Boot: s.boots++; break;
      case Kind.Commit: s.commits++; s.open.add(e.seq); break;
      case Kind.Reject: s.rejects++; break;
      case Kind.Receipt: {
        const c = payload === undefined ? receiptCommitOf(e.payload) : isMap(payload) ? getInt(payload, 'commit') : undefined;
        if (c !== undefined && s.open.delete(c)) s.receipts++;
        else s.errors++;
        break;
      }
    }
    return s;
  },
  // Only a RECEIPT's `commit` matters, and receiptCommitOf reads it from the bytes.
  needsPayload: () => false,
  toValue: (s) => ({ boots: s.boots, commits: s.commits, rejects: s.rejects, receipts: s.receipts, open: [...s.open].sort((a, b) => a - b), errors: s.errors }),
  clone: (s) => ({ ...s, open: new Set(s.open) }),
};
