// `orbital-lab replay FILE` and `verify-trace FILE`: verify the chain, replay every domain reducer
// the device runs (system, os), compare each CHECKPOINT's recorded state hashes with the replayed
// ones. A divergence names the first checkpoint that disagrees, the window of entries since the
// last one that agreed (the first divergent seq lies in it: the device records hashes, not
// states), and a diff of the replayed state across that window with the entries that made it.
import { initAxiom, systemReducer, osReducer, labReducer, decodeEntryTrusted, describeEntry, jsonValue, Kind, Replayer, type Reducer } from '../../axiom/index.ts';
import { verifyAndReplayFile } from '../../axiom/node/replay-file.ts';
import { scanTraceSync, verifyTraceFile, type VerifyFileResult } from '../../axiom/node/trace-file.ts';
import { toHex } from '../../axiom/index.ts';

// The lab's own log (STATE/lab.orbtrace) is replayed by the same command: its checkpoints hold the lab domain.
export const DEVICE_REDUCERS: Reducer<any>[] = [systemReducer, osReducer, labReducer];

export interface StateChange { path: string; before: unknown; after: unknown }

export interface ReplayReport {
  file: string;
  ok: boolean;
  verify: { ok: boolean; count: number; head?: string; failure?: { seq: number; reason: string; message: string } };
  replayed: number;
  checkpoints: number;
  /** Replayed state hashes at the end, per domain. */
  final: Record<string, string>;
  divergence: null | {
    seq: number;
    domain: string;
    recorded: string;
    replayed: string;
    /** The last checkpoint that agreed (-1: none); the first divergent entry is in (since, seq). */
    since: number;
    entries: Array<{ seq: number; kind: string; domain: string; actor: number; payload: unknown }>;
    changes: StateChange[];
  };
}

export async function verifyTrace(path: string): Promise<VerifyFileResult> {
  await initAxiom();
  return verifyTraceFile(path);
}

/** A structural diff of two JSON values, as path → before/after. Capped so a huge state stays readable. */
export function diffValues(a: unknown, b: unknown, path = '', out: StateChange[] = [], max = 200): StateChange[] {
  if (out.length >= max) return out;
  if (JSON.stringify(a) === JSON.stringify(b)) return out;
  const isObj = (x: unknown) => x !== null && typeof x === 'object';
  if (isObj(a) && isObj(b) && Array.isArray(a) === Array.isArray(b)) {
    const keys = new Set([...Object.keys(a as object), ...Object.keys(b as object)]);
    for (const k of [...keys].sort()) diffValues((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], path ? `${path}.${k}` : k, out, max);
    return out;
  }
  out.push({ path: path || '(root)', before: a, after: b });
  return out;
}

export async function replayTrace(path: string): Promise<ReplayReport> {
  await initAxiom();
  const r = await verifyAndReplayFile(path, DEVICE_REDUCERS);
  const v = r.verify;
  const report: ReplayReport = {
    file: path,
    ok: v.ok && !r.divergence,
    verify: { ok: v.ok, count: v.count, head: v.head ? toHex(v.head) : undefined, failure: v.ok ? undefined : { seq: v.failure?.seq ?? v.error?.seq ?? 0, reason: v.failure?.reason ?? v.error?.reason ?? 'io', message: v.failure?.message ?? v.error?.message ?? '' } },
    replayed: r.replayed,
    checkpoints: r.checkpoints,
    final: Object.fromEntries(Object.entries(r.replayer.replayer.hashes()).map(([k, h]) => [k, toHex(h)])),
    divergence: null,
  };
  const d = r.divergence;
  if (d) {
    // Second pass: find the last agreeing checkpoint, then the state there and at the divergence.
    const ri = DEVICE_REDUCERS.findIndex((x) => x.name === d.domain);
    let since = -1;
    const rep = new Replayer(DEVICE_REDUCERS);
    let before: unknown = jsonValue(DEVICE_REDUCERS[ri]!.toValue(rep.states[ri]));
    let after: unknown = before;
    const entries: NonNullable<ReplayReport['divergence']>['entries'] = [];
    scanTraceSync(path, (rec) => {
      const e = decodeEntryTrusted(rec.entry);
      if (e.seq === d.seq) { after = jsonValue(DEVICE_REDUCERS[ri]!.toValue(rep.states[ri])); return false; }
      if (e.kind === Kind.Checkpoint) { since = e.seq; before = jsonValue(DEVICE_REDUCERS[ri]!.toValue(rep.states[ri])); entries.length = 0; }
      else { const view = describeEntry(rec.entry); if (entries.length < 1000) entries.push({ seq: view.seq, kind: view.kind, domain: view.domain, actor: view.actor, payload: view.payload }); }
      rep.apply(e);
    });
    report.divergence = { ...d, since, entries, changes: diffValues(before, after) };
  }
  return report;
}
