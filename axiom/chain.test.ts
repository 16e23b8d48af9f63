// Logs generated from random proposals: replay is deterministic (twice, and in a fresh process),
// and every single-byte change, deletion, swap or truncation is caught at the right seq. Going on
// from a snapshot (Sequencer.snapshot/resume, ChainVerifier.position/resume) taken at any point is
// the same as having restored or verified every entry up to it.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { ChainVerifier, Kind, RecordParser, Seeker, Sequencer, decodeEntry, encodeRecord, encodeTraceHeader, initAxiom, osReducer, replay, systemReducer, toHex, type Proposal } from './index.ts';
import { buildLog, proposalArb } from '../scripts/axiom-proposals.ts';

beforeAll(() => initAxiom());

function verifyTraceBytes(records: { encoded: Uint8Array; hash: Uint8Array }[], mutate: (b: Uint8Array) => Uint8Array) {
  const parts = [encodeTraceHeader({ deviceId: new Uint8Array(16), bootId: new Uint8Array(16), k: 8 }), ...records.map((r) => encodeRecord(r.encoded, r.hash))];
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0; for (const p of parts) { all.set(p, o); o += p.length; }
  const b = mutate(all);
  const v = new ChainVerifier();
  const p = new RecordParser((r) => v.push(r.entry, r.hash, r.offset) === null);
  p.push(b.subarray(64));
  if (v.failure) return { seq: v.failure.seq, reason: v.failure.reason };
  if (p.error) return { seq: v.next, reason: 'bad-encoding' };
  if (p.pending) return { seq: v.next, reason: 'truncated-tail' };
  return null;
}

