import { appendFileSync, mkdtempSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Sequencer, initAxiom, encodeTraceHeader } from '../index.ts';
import { TraceError, TraceWriter, readTrace, verifyTraceFile } from './trace-file.ts';

beforeAll(() => initAxiom());
const H = { deviceId: new Uint8Array(16).fill(9), bootId: new Uint8Array(16).fill(8), k: 8 };
const tmp = () => mkdtempSync(join(tmpdir(), 'trace-'));

function writeLog(path: string, n: number) {
  const s = new Sequencer({ deviceId: H.deviceId, bootId: H.bootId, os: 't', k: 8 });
  const { writer } = TraceWriter.open(path, H);
  writer.append(s.boot());
  for (let i = 0; i < n; i++) writer.append(s.propose({ actor: 1, id: i, domain: 1, action: 'sh', args: { line: `set k${i} ${i}` }, time: 0 }).entries);
  writer.close();
  return s;
}

describe('trace files', () => {
  it('round-trips, verifies and streams', async () => {
    const p = join(tmp(), 't.orbtrace');
    const s = writeLog(p, 50);
    const v = verifyTraceFile(p);
    expect(v).toMatchObject({ ok: true, count: s.next });
    let n = 0;
    for await (const r of readTrace(p)) { expect(r.entry.length).toBeGreaterThan(63); n++; }
    expect(n).toBe(s.next);
  });

  it('cuts a torn tail back to the last whole entry and goes on appending', () => {
    const p = join(tmp(), 't.orbtrace');
    const s = writeLog(p, 10);
    const size = statSync(p).size;
    truncateSync(p, size - 7);
    expect(verifyTraceFile(p).failure).toMatchObject({ reason: 'truncated-tail', seq: s.next - 1 });
    const seen: Uint8Array[] = [];
    const { writer, recovered, cutBytes } = TraceWriter.open(p, H, (e) => seen.push(e));
    expect(recovered).toBe(s.next - 1);
    expect(cutBytes).toBeGreaterThan(0);
    writer.close();
    expect(verifyTraceFile(p)).toMatchObject({ ok: true, count: s.next - 1 });
  });

  it('cuts garbage appended by a torn write (zeros after the last record)', () => {
    const p = join(tmp(), 't.orbtrace');
    const s = writeLog(p, 5);
    appendFileSync(p, new Uint8Array(100));
    const { recovered, writer } = TraceWriter.open(p, H);
    writer.close();
    expect(recovered).toBe(s.next);
    expect(verifyTraceFile(p).ok).toBe(true);
  });

  it('refuses to cut damage in the middle of a log', () => {
    const p = join(tmp(), 't.orbtrace');
    writeLog(p, 20);
    const b = readFileSync(p); b[64 + 200] ^= 0xff; writeFileSync(p, b);
    expect(() => TraceWriter.open(p, H)).toThrow(TraceError);
    const v = verifyTraceFile(p);
    expect(v.ok).toBe(false);
    expect(v.failure!.seq).toBeGreaterThanOrEqual(0);
  });

  it('gives typed errors for files that are not traces', () => {
    const d = tmp();
    const cases: [string, Uint8Array, string][] = [
      ['empty', new Uint8Array(0), 'empty'],
      ['text', new TextEncoder().encode('hello, this is not a trace file at all, no no no no no no no no no no'), 'not-a-trace'],
      ['short', new TextEncoder().encode('ORBTRACE'), 'truncated-tail'],
    ];
    const future = encodeTraceHeader(H); future[8] = 9; cases.push(['future', future, 'unknown-version']);
    const huge = new Uint8Array([...encodeTraceHeader(H), 0xff, 0xff, 0xff, 0x7f, 1, 2, 3]); cases.push(['huge-length', huge, 'bad-encoding']);
    for (const [name, bytes, reason] of cases) {
      const p = join(d, name); writeFileSync(p, bytes);
      const v = verifyTraceFile(p);
      expect(v.ok, name).toBe(false);
      expect(v.error?.reason ?? v.failure?.reason, name).toBe(reason);
      expect((v.error?.message ?? v.failure?.message)!.length, name).toBeGreaterThan(10);
    }
  });
});
