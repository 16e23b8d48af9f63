// One call for "is this trace file sound, and what state does it give?": verifies the chain and
// replays the reducers, comparing every CHECKPOINT on the way. Verification runs in a worker
// thread on the second core while this thread replays; replay never trusts more than the
// verifier accepted (a divergence after the first bad seq is not reported).
import { Worker } from 'node:worker_threads';
import { CheckpointReplayer, type Divergence } from '../checkpoints.ts';
import { decodeEntryTrusted } from '../entry.ts';
import type { Reducer } from '../types.ts';
import { scanTraceSync, verifyTraceFile, type VerifyFileResult } from './trace-file.ts';

export interface ReplayFileResult {
  verify: VerifyFileResult;
  /** Entries replayed (up to the first bad seq). */
  replayed: number;
  checkpoints: number;
  divergence: Divergence | null;
  replayer: CheckpointReplayer;
}

function verifyInWorker(path: string): Promise<VerifyFileResult> | null {
  try {
    const w = new Worker(new URL('./verify-worker.ts', import.meta.url), { workerData: { path }, execArgv: [...process.execArgv.filter((a) => !a.startsWith('--input-type')), ...(process.execArgv.some((a) => a.includes('tsx')) ? [] : ['--import', 'tsx'])] });
    return new Promise((resolve, reject) => {
      w.once('message', (m) => { resolve(m as VerifyFileResult); void w.terminate(); });
      w.once('error', reject);
      w.once('exit', (code) => { if (code !== 0) reject(new Error(`verify worker exited with ${code}`)); });
    });
  } catch { return null; }
}

export async function verifyAndReplayFile(path: string, reducers: Reducer<any>[], opts: { parallel?: boolean } = {}): Promise<ReplayFileResult> {
  const pending = opts.parallel === false ? null : verifyInWorker(path);
  const cr = new CheckpointReplayer(reducers);
  let replayed = 0;
  let verify: VerifyFileResult | undefined;
  if (!pending) verify = verifyTraceFile(path);
  const limit = () => (verify && !verify.ok ? verify.count : Infinity);
  try {
    scanTraceSync(path, (r) => {
      if (replayed >= limit()) return false;
      cr.apply(decodeEntryTrusted(r.entry));
      replayed++;
    });
  } catch { /* the verifier reports what is wrong with the file */ }
  if (pending) {
    try { verify = await pending; } catch { verify = verifyTraceFile(path); }
  }
  const v = verify!;
  if (!v.ok && replayed > v.count) {
    // The replay ran past the first bad entry: redo it up to there, so its state is trustworthy.
    const again = new CheckpointReplayer(reducers);
    let n = 0;
    try { scanTraceSync(path, (r) => { if (n >= v.count) return false; again.apply(decodeEntryTrusted(r.entry)); n++; }); } catch { /* as above */ }
    return { verify: v, replayed: n, checkpoints: again.checkpoints, divergence: again.divergence, replayer: again };
  }
  return { verify: v, replayed, checkpoints: cr.checkpoints, divergence: cr.divergence, replayer: cr };
}