describe('generated logs', () => {
  it('replay gives the sequencer\'s state hashes, twice', () => {
    fc.assert(fc.property(fc.array(proposalArb, { maxLength: 40 }), (ps) => {
      const { s, out } = buildLog(ps);
      const want = Object.values(s.stateHashes()).map(toHex);
      const a = replay([systemReducer, osReducer], out.map((x) => x.encoded));
      const b = replay([systemReducer, osReducer], out.map((x) => x.encoded));
      expect(Object.values(a.hashes()).map(toHex)).toEqual(want);
      expect(Object.values(b.hashes()).map(toHex)).toEqual(want);
    }), { numRuns: 200 });
  });

  it('replays to the same hash in a fresh process', () => {
    const ps = fc.sample(proposalArb, { numRuns: 300, seed: 42 });
    const { s, out } = buildLog(ps);
    const dir = mkdtempSync(join(tmpdir(), 'axiom-'));
    const file = join(dir, 'log.json');
    writeFileSync(file, JSON.stringify(out.map((x) => toHex(x.encoded))));
    const script = `import { readFileSync } from 'node:fs'; import { initAxiom, replay, systemReducer, osReducer, fromHex, toHex } from ${JSON.stringify(new URL('./index.ts', import.meta.url).pathname)};
await initAxiom(); const r = replay([systemReducer, osReducer], JSON.parse(readFileSync(process.argv[2], 'utf8')).map(fromHex));
console.log(JSON.stringify(Object.values(r.hashes()).map(toHex)));`;
    writeFileSync(join(dir, 'replay.mts'), script);
    const r = spawnSync(process.execPath, ['--import', 'tsx', join(dir, 'replay.mts'), file], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout.trim().split('\n').pop()!)).toEqual(Object.values(s.stateHashes()).map(toHex));
  });

  it('seeking replays at most k entries and matches a full replay', () => {
    const { out } = buildLog(fc.sample(proposalArb, { numRuns: 120, seed: 7 }), 16);
    const seeker = new Seeker([systemReducer, osReducer], 16);
    for (const a of out) seeker.push(a.entry);
    for (const seq of [-1, 0, 15, 16, 17, 100, out.length - 1]) {
      const st = seeker.stateAt(seq);
      expect(seeker.lastReplayed).toBeLessThan(16);
      const full = replay([systemReducer, osReducer], out.slice(0, seq + 1).map((x) => x.encoded));
      expect(Object.values(st.hashes()).map(toHex)).toEqual(Object.values(full.hashes()).map(toHex));
    }
  });

  it('every single-byte change in a trace file is caught at the seq of the changed record', () => {
    const { out } = buildLog(fc.sample(proposalArb, { numRuns: 12, seed: 3 }));
    const offsets: number[] = []; let o = 64;
    for (const a of out) { offsets.push(o); o += 4 + a.encoded.length + 32; }
    const total = o;
    fc.assert(fc.property(fc.integer({ min: 64, max: total - 1 }), fc.integer({ min: 1, max: 255 }), (at, x) => {
      const r = verifyTraceBytes(out, (b) => { const m = b.slice(); m[at] ^= x; return m; });
      expect(r).not.toBeNull();
      const rec = offsets.findLastIndex((off) => off <= at);
      // A changed length field may make the parser see a different record boundary, but never later.
      expect(r!.seq).toBeLessThanOrEqual(rec);
      if (at >= offsets[rec]! + 4) expect(r!.seq).toBe(rec);
    }), { numRuns: 1500 });
  });

  it('deletion, swap, duplication and truncation are caught at the right seq', () => {
    const { out } = buildLog(fc.sample(proposalArb, { numRuns: 20, seed: 5 }));
    const n = out.length;
    fc.assert(fc.property(fc.integer({ min: 0, max: n - 2 }), (i) => {
      expect(verifyTraceBytes(out.filter((_, j) => j !== i), (b) => b)).toMatchObject({ seq: i, reason: 'gap' });
      const sw = out.slice(); [sw[i], sw[i + 1]] = [sw[i + 1]!, sw[i]!];
      expect(verifyTraceBytes(sw, (b) => b)).toMatchObject({ seq: i, reason: 'gap' });
      const dup = [...out.slice(0, i + 1), out[i]!, ...out.slice(i + 1)];
      expect(verifyTraceBytes(dup, (b) => b)).toMatchObject({ seq: i + 1, reason: 'duplicate' });
    }), { numRuns: 100 });
    // truncation anywhere inside the last records: a torn tail at that record's seq
    let o = 64; const offs = out.map((a) => { const x = o; o += 4 + a.encoded.length + 32; return x; });
    for (let i = 0; i < n; i++) for (const cut of [1, 5, 40]) {
      expect(verifyTraceBytes(out, (b) => b.subarray(0, offs[i]! + cut))).toEqual({ seq: i, reason: 'truncated-tail' });
    }
  });
});

const opts = { deviceId: new Uint8Array(16).fill(1), bootId: new Uint8Array(16).fill(2), os: 'test', k: 8 };
const restoredFrom = (entries: { encoded: Uint8Array; hash: Uint8Array }[]) => {
  const s = new Sequencer(opts);
  for (const e of entries) { const d = decodeEntry(e.encoded); if (!d.ok) throw new Error(d.error.message); s.restore(e.hash, d.value); }
  return s;
};

