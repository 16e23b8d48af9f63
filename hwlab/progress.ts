// Progress for long jobs: one rewritten line on a terminal; JSON lines otherwise (or with --json).
export interface ProgressSink { (ev: Record<string, unknown> & { phase: string }): void; end(): void }

const MB = 1e6;
export function human(n: number): string {
  if (n >= 1 << 30) return `${(n / (1 << 30)).toFixed(2)} GiB`;
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(1)} KiB`;
  return `${n} B`;
}
function clock(s: number): string {
  const m = Math.floor(s / 60);
  return `${m}:${String(Math.floor(s % 60)).padStart(2, '0')}`;
}

type SinkOpts = { json: boolean; out?: NodeJS.WriteStream; err?: NodeJS.WriteStream };

/** A JSON event line: on stdout with --json, else on stderr (the result owns stdout). */
function jsonEvent(opts: SinkOpts, ev: Record<string, unknown>): void {
  (opts.json ? opts.out ?? process.stdout : opts.err ?? process.stderr).write(JSON.stringify({ ...ev, time: new Date().toISOString() }) + '\n');
}

export function progressSink(opts: SinkOpts): ProgressSink {
  const err = opts.err ?? process.stderr;
  let drawn = false;
  const tty = !opts.json && err.isTTY;
  const sink = ((ev: Record<string, unknown> & { phase: string }) => {
    if (tty) {
      const bytes = Number(ev.bytes ?? 0);
      const total = ev.total == null ? null : Number(ev.total);
      const rate = Number(ev.rate ?? 0);
      const pct = total ? ` ${((100 * bytes) / total).toFixed(0).padStart(3)}%` : '';
      const eta = ev.etaS == null ? '' : `  ETA ${clock(Number(ev.etaS))}`;
      if (total === null && bytes === 0) { err.write(`\r\x1b[K${ev.phase}...`); drawn = true; return; }
      err.write(`\r\x1b[K${ev.phase.padEnd(7)} ${human(bytes)}${total ? ` / ${human(total)}` : ''}${pct}  ${(rate / MB).toFixed(0)} MB/s${eta}`);
      drawn = true;
    } else {
      jsonEvent(opts, { event: 'progress', ...ev });
    }
  }) as ProgressSink;
  sink.end = () => { if (drawn) err.write('\n'); drawn = false; };
  return sink;
}

export interface MultiProgressSink {
  (device: string, ev: Record<string, unknown> & { phase: string }): void;
  /** The device's job ended (`how`: written, skipped, FAILED (code)). */
  done(device: string, how: string): void;
  end(): void;
}

/**
 * Progress of the same job on several devices: one rewritten line on a terminal (each device's
 * phase and percentage, or how it ended), JSON lines with a `device` field otherwise.
 */
export function multiProgress(opts: SinkOpts, devices: string[]): MultiProgressSink {
  const err = opts.err ?? process.stderr;
  const tty = !opts.json && err.isTTY;
  const state = new Map<string, string>(devices.map((d) => [d, 'waiting']));
  let drawn = false;
  let last = 0;
  const draw = (force: boolean) => {
    const now = performance.now();
    if (!force && now - last < 250) return;
    last = now;
    const line = devices.map((d) => `${d} ${state.get(d)}`).join(' | ');
    const width = err.columns && err.columns > 20 ? err.columns - 1 : 200;
    err.write(`\r\x1b[K${line.length > width ? `${line.slice(0, width - 1)}…` : line}`);
    drawn = true;
  };
  const sink = ((device: string, ev: Record<string, unknown> & { phase: string }) => {
    if (!tty) { jsonEvent(opts, { event: 'progress', device, ...ev }); return; }
    const total = ev.total == null ? null : Number(ev.total);
    const bytes = Number(ev.bytes ?? 0);
    state.set(device, `${ev.phase}${total ? ` ${((100 * bytes) / total).toFixed(0)}%` : bytes ? ` ${human(bytes)}` : ''}`);
    draw(false);
  }) as MultiProgressSink;
  sink.done = (device, how) => {
    if (!tty) { jsonEvent(opts, { event: 'done', device, how }); return; }
    state.set(device, how);
    draw(true);
  };
  sink.end = () => { if (drawn) err.write('\n'); drawn = false; };
  return sink;
}
