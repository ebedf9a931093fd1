import { readFileSync } from 'node:fs';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  // *.wasm imports give the module's bytes and *.wgsl its text, as in the SDK bundle (rollup.config.ts).
  plugins: [
    {
      name: 'dyntet-wgsl-text',
      enforce: 'pre',
      load(id) {
        if (!id.endsWith('.wgsl')) return null;
        return `export default ${JSON.stringify(readFileSync(id, 'utf8'))};`;
      },
    },
    {
      name: 'dyntet-wasm-bytes',
      enforce: 'pre',
      load(id) {
        if (!id.endsWith('.wasm')) return null;
        return `export default new Uint8Array(${JSON.stringify([...readFileSync(id)])});`;
      },
    },
  ],
  test: {
    include: ['sdk/test/**/*.test.ts', 'trainer/test/**/*.test.ts', 'wasm/test/**/*.test.ts', 'e2e/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    // Browser and native tests are CPU heavy on small machines: run files one at a time.
    fileParallelism: false,
  },
});
