import { blake3Parts } from '../hash.ts';
import type { Reducer } from '../types.ts';
import { encodeValue, utf8Bytes } from '../value.ts';

const ZERO = new Uint8Array([0]);
/** docs/axiom.md section 6: BLAKE3(utf8(name) ‖ 0x00 ‖ encodeValue(state)). */
export function stateHash<S>(r: Reducer<S>, state: S): Uint8Array {
  return blake3Parts([utf8Bytes(r.name), ZERO, encodeValue(r.toValue(state))]);
}
