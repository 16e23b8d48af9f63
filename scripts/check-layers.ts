// Fails (exit 1) on an import that crosses a layer the wrong way, or on a Node built-in or
// unlisted package in a pure or browser layer. Test files may also use Node and scripts/.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, normalize, relative } from 'node:path';
import ts from 'typescript';
import { layerOf, layers } from './layers.ts';

const root = normalize(join(dirname(new URL(import.meta.url).pathname), '..'));
const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

function* walk(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'target' || name.startsWith('.')) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) yield* walk(p);
    else if (/\.(ts|mts|tsx)$/.test(name) && !name.endsWith('.d.ts')) yield p;
  }
}

export interface Violation { file: string; spec: string; why: string }

export function checkFile(file: string, text: string): Violation[] {
  const rel = relative(root, file).split('\\').join('/');
  const layer = layerOf(rel);
  if (!layer) return [];
  const rule = layers[layer]!;
  const isTest = /\.(test|bench)\.ts$/.test(rel);
  const out: Violation[] = [];
  const info = ts.preProcessFile(text, true, true);
  for (const { fileName: spec } of info.importedFiles) {
    if (spec.startsWith('.')) {
      const target = relative(root, join(dirname(file), spec)).split('\\').join('/');
      const tl = layerOf(target) ?? target;
      const intoNode = /(^|\/)node\//.test(target) && (rule.pure || rule.browser);
      if (intoNode && !isTest) { out.push({ file: rel, spec, why: `${layer} is ${rule.pure ? 'pure' : 'browser'} code and may not import Node-side ${target}` }); continue; }
      const allowed = tl === layer || rule.imports.some((p) => target.startsWith(p)) || (isTest && target.startsWith('scripts/'));
      if (!allowed) out.push({ file: rel, spec, why: `${layer} may not import ${tl}` });
    } else if (builtins.has(spec) || builtins.has(spec.split('/')[0]!)) {
      if ((rule.pure || rule.browser) && !isTest) out.push({ file: rel, spec, why: `${layer} is ${rule.pure ? 'pure' : 'browser'} code and may not use Node built-ins` });
    } else if ((rule.pure || rule.browser) && !isTest) {
      const pkg = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
      if (!(rule.packages ?? []).includes(pkg)) out.push({ file: rel, spec, why: `${layer} may not import package ${pkg} (not in its allow-list in scripts/layers.ts)` });
    }
  }
  return out;
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  const violations: Violation[] = [];
  let files = 0;
  for (const top of Object.keys(layers).map((p) => p.split('/')[0]!)) {
    const dir = join(root, top);
    try { statSync(dir); } catch { continue; }
    for (const f of walk(dir)) { files++; violations.push(...checkFile(f, readFileSync(f, 'utf8'))); }
  }
  const uniq = new Map(violations.map((v) => [`${v.file}:${v.spec}`, v]));
  for (const v of uniq.values()) console.error(`layer violation: ${v.file} imports '${v.spec}': ${v.why}`);
  console.log(`check-layers: ${files} files, ${uniq.size} violation(s)`);
  process.exit(uniq.size ? 1 : 0);
}
