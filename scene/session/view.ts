// The session as the shell sees it: committed entries in, frames and damage out. This is the
// "scene session reducer → scene state → layout → compositor" end of the data flow in DESIGN.md,
// in one object the renderer (and the timeline debugger, and the lab's replay) can hold.
import { decodeEntry, decodeValue } from '../../axiom/index.ts';
import { Domain, Kind, type Entry, type Value } from '../../axiom/types.ts';
import { SessionScene } from '../compositor/compose.ts';
import { computeDamage } from '../compositor/damage.ts';
import type { Frame } from '../compositor/layers.ts';
import type { Rect } from '../compositor/rect.ts';
import type { TextShaper } from '../tree.ts';
import { applyCommit, sceneHash, sessionReducer } from './reducer.ts';
import type { RejectCode, SessionState } from './state.ts';

export interface Applied {
  /** The frame after the entry (the same object as before when nothing visible changed). */
  frame: Frame;
  /** What to repaint since the previous frame. */
  damage: Rect[];
  /** Set when the entry was a session COMMIT the reducer rejected (the user may want to know). */
  rejection: { code: RejectCode; detail: string } | null;
}

export type ViewError = { kind: 'bad-input'; message: string };

export class SessionView {
  readonly state: SessionState = sessionReducer.init();
  readonly scene: SessionScene;
  frame: Frame;
  /** The seq of the last entry applied, -1 before any. */
  seq = -1;

  constructor(opts: { shaper?: TextShaper } = {}) {
    this.scene = new SessionScene(opts.shaper ? { shaper: opts.shaper } : {});
    this.frame = this.scene.update(this.state);
  }

  /** Applies one committed entry of any domain (only session COMMITs change the session). */
  apply(e: Entry, payload?: Value): Applied {
    this.seq = e.seq;
    if (e.domain !== Domain.Session || e.kind !== Kind.Commit) return { frame: this.frame, damage: [], rejection: null };
    let p = payload;
    if (p === undefined) { const v = decodeValue(e.payload); p = v.ok ? v.value : undefined; }
    const rejection = applyCommit(this.state, e.seq, p);
    const next = this.scene.update(this.state);
    const damage = computeDamage(this.frame, next);
    this.frame = next;
    return { frame: next, damage, rejection };
  }

  /** Decodes and applies an encoded entry; bad bytes are a typed error, never an exception. */
  applyEncoded(bytes: Uint8Array): { ok: true; value: Applied } | { ok: false; error: ViewError } {
    const d = decodeEntry(bytes);
    if (!d.ok) return { ok: false, error: { kind: 'bad-input', message: `not an Axiom entry: ${d.error.message}` } };
    return { ok: true, value: this.apply(d.value) };
  }

  /** The canonical scene hash (the session state hash). */
  hash(): Uint8Array { return sceneHash(this.state); }
}

/** The frame the session showed after entry `seq` — for the timeline debugger. */
export function frameAt(entries: Iterable<Entry>, seq: number, opts: { shaper?: TextShaper } = {}): { frame: Frame; state: SessionState } {
  const s = sessionReducer.init();
  for (const e of entries) {
    if (e.seq > seq) break;
    if (e.domain === Domain.Session && e.kind === Kind.Commit) {
      const v = decodeValue(e.payload);
      applyCommit(s, e.seq, v.ok ? v.value : undefined);
    }
  }
  const scene = new SessionScene(opts.shaper ? { shaper: opts.shaper } : {});
  return { frame: scene.update(s), state: s };
}
