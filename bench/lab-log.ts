// `npm run bench -- lab-log [--records=20000]`: what the lab log costs every command once a busy lab
// has N records in it. Every flash, boot, run and power records in the log, and every job picking a
// board reads its history. record_ms: one record appended going on from STATE/lab.snapshot, against
// record_full_ms, the same with the snapshot removed first (the whole log verified and replayed, as
// before the snapshot and whenever it does not fit). view_ms: a job's read of the history from the
// snapshot, against view_full_ms (the whole log, as `history` reads it).
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BenchContext, BenchResult } from './harness.ts';
import { median, round } from './harness.ts';
import { recordLab, readHistory, labLogPath, type LabRecord } from '../hwlab/history.ts';
import { labSnapshotPath } from '../hwlab/lab-snapshot.ts';

const boot = (i: number): LabRecord => ({ action: 'boot', args: { device: `board-${i % 8}`, boot_id: i.toString(16).padStart(16, '0'), ok: i % 11 ? 1 : 0, stage: 'axiom', blame: i % 11 ? '' : 'os', code: i % 11 ? '' : 'os-fatal', boot_ms: 1000 + (i % 500) } });

export default async function (ctx: BenchContext): Promise<BenchResult> {
  const n = Number(ctx.args.find((a) => a.startsWith('--records='))?.slice(10) ?? 20000);
  const dir = mkdtempSync(join(tmpdir(), 'orbital-lab-log-bench-'));
  try {
    // Setup (not timed): N records, 1000 to a command.
    for (let i = 0; i < n; i += 1000) {
      ctx.progress(`building a lab log: ${i}/${n} records`);
      await recordLab(dir, Array.from({ length: Math.min(1000, n - i) }, (_, k) => boot(i + k)));
    }
    const timed = async (f: () => Promise<unknown>) => { const t = performance.now(); await f(); return performance.now() - t; };
    const rec: number[] = [], recFull: number[] = [], view: number[] = [], viewFull: number[] = [];
    let at = n;
    for (let r = 0; r < 5; r++) {
      ctx.progress(`rep ${r + 1}/5`);
      rec.push(await timed(() => recordLab(dir, [boot(at++)])));
      view.push(await timed(() => readHistory(dir, { fast: true })));
      if (r < 3) {
        viewFull.push(await timed(() => readHistory(dir)));
        rmSync(labSnapshotPath(dir), { force: true });
        recFull.push(await timed(() => recordLab(dir, [boot(at++)])));
      }
    }
    const figures = {
      records: n,
      log_mib: round(statSync(labLogPath(dir)).size / 2 ** 20, 1),
      snapshot_kib: round(statSync(labSnapshotPath(dir)).size / 1024, 0),
      record_ms: round(median(rec), 1),
      record_full_ms: round(median(recFull), 1),
      view_ms: round(median(view), 1),
      view_full_ms: round(median(viewFull), 1),
    };
    return {
      figures,
      goals: [
        { text: `record_ms (${figures.record_ms}, from the snapshot) <= 0.2 x record_full_ms (${figures.record_full_ms}, the whole log replayed)`, met: figures.record_ms <= 0.2 * figures.record_full_ms },
        { text: `view_ms (${figures.view_ms}) <= 0.1 x view_full_ms (${figures.view_full_ms})`, met: figures.view_ms <= 0.1 * figures.view_full_ms },
      ],
      notes: [
        `${n} boot records (1000 a command, so ${Math.ceil(n / 1000)} sequencer boots) in ${figures.log_mib} MiB; medians of 5 (the full replays: 3)`,
        'record_*: recordLab of one record, the log lock, fsync and the new snapshot included; view_*: readHistory with fast (a job picking a board) and without (history)',
        'what is left of record_ms grows with the log: the SHA-256 of the log up to the snapshot (the check that it still fits, ~1 GB/s) and the idempotency index (one entry per record, kept in typed-array columns)',
      ],
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
