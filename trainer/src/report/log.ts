// Training logs as JSON lines: one object per line, e.g.
//   {"step": 100, "time": 12.5, "loss": 0.031, "losses": {"photo": 0.02, "mask": 0.01}, "lr": 0.001}
//   {"step": 500, "val": {"psnr": 28.1, "ssim": 0.91}}
// Nested objects are flattened with dots ("losses.photo", "val.psnr"); every numeric field
// becomes a series over "step" (or the line number when a line has no step).
import { existsSync, readFileSync } from 'node:fs';
import { ReportError } from './errors.js';
import type { Series } from './svg.js';

export type LogRecord = Record<string, number>;

export function flatten(obj: unknown, prefix = '', out: LogRecord = {}): LogRecord {
  if (obj && typeof obj === 'object' && !Array.isArray(obj)) {
    for (const [k, v] of Object.entries(obj as Record<string, unknown>)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else if (typeof obj === 'number' && prefix) out[prefix] = obj;
  return out;
}

/** Parses JSON lines; a malformed line is a ReportError naming the line. Blank lines are skipped. */
export function parseLog(text: string, source = 'log'): LogRecord[] {
  const out: LogRecord[] = [];
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (e) {
      throw new ReportError(`${source} line ${i + 1} is not JSON (${(e as Error).message}): each line must be one JSON object`, 'BAD_LOG');
    }
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new ReportError(`${source} line ${i + 1} is not a JSON object`, 'BAD_LOG');
    const r = flatten(v);
    if (r.step === undefined) r.step = out.length;
    out.push(r);
  });
  return out;
}

export function readLog(path: string): LogRecord[] {
  if (!existsSync(path)) throw new ReportError(`training log not found: ${path}`, 'NOT_A_RUN');
  return parseLog(readFileSync(path, 'utf8'), path);
}

/** The series of each field accepted by `pick`, against step, in log order. */
export function seriesOf(log: readonly LogRecord[], pick: (key: string) => boolean): Series[] {
  const keys: string[] = [];
  for (const r of log) for (const k of Object.keys(r)) if (k !== 'step' && k !== 'time' && pick(k) && !keys.includes(k)) keys.push(k);
  return keys.map((k) => ({ name: k, points: log.filter((r) => r[k] !== undefined).map((r) => [r.step, r[k]] as const) }));
}
