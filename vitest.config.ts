import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['sdk/test/**/*.test.ts', 'trainer/test/**/*.test.ts', 'wasm/test/**/*.test.ts', 'e2e/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    // Browser and native tests are CPU heavy on small machines: run files one at a time.
    fileParallelism: false,
  },
});
