import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { UsageError, type Command } from './command.js';
import { ExportError, exportRun, type ExportResult } from '../export/export.js';
import { FitDataError } from '../fit/data.js';
import { atomicWrite } from '../fit/fit.js';

const usage = `Usage: dyntet-train export <run-dir> --out <avatar.dyntet> [options]

Bakes a fit run into a .dyntet asset (docs/asset-format.md): the canonical grid SDF and elastic
scale, the deformation and condition MLPs, the hash-grid tables and texture MLP, the training
clip's coefficient track with its per-frame deltas (a PCA basis), and the background plate.
Precision is lowered tier by tier (q16 -> q8, f32 -> f16, fewer basis vectors) until the file
fits the budget. Then held-out frames rendered from the asset by the reference renderer are
compared with the trained model's own renders (PSNR, live deformation and baked deltas).

Options:
  --out <file>          the asset to write
  --budget <size>       largest file size, e.g. 4MB, 2.5MB, 800KB, 0 for none (default 4MB)
  --basis <k>           most PCA components of the baked deltas (default 32; 0: no baked deltas).
                        Deltas that fail the check while the live deformation passes are
                        dropped: the asset is written again without them
  --device cpu|cuda     backend that loads the run (default cpu)
  --check <n>           held-out frames compared with the trainer (default 4; 0 skips)
  --min-psnr <dB>       fail when a checked frame is below this (default 35)
  --name <text>         avatar name in the metadata (default: the dataset's folder name)
  --attribution <text>  where the source video came from (stored in the metadata)
  --json                print the result as JSON instead of tables`;

export function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(B|KB|KiB|MB|MiB)?$/i.exec(s.trim());
  if (!m) throw new UsageError(`--budget needs a size such as 4MB or 800KB, got "${s}"`);
  const unit = (m[2] ?? 'B').toLowerCase();
  const mult = unit === 'kb' ? 1e3 : unit === 'kib' ? 1024 : unit === 'mb' ? 1e6 : unit === 'mib' ? 1024 * 1024 : 1;
  return Math.round(Number(m[1]) * mult);
}

/** True when some checked frame's baked render is below minPsnr while every live render passes. */
export function onlyBakedFails(checks: ExportResult['checks'], minPsnr: number): boolean {
  return checks.length > 0 && checks.every((c) => c.psnrLive >= minPsnr) && checks.some((c) => c.psnrBaked !== null && !(c.psnrBaked >= minPsnr));
}

export function formatTable(r: ExportResult): string {
  const lines = ['| chunk | bytes |', '| --- | ---: |'];
  for (const c of r.report.chunks) lines.push(`| ${c.type}${c.label ? ` (${c.label})` : ''} | ${c.bytes.toLocaleString('en-US')} |`);
  lines.push(`| **file** | **${r.report.totalBytes.toLocaleString('en-US')}** |`);
  lines.push('', `precision tier ${r.report.tier}: ${r.report.tierDescription}; ${r.report.activeVertices.toLocaleString('en-US')} active vertices` +
    (r.report.basis ? `; baked deltas ${r.report.basis} components, RMS error ${r.report.bakeRms.toExponential(2)} cm (max ${r.report.bakeMax.toExponential(2)})` : '; no baked deltas'));
  if (r.checks.length) {
    lines.push('', '| held-out frame | vs trainer, live (dB) | vs trainer, baked (dB) | vs real frame, live (dB) |', '| ---: | ---: | ---: | ---: |');
    for (const c of r.checks) lines.push(`| ${c.frame} | ${c.psnrLive.toFixed(2)} | ${c.psnrBaked === null ? '-' : c.psnrBaked.toFixed(2)} | ${c.psnrRealLive.toFixed(2)} |`);
    lines.push('', `asset vs trainer: lowest PSNR ${r.minPsnr.toFixed(2)} dB (reference renderer against the trained model, over the plate)`);
  }
  return lines.join('\n');
}

