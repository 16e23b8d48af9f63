// Writes docs/vectors/lab-domain-v1.json: the lab domain's vectors (docs/lab-domain.md) - its
// initial state hash, and a fixed run of proposals with each one's status, the entries' hashes
// and the state hash and state after every step. Run it (`npx tsx scripts/gen-lab-vectors.ts`)
// only when docs/lab-domain.md changes, and commit the result with it.
import { writeFileSync } from 'node:fs';
import { initAxiom, jsonValue, labReducer, Sequencer, stateHash, systemReducer, toHex, Domain, type LabState, type ValueMap } from '../axiom/index.ts';

await initAxiom();
export const LAB_VECTOR_STEPS: Array<{ action: string; args: ValueMap; time: number }> = [
  { action: 'flash', args: { device: 'vm-1', image: '/img/os.img', status: 'written', blake3: 'ab'.repeat(32), bytes: 8192, code: '' }, time: 1_764_000_000_000 },
  { action: 'power', args: { device: 'board-1', action: 'on', ok: 1, code: '' }, time: 1_764_000_000_500 },
  { action: 'boot', args: { device: 'vm-1', boot_id: '0011223344556677', ok: 1, stage: 'axiom', blame: '', code: '', boot_ms: 67 }, time: 1_764_000_001_000 },
  { action: 'boot', args: { device: 'board-1', boot_id: '8899aabbccddeeff', ok: 0, stage: 'kernel', blame: 'os', code: 'os-fatal', boot_ms: 0 }, time: 1_764_000_002_000 },
  { action: 'flash', args: { device: 'vm-1', image: '-', status: 'failed', blake3: '', bytes: 0, code: 'checksum-mismatch' }, time: 1_764_000_003_000 },
  { action: 'run', args: { device: 'vm-1', ok: 0, commands: 2, blame: 'lab', code: 'no-echo' }, time: 1_764_000_004_000 },
  { action: 'power', args: { device: 'board-1', action: 'off', ok: 0, code: 'power-failed' }, time: 1_764_000_005_000 },
  { action: 'flash', args: { device: 'vm-1', image: '/img/os.img', status: 'maybe', blake3: '', bytes: 0, code: '' }, time: 1_764_000_006_000 },
  { action: 'reflash', args: { device: 'vm-1' }, time: 1_764_000_007_000 },
  { action: 'power', args: { device: 'board-1', action: 'cycle', ok: 1, code: '' }, time: 1_764_000_008_000 },
  // Added with the `service` action (appended, so every step above keeps its hashes: a log written
  // before the action existed replays to the same states).
  { action: 'service', args: { device: 'board-1', state: 'out', reason: '3 lab failures in a row (boot-timeout, console-gone, boot-timeout)', by: 'orbital-lab' }, time: 1_764_000_009_000 },
  { action: 'service', args: { device: 'board-1', state: 'broken', reason: '', by: 'ann@lab' }, time: 1_764_000_010_000 },
  { action: 'service', args: { device: 'board-1', state: 'in', reason: 'reseated the USB cable', by: 'ann@lab' }, time: 1_764_000_011_000 },
  // Added with the `reserve` action (appended likewise).
  { action: 'reserve', args: { device: 'board-1', state: 'held', owner: 'ann@lab', until: 1_764_003_612_000, reason: 'bisecting a USB bug', by: 'ann@lab' }, time: 1_764_000_012_000 },
  { action: 'reserve', args: { device: 'board-1', state: 'held', owner: 'ann@lab', until: -1, reason: '', by: 'ann@lab' }, time: 1_764_000_013_000 },
  { action: 'reserve', args: { device: 'board-1', state: 'released', owner: 'ann@lab', until: 0, reason: 'needed for the nightly run', by: 'ci@lab' }, time: 1_764_000_014_000 },
  // Added with the `console` action (appended likewise): fatal lines an idle board printed, twice, and an unknown event.
  { action: 'console', args: { device: 'board-1', event: 'fatal', pattern: 'panic', text: 'Kernel panic - not syncing: Attempted to kill init!', log: '/lab/state/logs/board-1/2026-11-24T16-00-00-000Z-logger.log' }, time: 1_764_000_015_000 },
  { action: 'console', args: { device: 'board-1', event: 'fatal', pattern: 'oops', text: 'Oops: 0000 [#1] SMP', log: '/lab/state/logs/board-1/2026-11-24T16-00-00-000Z-logger.log' }, time: 1_764_000_016_000 },
  { action: 'console', args: { device: 'board-1', event: 'gone', pattern: '', text: '', log: '' }, time: 1_764_000_017_000 },
];

export function labVectors() {
  const seq = new Sequencer({ deviceId: new Uint8Array(16).map((_, i) => 0xd0 + i), bootId: new Uint8Array(16).map((_, i) => 0xb0 + i), os: 'orbital-lab', k: 4, reducers: [systemReducer, labReducer] });
  const entries: string[] = [];
  for (const a of seq.boot()) entries.push(toHex(a.hash));
  const steps = LAB_VECTOR_STEPS.map((p, i) => {
    const r = seq.propose({ actor: 1, id: i + 1, domain: Domain.Lab, action: p.action, args: p.args, time: p.time });
    for (const a of r.entries) entries.push(toHex(a.hash));
    const st = seq.stateOf(labReducer) as LabState;
    return { action: p.action, status: r.status, ...(r.status === 'rejected' ? { reason: r.reason } : {}), seq: r.seq, lab_state_hash: toHex(stateHash(labReducer, st)), lab_state: jsonValue(labReducer.toValue(st)) };
  });
  return { format: 1, doc: 'docs/lab-domain.md', initial_state: toHex(stateHash(labReducer, labReducer.init())), k: 4, steps, entry_hashes: entries, head: toHex(seq.head) };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  writeFileSync(new URL('../docs/vectors/lab-domain-v1.json', import.meta.url), JSON.stringify(labVectors(), null, 1) + '\n');
}
