// A device's health, as the lab's scheduling sees it: how many lab-side failures in a row it has
// had (LAVA's health checks mark such a board Bad). Derived from the lab log's commits, like the
// lab domain's state, but kept out of it: it is a view for deciding, not recorded state, so it adds
// nothing to the log's state hashes (docs/lab-domain.md). When a device reaches its lab file's
// `health.max-lab-failures`, the lab records `service out` for it (recordLab), and no job takes it
// until a person puts it back (`orbital-lab enable`).
import { checkLabArgs, Domain, Kind, getStr, isMap, type Entry, type Reducer, type Value, type ValueMap } from '../axiom/index.ts';

/** Flash failures that say the board or its wiring is bad (not the image: a checksum mismatch is the image's). */
const LAB_FLASH_CODES = new Set(['flash-stalled', 'flash-timeout', 'io-error', 'target-missing']);

export interface Streak { n: number; codes: string[] }
export interface HealthState { streaks: Map<string, Streak> }

/**
 * One lab-log record's effect on its device's streak. A boot that came up, or one the OS failed
 * (the lab's part worked), and a `service` change end the streak; a boot the lab failed, a failed
 * power switch and a flash that failed on the board's side add to it; anything else leaves it.
 */
export function applyHealth(h: HealthState, action: string, a: ValueMap): void {
  const device = a.device as string;
  const s = h.streaks.get(device) ?? { n: 0, codes: [] };
  const fail = (code: string) => { s.n++; s.codes = [...s.codes, code || action].slice(-5); };
  switch (action) {
    case 'boot': if (a.ok === 1 || a.blame === 'os') { s.n = 0; s.codes = []; } else fail(String(a.code)); break;
    case 'power': if (a.ok !== 1) fail(String(a.code)); break;
    case 'flash': if (a.status === 'failed' && LAB_FLASH_CODES.has(String(a.code))) fail(String(a.code)); break;
    case 'service': s.n = 0; s.codes = []; break;
  }
  h.streaks.set(device, s);
}

export const labHealthReducer: Reducer<HealthState> = {
  domain: Domain.Lab,
  name: 'lab-health',
  init: () => ({ streaks: new Map() }),
  apply(h, e: Entry, payload: Value | undefined) {
    if (e.kind !== Kind.Commit || e.domain !== Domain.Lab || !isMap(payload)) return h;
    const action = getStr(payload, 'action');
    const args = payload.args;
    // Malformed commits are the lab domain's to count; they change nothing here.
    if (action === undefined || !isMap(args) || checkLabArgs(action, args) !== null) return h;
    applyHealth(h, action, args);
    return h;
  },
  needsPayload: (e) => e.kind === Kind.Commit && e.domain === Domain.Lab,
  toValue: (h) => Object.fromEntries([...h.streaks].map(([d, s]) => [d, { n: s.n, codes: s.codes }])),
  clone: (h) => ({ streaks: new Map([...h.streaks].map(([d, s]) => [d, { n: s.n, codes: [...s.codes] }])) }),
};

/** The reason recorded when the lab takes a device out of service itself. */
export function autoReason(s: Streak, limit: number): string {
  return `${s.n} lab failures in a row (${s.codes.join(', ')}); health.max-lab-failures is ${limit}`.slice(0, 1024);
}
