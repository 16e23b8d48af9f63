// The web-mode door: token, origin and host checks on the socket, and the bridge's rejections of
// unknown channels, malformed arguments and oversized payloads.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startWebHost, MAX_FRAME_BYTES, type WebHost } from './server.ts';
import { Dispatcher, type Handlers } from '../host/dispatch.ts';
import type { DeviceInfo } from '../../renderer/bridge.ts';

const info: DeviceInfo = { id: 'd1', label: 'test', target: 'hosted', link: 'up', deviceId: '', bootId: '', seq: -1, stateHashes: {}, lastCheckpoint: -1 };
const calls: string[] = [];
const handlers: Handlers = {
  hello: async () => ({ version: 1, mode: 'web', devices: [info], capabilities: { qemu: false, serialPorts: [] } }),
  'device.connect': async () => { calls.push('connect'); return info; },
  'device.propose': async (a) => { calls.push(`propose ${a.action}`); return { status: 'committed', seq: 7 }; },
  'device.log': async () => ({ entries: [] }),
  'device.info': async () => info,
  'device.console': async () => ({ text: '' }),
};

let host: WebHost;
const logs: string[] = [];
const dispatcher = new Dispatcher(handlers, (l) => logs.push(l));

beforeAll(async () => {
  host = await startWebHost({ dispatcher, events: { subscribe: () => () => {} }, assets: async () => ({ js: 'export {}', css: '' }), log: (l) => logs.push(l) });
});
afterAll(async () => { await host.close(); });

function open(query: string, headers: Record<string, string> = {}): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${host.port}/bridge${query}`, { headers });
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.once('error', reject);
  });
}

function ask(ws: WebSocket, msg: unknown): Promise<any> {
  return new Promise((resolve) => {
    ws.once('message', (d) => resolve(JSON.parse(d.toString())));
    ws.send(typeof msg === 'string' ? msg : JSON.stringify(msg));
  });
}

describe('web host socket', () => {
  it('refuses connections without the token, with a wrong token, or from another origin', async () => {
    await expect(open('')).rejects.toThrow('HTTP 401');
    await expect(open('?token=nope')).rejects.toThrow('HTTP 401');
    await expect(open(`?token=${host.token}`, { origin: 'http://evil.example' })).rejects.toThrow('HTTP 403');
    await expect(open(`?token=${host.token}`, { host: `attacker.example:${host.port}` })).rejects.toThrow('HTTP 403');
    expect(logs.filter((l) => l.includes('refused')).length).toBe(4);
  });

  it('accepts the token and answers well-formed requests', async () => {
    const ws = await open(`?token=${host.token}`, { origin: `http://127.0.0.1:${host.port}` });
    const r = await ask(ws, { t: 'req', id: 1, ch: 'device.propose', args: { device: 'd1', domain: 1, action: 'sh', args: { line: 'set a 1' } } });
    expect(r).toEqual({ t: 'res', id: 1, ok: true, value: { status: 'committed', seq: 7 } });
    ws.close();
  });

  it('rejects unknown channels, malformed arguments and oversized payloads without acting on them', async () => {
    const ws = await open(`?token=${host.token}`);
    calls.length = 0;
    const before = dispatcher.rejected;
    const bad: [unknown, string][] = [
      [{ t: 'req', id: 2, ch: 'fs.readFile', args: { path: '/etc/passwd' } }, 'unknown channel'],
      [{ t: 'req', id: 3, ch: '__proto__', args: {} }, 'unknown channel'],
      [{ t: 'req', id: 4, ch: 'device.propose', args: { device: 'd1', domain: 9, action: 'sh', args: {} } }, 'domain'],
      [{ t: 'req', id: 5, ch: 'device.propose', args: { device: 'd1', domain: 1, action: 'sh', args: { line: 'x' }, extra: 1 } }, 'unknown argument'],
      [{ t: 'req', id: 6, ch: 'device.propose', args: { device: 'd1', domain: 1, action: 'sh', args: 'set a 1' } }, 'must be an object'],
      [{ t: 'req', id: 7, ch: 'device.connect', args: { target: 'ssh' } }, 'one of'],
      [{ t: 'req', id: 8, ch: 'device.log', args: { device: 'd1', from: -1, count: 1 } }, 'integer'],
      [{ t: 'req', id: 9, ch: 'device.propose', args: { device: 'd1', domain: 1, action: 'sh', args: { line: 'x'.repeat(70_000) } } }, 'larger than'],
      ['not json', 'not JSON'],
      [{ t: 'req', id: 'x', ch: 'hello', args: {} }, 'request id'],
    ];
    for (const [msg, why] of bad) {
      const r = await ask(ws, msg);
      expect(r.ok, JSON.stringify(msg).slice(0, 80)).toBe(false);
      expect(r.error.message).toContain(why);
    }
    let deep: unknown = 1;
    for (let i = 0; i < 20; i++) deep = { d: deep };
    const r = await ask(ws, { t: 'req', id: 10, ch: 'device.propose', args: { device: 'd1', domain: 1, action: 'sh', args: { deep } } });
    expect(r.error.message).toContain('deeper');
    expect(calls).toEqual([]);
    expect(dispatcher.rejected - before).toBe(bad.length + 1);
    ws.close();
  });

  it('closes the socket on a frame beyond the hard cap and keeps serving others', async () => {
    const ws = await open(`?token=${host.token}`);
    const code = await new Promise<number>((resolve) => { ws.once('close', (c) => resolve(c)); ws.send('x'.repeat(MAX_FRAME_BYTES + 1)); });
    expect(code).toBe(1009);
    const ws2 = await open(`?token=${host.token}`);
    expect((await ask(ws2, { t: 'req', id: 1, ch: 'hello', args: {} })).ok).toBe(true);
    ws2.close();
  });

  it('serves the page with a strict CSP and refuses foreign Host headers', async () => {
    const res = await fetch(`http://127.0.0.1:${host.port}/`);
    expect(res.status).toBe(200);
    const csp = res.headers.get('content-security-policy')!;
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    const { request } = await import('node:http');
    const status = await new Promise<number>((resolve) => request({ host: '127.0.0.1', port: host.port, path: '/', headers: { host: 'rebind.example' } }, (r) => { r.resume(); resolve(r.statusCode!); }).end());
    expect(status).toBe(421);
  });
});
