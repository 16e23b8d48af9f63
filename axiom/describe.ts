// A person-readable view of an entry, for the CLI, the lab and the timeline debugger.
import { decodeEntry, entryHash } from './entry.ts';
import { toHex } from './hash.ts';
import { DOMAIN_NAMES, KIND_NAMES, type Value } from './types.ts';
import { decodeValue } from './value.ts';

export interface EntryView {
  seq: number; kind: string; domain: string; time: number; actor: number;
  prev: string; hash: string; payload: unknown; size: number; error?: string;
}

/** JSON-friendly form of a value: bytes become hex strings with a `0x` prefix, bigints strings. */
export function jsonValue(v: Value): unknown {
  if (v instanceof Uint8Array) return `0x${toHex(v)}`;
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
  if (Array.isArray(v)) return v.map(jsonValue);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, jsonValue(x)]));
  return v;
}

export function describeEntry(encoded: Uint8Array): EntryView {
  const d = decodeEntry(encoded);
  const hash = toHex(entryHash(encoded));
  if (!d.ok) return { seq: d.error.seq ?? -1, kind: '?', domain: '?', time: 0, actor: 0, prev: '', hash, payload: null, size: encoded.length, error: d.error.message };
  const e = d.value;
  const v = decodeValue(e.payload);
  return {
    seq: e.seq, kind: KIND_NAMES[e.kind] ?? String(e.kind), domain: DOMAIN_NAMES[e.domain] ?? String(e.domain),
    time: e.time, actor: e.actor, prev: toHex(e.prev), hash, payload: v.ok ? jsonValue(v.value) : null, size: encoded.length,
  };
}
