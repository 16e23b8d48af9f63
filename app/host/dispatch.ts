// One place where every bridge request from a renderer is checked before anything acts on it.
// Both transports (WebSocket, Electron IPC) feed raw messages through `dispatch`; a message that
// fails a check gets a typed rejection and a log line, and never reaches the host services.
import {
  isRequestChannel, validateArgs, MAX_REQUEST_BYTES,
  type ArgsOf, type BridgeError, type EventChannel, type Events, type RequestChannel, type ResultOf,
} from '../../renderer/bridge.ts';

/** The host services behind the bridge, one method per request channel. */
export type Handlers = { [C in RequestChannel]: (args: ArgsOf<C>) => Promise<ResultOf<C>> };

export interface EventSource {
  /** Subscribes to every host event; returns the unsubscribe function. */
  subscribe(fn: <C extends EventChannel>(ch: C, data: Events[C]) => void): () => void;
}

export type Reply = { ok: true; value: unknown } | { ok: false; error: BridgeError };

export class HostError extends Error {
  constructor(readonly kind: BridgeError['kind'], message: string) { super(message); }
}

export interface DispatchLog { (line: string): void }

/** Byte size of a value as JSON, or Infinity when it cannot be serialized (cycles, bigint). */
export function jsonSize(v: unknown): number {
  try { return JSON.stringify(v)?.length ?? 0; } catch { return Infinity; }
}

export class Dispatcher {
  rejected = 0;
  constructor(private readonly handlers: Handlers, private readonly log: DispatchLog = (l) => console.warn(l)) {}

  /** Refuses a message without acting on it, and logs why. */
  reject(from: string, kind: BridgeError['kind'], message: string): Reply {
    this.rejected++;
    this.log(`bridge: rejected a message from ${from}: ${message}`);
    return { ok: false, error: { kind, message } };
  }

  /**
   * Checks and runs one request. `size` is the serialized size when the transport knows it
   * (WebSocket); otherwise it is measured here. Never throws.
   */
  async dispatch(from: string, channel: unknown, args: unknown, size?: number): Promise<Reply> {
    if (!isRequestChannel(channel)) return this.reject(from, 'protocol', `unknown channel ${JSON.stringify(String(channel)).slice(0, 80)}`);
    const n = size ?? jsonSize(args);
    if (n > MAX_REQUEST_BYTES) return this.reject(from, 'bad-input', `${channel}: request of ${n === Infinity ? 'unserializable' : n + ' bytes'} exceeds ${MAX_REQUEST_BYTES} bytes`);
    const why = validateArgs(channel, args);
    if (why) return this.reject(from, 'bad-input', `${channel}: ${why}`);
    try {
      const handler = this.handlers[channel] as (a: unknown) => Promise<unknown>;
      return { ok: true, value: await handler(args) };
    } catch (e) {
      const kind = e instanceof HostError ? e.kind : 'bug';
      const message = e instanceof Error ? e.message : String(e);
      if (kind === 'bug') this.log(`bridge: ${channel} failed: ${e instanceof Error ? e.stack : message}`);
      return { ok: false, error: { kind, message } };
    }
  }
}
