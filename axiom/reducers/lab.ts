// The `lab` domain (docs/lab-domain.md): what happened to each device of a lab - flashes, power,
// boots, scripted runs - as `orbital-lab` records it in the lab's own Axiom log. State per device
// is derived from that log alone, so `orbital-lab history` and any replay agree by construction.
import { Domain, Kind, type Entry, type Outcome, type Proposal, type Reducer, type Rejection, type Value, type ValueMap } from '../types.ts';
import { getInt, getStr, isMap, utf8Len } from '../value.ts';

type Arg = ['str', number, number, (readonly string[])?] | ['int', number, number];
// [type, min, max(, allowed values)]: byte length for str, value for int.
const DEVICE: Arg = ['str', 1, 64];
const CODE: Arg = ['str', 0, 64];
const ACTIONS: Record<string, Record<string, Arg>> = {
  flash: { device: DEVICE, image: ['str', 0, 4096], status: ['str', 1, 16, ['written', 'skipped', 'failed']], blake3: ['str', 0, 64], bytes: ['int', 0, Number.MAX_SAFE_INTEGER], code: CODE },
  power: { device: DEVICE, action: ['str', 1, 16, ['on', 'off', 'cycle']], ok: ['int', 0, 1], code: CODE },
  boot: { device: DEVICE, boot_id: ['str', 0, 64], ok: ['int', 0, 1], stage: ['str', 0, 64], blame: ['str', 0, 8, ['', 'lab', 'os']], code: CODE, boot_ms: ['int', 0, Number.MAX_SAFE_INTEGER] },
  run: { device: DEVICE, ok: ['int', 0, 1], commands: ['int', 0, 1_000_000], blame: ['str', 0, 8, ['', 'lab', 'os']], code: CODE },
  service: { device: DEVICE, state: ['str', 2, 3, ['in', 'out']], reason: ['str', 0, 1024], by: ['str', 0, 128] },
  reserve: { device: DEVICE, state: ['str', 4, 8, ['held', 'released']], owner: ['str', 0, 128], until: ['int', 0, Number.MAX_SAFE_INTEGER], reason: ['str', 0, 1024], by: ['str', 0, 128] },
  console: { device: DEVICE, event: ['str', 1, 16, ['fatal']], pattern: ['str', 0, 64], text: ['str', 0, 1024], log: ['str', 0, 4096] },
};
export const LAB_ACTIONS = Object.keys(ACTIONS);

/** Checks a lab action's arguments; a message or null. Every argument is required. */
export function checkLabArgs(action: string, args: ValueMap): string | null {
  const spec = ACTIONS[action];
  if (!spec) return `unknown action '${action}'`;
  const want = Object.keys(spec);
  for (const k of Object.keys(args).sort()) if (!want.includes(k)) return `unexpected argument '${k}' (takes ${want.join(', ')})`;
  for (const [k, a] of Object.entries(spec)) {
    const v = args[k];
    if (v === undefined) return `missing argument '${k}'`;
    if (a[0] === 'str') {
      if (typeof v !== 'string') return `'${k}' must be a string`;
      const n = utf8Len(v);
      if (n < a[1] || n > a[2]) return `'${k}' must be ${a[1]}..${a[2]} bytes, is ${n}`;
      if (a[3] && !a[3].includes(v)) return `'${k}' must be one of ${a[3].map((x) => JSON.stringify(x)).join(', ')}`;
    } else {
      if (typeof v !== 'number' || !Number.isInteger(v)) return `'${k}' must be an int`;
      if (v < a[1] || v > a[2]) return `'${k}' must be in ${a[1]}..${a[2]}, is ${v}`;
    }
  }
  return null;
}

export interface LabDevice {
  flashes: number;
  flashFailures: number;
  lastFlash: { image: string; status: string; blake3: string; bytes: number; code: string; seq: number; time: number } | null;
  power: string;
  powerFailures: number;
  boots: number;
  bootFailuresLab: number;
  bootFailuresOs: number;
  lastBoot: { bootId: string; ok: boolean; stage: string; blame: string; code: string; bootMs: number; seq: number; time: number } | null;
  runs: number;
  runFailures: number;
  /**
   * Whether the device is taken out of service (LAVA's maintenance): null until its first
   * `service` commit, and absent from the state value while null, so logs written before the
   * action existed keep their state hashes.
   */
  service: { state: 'in' | 'out'; reason: string; by: string; seq: number; time: number } | null;
  /**
   * Who has reserved the device for themselves (labgrid's acquire, LAVA's hacking session) and
   * until when (ms): null until its first `reserve` commit, absent from the state value while
   * null, as `service` is. A `held` reservation whose `until` has passed has ended; the reducer
   * keeps no clock, so that is for the reader to see.
   */
  reservation: { state: 'held' | 'released'; owner: string; until: number; reason: string; by: string; seq: number; time: number } | null;
  /**
   * Fatal lines the console printed while no job held it (`orbital-lab logger` saw them): how many
   * were recorded, and the last. null until the device's first `console` commit, absent from the
   * state value while null, as `service` is.
   */
  idleFatal: { n: number; pattern: string; text: string; log: string; seq: number; time: number } | null;
  /** seq and time of the last entry about this device. */
  seq: number;
  time: number;
}
export interface LabState { devices: Map<string, LabDevice>; errors: number }

