// Shared shape of a benchmark suite. Every figure stands next to a baseline measured in the
// same run (the machines are noisy; a ratio is not).
export interface Goal { text: string; met: boolean }
export interface BenchResult {
  /** The keys, flat: numbers (ms, per-second, MB/s ...) or short strings. */
  figures: Record<string, number | string>;
  goals: Goal[];
  /** Free-form context: sizes, versions, what the baseline is. */
  notes?: string[];
}
export interface BenchContext {
  json: boolean;
  /** Progress for people; silent with --json unless on a terminal's stderr. */
  progress(msg: string): void;
  args: string[];
}
export type Suite = (ctx: BenchContext) => Promise<BenchResult>;

/** Median of a list of numbers. */
export function median(xs: number[]): number { return percentile(xs, 50); }
export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[i]!;
}
/** Runs fn `reps` times and returns the best (least disturbed) wall time in ms. */
export async function bestOf(reps: number, fn: () => unknown | Promise<unknown>): Promise<number> {
  let best = Infinity;
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await fn();
    best = Math.min(best, performance.now() - t0);
  }
  return best;
}
export const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;