describe('Sequencer.resume', () => {
  it.each(['copied', 'shared and adopted'])('a sequencer resumed from a snapshot (%s) at any seq appends exactly what one restored from every entry appends', (mode) => {
    fc.assert(fc.property(fc.array(proposalArb, { maxLength: 30 }), fc.array(proposalArb, { maxLength: 15 }), fc.nat(), (ps, more, cut) => {
      const { out } = buildLog(ps);
      const at = cut % (out.length + 1);
      const a = restoredFrom(out);
      // Snapshot after the first `at` entries, then restore the rest onto the resumed one. Shared
      // and adopted: the index's maps pass from one sequencer (not used again) to the next uncopied.
      const adopt = mode !== 'copied';
      const snap = restoredFrom(out.slice(0, at)).snapshot({ share: adopt });
      const b = Sequencer.resume(opts, snap, { adopt });
      for (const e of out.slice(at)) { const d = decodeEntry(e.encoded); if (!d.ok) throw new Error(d.error.message); b.restore(e.hash, d.value); }
      const bootA = a.boot(), bootB = b.boot();
      expect(bootB.map((x) => toHex(x.hash))).toEqual(bootA.map((x) => toHex(x.hash)));
      // Proposals again, including the earlier ones: their duplicates must be found the same way.
      for (const p of [...more, ...ps.slice(0, 5)]) {
        const ra = a.propose(p), rb = b.propose(p);
        expect(rb.status).toBe(ra.status);
        expect(rb.entries.map((x) => toHex(x.hash))).toEqual(ra.entries.map((x) => toHex(x.hash)));
      }
      expect(Object.values(b.stateHashes()).map(toHex)).toEqual(Object.values(a.stateHashes()).map(toHex));
    }), { numRuns: 150 });
  });

  it('a snapshot is a copy: the sequencer going on does not change it', () => {
    const p: Proposal = { actor: 1, id: 1, domain: 1, time: 5, action: 'kv.set', args: { key: 'a', value: 'x' } };
    const s = new Sequencer(opts);
    s.boot();
    s.propose(p);
    const snap = s.snapshot();
    const before = JSON.stringify([...snap.done], (_, v) => (v instanceof Uint8Array ? toHex(v) : v));
    s.propose({ ...p, id: 2 });
    expect(JSON.stringify([...snap.done], (_, v) => (v instanceof Uint8Array ? toHex(v) : v))).toBe(before);
    expect(snap.next).toBe(s.next - 2);
  });

  it('a shared snapshot holds the sequencer\'s own index maps; a copied one does not', () => {
    const s = new Sequencer(opts);
    s.boot();
    s.propose({ actor: 1, id: 1, domain: 1, time: 5, action: 'kv.set', args: { key: 'a', value: 'x' } });
    const shared = s.snapshot({ share: true }), copied = s.snapshot();
    s.propose({ actor: 1, id: 2, domain: 1, time: 6, action: 'kv.set', args: { key: 'a', value: 'y' } });
    expect(shared.done.has('1:2')).toBe(true);
    expect(copied.done.has('1:2')).toBe(false);
  });

  it('refuses a snapshot of other reducers', () => {
    const snap = new Sequencer(opts).snapshot();
    expect(() => Sequencer.resume({ ...opts, reducers: [] }, snap)).toThrow(/snapshot is of reducers system, os/);
  });
});

describe('ChainVerifier.resume', () => {
  it('verifying from a position taken at any entry finds what verifying from the start finds, where it finds it', () => {
    fc.assert(fc.property(fc.array(proposalArb, { maxLength: 30 }), fc.nat(), fc.nat(), fc.constantFrom('none', 'flip', 'drop', 'second-receipt'), (ps, cut, where, how) => {
      const { out } = buildLog(ps);
      let es = out.map((x) => ({ encoded: x.encoded.slice(), hash: x.hash }));
      const i = where % es.length;
      if (how === 'flip') { es[i]!.encoded[70 % es[i]!.encoded.length] ^= 1; }
      else if (how === 'drop') es = es.filter((_, j) => j !== i);
      else if (how === 'second-receipt') {
        const r = es.findIndex((e) => e.encoded[1] === Kind.Receipt);
        if (r >= 0) es.push(es[r]!);
      }
      const full = new ChainVerifier();
      let fullFail = null;
      for (const e of es) { fullFail = full.push(e.encoded, e.hash); if (fullFail) break; }
      // The position is taken only where the prefix verified (as a snapshot is).
      const pre = new ChainVerifier();
      const at = cut % (es.length + 1);
      let k = 0;
      for (; k < at; k++) if (pre.push(es[k]!.encoded, es[k]!.hash)) break;
      if (pre.failure) return;
      const v = ChainVerifier.resume(pre.position());
      let fail = null;
      for (const e of es.slice(k)) { fail = v.push(e.encoded, e.hash); if (fail) break; }
      expect(fail && { seq: fail.seq, reason: fail.reason }).toEqual(fullFail && { seq: fullFail.seq, reason: fullFail.reason });
      expect(toHex(v.head)).toBe(toHex(full.head));
      expect(v.next).toBe(full.next);
    }), { numRuns: 300 });
  });
});
