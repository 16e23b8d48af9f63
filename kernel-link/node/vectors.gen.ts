// Writes docs/vectors/kernel-link-v1.json (docs/kernel-link.md section 9). Run only when the
// contract changes, and commit the file with the doc change.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildVectors } from '../core/vectors.ts';

const out = join(dirname(fileURLToPath(import.meta.url)), '../../docs/vectors/kernel-link-v1.json');
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify(buildVectors(), null, 1) + '\n');
console.log(`wrote ${out}`);
