// The session at any point of a log, for the timeline debugger: axiom's Seeker keeps a snapshot of
// the session state every k entries, and one SessionScene follows the seeks. Window objects are
// shared between snapshots (they are immutable), so jumping between nearby entries rebuilds only
// the windows that differ, and the damage says what to repaint.
import { Seeker } from '../../axiom/index.ts';
import type { Entry } from '../../axiom/types.ts';
import { SessionScene } from '../compositor/compose.ts';
import { computeDamage } from '../compositor/damage.ts';
import type { Frame } from '../compositor/layers.ts';
import type { Rect } from '../compositor/rect.ts';
import type { TextShaper } from '../tree.ts';
import { sceneHash, sessionReducer } from './reducer.ts';
import type { SessionState } from './state.ts';

export interface Seen { seq: number; state: SessionState; frame: Frame; damage: Rect[]; hash: Uint8Array; replayed: number }

export class SessionTimeline {
  private readonly seeker: Seeker;
  private readonly scene: SessionScene;
  private frame: Frame | null = null;

  constructor(opts: { k?: number; shaper?: TextShaper } = {}) {
    this.seeker = new Seeker([sessionReducer], opts.k ?? 256);
    this.scene = new SessionScene(opts.shaper ? { shaper: opts.shaper } : {});
  }

  get length(): number { return this.seeker.length; }

  /** Appends the next entry of the log (seq must follow on). */
  push(e: Entry): void { this.seeker.push(e); }

  /** The session after entry `seq` (-1: before any), its frame, and the damage from the last seek. */
  seek(seq: number): Seen {
    const r = this.seeker.stateAt(seq);
    const state = r.stateOf(sessionReducer)!;
    const frame = this.scene.update(state);
    const damage = computeDamage(this.frame, frame);
    this.frame = frame;
    return { seq, state, frame, damage, hash: sceneHash(state), replayed: this.seeker.lastReplayed };
  }
}
