// A board on a serial line, played by the hosted OS behind a socat pty pair: the host opens only
// ports it listed, and talks kernel-link over the line like over any other transport.
import { expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeWithTools } from '../../scripts/testkit.ts';
import { ptyPair, openSerial } from '../../kernel-link/node/serial.ts';
import { serveLink } from '../../kernel-link/core/server.ts';
import { zlibCrc32 } from '../../kernel-link/node/crc.ts';
import { HostedOs } from '../../os-image/hosted/hosted-os.ts';
import { hostedLinkDevice } from '../../os-image/hosted/link.ts';
import { HostServices } from './services.ts';
import { listSerialPorts, serialDevice } from './serial-device.ts';
import { Dispatcher } from './dispatch.ts';

describeWithTools(['socat'], 'serial port device', () => {
  it('opens a listed port, refuses any other path, and commits over the line', async () => {
    const pty = await ptyPair();
    const dataDir = mkdtempSync(join(tmpdir(), 'orbital-serial-'));
    const os = await HostedOs.start({ dataDir, fsync: 'never' });
    const board = serveLink(await openSerial(pty.a), hostedLinkDevice(os), { crc32: zlibCrc32 });
    const ports = () => listSerialPorts([pty.b]);
    const s = new HostServices({ links: { serial: async (p) => serialDevice(p, await ports()) }, capabilities: async () => ({ qemu: false, serialPorts: await ports() }), mode: 'web', log: () => {} });
    try {
      const d = new Dispatcher(s.handlers(), () => {});
      const bad = await d.dispatch('t', 'device.connect', { target: 'serial', path: '/etc/passwd' });
      expect(bad.ok).toBe(false);
      expect(!bad.ok && bad.error.message).toContain('not one of the serial ports');
      const hello = await d.dispatch('t', 'hello', {});
      expect(hello.ok && (hello.value as { capabilities: { serialPorts: string[] } }).capabilities.serialPorts).toContain(pty.b);
      const info = await s.connect('serial', pty.b);
      expect(info.link).toBe('up');
      const r = await s.propose(info.id, 1, 'sh', { line: 'set line serial' });
      expect(r.status).toBe('committed');
      for (let i = 0; i < 100 && s.logOf(info.id).length <= r.seq; i++) await new Promise((res) => setTimeout(res, 20));
      expect(s.logOf(info.id).length).toBe(os.entries.length);
    } finally {
      await s.close(); board.close('shutdown', 'test over'); os.close(); pty.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 60_000);
});
