// Typed errors of kernel-link. `kind` is the project-wide code (DESIGN.md); `code` narrows it
// (e.g. kind 'protocol', code 'version-mismatch') so callers can branch without parsing text.
import type { ErrorKind } from '../../axiom/types.ts';

export type LinkErrorCode =
  | 'version-mismatch' | 'bad-message' | 'unexpected' | 'device-error' | 'closed-by-peer'
  | 'handshake' | 'request' | 'keepalive' | 'connect' | 'closed' | 'too-large' | 'busy' | 'internal';

export class LinkError extends Error {
  constructor(readonly kind: ErrorKind, readonly code: LinkErrorCode, message: string, readonly detail?: string) {
    super(message);
    this.name = 'LinkError';
  }
}

export const isLinkError = (e: unknown): e is LinkError => e instanceof LinkError;