const fresh = (): LabDevice => ({ flashes: 0, flashFailures: 0, lastFlash: null, power: '', powerFailures: 0, boots: 0, bootFailuresLab: 0, bootFailuresOs: 0, lastBoot: null, runs: 0, runFailures: 0, service: null, reservation: null, idleFatal: null, seq: -1, time: 0 });

function applyLab(s: LabState, action: string, a: ValueMap, seq: number, time: number): void {
  const name = a.device as string;
  const d = s.devices.get(name) ?? fresh();
  s.devices.set(name, d);
  d.seq = seq; d.time = time;
  switch (action) {
    case 'flash':
      d.flashes++;
      if (a.status === 'failed') d.flashFailures++;
      d.lastFlash = { image: a.image as string, status: a.status as string, blake3: a.blake3 as string, bytes: a.bytes as number, code: a.code as string, seq, time };
      break;
    case 'power':
      if (a.ok === 1) d.power = a.action === 'off' ? 'off' : 'on';
      else d.powerFailures++;
      break;
    case 'boot':
      d.boots++;
      if (a.ok !== 1) { if (a.blame === 'os') d.bootFailuresOs++; else d.bootFailuresLab++; }
      d.lastBoot = { bootId: a.boot_id as string, ok: a.ok === 1, stage: a.stage as string, blame: a.blame as string, code: a.code as string, bootMs: a.boot_ms as number, seq, time };
      break;
    case 'run':
      d.runs++;
      if (a.ok !== 1) d.runFailures++;
      break;
    case 'service':
      d.service = { state: a.state as 'in' | 'out', reason: a.reason as string, by: a.by as string, seq, time };
      break;
    case 'reserve':
      d.reservation = { state: a.state as 'held' | 'released', owner: a.owner as string, until: a.until as number, reason: a.reason as string, by: a.by as string, seq, time };
      break;
    case 'console':
      d.idleFatal = { n: (d.idleFatal?.n ?? 0) + 1, pattern: a.pattern as string, text: a.text as string, log: a.log as string, seq, time };
      break;
  }
}

export const labReducer: Reducer<LabState> = {
  domain: Domain.Lab,
  name: 'lab',
  init: () => ({ devices: new Map(), errors: 0 }),
  apply(s, e: Entry, payload: Value | undefined) {
    if (e.kind !== Kind.Commit || e.domain !== Domain.Lab) return s;
    const action = isMap(payload) ? getStr(payload, 'action') : undefined;
    const args = isMap(payload) ? payload.args : undefined;
    if (action === undefined || !isMap(args) || getInt(payload as ValueMap, 'id') === undefined || checkLabArgs(action, args) !== null) { s.errors++; return s; }
    applyLab(s, action, args, e.seq, e.time);
    return s;
  },
  needsPayload: (e) => e.kind === Kind.Commit && e.domain === Domain.Lab,
  toValue(s) {
    const devices: ValueMap = {};
    for (const [n, d] of s.devices) {
      devices[n] = {
        flashes: d.flashes, flash_failures: d.flashFailures,
        last_flash: d.lastFlash ? { image: d.lastFlash.image, status: d.lastFlash.status, blake3: d.lastFlash.blake3, bytes: d.lastFlash.bytes, code: d.lastFlash.code, seq: d.lastFlash.seq, time: d.lastFlash.time } : null,
        power: d.power, power_failures: d.powerFailures,
        boots: d.boots, boot_failures_lab: d.bootFailuresLab, boot_failures_os: d.bootFailuresOs,
        last_boot: d.lastBoot ? { boot_id: d.lastBoot.bootId, ok: d.lastBoot.ok ? 1 : 0, stage: d.lastBoot.stage, blame: d.lastBoot.blame, code: d.lastBoot.code, boot_ms: d.lastBoot.bootMs, seq: d.lastBoot.seq, time: d.lastBoot.time } : null,
        runs: d.runs, run_failures: d.runFailures, seq: d.seq, time: d.time,
        ...(d.service ? { service: { state: d.service.state, reason: d.service.reason, by: d.service.by, seq: d.service.seq, time: d.service.time } } : {}),
        ...(d.reservation ? { reservation: { state: d.reservation.state, owner: d.reservation.owner, until: d.reservation.until, reason: d.reservation.reason, by: d.reservation.by, seq: d.reservation.seq, time: d.reservation.time } } : {}),
        ...(d.idleFatal ? { idle_fatal: { n: d.idleFatal.n, pattern: d.idleFatal.pattern, text: d.idleFatal.text, log: d.idleFatal.log, seq: d.idleFatal.seq, time: d.idleFatal.time } } : {}),
      };
    }
    return { devices, errors: s.errors };
  },
  clone: (s) => ({ devices: new Map([...s.devices].map(([n, d]) => [n, { ...d, lastFlash: d.lastFlash && { ...d.lastFlash }, lastBoot: d.lastBoot && { ...d.lastBoot }, service: d.service && { ...d.service }, reservation: d.reservation && { ...d.reservation }, idleFatal: d.idleFatal && { ...d.idleFatal } }])), errors: s.errors }),
  check(_s, p: Proposal): Rejection | null {
    if (!ACTIONS[p.action]) return { reason: 'unknown-action', detail: `the lab domain has no action '${p.action}' (known: ${LAB_ACTIONS.join(', ')})` };
    const bad = checkLabArgs(p.action, p.args);
    return bad ? { reason: 'bad-args', detail: `${p.action}: ${bad}` } : null;
  },
  execute: (): Outcome => ({ outcome: 'ok', result: new Uint8Array(0) }),
};
