// The preload with `electron` replaced by fakes: it exposes exactly invoke/on on window.orbital,
// refuses unknown channels before IPC, and delivers only allow-listed events.
import { describe, expect, it, vi } from 'vitest';

const rec = vi.hoisted(() => ({ exposed: null as any, invoked: [] as unknown[][], onEvent: null as any }));
vi.mock('electron', () => ({
  contextBridge: { exposeInMainWorld: (name: string, api: unknown) => { expect(name).toBe('orbital'); rec.exposed = api; } },
  ipcRenderer: {
    invoke: async (...a: unknown[]) => { rec.invoked.push(a); return { ok: true, value: null }; },
    on: (ch: string, fn: Function) => { expect(ch).toBe('orbital:event'); rec.onEvent = fn; },
  },
}));

describe('Electron preload', () => {
  it('passes allow-listed requests to IPC and refuses others without sending them', async () => {
    await import('./preload.ts');
    expect(Object.keys(rec.exposed).sort()).toEqual(['invoke', 'on']);
    await rec.exposed.invoke('device.info', { device: 'd' });
    const refused = await rec.exposed.invoke('fs.read', { path: '/etc/passwd' });
    expect(refused.ok).toBe(false);
    expect(rec.invoked).toEqual([['orbital:request', 'device.info', { device: 'd' }]]);
    expect(() => rec.exposed.on('ipc.raw', () => {})).toThrow('unknown event channel');
    const got: unknown[] = [];
    const off = rec.exposed.on('device.console', (d: unknown) => got.push(d));
    rec.onEvent({}, 'device.console', { text: 'hi' });
    rec.onEvent({}, 'device.secret', { text: 'no' });
    off();
    rec.onEvent({}, 'device.console', { text: 'after' });
    expect(got).toEqual([{ text: 'hi' }]);
  });
});
