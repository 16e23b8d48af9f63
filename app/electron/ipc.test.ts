// The Electron main process's bridge, with ipcMain and webContents replaced by plain objects:
// messages from senders it did not create, or from frames of another origin, are dropped.
import { describe, expect, it } from 'vitest';
import { IpcBridge, IPC_REQUEST, IPC_EVENT, type IpcEventLike, type SenderLike } from './ipc.ts';
import { Dispatcher, type Handlers } from '../host/dispatch.ts';

function setup() {
  let handler: ((ev: IpcEventLike, ...a: unknown[]) => unknown) | null = null;
  const ipcMain = { handle: (ch: string, fn: typeof handler) => { expect(ch).toBe(IPC_REQUEST); handler = fn; }, removeHandler: () => { handler = null; } };
  const acted: string[] = [];
  const handlers = { hello: async () => { acted.push('hello'); return { version: 1 }; } } as unknown as Handlers;
  const logs: string[] = [];
  let emit: ((ch: 'device.console', d: { device: string; text: string }) => void) | null = null;
  const bridge = new IpcBridge({ ipcMain, dispatcher: new Dispatcher(handlers, (l) => logs.push(l)), events: { subscribe: (fn) => { emit = fn as typeof emit; return () => {}; } }, origin: 'http://127.0.0.1:5000', log: (l) => logs.push(l) });
  const sender = (id: number): SenderLike & { got: unknown[] } => { const got: unknown[] = []; return { id, got, send: (...a: unknown[]) => got.push(a), isDestroyed: () => false }; };
  const call = (ev: IpcEventLike, ...a: unknown[]) => handler!(ev, ...a) as Promise<{ ok: boolean; error?: { message: string } }>;
  return { bridge, sender, call, acted, logs, emit: (t: string) => emit!('device.console', { device: 'd', text: t }) };
}

describe('Electron IPC bridge', () => {
  it('answers a window it created, from its own origin', async () => {
    const t = setup();
    const w = t.sender(1);
    t.bridge.allow(w);
    const r = await t.call({ sender: w, senderFrame: { url: 'http://127.0.0.1:5000/?x' } }, 'hello', {});
    expect(r.ok).toBe(true);
    expect(t.acted).toEqual(['hello']);
    t.emit('boot');
    expect(w.got).toEqual([[IPC_EVENT, 'device.console', { device: 'd', text: 'boot' }]]);
  });

  it('drops messages from unknown senders, foreign frames, and bad shapes', async () => {
    const t = setup();
    const w = t.sender(1);
    t.bridge.allow(w);
    const stranger = t.sender(2);
    expect((await t.call({ sender: stranger, senderFrame: { url: 'http://127.0.0.1:5000/' } }, 'hello', {})).ok).toBe(false);
    // Same id but a different object: not the webContents we registered.
    expect((await t.call({ sender: t.sender(1), senderFrame: { url: 'http://127.0.0.1:5000/' } }, 'hello', {})).ok).toBe(false);
    expect((await t.call({ sender: w, senderFrame: { url: 'https://evil.example/' } }, 'hello', {})).ok).toBe(false);
    expect((await t.call({ sender: w, senderFrame: null }, 'hello', {})).ok).toBe(false);
    expect((await t.call({ sender: w, senderFrame: { url: 'http://127.0.0.1:5000/' } }, 'shell.exec', {})).error!.message).toContain('unknown channel');
    expect((await t.call({ sender: w, senderFrame: { url: 'http://127.0.0.1:5000/' } }, 'hello', {}, 'extra')).ok).toBe(false);
    expect(t.acted).toEqual([]);
    expect(t.bridge.dropped).toBe(4);
    expect(t.logs.length).toBe(6);
    expect(stranger.got).toEqual([]);
  });
});
