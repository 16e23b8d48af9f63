import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { checkFile } from './check-layers.ts';

const root = join(new URL('.', import.meta.url).pathname, '..');
const at = (p: string) => join(root, p);

describe('layer check', () => {
  it('rejects axiom importing scene', () => {
    expect(checkFile(at('axiom/x.ts'), "import { a } from '../scene/y.ts';")).toHaveLength(1);
  });
  it('rejects Node built-ins in pure code, allows them in tests', () => {
    expect(checkFile(at('scene/x.ts'), "import fs from 'node:fs';")).toHaveLength(1);
    expect(checkFile(at('scene/x.test.ts'), "import fs from 'node:fs';")).toHaveLength(0);
  });
  it('allows the arrows of the design', () => {
    expect(checkFile(at('scene/x.ts'), "import { a } from '../axiom/y.ts';")).toHaveLength(0);
    expect(checkFile(at('hwlab/x.ts'), "import { a } from '../os-image/image/y.ts';")).toHaveLength(0);
    expect(checkFile(at('hwlab/x.ts'), "import { a } from '../os-image/hosted/y.ts';")).toHaveLength(1);
    expect(checkFile(at('renderer/x.ts'), "import { a } from '../kernel-link/core/y.ts';")).toHaveLength(1);
    expect(checkFile(at('kernel-link/core/x.ts'), "import { a } from '../node/y.ts';")).toHaveLength(1);
  });
  it('rejects unlisted packages in browser code', () => {
    expect(checkFile(at('renderer/x.ts'), "import ws from 'ws';")).toHaveLength(1);
    expect(checkFile(at('renderer/x.ts'), "import * as T from 'three/webgpu';")).toHaveLength(0);
  });
});
describe('node sub-folders', () => {
  it('keeps pure code out of axiom/node', () => {
    expect(checkFile(at('scene/x.ts'), "import { a } from '../axiom/node/trace-file.ts';")).toHaveLength(1);
    expect(checkFile(at('hwlab/x.ts'), "import { a } from '../axiom/node/trace-file.ts';")).toHaveLength(0);
  });
});
