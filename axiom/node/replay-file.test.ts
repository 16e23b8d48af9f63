import { mkdtempSync, readFileSync, truncateSync, writeFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Sequencer, initAxiom, osReducer, systemReducer, toHex } from '../index.ts';
import { verifyAndReplayFile } from './replay-file.ts';
import { TraceWriter } from './trace-file.ts';

beforeAll(() => initAxiom());

function log(path: string, n: number) {
  const s = new Sequencer({ deviceId: new Uint8Array(16).fill(3), bootId: new Uint8Array(16).fill(4), os: 't', k: 16 });
  const { writer } = TraceWriter.open(path, { deviceId: s.opts.deviceId, bootId: s.opts.bootId, k: 16 }, undefined, 'never');
  writer.append(s.boot());
  for (let i = 0; i < n; i++) writer.append(s.propose({ actor: 1, id: i, domain: 1, action: 'sh', args: { line: `set k${i % 7} ${'v'.repeat(i % 300)}` }, time: 0 }).entries);
  writer.close();
  return s;
}

describe('verifyAndReplayFile', () => {
  it('verifies on a second thread and replays to the sequencer\'s state, checking every checkpoint', async () => {
    const p = join(mkdtempSync(join(tmpdir(), 'vr-')), 't.orbtrace');
    const s = log(p, 3000);
    const r = await verifyAndReplayFile(p, [systemReducer, osReducer]);
    expect(r.parallel).toBe(true);
    expect(r.verify.ok).toBe(true);
    expect(r.replayed).toBe(s.next);
    expect(r.checkpoints).toBeGreaterThan(300);
    expect(r.divergence).toBeNull();
    expect(Object.values(r.replayer.replayer.hashes()).map(toHex)).toEqual(Object.values(s.stateHashes()).map(toHex));
  });

  it('agrees with the one-thread path on damaged files, and replays only up to the first bad seq', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vr-'));
    const p = join(dir, 't.orbtrace');
    log(p, 500);
    const good = readFileSync(p);
    const size = statSync(p).size;
    for (const at of [200, 5000, 40_000, size - 40, size - 5]) {
      const b = Buffer.from(good); b[at] ^= 0x20; writeFileSync(p, b);
      const par = await verifyAndReplayFile(p, [systemReducer, osReducer]);
      const one = await verifyAndReplayFile(p, [systemReducer, osReducer], { parallel: false });
      expect(par.verify.ok, `byte ${at}`).toBe(false);
      expect(par.verify.failure?.seq, `byte ${at}`).toBe(one.verify.failure?.seq);
      expect(par.replayed).toBe(one.replayed);
      expect(par.replayed).toBe(par.verify.failure!.seq);
    }
    writeFileSync(p, good); truncateSync(p, size - 3);
    const torn = await verifyAndReplayFile(p, [systemReducer, osReducer]);
    expect(torn.verify.failure?.reason).toBe('truncated-tail');
  });
});
