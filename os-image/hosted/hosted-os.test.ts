import { mkdtempSync, statSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Kind, decodeEntry, decodeValue } from '../../axiom/index.ts';
import { verifyTraceFile } from '../../axiom/node/trace-file.ts';
import { DeviceBusyError, HostedOs } from './hosted-os.ts';

const dir = () => mkdtempSync(join(tmpdir(), 'hosted-'));

describe('hosted OS', () => {
  it('commits, rejects without the capability, and persists across restarts', async () => {
    const d = dir();
    const os = await HostedOs.start({ dataDir: d });
    expect(os.propose({ actor: 1, id: 1, domain: 1, action: 'sh', args: { line: 'set a 1' }, time: 0 }).status).toBe('committed');
    const r = os.propose({ actor: 9, id: 1, domain: 1, action: 'svc.start', args: { name: 'x' }, time: 0 });
    expect(r).toMatchObject({ status: 'rejected', reason: 'missing-capability' });
    const hashes = os.seq.stateHashes();
    os.close();
    const again = await HostedOs.start({ dataDir: d });
    expect(again.recovered.entries).toBe(os.head);
    expect(again.seq.os.kv.get('a')).toBe('1');
    expect(again.seq.stateHashes().os).toEqual(hashes.os);
    expect(again.propose({ actor: 1, id: 1, domain: 1, action: 'sh', args: { line: 'set a 1' }, time: 0 }).status).toBe('duplicate');
    again.close();
  });

  it('allows one writer per log', async () => {
    const d = dir();
    const os = await HostedOs.start({ dataDir: d });
    await expect(HostedOs.start({ dataDir: d })).rejects.toBeInstanceOf(DeviceBusyError);
    os.close();
  });

  it('closes a commit that lost its receipt in a crash with exactly one aborted receipt', async () => {
    const d = dir();
    const os = await HostedOs.start({ dataDir: d });
    const r = os.propose({ actor: 1, id: 7, domain: 1, action: 'sh', args: { line: 'start net' }, time: 0 });
    if (r.status !== 'committed') throw new Error('expected a commit');
    os.close();
    // Cut the file right after the COMMIT record, as a crash between the two writes would.
    const file = join(d, 'log.orbtrace');
    const sizeAfterCommit = statSync(file).size - (4 + os.entries[r.receiptSeq]!.length + 32);
    truncateSync(file, sizeAfterCommit + 3); // keep a torn start of the receipt record too
    const again = await HostedOs.start({ dataDir: d });
    expect(again.recovered.aborted).toBe(1);
    const receipts = again.entries.map((e) => decodeEntry(e)).filter((x) => x.ok && x.value.kind === Kind.Receipt).map((x) => (x.ok ? decodeValue(x.value.payload) : null));
    const forCommit = receipts.filter((p) => p?.ok && (p.value as any).commit === r.seq);
    expect(forCommit).toHaveLength(1);
    expect((forCommit[0] as any).value.outcome).toBe('aborted');
    again.close();
    expect(verifyTraceFile(file).ok).toBe(true);
    const third = await HostedOs.start({ dataDir: d });
    expect(third.recovered.aborted).toBe(0);
    third.close();
  });
});
