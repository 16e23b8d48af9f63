// The shared vectors (docs/vectors/axiom-v1.json): what every implementation must reproduce.
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { ChainVerifier, RecordParser, Sequencer, blake3, blake3Reference, decodeTraceHeader, decodeValue, encodeEntry, encodeValue, entryHash, fromHex, initAxiom, osReducer, stateHash, systemReducer, toHex, verifyChain } from './index.ts';

const V = JSON.parse(readFileSync(new URL('../docs/vectors/axiom-v1.json', import.meta.url), 'utf8'));
beforeAll(() => initAxiom());

describe('axiom vectors', () => {
  it('values round-trip byte for byte', () => {
    for (const v of V.values) {
      const d = decodeValue(fromHex(v.hex));
      expect(d.ok, v.name).toBe(true);
      if (d.ok) expect(toHex(encodeValue(d.value)), v.name).toBe(v.hex);
    }
  });
  it('bad values are rejected with bad-encoding', () => {
    for (const v of V.bad_values) {
      const d = decodeValue(fromHex(v.hex));
      expect(d.ok, v.name).toBe(false);
      if (!d.ok) expect(d.error.reason, v.name).toBe('bad-encoding');
    }
  });
  it('BLAKE3 fast path and reference agree with the vectors', () => {
    for (const b of V.blake3) {
      expect(toHex(blake3(fromHex(b.input_hex)))).toBe(b.hash);
      expect(toHex(blake3Reference(fromHex(b.input_hex)))).toBe(b.hash);
    }
  });
  it('encodes the reference entry', () => {
    const f = V.entry.fields;
    const enc = encodeEntry({ version: f.version, kind: f.kind, domain: f.domain, seq: f.seq, time: f.time, actor: f.actor, prev: fromHex(f.prev), payload: fromHex(f.payload_hex) });
    expect(toHex(enc)).toBe(V.entry.encoding);
    expect(toHex(entryHash(enc))).toBe(V.entry.hash);
  });
  it('initial state hashes', () => {
    expect(toHex(stateHash(systemReducer, systemReducer.init()))).toBe(V.initial_state.system);
    expect(toHex(stateHash(osReducer, osReducer.init()))).toBe(V.initial_state.os);
  });
  it('the sequencer reproduces every step, entry and state hash', () => {
    const S = V.sequencer;
    const seq = new Sequencer({ deviceId: fromHex(S.device), bootId: fromHex(S.boot), os: S.os, k: S.k });
    const got: { seq: number; encoding: string; hash: string }[] = [];
    const rec = (as: { seq: number; encoded: Uint8Array; hash: Uint8Array }[]) => as.forEach((a) => got.push({ seq: a.seq, encoding: toHex(a.encoded), hash: toHex(a.hash) }));
    rec(seq.boot());
    for (const st of S.steps) {
      const p = st.proposal;
      const args = decodeValue(fromHex(p.args_hex));
      if (!args.ok) throw new Error('vector args do not decode');
      const r = seq.propose({ actor: p.actor, id: p.id, domain: p.domain, action: p.action, args: args.value as any, time: p.time });
      rec(r.entries);
      expect(r.status).toBe(st.status);
      expect(r.seq).toBe(st.seq);
      if (r.status === 'committed') { expect(r.outcome.outcome).toBe(st.outcome); expect(toHex(r.outcome.result)).toBe(st.result_hex); }
      if (r.status === 'rejected') expect(r.reason).toBe(st.reason);
      const h = seq.stateHashes();
      expect(toHex(h.system!)).toBe(st.state_system);
      expect(toHex(h.os!)).toBe(st.state_os);
    }
    expect(got).toEqual(S.chain);
  });
  it('the verifier reports each mutated chain at the stated seq and reason', () => {
    for (const c of V.verify) {
      const r = verifyChain(c.entries.map(fromHex));
      expect(r.ok, c.name).toBe(c.ok);
      if (!r.ok) { expect(r.failure.seq, c.name).toBe(c.seq); expect(r.failure.reason, c.name).toBe(c.reason); }
    }
  });
  it('reads the trace file vector', () => {
    const b = fromHex(V.trace_file.hex);
    expect(decodeTraceHeader(b).ok).toBe(true);
    const v = new ChainVerifier();
    let n = 0;
    const p = new RecordParser((r) => { n++; expect(v.push(r.entry, r.hash)).toBeNull(); });
    p.push(b.subarray(64));
    expect(n).toBe(V.trace_file.entries);
    expect(p.pending).toBe(0);
  });
});
