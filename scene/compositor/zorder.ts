// Z-order is derived, never stored (Redox Orbital's window_order): the focus order (least recent
// first) stable-sorted into bands background < normal < overlay. Within a band the most recently
// focused window is on top. Minimized windows are not painted.
import type { Band, SessionState, SessionWindow } from '../session/state.ts';

const RANK: Record<Band, number> = { background: 0, normal: 1, overlay: 2 };

/** Windows in paint order, bottom first. */
export function paintOrder(s: Pick<SessionState, 'mru' | 'windows'>): SessionWindow[] {
  const out: SessionWindow[] = [];
  for (const id of s.mru) {
    const w = s.windows.get(id);
    if (w && w.mode !== 'minimized') out.push(w);
  }
  // Array.prototype.sort is stable (ES2019), so focus order survives inside each band.
  return out.sort((a, b) => RANK[a.band] - RANK[b.band]);
}
