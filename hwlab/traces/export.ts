// `orbital-lab export FILE --format chrome`: the trace as Chrome trace-event JSON (Perfetto and
// chrome://tracing open it). The timeline is the log's logical time (1 tick shown as 1 µs - no
// wall clock is in the log by design). Each domain is a track; an action is a slice from its
// COMMIT to its RECEIPT (named by the action, outcome in args); BOOT, REJECT and CHECKPOINT are
// instant events. Streaming: the file is read record by record, the JSON written as it goes.
import { createWriteStream } from 'node:fs';
import { initAxiom, decodeEntryTrusted, decodeValue, isMap, jsonValue, Kind, KIND_NAMES, DOMAIN_NAMES } from '../../axiom/index.ts';
import { scanTraceSync, verifyTraceFile } from '../../axiom/node/trace-file.ts';
import { LabError } from '../errors.ts';

export interface ExportResult { file: string; out: string; events: number; entries: number; actions: number; verified: boolean }

export async function exportChrome(path: string, out: string): Promise<ExportResult> {
  await initAxiom();
  const v = verifyTraceFile(path);
  if (!v.ok && v.count === 0) throw new LabError('bad-input', 'trace-bad', `${path}: ${v.failure?.message ?? v.error?.message ?? 'not a trace'}`);
  const ws = createWriteStream(out);
  let events = 0;
  let first = true;
  const emit = (ev: Record<string, unknown>) => { ws.write((first ? '' : ',\n') + JSON.stringify(ev)); first = false; events++; };
  ws.write('{"displayTimeUnit":"ns","otherData":{"source":"orbital-lab export","timeline":"Axiom logical time, 1 tick = 1 us"},"traceEvents":[\n');
  emit({ ph: 'M', name: 'process_name', pid: 1, tid: 0, args: { name: `Axiom trace ${path.split('/').pop()}` } });
  for (const [d, n] of Object.entries(DOMAIN_NAMES)) emit({ ph: 'M', name: 'thread_name', pid: 1, tid: Number(d), args: { name: n } });
  const open = new Map<number, { ts: number; name: string; domain: number; actor: number; args: unknown }>();
  let entries = 0;
  let actions = 0;
  // Only what verified is exported: a damaged tail is left out (and said so in otherData of the result).
  scanTraceSync(path, (rec) => {
    if (entries >= v.count) return false;
    entries++;
    const e = decodeEntryTrusted(rec.entry);
    const p = decodeValue(e.payload);
    const pv = p.ok && isMap(p.value) ? p.value : {};
    const ts = e.time;
    if (e.kind === Kind.Commit) {
      open.set(e.seq, { ts, name: String(pv.action ?? 'action'), domain: e.domain, actor: e.actor, args: jsonValue(pv.args ?? null) });
    } else if (e.kind === Kind.Receipt) {
      const c = open.get(Number(pv.commit));
      if (c) {
        open.delete(Number(pv.commit));
        actions++;
        emit({ ph: 'X', name: c.name, cat: DOMAIN_NAMES[c.domain] ?? String(c.domain), pid: 1, tid: c.domain, ts: c.ts, dur: Math.max(1, ts - c.ts), args: { commit: Number(pv.commit), receipt: e.seq, actor: c.actor, outcome: pv.outcome, args: c.args } });
      }
    } else {
      emit({ ph: 'i', s: 't', name: `${KIND_NAMES[e.kind] ?? e.kind}${pv.action ? ` ${String(pv.action)}` : ''}`, cat: KIND_NAMES[e.kind] ?? 'entry', pid: 1, tid: e.domain, ts, args: { seq: e.seq, actor: e.actor, payload: e.kind === Kind.Checkpoint || e.kind === Kind.Boot || e.kind === Kind.Reject ? jsonValue(p.ok ? p.value : null) : undefined } });
    }
  });
  // Actions still open at the end of the trace: shown up to the last entry, marked unfinished.
  for (const [seq, c] of open) emit({ ph: 'X', name: `${c.name} (no receipt)`, cat: 'unfinished', pid: 1, tid: c.domain, ts: c.ts, dur: 1, args: { commit: seq } });
  ws.write('\n]}\n');
  await new Promise<void>((res, rej) => ws.end((e?: Error | null) => (e ? rej(e) : res())));
  return { file: path, out, events, entries, actions, verified: v.ok };
}
