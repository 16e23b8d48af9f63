// Replays a log while checking it against itself: every CHECKPOINT entry's recorded state hashes
// must equal the hashes the reducers compute at that point. The lab's replay and the hosted OS's
// own checks use this; the first divergent seq comes back with both sides.
import { equalBytes, toHex } from './hash.ts';
import { stateHash } from './reducers/state-hash.ts';
import { Replayer } from './replay.ts';
import { Kind, type Entry, type Reducer } from './types.ts';
import { decodeValue, getBytes, isMap } from './value.ts';

export interface Divergence { seq: number; domain: string; recorded: string; replayed: string }

export class CheckpointReplayer {
  readonly replayer: Replayer;
  checkpoints = 0;
  divergence: Divergence | null = null;
  constructor(reducers: Reducer<any>[]) { this.replayer = new Replayer(reducers); }

  /** Applies an entry; a CHECKPOINT is compared first (its hashes cover entries before it). */
  apply(e: Entry): Divergence | null {
    if (e.kind === Kind.Checkpoint && !this.divergence) {
      const v = decodeValue(e.payload);
      const states = v.ok && isMap(v.value) && isMap(v.value.states) ? v.value.states : undefined;
      if (states) {
        this.checkpoints++;
        const rs = this.replayer.reducers;
        for (let i = 0; i < rs.length; i++) {
          const recorded = getBytes(states, rs[i]!.name);
          if (!recorded) continue; // a device records only the domains it runs itself
          const replayed = stateHash(rs[i]!, this.replayer.states[i]);
          if (!equalBytes(recorded, replayed)) { this.divergence = { seq: e.seq, domain: rs[i]!.name, recorded: toHex(recorded), replayed: toHex(replayed) }; break; }
        }
      }
    }
    this.replayer.apply(e);
    return this.divergence;
  }
}
