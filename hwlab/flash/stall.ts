// The flash's watchdog. A USB card reader or bridge that hangs leaves a write (or read, or sync)
// blocked in the kernel with no error, ever; the tools users complain about then hang with no
// diagnostics (usbboot #82). Every operation on the target's handles goes through `watch`: when one
// has not completed for the stall limit, `stalled` rejects with `flash-stalled`, naming the
// operation, its offset and how long it has been stuck, and the flash is given up (the blocked
// request cannot be taken back from the kernel: it stays with its libuv thread until the device
// answers or is unplugged). The whole-flash limit (`timeouts.flash`) is the other half: a flash
// that goes on but too slowly is cancelled cleanly and reported as `flash-timeout`.
import type { FileHandle } from 'node:fs/promises';
import { LabError } from '../errors.ts';

const WATCHED = new Set(['read', 'write', 'datasync', 'sync', 'truncate', 'stat']);
// (opening the target is timed too: flash.ts passes its open(2) through `open`)

interface Op { what: string; pos: number | null; since: number }

export class IoWatch {
  private ops = new Map<number, Op>();
  private next = 0;
  private timer: ReturnType<typeof setInterval> | null = null;
  private fail!: (e: LabError) => void;
  /** Rejects once an operation has been in flight longer than the limit (never, with limit 0). */
  readonly stalled: Promise<never>;
  /** The stall, once seen. */
  error: LabError | null = null;

  constructor(private readonly limitMs: number, private readonly label: string, private readonly onStall?: (e: LabError) => void) {
    this.stalled = new Promise<never>((_, rej) => { this.fail = rej; });
    this.stalled.catch(() => {});
    if (limitMs > 0) {
      this.timer = setInterval(() => this.check(), Math.max(20, Math.min(1000, limitMs / 4)));
      this.timer.unref();
    }
  }

  /** The handle, with every read, write, sync and truncate timed. */
  wrap(fh: FileHandle): FileHandle {
    return new Proxy(fh, {
      get: (t, prop, recv) => {
        const v = Reflect.get(t, prop, t) as unknown;
        if (typeof v !== 'function') return v;
        if (typeof prop !== 'string' || !WATCHED.has(prop)) return (v as (...a: unknown[]) => unknown).bind(t);
        return (...args: unknown[]) => {
          // Given up: nothing more reaches the target, even if the device answers after all.
          if (this.error) return Promise.reject(this.error);
          const pos = prop === 'read' || prop === 'write' ? (typeof args[3] === 'number' ? args[3] : null) : null;
          return this.track((v as (...a: unknown[]) => Promise<unknown>).apply(t, args), prop, pos);
        };
      },
    }) as FileHandle;
  }

  track<T>(p: Promise<T>, what: string, pos: number | null = null): Promise<T> {
    if (this.limitMs <= 0) return p;
    const id = this.next++;
    this.ops.set(id, { what, pos, since: performance.now() });
    return p.finally(() => this.ops.delete(id));
  }

  /**
   * An open(2) of the target, timed. One that completes after the stall gave the flash up is closed
   * at once: its caller has been answered, and nothing may reach the target through it.
   */
  open(p: Promise<FileHandle>): Promise<FileHandle> {
    return this.track(p, 'open').then(async (fh) => {
      if (!this.error) return fh;
      await fh.close().catch(() => {});
      throw this.error;
    });
  }

  private check(): void {
    if (this.error) return;
    const now = performance.now();
    let oldest: Op | null = null;
    for (const op of this.ops.values()) if (!oldest || op.since < oldest.since) oldest = op;
    if (!oldest || now - oldest.since < this.limitMs) return;
    const s = ((now - oldest.since) / 1000).toFixed(1);
    this.error = new LabError('timeout', 'flash-stalled', `${this.label}: ${/^[aeiou]/.test(oldest.what) ? 'an' : 'a'} ${oldest.what}${oldest.pos !== null ? ` at byte ${oldest.pos}` : ''} on the target has not completed for ${s} s (stall limit ${this.limitMs / 1000} s, timeouts.flash-stall): the device or its USB bridge stopped answering. Unplug it and plug it back in, then flash again (the target holds an incomplete image)`, 'lab', { op: oldest.what, offset: oldest.pos, stuckMs: Math.round(now - oldest.since), inFlight: this.ops.size });
    this.stop();
    this.onStall?.(this.error);
    this.fail(this.error);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
