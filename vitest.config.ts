import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['{axiom,scene,kernel-link,os-image,hwlab,renderer,app,scripts,bench}/**/*.test.ts'],
    exclude: ['**/node_modules/**', 'os-image/kernel/target/**'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Two cores: parallel files beyond two only fight over them.
    maxWorkers: 2,
  },
});
