// Builds wasm/as/loops.ts with AssemblyScript (SIMD on) into wasm/out/as/.
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
mkdirSync(join(root, 'wasm', 'out', 'as'), { recursive: true });
execFileSync(process.execPath, [join(root, 'node_modules', 'assemblyscript', 'bin', 'asc.js'), 'wasm/as/loops.ts', '-O3', '--runtime', 'stub', '--enable', 'simd',
  '--bindings', 'esm', '--initialMemory', '256', '-o', 'wasm/out/as/loops.wasm'], { cwd: root, stdio: 'inherit' });
