// Whether a command is on PATH (for host capabilities; scripts/testkit's `which` is for tests).
import { spawnSync } from 'node:child_process';

const cache = new Map<string, boolean>();
export function which(cmd: string): boolean {
  let v = cache.get(cmd);
  if (v === undefined) { v = spawnSync('sh', ['-c', `command -v ${JSON.stringify(cmd)}`]).status === 0; cache.set(cmd, v); }
  return v;
}
