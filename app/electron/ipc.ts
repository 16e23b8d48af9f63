// The Electron side of the bridge, kept free of the `electron` import so it runs (and is tested)
// under plain Node: main.ts hands in ipcMain and registers the windows it creates.
import { REQUEST_CHANNELS, type EventChannel, type Events } from '../../renderer/bridge.ts';
import type { Dispatcher, EventSource, Reply } from '../host/dispatch.ts';

export const IPC_REQUEST = 'orbital:request';
export const IPC_EVENT = 'orbital:event';

/** The parts of Electron's types this module uses. */
export interface SenderLike { id: number; send(channel: string, ...args: unknown[]): void; isDestroyed(): boolean }
export interface IpcEventLike { sender: SenderLike; senderFrame: { url: string } | null }
export interface IpcMainLike {
  handle(channel: string, fn: (ev: IpcEventLike, ...args: unknown[]) => Promise<unknown> | unknown): void;
  removeHandler(channel: string): void;
}

export interface IpcBridgeOptions {
  ipcMain: IpcMainLike;
  dispatcher: Dispatcher;
  events: EventSource;
  /** The origin our windows load (the local web host), e.g. http://127.0.0.1:4567. */
  origin: string;
  log?: (line: string) => void;
}

export class IpcBridge {
  private senders = new Map<number, SenderLike>();
  private unsubscribe: () => void;
  dropped = 0;
  constructor(private o: IpcBridgeOptions) {
    const log = o.log ?? ((l: string) => console.warn(l));
    o.ipcMain.handle(IPC_REQUEST, async (ev, channel, args, ...rest): Promise<Reply> => {
      const why = this.checkSender(ev);
      if (why) {
        this.dropped++;
        log(`ipc: dropped a message: ${why}`);
        // Not acted on; the answer carries no information beyond the refusal.
        return { ok: false, error: { kind: 'protocol', message: 'sender not allowed' } };
      }
      if (rest.length) return o.dispatcher.reject(`window ${ev.sender.id}`, 'protocol', `expected (channel, args), got ${2 + rest.length} arguments`);
      return o.dispatcher.dispatch(`window ${ev.sender.id}`, channel, args);
    });
    this.unsubscribe = o.events.subscribe(<C extends EventChannel>(ch: C, data: Events[C]) => {
      for (const [id, s] of this.senders) {
        if (s.isDestroyed()) { this.senders.delete(id); continue; }
        s.send(IPC_EVENT, ch, data);
      }
    });
  }

  /** Registers a window's webContents we created; only these may talk to the host. */
  allow(sender: SenderLike): void { this.senders.set(sender.id, sender); }
  forget(id: number): void { this.senders.delete(id); }

  private checkSender(ev: IpcEventLike): string | null {
    const known = this.senders.get(ev.sender.id);
    if (!known || known !== ev.sender) return `sender ${ev.sender.id} is not a window this process created`;
    const url = ev.senderFrame?.url ?? '';
    let origin = '';
    try { origin = new URL(url).origin; } catch { /* not a URL: refused below */ }
    if (origin !== this.o.origin) return `frame ${JSON.stringify(url.slice(0, 100))} is not from ${this.o.origin}`;
    return null;
  }

  close(): void { this.unsubscribe(); this.o.ipcMain.removeHandler(IPC_REQUEST); this.senders.clear(); }
}

/** The channel lists the preload enforces before anything reaches IPC. */
export const PRELOAD_REQUEST_CHANNELS = REQUEST_CHANNELS;
