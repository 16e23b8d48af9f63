// The lab's own Axiom log (`STATE/lab.orbtrace`): every flash, power switch, boot and run that
// `orbital-lab` performs is proposed to a sequencer of the `lab` domain (docs/lab-domain.md) and
// appended, durable, before the command reports. The history of each device - `orbital-lab
// history` - is replayed from that log alone, and `orbital-lab replay STATE/lab.orbtrace` checks
// it like any device's trace. One writer at a time: a lock (`STATE/locks/.lab-log.lock`, the
// device locks' kind, stale ones taken over) around open-replay-append; a command waits for it.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { initAxiom, decodeEntry, Domain, Sequencer, systemReducer, labReducer, toHex, type LabDevice, type LabState, type ValueMap } from '../axiom/index.ts';
import { TraceWriter } from '../axiom/node/trace-file.ts';
import { verifyAndReplayFile } from '../axiom/node/replay-file.ts';
import { acquireLock, type Lock } from './lock.ts';
import { LabError } from './errors.ts';

export type LabAction = 'flash' | 'power' | 'boot' | 'run';
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

/** Appends records to the lab log (durable when this resolves); returns their COMMIT seqs. */
export async function recordLab(stateDir: string, records: LabRecord[], o: { waitMs?: number; time?: number } = {}): Promise<number[]> {
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
    let opened;
    try { opened = TraceWriter.open(labLogPath(stateDir), { deviceId, bootId, k: LAB_K }, (encoded, hash) => restored.push({ encoded, hash }), 'always'); } catch (e) {
      throw new LabError('io', 'trace-bad', `${(e as Error).message.replace(/ — verify it with .*$/, '')}; move ${labLogPath(stateDir)} aside to start a new lab log (orbital-lab replay shows the damage)`, 'lab');
    }
    const { writer, header } = opened;
    try {
      const seq = new Sequencer({ deviceId, bootId, os: 'orbital-lab', k: header.k, reducers: [systemReducer, labReducer] });
      for (const r of restored) {
        const d = decodeEntry(r.encoded);
        if (!d.ok) throw new LabError('io', 'trace-bad', `${labLogPath(stateDir)}: entry does not decode after verification: ${d.error.message}`, 'lab');
        seq.restore(r.hash, d.value);
      }
      // Each command that records is a boot of the lab's sequencer (docs/axiom.md section 8).
      const out = seq.boot();
      const seqs: number[] = [];
      for (const rec of records) {
        const r = seq.propose({ actor: 1, id: seq.next, domain: Domain.Lab, action: rec.action, args: rec.args, time: o.time ?? Date.now() });
        out.push(...r.entries);
        if (r.status === 'rejected') throw new LabError('bug', 'bug', `lab log refused ${rec.action}: ${r.reason}: ${r.detail}`, 'lab');
        seqs.push(r.seq);
      }
      writer.append(out);
      return seqs;
    } finally { writer.close(); }
  } finally { lock.release(); }
}

export interface DeviceHistory extends LabDevice { name: string }

export interface History {
  file: string;
  entries: number;
  devices: DeviceHistory[];
  errors: number;
  /** The log is damaged from this seq on: the history is that of the entries before it. */
  damaged?: { seq: number; reason: string; message: string };
}

/** Verifies and replays the lab log: each device's history (up to the first damaged entry, if any). */
export async function readHistory(stateDir: string): Promise<History> {
  await initAxiom();
  const file = labLogPath(stateDir);
  if (!existsSync(file)) return { file, entries: 0, devices: [], errors: 0 };
  const r = await verifyAndReplayFile(file, [systemReducer, labReducer], { parallel: false });
  const v = r.verify;
  const s = r.replayer.replayer.states[1] as LabState;
  const damaged = v.ok ? undefined : { seq: v.failure?.seq ?? v.error?.seq ?? 0, reason: v.failure?.reason ?? v.error?.reason ?? 'io', message: v.failure?.message ?? v.error?.message ?? '' };
  return { file, entries: r.replayed, devices: [...s.devices].map(([name, d]) => ({ name, ...d })).sort((a, b) => a.name.localeCompare(b.name)), errors: s.errors, ...(damaged ? { damaged } : {}) };
}
