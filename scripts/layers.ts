// The layer map of ../shared/DESIGN.md as data: which folder may import which.
// A path is matched by its longest prefix in `layers`.
export interface Layer {
  /** Folder prefixes (relative to the repo root) this layer may import. Its own folder is implied. */
  imports: string[];
  /** Pure layers: no Node built-ins, no DOM, bare packages only from `packages`. */
  pure?: boolean;
  /** Browser layers: no Node built-ins. */
  browser?: boolean;
  /** Bare package imports allowed in a pure or browser layer. */
  packages?: string[];
}

const pureHashes = ['@noble/hashes', 'hash-wasm'];

export const layers: Record<string, Layer> = {
  'axiom/': { imports: [], pure: true, packages: pureHashes },
  // Node-side I/O for axiom (trace files on disk); pure layers may not import any `node/` folder.
  'axiom/node/': { imports: ['axiom/'] },
  'scene/': { imports: ['axiom/'], pure: true, packages: [...pureHashes, 'harfbuzzjs', 'opentype.js', 'fontkit'] },
  'kernel-link/core/': { imports: ['axiom/'], pure: true, packages: pureHashes },
  'kernel-link/': { imports: ['axiom/', 'kernel-link/core/'] },
  'os-image/image/': { imports: ['axiom/'] },
  'os-image/': { imports: ['axiom/', 'kernel-link/', 'os-image/image/'] },
  'hwlab/': { imports: ['axiom/', 'kernel-link/', 'os-image/image/'] },
  'renderer/': { imports: ['axiom/', 'scene/'], browser: true, packages: [...pureHashes, 'three'] },
  'app/': { imports: ['axiom/', 'scene/', 'kernel-link/', 'os-image/', 'hwlab/', 'renderer/'] },
  'bench/': { imports: ['axiom/', 'scene/', 'kernel-link/', 'os-image/', 'hwlab/', 'renderer/', 'app/', 'scripts/'] },
  'scripts/': { imports: ['axiom/', 'scene/', 'kernel-link/', 'os-image/', 'hwlab/', 'renderer/', 'app/'] },
};

export function layerOf(path: string): string | undefined {
  let best: string | undefined;
  for (const prefix of Object.keys(layers)) {
    if (path.startsWith(prefix) && (!best || prefix.length > best.length)) best = prefix;
  }
  return best;
}
