// The @dyntet/player bundle: ESM, tree-shaken, types emitted beside it, and a minified copy of
// every entry under sdk/dist/min/ that bench/bundle_size.mjs measures (the published files stay
// readable; consumers minify with their own bundler). Build: npm run build:sdk.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Plugin, RollupOptions } from 'rollup';
import typescript from '@rollup/plugin-typescript';
import nodeResolve from '@rollup/plugin-node-resolve';
import { minify } from 'terser';

const root = dirname(fileURLToPath(import.meta.url));

/**
 * The SDK's entry points, in one place: `index` is the core (`@dyntet/player`); every other entry
 * is an optional part a page pays for only when it imports it (`@dyntet/player/<name>`). An entry
 * whose source does not exist yet is skipped with a warning, so the bundle builds while parts are
 * still being written. Keep sdk/package.json "exports" in step with this list.
 */
export const SDK_ENTRIES: Record<string, string> = {
  index: 'sdk/src/index.ts',
  reference: 'sdk/src/reference.ts',
  webcam: 'sdk/src/webcam.ts',
  onnx: 'sdk/src/onnx.ts',
  sources: 'sdk/src/sources/index.ts',
};

/**
 * WGSL without its comments and indentation: the commented files in shaders/ stay the source;
 * the bundle ships only what the compiler reads. WGSL has no string literals, so every `//` starts
 * a comment (the shaders use no block comments; a file with one is shipped as written).
 */
export function stripWgsl(src: string): string {
  if (src.includes('/*')) return src;
  return src
    .split('\n')
    .map((line) => line.replace(/\/\/.*$/, '').trim())
    .filter((line) => line.length > 0)
    .join('\n') + '\n';
}

/** `import code from './x.wgsl'` gives the shader source as a string (comments stripped). */
function wgslText(): Plugin {
  return {
    name: 'dyntet-wgsl',
    load(id) {
      if (!id.endsWith('.wgsl')) return null;
      return { code: `export default ${JSON.stringify(stripWgsl(readFileSync(id, 'utf8')))};`, map: { mappings: '' } };
    },
  };
}

/**
 * `import bytes from './x.wasm'` gives the module's bytes as a Uint8Array, inlined as base64 so
 * the package works unchanged in a browser page, behind any bundler and in Node (no file fetch,
 * no URL resolution). gzip takes back most of base64's third.
 */
function wasmInline(): Plugin {
  return {
    name: 'dyntet-wasm-inline',
    load(id) {
      if (!id.endsWith('.wasm')) return null;
      const b64 = readFileSync(id).toString('base64');
      const code =
        `const b64 = ${JSON.stringify(b64)};\n` +
        'function decode(s) {\n' +
        "  if (typeof atob === 'function') { const bin = atob(s); const out = new Uint8Array(bin.length); for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i); return out; }\n" +
        "  return new Uint8Array(globalThis.Buffer.from(s, 'base64'));\n" +
        '}\n' +
        'export default /*#__PURE__*/ decode(b64);\n';
      return { code, map: { mappings: '' } };
    },
  };
}

function presentEntries(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, src] of Object.entries(SDK_ENTRIES)) {
    if (existsSync(resolve(root, src))) out[name] = src;
    else if (name === 'index') throw new Error(`SDK core entry ${src} is missing: the bundle needs it`);
    else console.warn(`rollup: optional SDK entry "${name}" skipped (${src} does not exist yet)`);
  }
  return out;
}

const input = presentEntries();

function ts(outDir: string, declarations: boolean): Plugin {
  // tsconfig.rollup.json only anchors the compiler (it needs a config path); the SDK's options are here.
  return typescript({
    tsconfig: resolve(root, 'tsconfig.rollup.json'),
    include: [resolve(root, 'sdk/src') + '/**/*.ts'],
    filterRoot: root,
    compilerOptions: {
      target: 'ES2022',
      module: 'ESNext',
      moduleResolution: 'Bundler',
      lib: ['ES2022', 'DOM', 'DOM.Iterable'],
      types: ['@webgpu/types'],
      strict: true,
      skipLibCheck: true,
      isolatedModules: true,
      noEmit: false,
      allowImportingTsExtensions: false,
      declaration: declarations,
      ...(declarations ? { declarationDir: outDir } : {}),
      rootDir: resolve(root, 'sdk/src'),
      sourceMap: declarations,
      outDir,
    },
    noEmitOnError: true,
  });
}

// Optional parts may import heavy third-party packages (MediaPipe, onnxruntime-web): the page
// installs them, the core bundle never contains them.
const external = (id: string) => /^@mediapipe\//.test(id) || /^onnxruntime-web/.test(id);
const shared = { input, external, treeshake: { moduleSideEffects: false } } as const;
const chunks = { format: 'es', entryFileNames: '[name].js', chunkFileNames: 'chunks/[name]-[hash].js' } as const;

/**
 * Writes a minified copy of every emitted chunk to `dir`, from the same build (the TypeScript
 * pass, the slow part, runs once). Only bench/bundle_size.mjs reads it.
 */
function minifiedCopy(dir: string): Plugin {
  return {
    name: 'dyntet-minified-copy',
    async generateBundle(_options, bundle) {
      for (const [file, chunk] of Object.entries(bundle)) {
        if (chunk.type !== 'chunk') continue;
        const out = await minify(chunk.code, { ecma: 2020, module: true, compress: { passes: 2 } });
        const path = resolve(root, dir, file);
        mkdirSync(dirname(path), { recursive: true });
        writeFileSync(path, out.code ?? '');
      }
    },
  };
}

const config: RollupOptions[] = [
  {
    ...shared,
    plugins: [wgslText(), wasmInline(), nodeResolve({ browser: true }), ts('sdk/dist', true), minifiedCopy('sdk/dist/min')],
    output: { ...chunks, dir: 'sdk/dist', sourcemap: true },
  },
];

export default config;
