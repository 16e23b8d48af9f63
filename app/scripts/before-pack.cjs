// electron-builder beforePack hook: bundle the app into build/app before packaging.
const { spawnSync } = require('node:child_process');
const { join } = require('node:path');

exports.default = async function beforePack() {
  const root = join(__dirname, '..', '..');
  const r = spawnSync(process.execPath, [join(root, 'node_modules/tsx/dist/cli.mjs'), join(root, 'app/electron/build.ts'), join(root, 'build/app')], { stdio: 'inherit', cwd: root });
  if (r.status !== 0) throw new Error('bundling the app for packaging failed (see above)');
};
