// The lab's own Axiom log (`STATE/lab.orbtrace`): every flash, power switch, boot and run that
// `orbital-lab` performs is proposed to a sequencer of the `lab` domain (docs/lab-domain.md) and
// appended, durable, before the command reports. The history of each device - `orbital-lab
// history` - is replayed from that log alone, and `orbital-lab replay STATE/lab.orbtrace` checks
// it like any device's trace. One writer at a time: a lock (`STATE/locks/.lab-log.lock`, the
// device locks' kind, stale ones taken over) around open-replay-append; a command waits for it.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { initAxiom, decodeEntry, ChainVerifier, Domain, Kind, Replayer, Sequencer, systemReducer, labReducer, checkLabArgs, toHex, type Entry, type LabDevice, type LabState, type Reducer, type SystemState, type Value, type ValueMap } from '../axiom/index.ts';
import { getStr, isMap } from '../axiom/value.ts';
import { TraceWriter, scanTraceSync } from '../axiom/node/trace-file.ts';
import { verifyAndReplayFile } from '../axiom/node/replay-file.ts';
import { acquireLock, type Lock } from './lock.ts';
import { LabError } from './errors.ts';
import { loadLabSnapshot, saveLabSnapshot, type LabSnapshot } from './lab-snapshot.ts';
import { applyHealth, autoReason, labHealthReducer, type HealthState, type Streak } from './health.ts';

export type LabAction = 'flash' | 'power' | 'boot' | 'run' | 'service' | 'reserve' | 'console';
export interface LabRecord { action: LabAction; args: ValueMap }

/** The checkpoint interval of a lab log: small, the log is short and replayed by every command. */
const LAB_K = 16;
const LOCK = '.lab-log';

export const labLogPath = (stateDir: string) => join(stateDir, 'lab.orbtrace');

async function lockLog(stateDir: string, what: string, waitMs: number): Promise<Lock> {
  const t0 = Date.now();
  for (;;) {
    try { return acquireLock(stateDir, LOCK, what); } catch (e) {
      if (!(e instanceof LabError) || e.code !== 'device-locked' || Date.now() - t0 > waitMs) throw e;
      await new Promise((r) => setTimeout(r, 10 + Math.random() * 20));
    }
  }
}

export interface RecordOptions {
  waitMs?: number;
  time?: number;
  /**
   * A device's `health.max-lab-failures` (0: never). A device in service that reaches it with
   * these records is taken out of service in the same append (`service out` by `orbital-lab`);
   * each such record is also passed to `onService`.
   */
  maxLabFailures?: (device: string) => number;
  onService?: (r: { device: string; reason: string; seq: number }) => void;
  /** Told how many entries of the log were restored before appending, and whether from the snapshot on. */
  onRestored?: (entries: number, fromSnapshot: boolean) => void;
}

