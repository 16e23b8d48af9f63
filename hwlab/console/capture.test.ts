import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { LineSplitter, BootWatch } from './capture.ts';
import type { BootSpec } from '../labfile.ts';

const enc = (s: string) => new TextEncoder().encode(s);
const spec = (o: Partial<Record<keyof BootSpec, string[]>>): BootSpec => {
  const mk = (xs: string[] | undefined, n: string) => (xs ?? []).map((s, i) => ({ name: `${n}${i}`, source: s, regex: new RegExp(s) }));
  return { milestones: mk(o.milestones, 'm'), success: mk(o.success, 's'), fatal: mk(o.fatal, 'f'), reset: mk(o.reset, 'r') };
};

describe('line splitting', () => {
  it('treats \\n, \\r\\n and \\r alike, also across chunk edges', () => {
    const out: string[] = [];
    const s = new LineSplitter((l) => out.push(l));
    for (const c of ['a\r', '\nb\n', 'c\rd', '\r\n', 'e']) s.push(enc(c));
    s.flush();
    expect(out).toEqual(['a', 'b', 'c', 'd', 'e']);
  });

  it('gives the same lines however the bytes are cut', () => {
    fc.assert(fc.property(fc.array(fc.stringMatching(/^[a-z ]{0,20}$/), { maxLength: 20 }), fc.array(fc.nat(50), { maxLength: 10 }), (lines, cuts) => {
      const bytes = enc(lines.map((l) => l + '\r\n').join(''));
      const out: string[] = [];
      const s = new LineSplitter((l) => out.push(l));
      let at = 0;
      for (const c of [...cuts.map((c) => Math.min(bytes.length, at + c))].sort((a, b) => a - b)) { if (c > at) { s.push(bytes.subarray(at, c)); at = c; } }
      s.push(bytes.subarray(at));
      s.flush();
      expect(out).toEqual(lines);
    }));
  });

  it('cuts endless garbage into bounded lines and escapes control bytes', () => {
    const out: string[] = [];
    const s = new LineSplitter((l) => out.push(l));
    s.push(new Uint8Array(10_000).fill(0x41));
    s.push(enc('\x07bell\n'));
    s.flush();
    expect(out.every((l) => l.length <= 4096 + 10)).toBe(true);
    expect(out[out.length - 1]).toMatch(/\\x07bell$/);
  });
});

describe('boot watch', () => {
  it('ignores bytes before power-on and lines stamped later than this boot could be', async () => {
    const w = new BootWatch(spec({ success: ['READY'] }), { timeoutMs: 5000, bootId: 'b', device: 'd' });
    w.feed(enc('READY\n'));
    w.powerOn();
    w.feed(enc('[ 99999.000 ms] READY\n'));
    w.feed(enc('[    1.000 ms] READY\n'));
    const o = await w.done;
    expect(o.ok).toBe(true);
    expect(o.staleLines).toBe(1);
    expect(o.success!.line).toBe(2);
    w.close();
  });

  it('reports a reset after a milestone as the OS failing', async () => {
    const w = new BootWatch(spec({ milestones: ['kernel'], success: ['READY'], reset: ['BIOS'] }), { timeoutMs: 5000, bootId: 'b', device: 'd' });
    w.powerOn();
    w.feed(enc('BIOS\nkernel\nBIOS\n'));
    const o = await w.done;
    expect(o.failure).toMatchObject({ blame: 'os', code: 'os-reset' });
    w.close();
  });

  it('a fatal pattern wins over a success line that follows within the grace period', async () => {
    const w = new BootWatch(spec({ success: ['READY'], fatal: ['panic'] }), { timeoutMs: 5000, bootId: 'b', device: 'd', fatalGraceMs: 50 });
    w.powerOn();
    w.feed(enc('panic: oh no\nREADY\n'));
    const o = await w.done;
    expect(o.failure).toMatchObject({ blame: 'os', code: 'os-fatal', line: 1 });
    w.close();
  });
});
