// `dyntet-train synth`: writes the synthetic test avatar, a deterministic .dyntet built from an
// analytic head by the native tool (native/tools/make_synthetic_avatar). A fixture for the player
// and the tests, not a trained avatar.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from './command.js';
import { UsageError } from './command.js';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** The native tool's path: $DYNTET_NATIVE_BUILD/tools or native/build/tools. */
export function synthToolPath(): string {
  const buildDir = process.env.DYNTET_NATIVE_BUILD ?? join(REPO_ROOT, 'native', 'build');
  return join(buildDir, 'tools', process.platform === 'win32' ? 'make_synthetic_avatar.exe' : 'make_synthetic_avatar');
}

export interface SynthOptions {
  out: string;
  /** Grid resolution R (cubes per axis), 4..192. */
  resolution?: number;
  /** Frame size of the camera and background plate. */
  width?: number;
  height?: number;
  /** Frames of the built-in clip (25 fps). */
  frames?: number;
}

/** Runs the native tool; throws UsageError with its message when it refuses. */
export function writeSyntheticAvatar(o: SynthOptions): string {
  const tool = synthToolPath();
  if (!existsSync(tool)) throw new UsageError(`the native tool ${tool} is not built: run \`npm run build:native\` (or ./dyntet demo, which builds everything) first`);
  const out = resolve(o.out);
  mkdirSync(dirname(out), { recursive: true });
  const args = ['write', '--out', out];
  if (o.resolution !== undefined) args.push('--resolution', String(o.resolution));
  if (o.width !== undefined && o.height !== undefined) args.push('--size', `${o.width}x${o.height}`);
  if (o.frames !== undefined) args.push('--frames', String(o.frames));
  const r = spawnSync(tool, args, { encoding: 'utf8' });
  if (r.error) throw new UsageError(`could not run ${tool}: ${r.error.message}`);
  if (r.status !== 0) throw new UsageError((r.stderr || r.stdout || `${tool} failed with status ${r.status}`).trim());
  return r.stdout.trim();
}

function intArg(flag: string, v: string | undefined, lo: number, hi: number): number {
  const n = v === undefined ? NaN : Number(v);
  if (!Number.isInteger(n) || n < lo || n > hi) throw new UsageError(`${flag} needs an integer in [${lo}, ${hi}], got "${v ?? ''}"`);
  return n;
}

export function parseSynthArgs(args: string[]): SynthOptions {
  const o: Partial<SynthOptions> = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const next = () => {
      const v = args[++i];
      if (v === undefined) throw new UsageError(`${a} needs a value`);
      return v;
    };
    if (a === '--out') o.out = next();
    else if (a === '--resolution') o.resolution = intArg(a, next(), 4, 192);
    else if (a === '--frames') o.frames = intArg(a, next(), 1, 100000);
    else if (a === '--size') {
      const v = next();
      const m = /^(\d+)x(\d+)$/.exec(v);
      if (!m) throw new UsageError(`--size needs WIDTHxHEIGHT, e.g. 256x256, got "${v}"`);
      o.width = intArg('--size width', m[1], 16, 4096);
      o.height = intArg('--size height', m[2], 16, 4096);
    } else throw new UsageError(`unknown option "${a}" (see dyntet-train synth --help)`);
  }
  if (!o.out) throw new UsageError('--out FILE.dyntet is required');
  return o as SynthOptions;
}

export default {
  summary: 'write the synthetic test avatar (a deterministic .dyntet from an analytic head)',
  usage: [
    'Usage: dyntet-train synth --out FILE.dyntet [--resolution R] [--size WxH] [--frames N]',
    '',
    'Writes the synthetic test avatar: an analytic head whose jaw opens under jawOpen and whose',
    'eyelids close under eyeBlinkLeft/eyeBlinkRight, encoded in the real model (grid SDF, condition',
    'encoder, deformation MLP, hash-grid texture), with a 3 s coefficient clip and a background',
    'plate. The same options give the same bytes. It is a test fixture, not a trained avatar.',
    '',
    'Options:',
    '  --out FILE        where to write the .dyntet (folders are created)',
    '  --resolution R    tetrahedral grid resolution, 4..192 (default 32)',
    '  --size WxH        frame size of the camera and background plate (default 256x256)',
    '  --frames N        frames of the built-in clip at 25 fps (default 75)',
  ].join('\n'),
  async run(args: string[]): Promise<number> {
    const o = parseSynthArgs(args);
    console.log(writeSyntheticAvatar(o));
    return 0;
  },
} satisfies Command;
