// The hosted OS on kernel-link: its LinkDevice, and serving it on unix sockets, TCP ports or
// its own stdin/stdout (so `socat pty,... EXEC:"orbital-os serve --link-stdio"` makes it look
// like a serial board).
import type { Duplex } from 'node:stream';
import { Duplex as DuplexStream } from 'node:stream';
import type { LinkDevice, ProposeOutcome } from '../../kernel-link/core/device.ts';
import { serveLink, type LinkServer, type ServeOptions } from '../../kernel-link/core/server.ts';
import { TypedLines } from '../../kernel-link/core/console.ts';
import { nodeCodec } from '../../kernel-link/node/crc.ts';
import { StreamTransport, listenTransport, type Address, type Listener } from '../../kernel-link/node/socket.ts';
import type { HostedOs } from './hosted-os.ts';

export function hostedLinkDevice(os: HostedOs): LinkDevice {
  const lines = new TypedLines();
  let inputSeq = 0;
  return {
    info: () => ({ deviceId: os.deviceId, bootId: os.bootId, os: os.info.os, head: os.head, headHash: os.headHash }),
    propose(p): ProposeOutcome {
      const r = os.propose(p); // durable (fdatasync) before it returns
      if (r.status === 'committed') return { status: 'committed', seq: r.seq, receiptSeq: r.receiptSeq };
      if (r.status === 'rejected') return { status: 'rejected', seq: r.seq, reason: r.reason, detail: r.detail };
      return { status: 'duplicate', of: r.of, seq: r.seq, ...(r.receiptSeq !== undefined ? { receiptSeq: r.receiptSeq } : {}) };
    },
    read: (from, max) => os.entries.slice(from, from + max),
    onAppend(listener) { return os.onEntry(() => listener()); },
    onConsole(listener) { return os.onConsole(listener); },
    consoleInput(bytes) {
      // A person typing at the console: each complete line becomes an `sh` action of the session.
      for (const line of lines.push(new TextDecoder().decode(bytes))) {
        os.propose({ actor: 1, id: Date.now() * 1000 + (inputSeq++ % 1000), domain: 1, action: 'sh', args: { line }, time: 0 });
      }
    },
  };
}
export interface HostedLinkServer { listeners: Listener[]; servers: Set<LinkServer>; close(): Promise<void> }

/** Serves the hosted OS on every address: each connection is one link session. */
export async function serveHosted(os: HostedOs, addresses: Address[], opts: ServeOptions = {}): Promise<HostedLinkServer> {
  const device = hostedLinkDevice(os);
  const servers = new Set<LinkServer>();
  const listeners: Listener[] = [];
  for (const a of addresses) {
    const l = await listenTransport(a);
    l.onConnection((t) => {
      const s = serveLink(t, device, { ...nodeCodec, ...opts });
      servers.add(s);
      t.stream.once('close', () => servers.delete(s));
    });
    listeners.push(l);
  }
  return { listeners, servers, close: async () => { for (const s of servers) s.close('shutdown', 'the hosted OS is shutting down'); await Promise.all(listeners.map((l) => l.close())); } };
}

/** Serves the link over this process's stdin/stdout. */
export function serveStdio(os: HostedOs, opts: ServeOptions = {}): LinkServer {
  const duplex: Duplex = DuplexStream.from({ readable: process.stdin, writable: process.stdout });
  return serveLink(new StreamTransport(duplex, 'stdio'), hostedLinkDevice(os), { ...nodeCodec, ...opts });
}

