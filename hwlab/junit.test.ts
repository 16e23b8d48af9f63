// The JUnit report of `orbital-lab run`, read back by a real XML parser (Python's ElementTree, as
// the JUnit readers of CI systems are): whatever the device printed, the file parses and carries
// the text; the OS's failures are <failure>, the lab's <error>, commands never typed <skipped>.
import { expect, it } from 'vitest';
import fc from 'fast-check';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeWithTools } from '../scripts/testkit.ts';
import { junitOf } from './junit.ts';
import type { RunResult, Step, StepResult } from './run.ts';

interface Parsed {
  error?: string;
  suite: Record<string, string>;
  props: Record<string, string>;
  cases: Array<{ name: string; time: string; kind: 'failure' | 'error' | 'skipped' | null; type: string | null; message: string | null; body: string | null; out: string | null }>;
}

/** Parses each XML text with ElementTree in one python3 run. */
function parseAll(texts: string[]): Parsed[] {
  const dir = mkdtempSync(join(tmpdir(), 'orbital-junit-'));
  try {
    const files = texts.map((t, i) => { const f = join(dir, `${i}.xml`); writeFileSync(f, t); return f; });
    const py = `
import json, sys, xml.etree.ElementTree as ET
out = []
for f in json.load(sys.stdin):
    try:
        root = ET.parse(f).getroot()
    except Exception as e:
        out.append({"error": str(e), "suite": {}, "props": {}, "cases": []}); continue
    s = root.find("testsuite")
    cases = []
    for c in s.findall("testcase"):
        k = next((x for x in c if x.tag in ("failure", "error", "skipped")), None)
        o = c.find("system-out")
        cases.append({"name": c.get("name"), "time": c.get("time"), "kind": k.tag if k is not None else None,
                      "type": k.get("type") if k is not None else None, "message": k.get("message") if k is not None else None,
                      "body": (k.text or "") if k is not None else None, "out": (o.text or "") if o is not None else None})
    props = {p.get("name"): p.get("value") for p in s.find("properties")}
    out.append({"suite": dict(s.attrib), "props": props, "cases": cases})
print(json.dumps(out))
`;
    const r = spawnSync('python3', ['-c', py], { input: JSON.stringify(files), encoding: 'utf8', maxBuffer: 256 << 20 });
    if (r.status !== 0) throw new Error(`python3 failed: ${r.stderr}`);
    return JSON.parse(r.stdout) as Parsed[];
  } finally { rmSync(dir, { recursive: true, force: true }); }
}

const step = (cmd: string, o: Partial<StepResult> = {}): StepResult => ({ cmd, echo: { line: 1, t: 10, text: `$ ${cmd}` }, expect: [], output: [], ms: 12, ...o });
const result = (o: Partial<RunResult>): RunResult => ({ ok: true, device: 'b1', bootId: 'id1', log: '/l/b1.log', steps: [], charDelayMs: 0, fields: {}, ...o });
const steps = (...cmds: string[]): Step[] => cmds.map((cmd) => ({ cmd, expect: [] }));
const started = new Date('2026-12-03T10:00:00.123Z');

