// Time for pure code: the caller passes a clock (DESIGN.md: time enters pure code as an argument).
export type TimerHandle = unknown;
export interface Clock {
  /** Milliseconds, monotonic enough for timeouts. */
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(h: TimerHandle): void;
}
