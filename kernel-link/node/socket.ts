// Transports over Node streams: TCP and unix sockets (both directions: connect and listen), and
// any Duplex (a QEMU chardev connection is a unix socket too).
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { rmSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import { LinkError } from '../core/errors.ts';
import { BaseTransport } from '../core/transport.ts';

/** Queued bytes above which StreamTransport.ready() waits for the stream to drain. */
const READY_HIGH = 1 << 20;

const MAX_READ = 256 << 10;

/**
 * Read buffers for sockets we connect: bump-allocated regions of 1 MiB slabs, handed to libuv one
 * read at a time (up to 256 KiB, so one read can take the whole socket buffer instead of Node's
 * 64 KiB). A region is never reused, so the transport contract holds (a chunk stays the
 * receiver's), and the heap sees one allocation per slab instead of one per read.
 * With `reuse`, every read goes into one 256 KiB buffer (Transport.reusesChunks): no allocation,
 * no page faults and no GC per read, for a receiver that is done with each chunk when it returns.
 */
function slabReads(deliver: (chunk: Uint8Array) => void, reuse = false): { buffer: () => Uint8Array; callback: (n: number, buf: Uint8Array) => boolean } {
  if (reuse) {
    const one = new Uint8Array(Buffer.allocUnsafeSlow(MAX_READ).buffer, 0, MAX_READ);
    return { buffer: () => one, callback: (n) => { deliver(one.subarray(0, n)); return true; } };
  }
  const SLAB = 1 << 20, MIN_READ = 64 << 10;
  let slab = new Uint8Array(Buffer.allocUnsafeSlow(SLAB).buffer, 0, SLAB), at = 0;
  return {
    buffer: () => {
      if (SLAB - at < MIN_READ) { slab = new Uint8Array(Buffer.allocUnsafeSlow(SLAB).buffer, 0, SLAB); at = 0; }
      return slab.subarray(at, Math.min(SLAB, at + MAX_READ));
    },
    callback: (n, buf) => {
      if (buf.buffer === slab.buffer && buf.byteOffset === at) at += n;
      deliver(buf.subarray(0, n));
      return true;
    },
  };
}

/** A Transport over a connected Node Duplex (net.Socket, tty, serial port stream). */
export class StreamTransport extends BaseTransport {
  override readonly reusesChunks: boolean;
  /**
   * `slab`: the stream reads through slabReads (set up by connectTransport), so no 'data' listener;
   * `reused`: those reads go into one reused buffer.
   */
  constructor(readonly stream: Duplex, readonly name: string, slab?: { onChunk(fn: (c: Uint8Array) => void): void; reused?: boolean }) {
    super();
    this.reusesChunks = slab?.reused === true;
    if ('setNoDelay' in stream && typeof (stream as Socket).setNoDelay === 'function') (stream as Socket).setNoDelay(true);
    if (slab) slab.onChunk((c) => this.deliver(c));
    else stream.on('data', (b: Buffer) => this.deliver(new Uint8Array(b.buffer, b.byteOffset, b.byteLength)));
    stream.on('error', (e: NodeJS.ErrnoException) => this.closedBy(new LinkError('disconnected', 'closed', `${name}: ${e.code ?? ''} ${e.message}`.trim())));
    stream.on('close', () => this.closedBy(new LinkError('disconnected', 'closed', `${name}: the connection closed`)));
    stream.on('end', () => { stream.end(); });
  }
  write(bytes: Uint8Array, written?: () => void): boolean {
    if (this.isClosed || this.stream.destroyed) return false;
    try { this.stream.write(bytes, written ? (e) => { if (!e) written(); } : undefined); return true; } catch { return false; }
  }
  /** Bytes queued in Node but not yet handed to the OS. */
  get pending(): number { return this.stream.writableLength ?? 0; }
  /**
   * One turn of the event loop (setImmediate runs after the poll phase, where libuv writes queued
   * bytes to the socket), or, past `READY_HIGH` queued bytes, until the stream has drained.
   */
  ready(): Promise<void> {
    if (this.isClosed || this.stream.destroyed) return Promise.resolve();
    if (this.pending <= READY_HIGH) return new Promise((r) => setImmediate(r));
    return new Promise((r) => {
      const done = () => { this.stream.off('drain', done); this.stream.off('close', done); r(); };
      this.stream.on('drain', done); this.stream.on('close', done);
    });
  }
  protected doClose(): void { this.stream.destroy(); }
}

export interface Address { path?: string; host?: string; port?: number }
const describeAddress = (a: Address) => (a.path ? `unix:${a.path}` : `tcp:${a.host ?? '127.0.0.1'}:${a.port}`);

export interface ConnectOptions {
  timeoutMs?: number;
  /** Read into one reused buffer (the transport then `reusesChunks`; see Transport). */
  reuseReads?: boolean;
}

/** Connects to a unix socket (`path`) or TCP port. Rejects with LinkError(disconnected, connect). */
export function connectTransport(a: Address, o: number | ConnectOptions = {}): Promise<StreamTransport> {
  const { timeoutMs = 5000, reuseReads = false } = typeof o === 'number' ? { timeoutMs: o } : o;
  return new Promise((resolve, reject) => {
    // Bytes read before the transport exists are kept in order and handed over when it does.
    let sink: ((c: Uint8Array) => void) | null = null;
    const early: Uint8Array[] = [];
    const onread = slabReads((c) => { if (sink) sink(c); else early.push(reuseReads ? c.slice() : c); }, reuseReads);
    const slab = { reused: reuseReads, onChunk(fn: (c: Uint8Array) => void) { sink = fn; for (const c of early.splice(0)) fn(c); } };
    const s = a.path ? netConnect({ path: a.path, onread }) : netConnect({ host: a.host ?? '127.0.0.1', port: a.port!, onread });
    const timer = setTimeout(() => { s.destroy(); reject(new LinkError('timeout', 'connect', `${describeAddress(a)}: no connection after ${timeoutMs} ms`)); }, timeoutMs);
    s.once('connect', () => { clearTimeout(timer); s.removeAllListeners('error'); resolve(new StreamTransport(s, describeAddress(a), slab)); });
    s.once('error', (e: NodeJS.ErrnoException) => { clearTimeout(timer); reject(new LinkError('disconnected', 'connect', `${describeAddress(a)}: ${e.code ?? e.message} - is the device running and listening there?`)); });
  });
}

export interface Listener {
  readonly address: Address;
  /** The next connection (accepted in order). */
  accept(timeoutMs?: number): Promise<StreamTransport>;
  /** Calls `fn` for every connection (instead of accept). */
  onConnection(fn: (t: StreamTransport) => void): void;
  close(): Promise<void>;
}

/** Listens on a unix socket path (removed first if stale) or a TCP port (0 = any free port). */
export function listenTransport(a: Address): Promise<Listener> {
  return new Promise((resolve, reject) => {
    const queue: StreamTransport[] = [];
    const waiters: Array<(t: StreamTransport) => void> = [];
    let handler: ((t: StreamTransport) => void) | null = null;
    const server: Server = createServer((sock) => {
      const t = new StreamTransport(sock, `${describeAddress(a)} (accepted)`);
      if (handler) handler(t);
      else if (waiters.length) waiters.shift()!(t);
      else queue.push(t);
    });
    if (a.path) { try { rmSync(a.path, { force: true }); } catch { /* not there */ } }
    server.once('error', (e) => reject(new LinkError('disconnected', 'connect', `cannot listen on ${describeAddress(a)}: ${e.message}`)));
    const onListening = () => {
      const addr = server.address();
      const address: Address = a.path ? { path: a.path } : { host: a.host ?? '127.0.0.1', port: typeof addr === 'object' && addr ? addr.port : a.port! };
      resolve({
        address,
        accept(timeoutMs = 10_000) {
          if (queue.length) return Promise.resolve(queue.shift()!);
          return new Promise((res, rej) => {
            const timer = setTimeout(() => { const i = waiters.indexOf(w); if (i >= 0) waiters.splice(i, 1); rej(new LinkError('timeout', 'connect', `nothing connected to ${describeAddress(address)} within ${timeoutMs} ms`)); }, timeoutMs);
            const w = (t: StreamTransport) => { clearTimeout(timer); res(t); };
            waiters.push(w);
          });
        },
        onConnection(fn) { handler = fn; while (queue.length) fn(queue.shift()!); },
        close: () => new Promise((res) => { server.close(() => res()); if (a.path) { try { rmSync(a.path, { force: true }); } catch { /* gone */ } } }),
      });
    };
    if (a.path) server.listen(a.path, onListening);
    else server.listen(a.port ?? 0, a.host ?? '127.0.0.1', onListening);
  });
}