export default {
  summary: 'bake a fit run into a .dyntet asset within a byte budget',
  usage,
  async run(args: string[]): Promise<number> {
    let parsed;
    try {
      parsed = parseArgs({ args, allowPositionals: true, options: {
        out: { type: 'string' }, budget: { type: 'string', default: '4MB' }, basis: { type: 'string', default: '32' },
        device: { type: 'string', default: 'cpu' }, check: { type: 'string', default: '4' }, 'min-psnr': { type: 'string', default: '35' },
        name: { type: 'string' }, attribution: { type: 'string' }, json: { type: 'boolean' } } });
    } catch (e) { throw new UsageError((e as Error).message); }
    const { values: v, positionals } = parsed;
    if (positionals.length !== 1) throw new UsageError('give exactly one run directory (the --out of `dyntet-train fit`)');
    if (!v.out) throw new UsageError('--out <avatar.dyntet> is required');
    if (v.device !== 'cpu' && v.device !== 'cuda') throw new UsageError(`--device must be cpu or cuda, got ${v.device}`);
    const device = v.device;
    const maxBasis = Number(v.basis), check = Number(v.check), minPsnr = Number(v['min-psnr']);
    if (!Number.isInteger(maxBasis) || maxBasis < 0 || maxBasis > 32) throw new UsageError(`--basis must be an integer from 0 to 32, got ${v.basis}`);
    if (!Number.isInteger(check) || check < 0) throw new UsageError(`--check must be a non-negative integer, got ${v.check}`);
    if (!Number.isFinite(minPsnr)) throw new UsageError(`--min-psnr must be a number, got ${v['min-psnr']}`);
    const budget = parseSize(v.budget!);
    const attempt = async (basis: number): Promise<ExportResult> => {
      try {
        return await exportRun({ run: positionals[0], budget, maxBasis: basis, device, checkFrames: check, name: v.name, attribution: v.attribution });
      } catch (e) {
        if (e instanceof ExportError || e instanceof FitDataError) throw new UsageError(e.message);
        if (e instanceof Error && /^export: /.test(e.message)) throw new UsageError(e.message);
        throw e;
      }
    };
    let r = await attempt(maxBasis);
    // Baked deltas that fail the check while the live deformation passes: the clip is better
    // played through the MLP than from a basis too small for it, and the bytes go to precision.
    let bakeDropped: { basis: number; lowestBakedPsnr: number } | undefined;
    if (r.report.basis > 0 && onlyBakedFails(r.checks, minPsnr)) {
      const lowest = Math.min(...r.checks.map((c) => c.psnrBaked ?? Infinity));
      console.error(`dyntet-train export: the baked deltas (${r.report.basis} components) differ from the trained model (lowest ${lowest.toFixed(2)} dB < ${minPsnr}) while the live deformation passes; exporting without them (the clip plays through the deformation MLP)`);
      bakeDropped = { basis: r.report.basis, lowestBakedPsnr: lowest };
      r = await attempt(0);
    }
    atomicWrite(v.out, r.bytes);
    const summary = { out: v.out, bytes: r.report.totalBytes, tier: r.report.tier, tierDescription: r.report.tierDescription, basis: r.report.basis,
      bakeRms: r.report.bakeRms, chunks: r.report.chunks, checks: r.checks, minPsnr: r.minPsnr, ...(bakeDropped ? { bakeDropped } : {}) };
    atomicWrite(join(positionals[0], 'export.json'), JSON.stringify(summary, null, 2));
    if (v.json) console.log(JSON.stringify(summary));
    else console.log(`wrote ${v.out}\n\n${formatTable(r)}`);
    if (r.checks.length && !(r.minPsnr >= minPsnr)) {
      console.error(`dyntet-train export: the asset differs from the trained model (lowest PSNR ${r.minPsnr.toFixed(2)} dB < ${minPsnr}); the file was written for inspection`);
      return 1;
    }
    return 0;
  },
} satisfies Command;
