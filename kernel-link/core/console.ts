// Console text → lines with host receive times (docs/kernel-link.md section 3, "Console lines").
// Byte-exact: joining the pieces (with '\n' after complete ones) gives back the text.

export interface ConsoleLine {
  /** Host receive time (ms, from the caller's clock) of the line's first byte. */
  t: number;
  /** The bytes, without the '\n' ('\r' kept). */
  bytes: Uint8Array;
  /** The bytes as text (invalid UTF-8 shown as U+FFFD). */
  text: string;
  /** True for a piece that did not end with '\n' (too long, or flushed after a pause). */
  partial: boolean;
}

export const MAX_LINE = 4096;
export const LINE_IDLE_MS = 100;

const td = new TextDecoder('utf-8', { fatal: false });

export class LineAssembler {
  private buf = new Uint8Array(MAX_LINE);
  private len = 0;
  private t0 = 0;
  constructor(private readonly emit: (l: ConsoleLine) => void) {}

  get pending(): boolean { return this.len > 0; }

  push(bytes: Uint8Array, now: number): void {
    let i = 0;
    while (i < bytes.length) {
      if (this.len === 0) this.t0 = now;
      const nl = bytes.indexOf(0x0a, i);
      const end = nl < 0 ? bytes.length : nl;
      const take = Math.min(end - i, MAX_LINE - this.len);
      this.buf.set(bytes.subarray(i, i + take), this.len);
      this.len += take; i += take;
      if (this.len === MAX_LINE && (i < end || nl < 0 || i !== nl)) { this.out(true); continue; }
      if (nl >= 0 && i === nl) { this.out(false); i++; }
    }
  }

  /** Emits an unfinished line (call after LINE_IDLE_MS without text). */
  flush(): void { if (this.len) this.out(true); }

  private out(partial: boolean): void {
    const b = this.buf.slice(0, this.len);
    this.len = 0;
    this.emit({ t: this.t0, bytes: b, text: td.decode(b), partial });
  }
}

/**
 * A typed line after a terminal's line editing, as the guest kernel's link server does it (os-image/kernel/src/link.rs): carriage returns
 * dropped, Backspace (DEL or BS) takes back the last character, Ctrl-U the whole line so far.
 */
export function editLine(raw: string): string {
  const out: string[] = [];
  for (const c of raw) {
    if (c === '\r') continue;
    if (c === '\x7f' || c === '\b') out.pop();
    else if (c === '\x15') out.length = 0;
    else out.push(c);
  }
  return out.join('');
}

/**
 * Typed console input as lines, the way the guest kernel reads it: Enter is CR (a terminal in raw
 * mode), LF (a pipe) or CR LF, each ending the line once, even when the CR and the LF come in
 * separate chunks; each line is edited (editLine) before it is returned.
 */
export class TypedLines {
  private pending = '';
  private lastCR = false;
  push(text: string): string[] {
    const out: string[] = [];
    for (const c of text) {
      const afterCR = this.lastCR;
      this.lastCR = c === '\r';
      if (c === '\n' && afterCR) continue;
      if (c === '\r' || c === '\n') { out.push(editLine(this.pending)); this.pending = ''; } else if (this.pending.length < 65_536) this.pending += c;
    }
    return out;
  }
}
