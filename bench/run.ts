// `npm run bench -- <suite> [--json]`: runs bench/<suite>.ts, prints a table for people and,
// with --json, one JSON object on the last line.
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchContext, Suite } from './harness.ts';

const here = dirname(fileURLToPath(import.meta.url));
const suites = readdirSync(here).filter((f) => f.endsWith('.ts') && !['run.ts', 'harness.ts'].includes(f) && !f.endsWith('.test.ts')).map((f) => f.slice(0, -3));
const args = process.argv.slice(2);
const json = args.includes('--json');
const name = args.find((a) => !a.startsWith('--'));
if (!name || !suites.includes(name)) {
  console.error(`usage: npm run bench -- <suite> [--json]\nsuites: ${suites.join(', ')}`);
  process.exit(2);
}
const ctx: BenchContext = {
  json,
  args,
  progress: (msg) => { if (!json || process.stderr.isTTY) process.stderr.write(`  ${msg}\n`); },
};
const suite = (await import(join(here, `${name}.ts`))).default as Suite;
const t0 = performance.now();
const r = await suite(ctx);
const secs = (performance.now() - t0) / 1000;
if (!json) {
  console.log(`\nbench ${name} (${secs.toFixed(1)} s)`);
  const w = Math.max(...Object.keys(r.figures).map((k) => k.length));
  for (const [k, v] of Object.entries(r.figures)) console.log(`  ${k.padEnd(w)}  ${typeof v === 'number' ? +v.toPrecision(6) : v}`);
  if (r.goals.length) console.log('goals:');
  for (const g of r.goals) console.log(`  ${g.met ? 'met ' : 'MISS'}  ${g.text}`);
  for (const n of r.notes ?? []) console.log(`  note: ${n}`);
} else {
  console.log(JSON.stringify({ suite: name, seconds: +secs.toFixed(2), ...r.figures, goals: r.goals, notes: r.notes ?? [] }));
}
