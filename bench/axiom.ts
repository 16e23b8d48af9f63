// npm run bench -- axiom: the log's hot paths against the raw BLAKE3 rate measured in the same run.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChainVerifier, Replayer, Sequencer, blake3, decodeEntry, initAxiom, osReducer, systemReducer, type Appended } from '../axiom/index.ts';
import { TraceWriter, verifyTraceFile } from '../axiom/node/trace-file.ts';
import { verifyAndReplayFile } from '../axiom/node/replay-file.ts';
import { bestOf, round, type Suite } from './harness.ts';

const TEXT = 'quick brown fox'; // with the id: COMMIT and RECEIPT payloads average ~100 bytes

function makeSeq(k = 256) { return new Sequencer({ deviceId: new Uint8Array(16).fill(1), bootId: new Uint8Array(16).fill(2), os: 'bench', k }); }
function* proposals(n: number) { for (let i = 0; i < n; i++) yield { actor: 1, id: i, domain: 1, action: 'echo', args: { text: `${TEXT} ${i}` }, time: 0 }; }

const suite: Suite = async (ctx) => {
  await initAxiom();
  const N = 200_000;
  ctx.progress(`building ${N} entries`);
  const seq = makeSeq();
  const log: Appended[] = [...seq.boot()];
  for (const p of proposals(N / 2)) log.push(...seq.propose(p).entries);
  const encoded = log.map((a) => a.encoded);
  const avgPayload = encoded.reduce((n, e) => n + e.length - 64, 0) / encoded.length;

  ctx.progress('raw BLAKE3 over the same encodings');
  const rawMs = await bestOf(3, () => { for (const e of encoded) blake3(e); });
  ctx.progress('verify');
  const verifyMs = await bestOf(3, () => { const v = new ChainVerifier(); for (const a of log) if (v.push(a.encoded, a.hash)) throw new Error('bench log does not verify'); });
  ctx.progress('replay');
  const decoded = encoded.map((e) => { const d = decodeEntry(e); if (!d.ok) throw new Error('bad'); return d.value; });
  const replayMs = await bestOf(3, () => { const r = new Replayer([systemReducer, osReducer]); for (const e of decoded) r.apply(e); });
  ctx.progress('append (sequencer + trace file, no fsync per entry)');
  const dir = mkdtempSync(join(tmpdir(), 'axiom-bench-'));
  const appendMs = await bestOf(2, () => {
    rmSync(join(dir, 'a.orbtrace'), { force: true });
    const s = makeSeq();
    const { writer } = TraceWriter.open(join(dir, 'a.orbtrace'), { deviceId: s.opts.deviceId, bootId: s.opts.bootId, k: 256 }, undefined, 'never');
    writer.append(s.boot());
    let batch: Appended[] = [];
    for (const p of proposals(N / 2)) { batch.push(...s.propose(p).entries); if (batch.length >= 512) { writer.append(batch); batch = []; } }
    writer.append(batch); writer.sync(); writer.close();
  });
  ctx.progress('append with fsync before every result (the hosted OS policy), 2,000 proposals');
  const fsyncN = 2000;
  const fsyncMs = await bestOf(1, () => {
    rmSync(join(dir, 'f.orbtrace'), { force: true });
    const s = makeSeq();
    const { writer } = TraceWriter.open(join(dir, 'f.orbtrace'), { deviceId: s.opts.deviceId, bootId: s.opts.bootId, k: 256 }, undefined, 'always');
    writer.append(s.boot());
    for (const p of proposals(fsyncN)) writer.append(s.propose(p).entries);
    writer.close();
  });

  const M = 1_000_000;
  ctx.progress(`writing a ${M}-entry trace file`);
  const big = join(dir, 'big.orbtrace');
  {
    const s = makeSeq();
    const { writer } = TraceWriter.open(big, { deviceId: s.opts.deviceId, bootId: s.opts.bootId, k: 256 }, undefined, 'never');
    let batch: Appended[] = [...s.boot()];
    let i = 0;
    while (s.next < M) {
      const r = s.propose({ actor: 1, id: i, domain: 1, action: 'echo', args: { text: `${TEXT} ${i}` }, time: 0 }); i++;
      batch.push(...r.entries);
      if (batch.length >= 4096) { writer.append(batch); batch = []; }
    }
    writer.append(batch); writer.sync(); writer.close();
  }
  const bigBytes = statSync(big).size;
  ctx.progress('verify + replay of the 1M-entry file from disk (verify on one core, replay on the other)');
  const t0 = performance.now();
  const res = await verifyAndReplayFile(big, [systemReducer, osReducer]);
  const vr1m = (performance.now() - t0) / 1000;
  if (!res.verify.ok || res.divergence || res.replayed < M) throw new Error(`1M file did not verify/replay: ${JSON.stringify(res.verify.failure ?? res.divergence)} count ${res.replayed}`);
  ctx.progress('the same in one thread');
  const t2 = performance.now();
  const res1 = await verifyAndReplayFile(big, [systemReducer, osReducer], { parallel: false });
  const vr1mSerial = (performance.now() - t2) / 1000;
  if (!res1.verify.ok || res1.divergence) throw new Error('1M file did not verify/replay serially');
  const cr = res;
  ctx.progress('verify only, same file');
  const t1 = performance.now();
  const vf = verifyTraceFile(big);
  const v1m = (performance.now() - t1) / 1000;
  if (!vf.ok) throw new Error('1M file does not verify');
  rmSync(dir, { recursive: true, force: true });

  const perS = (n: number, ms: number) => Math.round(n / (ms / 1000));
  const raw = perS(N, rawMs), ver = perS(N, verifyMs);
  const figures = {
    entries: encoded.length, avg_payload_bytes: round(avgPayload, 1),
    raw_hash_per_s: raw, append_per_s: perS(N, appendMs), append_fsync_per_s: perS(fsyncN * 2, fsyncMs),
    verify_per_s: ver, replay_per_s: perS(N, replayMs),
    verify_replay_1m_s: round(vr1m, 3), verify_replay_1m_one_thread_s: round(vr1mSerial, 3), verify_1m_s: round(v1m, 3), file_1m_mb: round(bigBytes / 1e6, 1), checkpoints_checked_1m: cr.checkpoints,
  };
  return {
    figures,
    goals: [
      { text: `verify_per_s ≥ 0.5 × raw_hash_per_s (${ver} vs ${raw}: ${round(ver / raw, 2)}×)`, met: ver >= 0.5 * raw },
      { text: `verify_replay_1m_s < 2 (${round(vr1m, 2)} s)`, met: vr1m < 2 },
    ],
    notes: ['append_per_s batches writes and syncs once at the end; append_fsync_per_s counts entries with fdatasync before every result, as the hosted OS runs', 'verify_replay_1m_s: verifyAndReplayFile — stored-hash + chain + payload checks in a worker on one core while the other replays both device reducers and compares all 3,906 CHECKPOINTs; the one-thread figure is the same work serially'],
  };
};
export default suite;
