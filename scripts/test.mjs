// `npm test`: every check and every test, with one closing line a person (and CI) can read.
//   1. type-check each layer against its own runtime (pure folders: no DOM, no Node types)
//   2. the layer import check
//   3. vitest (unit, property, integration and end-to-end tests)
//   4. cargo test for the guest kernel's pure parts, where the kernel exists
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const steps = [];
function run(name, cmd, args, opts = {}) {
  console.log(`\n=== ${name}: ${cmd} ${args.join(' ')}`);
  const t0 = Date.now();
  const r = spawnSync(cmd, args, { stdio: 'inherit', ...opts });
  const ok = r.status === 0;
  steps.push({ name, ok, s: ((Date.now() - t0) / 1000).toFixed(1) });
  return ok;
}

const extra = process.argv.slice(2);
run('typecheck', process.execPath, ['scripts/typecheck.mjs']);
run('layers', process.execPath, ['node_modules/tsx/dist/cli.mjs', 'scripts/check-layers.ts']);

const out = join(mkdtempSync(join(tmpdir(), 'orbital-test-')), 'vitest.json');
run('vitest', process.execPath, ['node_modules/vitest/vitest.mjs', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${out}`, ...extra]);
let passed = 0, failed = 0, skipped = 0;
if (existsSync(out)) {
  const j = JSON.parse(readFileSync(out, 'utf8'));
  passed = j.numPassedTests; failed = j.numFailedTests + (j.numRuntimeErrorTestSuites ?? 0);
  skipped = j.numPendingTests + (j.numTodoTests ?? 0);
  for (const s of j.testResults ?? []) if (s.status === 'failed' && (s.assertionResults ?? []).length === 0) failed++;
}

if (existsSync('os-image/kernel/Cargo.toml')) {
  const ok = run('cargo test (guest kernel pure parts)', 'cargo', ['test', '--quiet', '--manifest-path', 'os-image/kernel/Cargo.toml', '--lib']);
  if (ok) passed++; else failed++;
}

console.log('\n=== summary');
for (const s of steps) console.log(`${s.ok ? 'ok  ' : 'FAIL'} ${s.name} (${s.s}s)`);
const stepFail = steps.filter((s) => !s.ok).length;
console.log(`tests: ${passed} passed, ${failed + (stepFail && !failed ? stepFail : 0)} failed, ${skipped} skipped`);
process.exit(stepFail ? 1 : 0);
