// Writes docs/vectors/axiom-v1.json: the test vectors every Axiom implementation (TypeScript
// here, Rust in os-image/kernel) must pass. Run `npm run vectors` only when docs/axiom.md or
// docs/os-domain.md change, and commit the result with them. Flat JSON: ints and hex strings only,
// so a tiny hand-written JSON reader in no_std Rust can load it.
import { writeFileSync } from 'node:fs';
import { blake3Reference, encodeEntry, encodeValue, entryHash, encodeTraceHeader, encodeRecord, initAxiom, Sequencer, stateHash, systemReducer, osReducer, toHex, type Proposal, type Value } from '../axiom/index.ts';

await initAxiom();
const hex = toHex;
const u8 = (...xs: number[]) => new Uint8Array(xs);

const goodValues: [string, Value][] = [
  ['null', null], ['false', false], ['true', true], ['zero', 0], ['minus-one', -1], ['i64-max', 2n ** 63n - 1n], ['i64-min', -(2n ** 63n)],
  ['float', 1.5], ['nan', NaN], ['inf', Infinity], ['neg-inf', -Infinity], ['bytes', u8(1, 2, 3)], ['empty-bytes', u8()],
  ['string', 'héllo'], ['empty-string', ''], ['list', [1, 'a', null]], ['map', { b: 1, a: 2, aa: [true] }], ['nested', { x: { y: { z: [[]] } } }],
  ['emoji', '🛰'],
];
const values = goodValues.map(([name, v]) => ({ name, hex: hex(encodeValue(v)) }));
const badValues = [
  { name: 'unknown-tag', hex: '09' },
  { name: 'truncated-int', hex: '030102' },
  { name: 'float-integral', hex: '04' + '000000000000f03f' },
  { name: 'non-canonical-nan', hex: '04' + '010000000000f87f' },
  { name: 'bad-utf8', hex: '0602000000c328' },
  { name: 'surrogate', hex: '0603000000eda080' },
  { name: 'unsorted-keys', hex: '08020000000100000062' + '00' + '0100000061' + '00' },
  { name: 'duplicate-keys', hex: '08020000000100000061' + '00' + '0100000061' + '00' },
  { name: 'huge-count', hex: '07ffffffff00' },
  { name: 'huge-length', hex: '05ffffff7f' },
  { name: 'trailing', hex: '0000' },
  { name: 'too-deep', hex: '0701000000'.repeat(32) + '00' },
  { name: 'empty', hex: '' },
];

const blake = [new Uint8Array(0), u8(0), new Uint8Array(1025).map((_, i) => i % 251)].map((b) => ({ input_hex: hex(b), hash: hex(blake3Reference(b)) }));

const device = new Uint8Array(16).map((_, i) => 0xd0 + i), boot = new Uint8Array(16).map((_, i) => 0xb0 + i);
const seq = new Sequencer({ deviceId: device, bootId: boot, os: 'vectors', k: 8 });
const chain: { seq: number; encoding: string; hash: string }[] = [];
const rec = (as: { seq: number; encoded: Uint8Array; hash: Uint8Array }[]) => { for (const a of as) chain.push({ seq: a.seq, encoding: hex(a.encoded), hash: hex(a.hash) }); };
rec(seq.boot());
const proposals: Proposal[] = [
  { actor: 1, id: 1, domain: 1, action: 'sh', args: { line: 'set greeting hello world' }, time: 0 },
  { actor: 1, id: 2, domain: 1, action: 'sh', args: { line: 'get greeting' }, time: 0 },
  { actor: 1, id: 3, domain: 1, action: 'svc.start', args: { name: 'net' }, time: 10 },
  { actor: 1, id: 4, domain: 1, action: 'svc.start', args: { name: 'net' }, time: 0 },
  { actor: 7, id: 1, domain: 1, action: 'kv.set', args: { key: 'k', value: 'v' }, time: 0 },
  { actor: 0, id: 1, domain: 1, action: 'cap.grant', args: { actor: 7, cap: 'kv' }, time: 0 },
  { actor: 7, id: 2, domain: 1, action: 'kv.set', args: { key: 'k', value: 'v' }, time: 0 },
  { actor: 1, id: 5, domain: 1, action: 'job.run', args: { name: 'build', rounds: 1000, seed: u8(1, 2, 3) }, time: 0 },
  { actor: 1, id: 6, domain: 1, action: 'nope', args: {}, time: 0 },
  { actor: 1, id: 7, domain: 1, action: 'kv.set', args: { key: '', value: 'v' }, time: 0 },
  { actor: 1, id: 8, domain: 2, action: 'window.open', args: { title: 'Console' }, time: 0 },
  { actor: 1, id: 9, domain: 9, action: 'x', args: {}, time: 0 },
  { actor: 1, id: 10, domain: 1, action: 'sh', args: { line: '  ps ' }, time: 0 },
  { actor: 1, id: 11, domain: 1, action: 'sh', args: { line: 'frobnicate now' }, time: 0 },
  { actor: 1, id: 12, domain: 1, action: 'svc.stop', args: { name: 'net' }, time: 0 },
  { actor: 1, id: 13, domain: 1, action: 'kv.del', args: { key: 'greeting' }, time: 0 },
  { actor: 1, id: 14, domain: 1, action: 'echo', args: { text: 'bye' }, time: 0 },
  { actor: 1, id: 1, domain: 1, action: 'sh', args: { line: 'set greeting hello world' }, time: 0 },
];
const steps = proposals.map((p) => {
  const r = seq.propose(p);
  rec(r.entries);
  const h = seq.stateHashes();
  return {
    proposal: { actor: p.actor, id: p.id, domain: p.domain, action: p.action, args_hex: hex(encodeValue(p.args)), time: p.time },
    status: r.status, seq: r.seq,
    ...(r.status === 'committed' ? { receipt_seq: r.receiptSeq, outcome: r.outcome.outcome, result_hex: hex(r.outcome.result) } : {}),
    ...(r.status === 'rejected' ? { reason: r.reason } : {}),
    state_system: hex(h.system!), state_os: hex(h.os!),
  };
});

