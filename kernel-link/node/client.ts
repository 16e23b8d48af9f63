// The client on Node: real timers, and connecting by address (unix socket, TCP) or any transport
// factory (serial port, QEMU chardev, fault injector).
import { nodeCodec } from './crc.ts';
import type { Clock } from '../core/clock.ts';
import { LinkClient, type ClientOptions } from '../core/client.ts';
import type { Transport } from '../core/transport.ts';
import { connectTransport, type Address } from './socket.ts';

/** Milliseconds since the Unix epoch with sub-millisecond resolution (timeOrigin + the monotonic clock), so console line times are wall-clock times too. */
export const nodeClock: Clock = {
  now: () => performance.timeOrigin + performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export type Target = Address | (() => Promise<Transport>);

/** Creates a client (not yet connected) for an address or a transport factory. */
export function createClient(target: Target, opts: Omit<ClientOptions, 'connect' | 'clock'> & { clock?: Clock } = {}): LinkClient {
  const connect = typeof target === 'function' ? target : () => connectTransport(target, { reuseReads: opts.transientEntries === true });
  return new LinkClient({ ...nodeCodec, ...opts, clock: opts.clock ?? nodeClock, connect });
}

/** Creates a client, connects and handshakes. Rejects with a LinkError. */
export async function connectLink(target: Target, opts: Omit<ClientOptions, 'connect' | 'clock'> & { clock?: Clock } = {}): Promise<LinkClient> {
  const c = createClient(target, opts);
  await c.connect();
  return c;
}
