// One call for "is this trace file sound, and what state does it give?": verifies it and replays
// the reducers, comparing every CHECKPOINT on the way. BLAKE3 of every entry (the costly part)
// is checked against its stored hash in a worker on the second core, while this thread checks
// the chain links, sequence, times and encodings with the stored hashes and replays. Replay never
// trusts more than verification accepted: a divergence after the first bad seq is not reported.
import { Worker } from 'node:worker_threads';
import { CheckpointReplayer, type Divergence } from '../checkpoints.ts';
import { decodeEntryTrusted } from '../entry.ts';
import type { Reducer } from '../types.ts';
import { ChainVerifier } from '../verify.ts';
import { TraceError, scanTraceSync, verifyTraceFile, type VerifyFileResult } from './trace-file.ts';

export interface ReplayFileResult {
  verify: VerifyFileResult;
  /** Entries replayed (up to the first bad seq). */
  replayed: number;
  checkpoints: number;
  divergence: Divergence | null;
  replayer: CheckpointReplayer;
  /** Whether the hash checks ran on a second thread. */
  parallel: boolean;
}

function hashInWorker(path: string): Promise<{ checked: number; mismatch: number }> {
  return new Promise((resolve, reject) => {
    const w = new Worker(new URL('./hash-worker.mjs', import.meta.url), { workerData: { path } });
    w.once('message', (m) => { resolve(m as { checked: number; mismatch: number }); void w.terminate(); });
    w.once('error', reject);
    w.once('exit', (code) => { if (code !== 0) reject(new Error(`hash worker exited with ${code}`)); });
  });
}

function replayUpTo(path: string, reducers: Reducer<any>[], limit: number): { cr: CheckpointReplayer; n: number } {
  const cr = new CheckpointReplayer(reducers);
  let n = 0;
  try { scanTraceSync(path, (r) => { if (n >= limit) return false; cr.apply(decodeEntryTrusted(r.entry)); n++; }); } catch { /* reported by the verifier */ }
  return { cr, n };
}

export async function verifyAndReplayFile(path: string, reducers: Reducer<any>[], opts: { parallel?: boolean } = {}): Promise<ReplayFileResult> {
  if (opts.parallel === false) {
    const verify = verifyTraceFile(path);
    const { cr, n } = replayUpTo(path, reducers, verify.ok ? Infinity : verify.count);
    return { verify, replayed: n, checkpoints: cr.checkpoints, divergence: cr.divergence, replayer: cr, parallel: false };
  }
  const hashes = hashInWorker(path).catch(() => null);
  const v = new ChainVerifier();
  const cr = new CheckpointReplayer(reducers);
  let replayed = 0;
  let scan;
  try {
    scan = scanTraceSync(path, (r) => {
      if (v.push(r.entry, r.hash, r.offset, true)) return false;
      cr.apply(decodeEntryTrusted(r.entry));
      replayed++;
    });
  } catch (e) {
    const error = e instanceof TraceError ? e.error : { kind: 'bad-input' as const, reason: 'io' as const, message: `${path}: ${(e as Error).message}` };
    await hashes;
    return { verify: { ok: false, count: 0, error }, replayed: 0, checkpoints: 0, divergence: null, replayer: new CheckpointReplayer(reducers), parallel: true };
  }
  const h = await hashes;
  if (!h) {
    // No worker here: the plain path.
    return verifyAndReplayFile(path, reducers, { parallel: false });
  }
  let verify: VerifyFileResult;
  if (h.mismatch >= 0 && h.mismatch < v.next + (v.failure ? 0 : 1)) {
    verify = { ok: false, header: scan.header, count: h.mismatch, failure: { seq: h.mismatch, reason: 'hash-mismatch', message: `entry ${h.mismatch}: its bytes do not match its stored hash (the entry was changed or damaged)` } };
  } else if (v.failure) verify = { ok: false, header: scan.header, count: v.next, head: v.head, failure: v.failure };
  else if (scan.parseError) verify = { ok: false, header: scan.header, count: v.next, head: v.head, failure: { seq: v.next, reason: 'bad-encoding', message: scan.parseError.message, offset: scan.goodEnd } };
  else if (scan.tornBytes > 0) verify = { ok: false, header: scan.header, count: v.next, head: v.head, failure: { seq: v.next, reason: 'truncated-tail', message: `the file ends ${scan.tornBytes} bytes into the record of entry ${v.next} (a torn write): everything before it verifies`, offset: scan.goodEnd } };
  else verify = { ok: true, header: scan.header, count: v.next, head: v.head };
  if (!verify.ok && replayed > verify.count) {
    const { cr: again, n } = replayUpTo(path, reducers, verify.count);
    return { verify, replayed: n, checkpoints: again.checkpoints, divergence: again.divergence, replayer: again, parallel: true };
  }
  return { verify, replayed, checkpoints: cr.checkpoints, divergence: cr.divergence, replayer: cr, parallel: true };
}