// A hand-built entry with every field set, for codec tests independent of the sequencer.
const payload = encodeValue({ id: 42, action: 'echo', args: { text: 'hi' } });
const entry = { version: 1, kind: 2, domain: 1, seq: 5, time: 9, actor: 3, prev: new Uint8Array(32).fill(0xab), payload };
const entryEnc = encodeEntry(entry);

// Verifier cases: mutations of the chain and the first bad seq they must report.
const encs = chain.map((c) => c.encoding);
const flip = (h: string, byte: number) => h.slice(0, byte * 2) + ((parseInt(h.slice(byte * 2, byte * 2 + 2), 16) ^ 1).toString(16).padStart(2, '0')) + h.slice(byte * 2 + 2);
const verify = [
  { name: 'valid', entries: encs, ok: true },
  { name: 'flipped-actor-byte', entries: encs.map((e, i) => (i === 5 ? flip(e, 20) : e)), ok: false, seq: 6, reason: 'hash-mismatch' },
  { name: 'flipped-payload-tag', entries: encs.map((e, i) => (i === 5 ? e.slice(0, 128) + '09' + e.slice(130) : e)), ok: false, seq: 5, reason: 'bad-encoding' },
  { name: 'gap', entries: encs.filter((_, i) => i !== 4), ok: false, seq: 4, reason: 'gap' },
  { name: 'swap', entries: encs.map((e, i) => (i === 3 ? encs[4]! : i === 4 ? encs[3]! : e)), ok: false, seq: 3, reason: 'gap' },
  { name: 'duplicate', entries: [...encs.slice(0, 5), encs[4]!, ...encs.slice(5)], ok: false, seq: 5, reason: 'duplicate' },
  { name: 'bad-version', entries: encs.map((e, i) => (i === 2 ? '09' + e.slice(2) : e)), ok: false, seq: 2, reason: 'bad-encoding' },
];

const header = encodeTraceHeader({ deviceId: device, bootId: boot, k: 8 });
const traceHex = hex(header) + chain.slice(0, 3).map((c) => hex(encodeRecord(Buffer.from(c.encoding, 'hex'), Buffer.from(c.hash, 'hex')))).join('');

const out = {
  format: 'axiom-v1',
  doc: 'docs/axiom.md, docs/os-domain.md',
  values, bad_values: badValues, blake3: blake,
  entry: { fields: { version: 1, kind: 2, domain: 1, seq: 5, time: 9, actor: 3, prev: hex(entry.prev), payload_hex: hex(payload) }, encoding: hex(entryEnc), hash: hex(entryHash(entryEnc)) },
  initial_state: { system: hex(stateHash(systemReducer, systemReducer.init())), os: hex(stateHash(osReducer, osReducer.init())) },
  sequencer: { device: hex(device), boot: hex(boot), os: 'vectors', k: 8, steps, chain },
  verify,
  trace_file: { hex: traceHex, entries: 3 },
};
writeFileSync(new URL('../docs/vectors/axiom-v1.json', import.meta.url), JSON.stringify(out, null, 1) + '\n');
console.log(`wrote docs/vectors/axiom-v1.json: ${values.length} values, ${chain.length} chain entries, ${steps.length} steps`);