/** Appends records to the lab log (durable when this resolves); returns their COMMIT seqs. */
export async function recordLab(stateDir: string, records: LabRecord[], o: RecordOptions = {}): Promise<number[]> {
  if (records.length === 0) return [];
  await initAxiom();
  mkdirSync(stateDir, { recursive: true });
  const lock = await lockLog(stateDir, `record ${records.map((r) => `${r.action} ${String(r.args.device)}`).join(', ')}`, o.waitMs ?? 15_000);
  try {
    const idFile = join(stateDir, 'lab-id');
    if (!existsSync(idFile)) writeFileSync(idFile, toHex(randomBytes(16)) + '\n');
    const deviceId = Uint8Array.from(Buffer.from(readFileSync(idFile, 'utf8').trim(), 'hex'));
    if (deviceId.length !== 16) throw new LabError('bad-input', 'bad-usage', `${idFile} does not hold a 16-byte hex id; remove it to start a new lab log`);
    const bootId = new Uint8Array(randomBytes(16));
    const restored: Array<{ encoded: Uint8Array; hash: Uint8Array }> = [];
    const opts = { deviceId, bootId, os: 'orbital-lab', k: LAB_K, reducers: [systemReducer, labReducer] };
    // The snapshot left by the last append: only what was appended after it is verified and restored.
    const snap = loadLabSnapshot(stateDir, deviceId, labLogPath(stateDir));
    const openLog = (from: LabSnapshot | null) => TraceWriter.open(labLogPath(stateDir), { deviceId, bootId, k: LAB_K }, (encoded, hash) => restored.push({ encoded, hash }), 'always', from ? { offset: from.offset, verifier: ChainVerifier.resume(from.chain) } : undefined);
    let opened;
    let used = snap;
    try {
      try { opened = openLog(snap); } catch (e) {
        if (!snap) throw e;
        // Whatever is wrong after the snapshot, the whole log's verification says it best.
        restored.length = 0;
        used = null;
        opened = openLog(null);
      }
    } catch (e) {
      throw new LabError('io', 'trace-bad', `${(e as Error).message.replace(/ — verify it with .*$/, '')}; move ${labLogPath(stateDir)} aside to start a new lab log (orbital-lab replay shows the damage)`, 'lab');
    }
    const { writer, header } = opened;
    try {
      // (the snapshot's index Maps were built for this sequencer alone: adopted, not copied)
      const seq = used ? Sequencer.resume({ ...opts, k: header.k }, used.seq, { adopt: true }) : new Sequencer({ ...opts, k: header.k });
      // Each device's lab-failure streak (not recorded state: see health.ts), for maxLabFailures.
      const maxLab = o.maxLabFailures;
      const health = new Replayer([labHealthReducer], used ? [labHealthReducer.clone(used.health as HealthState)] : undefined);
      for (const r of restored) {
        const d = decodeEntry(r.encoded);
        if (!d.ok) throw new LabError('io', 'trace-bad', `${labLogPath(stateDir)}: entry does not decode after verification: ${d.error.message}`, 'lab');
        seq.restore(r.hash, d.value);
        health.apply(d.value);
      }
      o.onRestored?.(restored.length, used !== null);
      const healthBefore = health.clone();
      // Each command that records is a boot of the lab's sequencer (docs/axiom.md section 8).
      const out = seq.boot();
      const seqs: number[] = [];
      const propose = (rec: LabRecord): number => {
        const r = seq.propose({ actor: 1, id: seq.next, domain: Domain.Lab, action: rec.action, args: rec.args, time: o.time ?? Date.now() });
        out.push(...r.entries);
        if (r.status === 'rejected') throw new LabError('bug', 'bug', `lab log refused ${rec.action}: ${r.reason}: ${r.detail}`, 'lab');
        return r.seq;
      };
      for (const [i, rec] of records.entries()) {
        seqs.push(propose(rec));
        if (!maxLab) continue;
        const h = health.states[0] as HealthState;
        applyHealth(h, rec.action, rec.args);
        const device = String(rec.args.device);
        const limit = maxLab(device);
        const streak: Streak | undefined = h.streaks.get(device);
        const inService = (seq.stateOf(labReducer) as LabState).devices.get(device)?.service?.state !== 'out';
        // A command that records its own service change for the device in this batch (a failed
        // health check takes it out with the check's reason) says it once: the lab adds no second record.
        const ownService = () => records.slice(i + 1).some((r) => r.action === 'service' && r.args.device === device);
        if (limit > 0 && streak && streak.n >= limit && inService && !ownService()) {
          const reason = autoReason(streak, limit);
          const sq = propose({ action: 'service', args: { device, state: 'out', reason, by: 'orbital-lab' } });
          applyHealth(h, 'service', { device });
          o.onService?.({ device, reason, seq: sq });
        }
      }
      writer.append(out);
      // The next command starts from here: the chain checked once more over what was appended.
      const v = opened.verifier ?? new ChainVerifier();
      if (out.every((a) => v.push(a.encoded, a.hash) === null)) {
        for (const a of out) healthBefore.apply(a.entry);
        saveLabSnapshot(stateDir, labLogPath(stateDir), { labId: deviceId, offset: writer.size, chain: v.position(), seq: seq.snapshot({ share: true }), health: labHealthReducer.clone(healthBefore.states[0] as HealthState) }, used);
      }
      return seqs;
    } finally { writer.close(); }
  } finally { lock.release(); }
}

export interface DeviceHistory extends LabDevice {
  name: string;
  /** Lab-side failures in a row, and the last codes (health.ts): not recorded state, derived from the log. */
  labFailStreak: Streak;
}

export interface History {
  file: string;
  entries: number;
  devices: DeviceHistory[];
  errors: number;
  /** The log is damaged from this seq on: the history is that of the entries before it. */
  damaged?: { seq: number; reason: string; message: string };
}

const historyOf = (file: string, entries: number, s: LabState, health: HealthState): History => ({ file, entries, devices: [...s.devices].map(([name, d]) => ({ name, ...d, labFailStreak: health.streaks.get(name) ?? { n: 0, codes: [] } })).sort((a, b) => a.name.localeCompare(b.name)), errors: s.errors });

/**
 * The history from the snapshot the last append left (lab-snapshot.ts) and the entries after it,
 * verified from there; null when there is none that fits, or anything after it does not verify
 * (the full read then says what is wrong).
 */
