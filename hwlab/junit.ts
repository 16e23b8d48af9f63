// `orbital-lab run --junit FILE`: the run as a JUnit XML report, the format CI systems (GitLab,
// Jenkins, GitHub test reporters) show as tests. One testsuite per run: a `flash` testcase when the
// run flashed the device first, a `boot` testcase when it booted it, then one testcase per command
// in the order typed. A failure the OS caused
// (an unmet expectation, a fatal pattern) is a <failure>; one the lab caused (lost input, the
// console gone, a boot timeout) is an <error>, the way JUnit separates a test that failed from one
// that could not run properly (LAVA's "infrastructure errors are not test failures"). Commands after
// the failing one were never typed and are <skipped>. Named groups the expectations captured are
// suite <properties> (`field.NAME`). Console text is whatever the device printed: characters XML 1.0
// cannot carry (control bytes, lone surrogates) become U+FFFD, so the file always parses.
import type { RunResult, Step } from './run.ts';

const INVALID = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;

/** Element text made safe for XML 1.0 (a CR is kept as a reference: parsers turn a raw one into LF). */
export function xmlText(s: string): string {
  return s.replace(INVALID, '\uFFFD').replace(/[&<>\r]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '\r': '&#13;' })[c]!);
}

/** An attribute value made safe for XML 1.0; tab, newline and CR as references (a parser turns raw ones into spaces). */
export function xmlAttr(s: string): string {
  return xmlText(s).replace(/["'\n\t]/g, (c) => ({ '"': '&quot;', "'": '&apos;', '\n': '&#10;', '\t': '&#9;' })[c]!);
}

const secs = (ms: number | null | undefined) => ((ms ?? 0) / 1000).toFixed(3);

export interface JunitInput {
  /** Every command asked for, also those the run never reached. */
  steps: Step[];
  result: RunResult;
  /** When the run started. */
  started: Date;
  /** Whole run, boot included, in ms. */
  ms: number;
}

export function junitOf({ steps, result: r, started, ms }: JunitInput): string {
  const dev = r.device;
  const cls = `orbital-lab.${dev}`;
  const cases: string[] = [];
  let failures = 0, errors = 0, skipped = 0;
  const problem = (f: NonNullable<RunResult['failure']>, body: string) => {
    const tag = f.blame === 'os' ? 'failure' : 'error';
    if (tag === 'failure') failures++; else errors++;
    return `      <${tag} type="${xmlAttr(f.code)}" message="${xmlAttr(f.message)}">${xmlText(body)}</${tag}>\n`;
  };
  const fatalText = (r.fatal ?? []).map((f) => `fatal "${f.name}" at line ${f.line}: ${f.text}`).join('\n');
  const flashFailed = r.failure !== undefined && 'stage' in r.failure && r.failure.stage === 'flash';
  const bootFailed = r.boot !== undefined && !r.boot.ok;
  if (r.flash || flashFailed) {
    const f = r.flash;
    const body = flashFailed ? problem(r.failure!, '') : '';
    const out = f ? `${f.status} ${f.bytesWritten} bytes of ${f.imageSize} to ${f.target.path}${f.verify ? `; verified ${f.verify.bytes} bytes through ${f.verify.method}` : '; not verified'}; blake3 ${f.blake3}` : '';
    cases.push(`    <testcase classname="${xmlAttr(cls)}" name="flash" time="${secs(f ? f.seconds.total * 1000 : 0)}">\n${body}${out ? `      <system-out>${xmlText(out)}</system-out>\n` : ''}    </testcase>\n`);
  }
  if (flashFailed) {
    skipped++;
    cases.push(`    <testcase classname="${xmlAttr(cls)}" name="boot" time="0.000">\n      <skipped message="not booted: the flash failed"/>\n    </testcase>\n`);
  }
  if (r.boot) {
    const b = r.boot;
    const body = bootFailed && r.failure ? problem(r.failure, [`stage reached: ${b.stage ?? 'none'}`, fatalText].filter(Boolean).join('\n')) : '';
    cases.push(`    <testcase classname="${xmlAttr(cls)}" name="boot" time="${secs(b.bootMs)}">\n${body}      <system-out>${xmlText(`stage ${b.stage ?? 'none'}; ${b.lines} lines; log ${r.log}`)}</system-out>\n    </testcase>\n`);
  }
  steps.forEach((step, i) => {
    const got = r.steps[i];
    const name = xmlAttr(step.cmd);
    if (!got || bootFailed || flashFailed) {
      skipped++;
      cases.push(`    <testcase classname="${xmlAttr(cls)}" name="${name}" time="0.000">\n      <skipped message="${xmlAttr(flashFailed ? 'not typed: the flash failed' : bootFailed ? 'not typed: the boot failed' : 'not typed: an earlier command failed')}"/>\n    </testcase>\n`);
      return;
    }
    // The run stops at its first failure, so only the last command reached can hold it.
    const last = i === r.steps.length - 1;
    let body = '';
    if (!r.ok && last && r.failure) {
      const unmet = got.expect.filter((e) => e.line === null).map((e) => `unmet: /${e.pattern}/`);
      body = problem(r.failure, [...unmet, fatalText].filter(Boolean).join('\n'));
    }
    const out = [...(got.echo ? [got.echo.text] : []), ...got.output].join('\n');
    const met = got.expect.filter((e) => e.line !== null).map((e) => `met /${e.pattern}/ at line ${e.line}${e.fields ? ` ${JSON.stringify(e.fields)}` : ''}`);
    cases.push(`    <testcase classname="${xmlAttr(cls)}" name="${name}" time="${secs(got.ms)}">\n${body}      <system-out>${xmlText([out, ...met].filter(Boolean).join('\n'))}</system-out>\n    </testcase>\n`);
  });
  const props: Array<[string, string]> = [['device', dev], ['boot-id', r.bootId], ['log', r.log], ['char-delay-ms', String(r.charDelayMs)], ...Object.entries(r.fields).map(([k, v]): [string, string] => [`field.${k}`, v])];
  const tests = cases.length;
  return `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="orbital-lab run" tests="${tests}" failures="${failures}" errors="${errors}" skipped="${skipped}" time="${secs(ms)}">\n`
    + `  <testsuite name="${xmlAttr(`run on ${dev}`)}" tests="${tests}" failures="${failures}" errors="${errors}" skipped="${skipped}" time="${secs(ms)}" timestamp="${started.toISOString().replace(/\.\d+Z$/, '')}">\n`
    + `    <properties>\n${props.map(([k, v]) => `      <property name="${xmlAttr(k)}" value="${xmlAttr(v)}"/>\n`).join('')}    </properties>\n`
    + cases.join('')
    + '  </testsuite>\n</testsuites>\n';
}
