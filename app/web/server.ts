// Web mode: the renderer over HTTP and the bridge over a WebSocket, on 127.0.0.1 only, with a
// per-launch token. The page and its bundle hold no secret; the socket is the only door to the
// host services, and it opens only with the token, from our own origin, on our own Host.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { parseWireIn, type WireOut } from '../../renderer/bridge.ts';
import type { Dispatcher, EventSource } from '../host/dispatch.ts';

/** Hard cap on one WebSocket frame: larger ones close the socket (1009) without being read. */
export const MAX_FRAME_BYTES = 1024 * 1024;

export interface WebHostOptions {
  dispatcher: Dispatcher;
  events: EventSource;
  /** The renderer bundle (JavaScript) and its CSS. */
  assets: () => Promise<{ js: string; css: string }>;
  port?: number;
  token?: string;
  /** false: serve the page only (Electron mode, where the bridge is IPC); every upgrade is refused. */
  bridge?: boolean;
  log?: (line: string) => void;
}

export interface WebHost {
  url: string;
  port: number;
  token: string;
  /** Open bridge sockets. */
  clients(): number;
  close(): Promise<void>;
}

const INDEX = (title: string) => `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${title}</title>
<link rel="stylesheet" href="/app.css"></head>
<body><canvas id="screen"></canvas><script type="module" src="/renderer.js"></script></body></html>`;

function sameToken(a: string, b: string): boolean {
  const x = Buffer.from(a), y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export async function startWebHost(opts: WebHostOptions): Promise<WebHost> {
  const token = opts.token ?? randomBytes(24).toString('base64url');
  const log = opts.log ?? ((l: string) => console.warn(l));
  let port = 0;
  const allowedHosts = () => [`127.0.0.1:${port}`, `localhost:${port}`];
  const allowedOrigins = () => allowedHosts().map((h) => `http://${h}`);

  const csp = () => [
    "default-src 'none'",
    "script-src 'self' 'wasm-unsafe-eval'",
    "style-src 'self'",
    "img-src 'self' data: blob:",
    `connect-src ws://127.0.0.1:${port} ws://localhost:${port}`,
    "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'",
  ].join('; ');

  const send = (res: ServerResponse, status: number, type: string, body: string) => {
    res.writeHead(status, {
      'content-type': type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff',
      'content-security-policy': csp(), 'referrer-policy': 'no-referrer', 'cross-origin-opener-policy': 'same-origin',
    });
    res.end(body);
  };

  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    // DNS rebinding: a page on another name that resolves to 127.0.0.1 must not read our files.
    if (!allowedHosts().includes(req.headers.host ?? '')) return send(res, 421, 'text/plain', 'wrong host');
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (req.method !== 'GET') return send(res, 405, 'text/plain', 'method not allowed');
    try {
      if (path === '/') return send(res, 200, 'text/html; charset=utf-8', INDEX('Orbital'));
      if (path === '/renderer.js') return send(res, 200, 'text/javascript; charset=utf-8', (await opts.assets()).js);
      if (path === '/app.css') return send(res, 200, 'text/css; charset=utf-8', (await opts.assets()).css);
      if (path === '/favicon.ico') { res.writeHead(204); return res.end(); }
      return send(res, 404, 'text/plain', 'not found');
    } catch (e) {
      log(`web host: ${path}: ${e instanceof Error ? e.message : e}`);
      return send(res, 500, 'text/plain', 'the renderer bundle could not be built; see the host log');
    }
  });

  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME_BYTES });
  const sockets = new Set<WebSocket>();

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const refuse = (code: number, why: string) => {
      log(`web host: refused a bridge connection: ${why}`);
      socket.end(`HTTP/1.1 ${code} ${code === 401 ? 'Unauthorized' : 'Forbidden'}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
    };
    const url = new URL(req.url ?? '/', 'http://x');
    if (opts.bridge === false) return refuse(403, 'this host serves its bridge over IPC');
    if (url.pathname !== '/bridge') return refuse(403, `path ${url.pathname}`);
    if (!allowedHosts().includes(req.headers.host ?? '')) return refuse(403, `host ${req.headers.host}`);
    const origin = req.headers.origin;
    if (origin !== undefined && !allowedOrigins().includes(origin)) return refuse(403, `origin ${origin}`);
    const given = url.searchParams.get('token');
    if (!given || !sameToken(given, token)) return refuse(401, given ? 'wrong token' : 'no token');
    wss.handleUpgrade(req, socket, head, (ws) => onSocket(ws));
  });

  let nextClient = 1;
  function onSocket(ws: WebSocket) {
    const who = `web client ${nextClient++}`;
    sockets.add(ws);
    const out = (m: WireOut) => { if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(m)); };
    const unsubscribe = opts.events.subscribe((ch, data) => out({ t: 'ev', ch, data }));
    ws.on('message', async (raw, isBinary) => {
      if (isBinary) { opts.dispatcher.rejected++; log(`bridge: rejected a binary frame from ${who}`); return out({ t: 'res', id: -1, ok: false, error: { kind: 'protocol', message: 'binary frames are not accepted' } }); }
      const text = raw.toString();
      const p = parseWireIn(text);
      if (!p.ok) { opts.dispatcher.rejected++; log(`bridge: rejected a message from ${who}: ${p.error.message}`); return out({ t: 'res', id: p.id ?? -1, ok: false, error: p.error }); }
      const r = await opts.dispatcher.dispatch(who, p.msg.ch, p.msg.args, text.length);
      out({ t: 'res', id: p.msg.id, ...r } as WireOut);
    });
    ws.on('error', (e) => log(`web host: ${who}: ${e.message}`));
    ws.on('close', () => { sockets.delete(ws); unsubscribe(); });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}/?token=${token}`,
    port, token,
    clients: () => sockets.size,
    close: async () => {
      for (const s of sockets) s.terminate();
      await new Promise<void>((r) => wss.close(() => r()));
      await new Promise<void>((r) => server.close(() => r()));
      server.closeAllConnections?.();
    },
  };
}
