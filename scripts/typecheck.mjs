// Type-checks every layer against the runtime it may use: pure folders without DOM or Node
// types (a slip is a compile error), the renderer with DOM only, everything else with Node.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
const configs = ['tsconfig.pure.json', 'tsconfig.browser.json', 'tsconfig.json'];
let failed = 0;
for (const c of configs) {
  if (!existsSync(c)) continue;
  const r = spawnSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', c], { stdio: 'inherit' });
  if (r.status !== 0) { failed++; console.error(`typecheck: ${c} failed`); }
  else console.log(`typecheck: ${c} ok`);
}
process.exit(failed ? 1 : 0);
