// The lab snapshot's packed index (lab-snapshot.ts, version 2): a sequencer resumed from an index
// that went through packIndex, v8 serialize/deserialize and unpackIndex appends exactly what one
// restored from every entry appends - duplicates answered alike, commits open at the snapshot
// closed alike at boot and their receipts landing on the same records - and the columns survive
// every shape of index: rejected records, records without a receipt, open commits with and without
// an id (a record shared between done and commitRecord, or one of their own).
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { deserialize, serialize } from 'node:v8';
import { decodeEntry, Sequencer, toHex, type SequencerSnapshot } from '../axiom/index.ts';
import { buildLog, proposalArb } from '../scripts/axiom-proposals.ts';
import { packIndex, unpackIndex } from './lab-snapshot.ts';

const opts = { deviceId: new Uint8Array(16).fill(1), bootId: new Uint8Array(16).fill(2), os: 'test', k: 8 };
const restoredFrom = (entries: { encoded: Uint8Array; hash: Uint8Array }[]) => {
  const s = new Sequencer(opts);
  for (const e of entries) { const d = decodeEntry(e.encoded); if (!d.ok) throw new Error(d.error.message); s.restore(e.hash, d.value); }
  return s;
};
/** The snapshot as the file carries it and back: the index packed, serialized, read and unpacked. */
const throughFile = (snap: SequencerSnapshot): SequencerSnapshot => {
  const { done, receiptOf, commitRecord, domainOfCommit, ...rest } = snap;
  const back = deserialize(serialize({ ...rest, index: packIndex({ ...snap, done, receiptOf, commitRecord, domainOfCommit }) })) as typeof rest & { index: ReturnType<typeof packIndex> };
  const { index, ...plain } = back;
  return { ...plain, ...unpackIndex(index) };
};

describe('lab snapshot: the packed idempotency index', () => {
  it('a sequencer resumed from a packed index at any seq appends exactly what one restored from every entry appends', () => {
    fc.assert(fc.property(fc.array(proposalArb, { maxLength: 30 }), fc.array(proposalArb, { maxLength: 15 }), fc.nat(), (ps, more, cut) => {
      const { out } = buildLog(ps);
      const at = cut % (out.length + 1);
      const a = restoredFrom(out);
      const b = Sequencer.resume(opts, throughFile(restoredFrom(out.slice(0, at)).snapshot({ share: true })), { adopt: true });
      for (const e of out.slice(at)) { const d = decodeEntry(e.encoded); if (!d.ok) throw new Error(d.error.message); b.restore(e.hash, d.value); }
      expect(b.boot().map((x) => toHex(x.hash))).toEqual(a.boot().map((x) => toHex(x.hash)));
      for (const p of [...more, ...ps.slice(0, 8)]) {
        const ra = a.propose(p), rb = b.propose(p);
        expect(rb.status).toBe(ra.status);
        expect(rb.entries.map((x) => toHex(x.hash))).toEqual(ra.entries.map((x) => toHex(x.hash)));
      }
    }), { numRuns: 150 });
  });

  it('unpacks to the same index, with the records done and commitRecord share still one object', () => {
    const rec = fc.record({ status: fc.constantFrom('committed' as const, 'rejected' as const), seq: fc.nat(1e9), receiptSeq: fc.option(fc.nat(1e9), { nil: undefined }) });
    fc.assert(fc.property(
      fc.uniqueArray(fc.tuple(fc.nat(2 ** 32 - 1), fc.maxSafeNat(), rec), { selector: ([a, id]) => `${a}:${id}`, maxLength: 40 }),
      fc.array(fc.tuple(fc.nat(1e9), fc.option(fc.nat(60), { nil: undefined }), rec), { maxLength: 10 }),
      fc.array(fc.tuple(fc.nat(1e9), fc.nat(1e9)), { maxLength: 20 }),
      fc.array(fc.tuple(fc.nat(1e9), fc.nat(255)), { maxLength: 10 }),
      (rows, opens, receipts, domains) => {
        type Rec = { status: 'committed' | 'rejected'; seq: number; receiptSeq?: number };
        const done = new Map<string, Rec>(rows.map(([a, id, r]) => { const x: Rec = { status: r.status, seq: r.seq }; if (r.receiptSeq !== undefined) x.receiptSeq = r.receiptSeq; return [`${a}:${id}`, x]; }));
        const doneRecs = [...done.values()];
        // An open commit shares a done record still awaiting its receipt, or has one of its own (a commit without an id).
        const awaiting = doneRecs.filter((x) => x.status === 'committed' && x.receiptSeq === undefined);
        const commitRecord = new Map<number, Rec>(opens.map(([c, i, r]) => [c, i !== undefined && awaiting.length ? awaiting[i % awaiting.length]! : { status: 'committed', seq: r.seq }]));
        const snap = { next: 0, head: new Uint8Array(32), time: 0, reducers: [], states: [], done, receiptOf: new Map(receipts), commitRecord, domainOfCommit: new Map(domains) } as SequencerSnapshot;
        const back = throughFile(snap);
        expect([...back.done]).toEqual([...done]);
        expect([...back.receiptOf]).toEqual([...snap.receiptOf]);
        expect([...back.domainOfCommit]).toEqual([...snap.domainOfCommit]);
        expect([...back.commitRecord]).toEqual([...commitRecord]);
        const doneBack = new Set(back.done.values());
        for (const [c, r] of commitRecord) expect(doneBack.has(back.commitRecord.get(c)!)).toBe(doneRecs.includes(r));
      }), { numRuns: 300 });
  });
});