describeWithTools(['python3'], 'JUnit report of a run (read by a real XML parser)', () => {
  it('a passing run: one testcase per command, its output, the fields as properties', () => {
    const r = result({ steps: [step('get color', { output: ['blue'], expect: [{ pattern: '^(?<c>\\w+)$', line: 2, t: 11, text: 'blue', fields: { c: 'blue' } }] }), step('uptime', { output: ['up 3 s'] })], fields: { c: 'blue' } });
    const [p] = parseAll([junitOf({ steps: steps('get color', 'uptime'), result: r, started, ms: 1234 })]);
    expect(p!.error).toBeUndefined();
    expect(p!.suite).toMatchObject({ tests: '2', failures: '0', errors: '0', skipped: '0', time: '1.234', timestamp: '2026-12-03T10:00:00' });
    expect(p!.props).toMatchObject({ device: 'b1', 'boot-id': 'id1', log: '/l/b1.log', 'field.c': 'blue' });
    expect(p!.cases.map((c) => [c.name, c.kind, c.time])).toEqual([['get color', null, '0.012'], ['uptime', null, '0.012']]);
    expect(p!.cases[0]!.out).toBe('$ get color\nblue\nmet /^(?<c>\\w+)$/ at line 2 {"c":"blue"}');
  });

  it('the OS\'s failure is a <failure> on the command that met it, the lab\'s an <error>; later commands are <skipped>; a failed boot skips every command', () => {
    const os = result({ ok: false, steps: [step('a'), step('b', { expect: [{ pattern: 'x', line: null, t: null, text: null }] })], failure: { blame: 'os', code: 'expect-timeout', message: 'no line matched /x/' } });
    const lab = result({ ok: false, steps: [step('a', { echo: null })], failure: { blame: 'lab', code: 'no-echo', message: 'b1 did not echo "a"' } });
    const boot = result({ ok: false, boot: { ok: false, stage: 'kernel', milestones: [], bootMs: null, lines: 5, bytes: 90, staleLines: 0, failure: { blame: 'os', code: 'os-fatal', message: 'panic' } }, failure: { blame: 'os', code: 'os-fatal', message: 'panic' }, fatal: [{ name: 'panic', line: 4, t: 9, text: 'Kernel panic - not syncing' }] });
    const [a, b, c] = parseAll([
      junitOf({ steps: steps('a', 'b', 'c'), result: os, started, ms: 1 }),
      junitOf({ steps: steps('a', 'b'), result: lab, started, ms: 1 }),
      junitOf({ steps: steps('a', 'b'), result: boot, started, ms: 1 }),
    ]);
    expect(a!.suite).toMatchObject({ tests: '3', failures: '1', errors: '0', skipped: '1' });
    expect(a!.cases.map((x) => x.kind)).toEqual([null, 'failure', 'skipped']);
    expect(a!.cases[1]).toMatchObject({ type: 'expect-timeout', message: 'no line matched /x/', body: 'unmet: /x/' });
    expect(b!.suite).toMatchObject({ tests: '2', failures: '0', errors: '1', skipped: '1' });
    expect(b!.cases.map((x) => [x.kind, x.type])).toEqual([['error', 'no-echo'], ['skipped', null]]);
    expect(c!.suite).toMatchObject({ tests: '3', failures: '1', skipped: '2' });
    expect(c!.cases.map((x) => [x.name, x.kind])).toEqual([['boot', 'failure'], ['a', 'skipped'], ['b', 'skipped']]);
    expect(c!.cases[0]!.body).toContain('fatal "panic" at line 4: Kernel panic - not syncing');
  });

  it('whatever the device printed and whatever was typed, the report parses and carries the text (characters XML cannot hold as U+FFFD)', () => {
    // Any UTF-16 code units: control bytes, lone surrogates, quotes, markup, CR.
    const text = fc.string({ unit: 'binary', maxLength: 40 });
    const cases = fc.sample(fc.record({ cmd: text, out: fc.array(text, { maxLength: 4 }), msg: text, field: text, code: text }), { numRuns: 150, seed: 7 });
    const docs = cases.map((k) => junitOf({
      steps: steps(k.cmd, 'next'),
      result: result({ ok: false, steps: [step(k.cmd, { output: k.out })], fields: { f: k.field }, failure: { blame: 'os', code: 'expect-timeout', message: k.msg } }),
      started, ms: 5,
    }));
    const parsed = parseAll(docs);
    // What XML 1.0 can carry: the same text with every other character replaced.
    const xmlSafe = (s: string) => s.replace(/[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, '\uFFFD');
    parsed.forEach((p, i) => {
      const k = cases[i]!;
      expect(p.error, docs[i]).toBeUndefined();
      expect(p.cases[0]!.name).toBe(xmlSafe(k.cmd));
      expect(p.cases[0]!.message).toBe(xmlSafe(k.msg));
      expect(p.cases[0]!.out).toBe(xmlSafe([`$ ${k.cmd}`, ...k.out].join('\n')));
      expect(p.props['field.f']).toBe(xmlSafe(k.field));
      expect(p.cases.map((c) => c.kind)).toEqual(['failure', 'skipped']);
    });
  });
});
