// Random session actions from a seed — for property tests, goldens and benchmarks. Pure: the
// randomness is a seeded generator passed in, so a seed names a whole scenario everywhere.
import { mulberry32 } from '../../axiom/random.ts';
import type { ValueMap } from '../../axiom/types.ts';

export { mulberry32 };

export interface ActionSpec { action: string; args: ValueMap }

const APPS = ['term', 'notes', 'files', 'clock', 'lab'];
const WORDS = ['orbital', 'axiom', 'log', 'replay', 'window', 'scene', 'hash', 'focus', 'drag', 'é', '日本', '🙂'];

/**
 * One random action. `opened` is how many window.open actions came before (ids are 1..opened,
 * some closed), so most actions target a window that may exist. With `bad` > 0, that fraction of
 * actions is malformed on purpose (unknown names, missing windows, NaN, huge strings).
 */
export function randomAction(r: () => number, opened: number, bad = 0): ActionSpec {
  const int = (n: number) => Math.floor(r() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  const id = opened > 0 ? 1 + int(opened) : 1;
  if (r() < bad) {
    return pick<ActionSpec>([
      { action: 'window.explode', args: { id } },
      { action: 'window.move', args: { id: opened + 5, x: 1, y: 2 } },
      { action: 'window.move', args: { id, x: NaN, y: 0 } },
      { action: 'window.resize', args: { id, w: Infinity, h: 10 } },
      { action: 'window.resize', args: { id, w: -Infinity, h: 10 } },
      { action: 'window.open', args: { app: 'x'.repeat(70), title: '' } },
      { action: 'window.open', args: { app: 'a', title: 't', bounds: { x: 0, y: 0, w: 10 } } },
      { action: 'text.input', args: { id, text: 'y'.repeat(5000) } },
      { action: 'window.focus', args: { id: 'one' } },
      { action: 'window.focus', args: { id, extra: true } },
      { action: 'window.close', args: {} },
      { action: 'text.delete', args: { id, count: 0 } },
    ]);
  }
  const k = r();
  const coord = () => int(1400) - 100;
  if (k < 0.14 || opened === 0) {
    const args: ValueMap = { app: pick(APPS), title: `${pick(WORDS)} ${int(100)}` };
    if (r() < 0.7) args.bounds = { x: coord(), y: coord(), w: 100 + int(700), h: 60 + int(500) };
    if (r() < 0.1) args.band = pick(['background', 'overlay']);
    return { action: 'window.open', args };
  }
  if (k < 0.34) return { action: 'window.move', args: { id, x: coord() + (r() < 0.2 ? 0.5 : 0), y: coord() } };
  if (k < 0.44) return { action: 'window.resize', args: { id, w: 50 + int(900), h: 40 + int(700), ...(r() < 0.5 ? { x: coord(), y: coord() } : {}) } };
  if (k < 0.56) return { action: 'window.focus', args: { id } };
  if (k < 0.6) return { action: 'window.close', args: { id } };
  if (k < 0.65) return { action: 'window.minimize', args: { id } };
  if (k < 0.69) return { action: 'window.maximize', args: { id } };
  if (k < 0.72) return { action: 'window.restore', args: { id } };
  if (k < 0.74) return { action: 'window.title', args: { id, title: `${pick(WORDS)} ${pick(WORDS)}` } };
  if (k < 0.78) return { action: 'window.scroll', args: { id, dy: int(200) - 60 } };
  if (k < 0.92) return { action: 'text.input', args: { id, text: r() < 0.1 ? '\n' : `${pick(WORDS)} ` } };
  if (k < 0.96) return { action: 'text.delete', args: { id, count: 1 + int(5) } };
  if (k < 0.98) return { action: 'window.raise', args: { id } };
  return { action: 'screen.resize', args: { w: 640 + int(800), h: 480 + int(400) } };
}

/** `n` random actions from `seed`. */
export function randomActions(seed: number, n: number, bad = 0): ActionSpec[] {
  const r = mulberry32(seed);
  const out: ActionSpec[] = [];
  let opened = 0;
  for (let i = 0; i < n; i++) {
    const a = randomAction(r, opened, bad);
    if (a.action === 'window.open') opened++;
    out.push(a);
  }
  return out;
}
