// Typed lab errors. `kind` is the project-wide class code can branch on; `code` is the lab's own,
// finer reason; `blame` says whose failure it is, which decides the CLI exit code
// (docs/lab.md, "Exit codes"): a flash that failed is the lab's fault, a panic is the OS's.

export type LabErrorKind = 'bad-input' | 'timeout' | 'disconnected' | 'protocol' | 'bug' | 'refused' | 'busy' | 'io';

/** Whose failure: `usage` = the person's command or lab file, `lab` = infrastructure, `os` = the device's OS. */
export type Blame = 'usage' | 'lab' | 'os';

export type LabErrorCode =
  | 'bad-lab-file' | 'unknown-device' | 'bad-usage' | 'missing-tool'
  | 'device-locked' | 'reserved-by-other' | 'logger-running' | 'console-busy'
  | 'target-not-in-lab' | 'target-mounted' | 'target-system-disk' | 'target-in-use' | 'target-too-small'
  | 'target-missing' | 'target-full' | 'target-is-source'
  | 'bad-bmap' | 'bmap-mismatch' | 'checksum-mismatch' | 'source-corrupt' | 'source-missing' | 'decompressor-failed'
  | 'untrusted-key' | 'bad-signature' | 'image-truncated' | 'bad-image' | 'unknown-part'
  | 'verify-mismatch' | 'cancelled' | 'io-error' | 'flash-stalled' | 'flash-timeout' | 'out-of-service'
  | 'boot-timeout' | 'console-gone' | 'console-missing' | 'console-ambiguous' | 'power-failed' | 'os-fatal'
  | 'trace-bad' | 'replay-diverged' | 'link-failed' | 'bug';

export class LabError extends Error {
  override readonly name = 'LabError';
  constructor(
    readonly kind: LabErrorKind,
    readonly code: LabErrorCode,
    message: string,
    readonly blame: Blame = defaultBlame(kind),
    readonly detail: Record<string, unknown> = {},
  ) {
    super(message);
  }
  toJSON(): Record<string, unknown> {
    return { kind: this.kind, code: this.code, blame: this.blame, message: this.message, ...this.detail };
  }
}

function defaultBlame(kind: LabErrorKind): Blame {
  return kind === 'bad-input' ? 'usage' : 'lab';
}

/** Exit codes of `orbital-lab` (documented in docs/lab.md). */
export const EXIT = { ok: 0, os: 1, usage: 2, lab: 3 } as const;

export function exitCodeFor(e: unknown): number {
  if (e instanceof LabError) return EXIT[e.blame];
  return EXIT.lab;
}

/** Wraps a Node system error (ENOENT, EBUSY, ENOSPC, ...) into a LabError a person can act on. */
export function fromSystemError(e: unknown, what: string): LabError {
  if (e instanceof LabError) return e;
  const code = (e as NodeJS.ErrnoException)?.code;
  const msg = (e as Error)?.message ?? String(e);
  switch (code) {
    case 'ENOSPC': case 'EFBIG': case 'EDQUOT':
      return new LabError('io', 'target-full', `${what}: no space left (${code}); free space or use a larger target`);
    case 'ENOENT':
      return new LabError('io', 'target-missing', `${what}: does not exist (${msg})`);
    case 'EBUSY':
      return new LabError('refused', 'target-in-use', `${what}: in use by something else (EBUSY: mounted, or open exclusively elsewhere)`);
    case 'EACCES': case 'EPERM':
      return new LabError('io', 'io-error', `${what}: permission denied (${code}); check the device's group or run with the right rights`);
    default:
      return new LabError('io', 'io-error', `${what}: ${msg}`);
  }
}
