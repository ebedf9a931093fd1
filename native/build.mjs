#!/usr/bin/env node
// Configures and builds the native tree: node native/build.mjs [--test] [--cuda] [--release] [--fuzz]
//   --test     run ctest --output-on-failure after building
//   --cuda     CUDA build (DYNTET_CUDA=ON) into native/build-cuda
//   --release  Release instead of RelWithDebInfo
//   --fuzz     also build the libFuzzer target with clang into native/build-fuzz
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const args = new Set(process.argv.slice(2));
for (const a of args) {
  if (!['--test', '--cuda', '--release', '--fuzz'].includes(a)) {
    console.error(`native/build.mjs: unknown option ${a}; use --test, --cuda, --release or --fuzz`);
    process.exit(2);
  }
}

function have(cmd, versionArg = '--version') {
  const r = spawnSync(cmd, [versionArg], { stdio: 'ignore' });
  return r.status === 0;
}

function fail(msg) {
  console.error(`native/build.mjs: ${msg}`);
  process.exit(1);
}

if (!have('cmake')) fail('cmake not found on PATH: install it (apt-get install cmake, or pip install cmake) and retry');
const cxx = process.env.CXX ?? (args.has('--fuzz') ? 'clang++' : null);
if (cxx ? !have(cxx) : !have('c++') && !have('g++') && !have('clang++'))
  fail('no C++ compiler found: install one (apt-get install g++ or clang) or set CXX');
if (args.has('--cuda') && !have('nvcc'))
  fail('--cuda needs nvcc on PATH: install the CUDA toolkit (12 or newer) or build without --cuda');
if (args.has('--fuzz') && !have('clang++'))
  fail('--fuzz needs clang++ with libFuzzer: apt-get install clang libclang-rt-dev');

const buildDir = join(here, args.has('--fuzz') ? 'build-fuzz' : args.has('--cuda') ? 'build-cuda' : 'build');
mkdirSync(buildDir, { recursive: true });
const configure = ['-S', here, '-B', buildDir, `-DCMAKE_BUILD_TYPE=${args.has('--release') ? 'Release' : 'RelWithDebInfo'}`,
  `-DDYNTET_CUDA=${args.has('--cuda') ? 'ON' : 'OFF'}`, `-DDYNTET_FUZZ=${args.has('--fuzz') ? 'ON' : 'OFF'}`];
if (!existsSync(join(buildDir, 'CMakeCache.txt')) && have('ninja')) configure.push('-G', 'Ninja');
if (args.has('--fuzz')) configure.push('-DCMAKE_CXX_COMPILER=clang++', '-DCMAKE_C_COMPILER=clang');

function run(cmd, argv) {
  console.log(`$ ${cmd} ${argv.join(' ')}`);
  const r = spawnSync(cmd, argv, { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

run('cmake', configure);
run('cmake', ['--build', buildDir, '-j2']);
if (args.has('--test')) run('ctest', ['--test-dir', buildDir, '--output-on-failure']);
