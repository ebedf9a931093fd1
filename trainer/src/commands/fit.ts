import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { UsageError, type Command } from './command.js';
import { checkDataset, FitDataError } from '../fit/data.js';
import { DEFAULT_FIT, FitConfigError, resolveFitOptions, runFit, type FitOptions } from '../fit/fit.js';

const usage = `Usage: dyntet-train fit <dataset> --out <run-dir> [options]

Trains a DynTet avatar on a dataset written by \`dyntet-train prepare\`.

Options:
  --out <dir>          run directory (checkpoint.bin, log.jsonl, run.json, val/<step>/*.png)
  --config <file>      JSON: {"steps", "batch", "size", "checkpointEvery", "validateEvery", "logEvery",
                       "conditionNoise", "model": {native trainer keys, see docs/training.md}}; defaults ${JSON.stringify(DEFAULT_FIT)}
  --device cpu|cuda    backend (default cpu)
  --steps <n>          overrides config "steps"
  --size <px>          overrides config "size" (train at a reduced size)
  --resume             continue from the run directory's last checkpoint
  --max-minutes <m>    stop (after checkpointing) once this much time has passed; continue with --resume
  --time-limit <m>     finish once this much time has passed even if fewer steps ran: final
                       validation, checkpoint and held-out renders, as at the last step
  --quiet              no progress bar`;

export default {
  summary: 'train an avatar on a prepared dataset',
  usage,
  async run(args: string[]): Promise<number> {
    let parsed;
    try {
      parsed = parseArgs({ args, allowPositionals: true, options: {
        out: { type: 'string' }, config: { type: 'string' }, device: { type: 'string', default: 'cpu' }, steps: { type: 'string' },
        size: { type: 'string' }, resume: { type: 'boolean' }, 'max-minutes': { type: 'string' }, 'time-limit': { type: 'string' }, quiet: { type: 'boolean' } } });
    } catch (e) { throw new UsageError((e as Error).message); }
    const { values: v, positionals } = parsed;
    if (positionals.length !== 1) throw new UsageError('give exactly one dataset directory');
    if (!v.out) throw new UsageError('--out <run-dir> is required');
    if (v.device !== 'cpu' && v.device !== 'cuda') throw new UsageError(`--device must be cpu or cuda, got ${v.device}`);
    let user: Partial<FitOptions> = {};
    if (v.config) {
      if (!existsSync(v.config)) throw new UsageError(`config file ${v.config} not found`);
      try { user = JSON.parse(readFileSync(v.config, 'utf8')); } catch (e) { throw new UsageError(`config ${v.config} is not valid JSON: ${(e as Error).message}`); }
    }
    if (v.steps !== undefined) user.steps = Number(v.steps);
    if (v.size !== undefined) user.size = Number(v.size);
    try {
      const options = resolveFitOptions(user);
      const { meta } = checkDataset(positionals[0]);
      const r = runFit({ dataset: positionals[0], out: v.out, options, device: v.device, resume: !!v.resume,
        maxMinutes: v['max-minutes'] !== undefined ? Number(v['max-minutes']) : undefined,
        timeLimitMinutes: v['time-limit'] !== undefined ? Number(v['time-limit']) : undefined, quiet: !!v.quiet, fullSize: meta.width });
      console.log(JSON.stringify(r));
      return 0;
    } catch (e) {
      if (e instanceof FitDataError || e instanceof FitConfigError) throw new UsageError(e.message);
      throw e;
    }
  },
} satisfies Command;