function historyFromSnapshot(stateDir: string, file: string): History | null {
  let labId: Uint8Array;
  try { labId = Uint8Array.from(Buffer.from(readFileSync(join(stateDir, 'lab-id'), 'utf8').trim(), 'hex')); } catch { return null; }
  const snap = loadLabSnapshot(stateDir, labId, file);
  if (!snap) return null;
  const v = ChainVerifier.resume(snap.chain);
  const states = snap.states ?? snap.seq.states;
  const r = new Replayer([systemReducer, labReducer, labHealthReducer], [systemReducer.clone(states[0] as SystemState), labReducer.clone(states[1] as LabState), labHealthReducer.clone(snap.health as HealthState)]);
  let bad = false;
  try {
    const scan = scanTraceSync(file, (rec) => {
      const d = v.push(rec.entry, rec.hash, rec.offset) === null ? decodeEntry(rec.entry) : null;
      if (!d?.ok) { bad = true; return false; }
      r.apply(d.value);
    }, snap.offset);
    if (bad || scan.parseError || scan.tornBytes > 0) return null;
  } catch { return null; }
  return historyOf(file, v.next, r.states[1] as LabState, r.states[2] as HealthState);
}

/** Where a verified log is damaged (its first failure or read error), or undefined when it is whole. */
function damageOf(v: Awaited<ReturnType<typeof verifyAndReplayFile>>['verify']): History['damaged'] {
  return v.ok ? undefined : { seq: v.failure?.seq ?? v.error?.seq ?? 0, reason: v.failure?.reason ?? v.error?.reason ?? 'io', message: v.failure?.message ?? v.error?.message ?? '' };
}

/**
 * Verifies and replays the lab log: each device's history (up to the first damaged entry, if any).
 * `fast`: from the snapshot of the last append when it fits (what every job reads to pick a board);
 * without it the whole log is verified and replayed (history, devices).
 */
export async function readHistory(stateDir: string, o: { fast?: boolean } = {}): Promise<History> {
  await initAxiom();
  const file = labLogPath(stateDir);
  if (!existsSync(file)) return { file, entries: 0, devices: [], errors: 0 };
  if (o.fast) { const h = historyFromSnapshot(stateDir, file); if (h) return h; }
  // (lab-health is not in the log's checkpoints; a checkpoint is compared only for the reducers it records)
  const r = await verifyAndReplayFile(file, [systemReducer, labReducer, labHealthReducer], { parallel: false });
  const s = r.replayer.replayer.states[1] as LabState;
  const health = r.replayer.replayer.states[2] as HealthState;
  const damaged = damageOf(r.verify);
  return { ...historyOf(file, r.replayed, s, health), ...(damaged ? { damaged } : {}) };
}

/** One thing the lab did, as its lab-log COMMIT says it: `time` the sequencer's (ms, wall clock). */
export interface LabEvent { seq: number; time: number; action: LabAction; args: ValueMap }

/** Collects the well-formed lab COMMITs (of one device, or all) - the events `history --events` lists. */
function eventsReducer(device: string | undefined): Reducer<LabEvent[]> {
  return {
    domain: Domain.Lab,
    name: 'lab-events',
    init: () => [],
    apply(s, e: Entry, payload: Value | undefined) {
      if (e.kind !== Kind.Commit || e.domain !== Domain.Lab || !isMap(payload)) return s;
      const action = getStr(payload, 'action');
      const args = payload.args;
      if (action === undefined || !isMap(args) || checkLabArgs(action, args) !== null) return s;
      if (device !== undefined && args.device !== device) return s;
      s.push({ seq: e.seq, time: e.time, action: action as LabAction, args });
      return s;
    },
    needsPayload: (e) => e.kind === Kind.Commit && e.domain === Domain.Lab,
    toValue: (s) => s.length,
    clone: (s) => [...s],
  };
}

/**
 * Every flash, power switch, boot, run, service change and reservation in the lab log (of one
 * device, or all), oldest first - the log verified as `readHistory` verifies it, and only the
 * events before a damaged entry. `since` (ms since the epoch) and `limit` (the last N) narrow it.
 */
export async function readEvents(stateDir: string, o: { device?: string; since?: number; limit?: number } = {}): Promise<{ file: string; events: LabEvent[]; damaged?: History['damaged'] }> {
  await initAxiom();
  const file = labLogPath(stateDir);
  if (!existsSync(file)) return { file, events: [] };
  const r = await verifyAndReplayFile(file, [systemReducer, labReducer, eventsReducer(o.device)], { parallel: false });
  let events = (r.replayer.replayer.states[2] as LabEvent[]).filter((e) => o.since === undefined || e.time >= o.since);
  if (o.limit !== undefined) events = events.slice(-o.limit);
  const damaged = damageOf(r.verify);
  return { file, events, ...(damaged ? { damaged } : {}) };
}
