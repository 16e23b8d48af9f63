// The renderer's side of the bridge: over Electron's preload when it is there, else over the
// web host's WebSocket (token taken from the page URL).
import type { ArgsOf, Bridge, BridgeError, EventChannel, Events, RequestChannel, ResultOf, WireOut } from './bridge.ts';

export class BridgeRequestError extends Error {
  constructor(readonly kind: BridgeError['kind'], message: string) { super(message); }
}

/** What app/electron/preload.ts exposes on `window.orbital`. */
export interface PreloadApi {
  invoke(channel: string, args: unknown): Promise<{ ok: true; value: unknown } | { ok: false; error: BridgeError }>;
  on(channel: string, fn: (data: unknown) => void): () => void;
}

type Handler = (data: unknown) => void;

class Subscribers {
  private map = new Map<string, Set<Handler>>();
  add(ch: string, fn: Handler): () => void {
    let s = this.map.get(ch);
    if (!s) this.map.set(ch, (s = new Set()));
    s.add(fn);
    return () => s!.delete(fn);
  }
  emit(ch: string, data: unknown) { for (const fn of this.map.get(ch) ?? []) fn(data); }
}

export class WebSocketBridge implements Bridge {
  readonly mode = 'web' as const;
  private nextId = 1;
  private pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private subs = new Subscribers();
  private constructor(private ws: WebSocket) {
    ws.addEventListener('message', (ev) => {
      let m: WireOut;
      try { m = JSON.parse(String(ev.data)); } catch { return; }
      if (m.t === 'ev') this.subs.emit(m.ch, m.data);
      else if (m.t === 'res') {
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        if (m.ok) p.resolve(m.value); else p.reject(new BridgeRequestError(m.error.kind, m.error.message));
      }
    });
    ws.addEventListener('close', () => {
      for (const p of this.pending.values()) p.reject(new BridgeRequestError('disconnected', 'the host closed the bridge'));
      this.pending.clear();
      this.subs.emit('bridge.closed', null);
    });
  }

  static connect(url: string): Promise<WebSocketBridge> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      ws.addEventListener('open', () => resolve(new WebSocketBridge(ws)), { once: true });
      ws.addEventListener('error', () => reject(new BridgeRequestError('disconnected', `could not open the bridge at ${url.replace(/token=[^&]+/, 'token=…')}`)), { once: true });
    });
  }

  /** Sends anything, bypassing the typed API: tests use this to check the host's rejections. */
  raw(channel: string, args: unknown): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.ws.send(JSON.stringify({ t: 'req', id, ch: channel, args }));
    });
  }

  request<C extends RequestChannel>(channel: C, args: ArgsOf<C>): Promise<ResultOf<C>> {
    return this.raw(channel, args) as Promise<ResultOf<C>>;
  }

  on<C extends EventChannel>(channel: C, handler: (data: Events[C]) => void): () => void {
    return this.subs.add(channel, handler as Handler);
  }

  onClose(fn: () => void): () => void { return this.subs.add('bridge.closed', fn); }
}

export class PreloadBridge implements Bridge {
  readonly mode = 'electron' as const;
  constructor(private api: PreloadApi) {}
  async raw(channel: string, args: unknown): Promise<unknown> {
    const r = await this.api.invoke(channel, args);
    if (r.ok) return r.value;
    throw new BridgeRequestError(r.error.kind, r.error.message);
  }
  request<C extends RequestChannel>(channel: C, args: ArgsOf<C>): Promise<ResultOf<C>> {
    return this.raw(channel, args) as Promise<ResultOf<C>>;
  }
  on<C extends EventChannel>(channel: C, handler: (data: Events[C]) => void): () => void {
    return this.api.on(channel, handler as Handler);
  }
}

export type AnyBridge = WebSocketBridge | PreloadBridge;

/** The bridge for this page: Electron's preload when present, else the web host's socket. */
export async function connectBridge(): Promise<AnyBridge> {
  const api = (globalThis as { orbital?: PreloadApi }).orbital;
  if (api) return new PreloadBridge(api);
  const token = new URLSearchParams(location.search).get('token') ?? '';
  return WebSocketBridge.connect(`ws://${location.host}/bridge?token=${encodeURIComponent(token)}`);
}
