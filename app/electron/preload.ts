// Preload (sandboxed, context-isolated): exposes exactly the bridge on window.orbital. Channels
// outside the allow-list are refused here, before IPC; the main process checks everything again.
import { contextBridge, ipcRenderer, type IpcRendererEvent } from 'electron';
import { isEventChannel, isRequestChannel } from '../../renderer/bridge.ts';
import { IPC_EVENT, IPC_REQUEST } from './ipc.ts';

type Fn = (data: unknown) => void;
const listeners = new Map<string, Set<Fn>>();
ipcRenderer.on(IPC_EVENT, (_e: IpcRendererEvent, ch: unknown, data: unknown) => {
  if (typeof ch === 'string') for (const fn of listeners.get(ch) ?? []) fn(data);
});

contextBridge.exposeInMainWorld('orbital', {
  invoke(channel: unknown, args: unknown) {
    if (!isRequestChannel(channel)) return Promise.resolve({ ok: false, error: { kind: 'protocol', message: `unknown channel ${String(channel).slice(0, 80)}` } });
    return ipcRenderer.invoke(IPC_REQUEST, channel, args);
  },
  on(channel: unknown, fn: unknown) {
    if (!isEventChannel(channel) || typeof fn !== 'function') throw new Error('unknown event channel');
    let s = listeners.get(channel);
    if (!s) listeners.set(channel, (s = new Set()));
    const f = fn as Fn;
    s.add(f);
    return () => { s!.delete(f); };
  },
});
