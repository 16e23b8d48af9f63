// The default device end to end in Node: the hosted OS behind kernel-link, reached by the host
// services; a command's COMMIT, RECEIPT and console echo come back; a restarted host resumes.
import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeEntry, Kind } from '../../axiom/index.ts';
import { startHost } from './start-host.ts';

const assets = async () => ({ js: '', css: '' });

describe('host with the hosted OS over kernel-link', () => {
  it('commits an sh command and streams its entries and console echo', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'orbital-hosted-'));
    try {
      const host = await startHost({ socket: true, assets, dataDir, fsync: 'never', log: () => {} });
      let consoleText = '';
      host.events.subscribe((ch, d) => { if (ch === 'device.console') consoleText += (d as { text: string }).text; });
      const r = await host.services.propose(host.device, 1, 'sh', { line: 'set a 1' });
      expect(r.status).toBe('committed');
      for (let i = 0; i < 100 && !consoleText.includes('a=1'); i++) await new Promise((res) => setTimeout(res, 20));
      expect(consoleText).toContain('$ set a 1');
      expect(consoleText).toContain('a=1');
      const log = host.services.logOf(host.device);
      expect(log.length).toBeGreaterThan(r.seq);
      const e = decodeEntry(log[r.seq]!);
      expect(e.ok && e.value.kind).toBe(Kind.Commit);
      const n = log.length;
      await host.close();
      // Same data directory: the log continues (new BOOT appended), nothing is lost.
      const again = await startHost({ socket: true, assets, dataDir, fsync: 'never', log: () => {} });
      for (let i = 0; i < 100 && again.services.logOf(again.device).length <= n; i++) await new Promise((res) => setTimeout(res, 20));
      expect(again.services.logOf(again.device).slice(0, n)).toEqual(log);
      expect((await again.services.propose(again.device, 1, 'sh', { line: 'get a' })).status).toBe('committed');
      await again.close();
    } finally { rmSync(dataDir, { recursive: true, force: true }); }
  });
});
