// One interface for every byte pipe kernel-link runs over (in-memory, TCP, unix socket, serial
// port, QEMU chardev, fault injector). Pure: Node transports live in kernel-link/node/.
import { LinkError } from './errors.ts';

export interface TransportHandlers {
  /**
   * Received bytes. The chunk is the receiver's from then on: a transport never writes into its
   * memory again (the decoder hands out views of it instead of copying) - unless the transport
   * says `reusesChunks`, in which case the chunk is valid only until data() returns.
   */
  data(chunk: Uint8Array): void;
  /** The pipe closed; `error` says why when it was not a plain close. Called once. */
  close(error?: LinkError): void;
}

export interface Transport {
  readonly name: string;
  readonly closed: boolean;
  /**
   * Queues bytes. Returns false (and drops them) once closed. Never throws. `written`, when the
   * transport supports it, is called once it will never read `bytes` again (handed to the OS, or
   * copied), so the caller may reuse that memory; a transport that cannot tell never calls it.
   */
  write(bytes: Uint8Array, written?: () => void): boolean;
  /**
   * True when the transport reads into the same memory again: each data() chunk is valid only
   * until data() returns, and a receiver that keeps any of it must copy (a long stream then
   * allocates nothing per read). Absent or false: chunks are the receiver's for good.
   */
  readonly reusesChunks?: boolean;
  /** Attaches the receiver; bytes that arrived before are delivered first. */
  attach(h: TransportHandlers): void;
  /** Closes the pipe (idempotent). */
  close(): void;
  /**
   * Optional backpressure for long bursts: resolves once the pipe can usefully take more (the
   * host's event loop has had a turn to hand queued bytes to the OS, and the queue is not long).
   * A sender that encodes many frames in a row awaits it between frames, so the pipe never sits
   * empty while the sender encodes. Never rejects; resolves at once when closed.
   */
  ready?(): Promise<void>;
}

/** Shared plumbing: buffers data until attached, calls close once. */
export abstract class BaseTransport implements Transport {
  abstract readonly name: string;
  private handlers: TransportHandlers | null = null;
  private early: Uint8Array[] = [];
  private earlyBytes = 0;
  private closeInfo: { error?: LinkError } | null = null;
  private closeDelivered = false;
  protected isClosed = false;
  /** Bound on bytes kept before attach (a receiver that never attaches must not grow memory). */
  protected earlyLimit = 16 * 1024 * 1024;
  /** Subclasses that read into reused memory set this (see Transport.reusesChunks). */
  readonly reusesChunks: boolean = false;

  get closed(): boolean { return this.isClosed; }
  abstract write(bytes: Uint8Array, written?: () => void): boolean;
  protected abstract doClose(): void;

  attach(h: TransportHandlers): void {
    this.handlers = h;
    const early = this.early; this.early = []; this.earlyBytes = 0;
    for (const c of early) h.data(c);
    if (this.closeInfo && !this.closeDelivered) { this.closeDelivered = true; h.close(this.closeInfo.error); }
  }

  /** Subclasses call this with received bytes. */
  protected deliver(chunk: Uint8Array): void {
    if (this.closeDelivered || chunk.length === 0) return;
    if (this.handlers) { this.handlers.data(chunk); return; }
    if (this.earlyBytes + chunk.length > this.earlyLimit) return; // dropped: nobody is listening
    this.early.push(this.reusesChunks ? chunk.slice() : chunk); this.earlyBytes += chunk.length;
  }

  /** Subclasses call this when the pipe is gone (idempotent). */
  protected closedBy(error?: LinkError): void {
    this.isClosed = true;
    if (this.closeInfo) return;
    this.closeInfo = error ? { error } : {};
    if (this.handlers && !this.closeDelivered) { this.closeDelivered = true; this.handlers.close(error); }
  }

  close(): void {
    if (this.isClosed && this.closeInfo) return;
    this.isClosed = true;
    try { this.doClose(); } finally { this.closedBy(); }
  }
}

class MemoryEnd extends BaseTransport {
  peer!: MemoryEnd;
  constructor(readonly name: string) { super(); }
  write(bytes: Uint8Array, written?: () => void): boolean {
    if (this.isClosed) return false;
    const copy = bytes.slice();
    written?.();
    const peer = this.peer;
    // Asynchronous like a real pipe: a write never re-enters the writer's caller.
    void Promise.resolve().then(() => { if (!peer.isClosed) peer.receive(copy); });
    return true;
  }
  receive(b: Uint8Array): void { this.deliver(b); }
  protected doClose(): void {
    const peer = this.peer;
    void Promise.resolve().then(() => peer.closedBy(new LinkError('disconnected', 'closed', `${this.name}: the other end closed the in-memory pipe`)));
  }
}

/** Two connected in-memory ends: what one writes, the other receives (asynchronously, in order). */
export function memoryPair(names: [string, string] = ['host', 'device']): [Transport, Transport] {
  const a = new MemoryEnd(names[0]), b = new MemoryEnd(names[1]);
  a.peer = b; b.peer = a;
  return [a, b];
}
