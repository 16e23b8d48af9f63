// Reading one field of a RECEIPT payload in place, for the verifier and the system reducer.
import { u64At } from './entry.ts';

/**
 * The int `commit` of a canonical RECEIPT payload (a map whose first key is `commit`, as the
 * canonical key order puts it), or undefined when the bytes do not have that shape.
 */
export function receiptPayloadCommit(b: Uint8Array): number | undefined {
  if (b.length < 5 + 4 + 6 + 9 || b[0] !== 8) return undefined;
  if (b[5] !== 6 || b[6] !== 0 || b[7] !== 0 || b[8] !== 0) return undefined;
  const k = 9;
  if (b[k] !== 0x63 || b[k + 1] !== 0x6f || b[k + 2] !== 0x6d || b[k + 3] !== 0x6d || b[k + 4] !== 0x69 || b[k + 5] !== 0x74 || b[k + 6] !== 3) return undefined;
  const v = u64At(b, k + 7);
  return v >= 0 ? v : undefined;
}
