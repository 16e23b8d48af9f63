import { beforeAll, expect, it } from 'vitest';
import { initAxiom } from '../../axiom/hash.ts';
import { verifyChain } from '../../axiom/verify.ts';
import { describeWithTools } from '../../scripts/testkit.ts';
import { MemoryDevice } from '../core/memory-device.ts';
import { serveLink } from '../core/server.ts';
import { createClient } from './client.ts';
import { openSerial, ptyPair } from './serial.ts';

beforeAll(() => initAxiom());

describeWithTools(['socat'], 'serial port transport on a pty pair', () => {
  it('carries a whole session through serialport: console text, proposals, the entry stream', async () => {
    const pty = await ptyPair();
    try {
      const dev = new MemoryDevice();
      const boardEnd = await openSerial(pty.a);
      serveLink(boardEnd, dev);
      dev.print('board console: hello\n');
      const c = createClient(() => openSerial(pty.b), { reconnect: false });
      const lines: string[] = [];
      const got: Uint8Array[] = [];
      c.onConsole((l) => lines.push(l.text));
      c.onEntry((e) => got.push(e.encoded));
      await c.connect();
      for (let i = 0; i < 20; i++) await c.propose({ id: i, domain: 1, action: 'echo', args: { text: `line ${i} `.repeat(20) } });
      dev.print('board console: bye\n');
      const t0 = Date.now();
      while (got.length < dev.log.length || !lines.includes('board console: bye')) {
        if (Date.now() - t0 > 10_000) throw new Error(`stuck: ${got.length}/${dev.log.length} entries, lines ${JSON.stringify(lines)}`);
        await new Promise((r) => setTimeout(r, 10));
      }
      expect(verifyChain(got).ok).toBe(true);
      expect(got.length).toBe(dev.log.length);
      c.close();
      boardEnd.close();
    } finally {
      pty.close();
    }
  });
});
