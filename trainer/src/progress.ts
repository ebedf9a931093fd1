// A terminal progress bar with rate and ETA, shared by the long-running commands.

export interface ProgressOptions {
  /** What is being counted, e.g. "frames" or "steps"; shown with the rate. */
  unit?: string;
  /** Where to draw; process.stderr by default. */
  stream?: NodeJS.WriteStream;
  /** Minimum milliseconds between redraws (default 100). */
  interval?: number;
  /** Bar width in characters (default 28). */
  width?: number;
  /** Clock in milliseconds; injectable so tests can step time. */
  now?: () => number;
}

/** Formats seconds as h:mm:ss or m:ss. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${String(r).padStart(2, '0')}` : `${m}:${String(r).padStart(2, '0')}`;
}

/**
 * Progress over a known total. On a TTY it redraws one line in place; elsewhere (CI logs, pipes)
 * it prints a plain line at most every 10% so logs stay short.
 */
export class Progress {
  readonly total: number;
  readonly label: string;
  private done = 0;
  private readonly start: number;
  private lastDraw = -Infinity;
  private lastDecile = -1;
  private readonly opts: Required<Omit<ProgressOptions, 'stream'>> & { stream: NodeJS.WriteStream };
  // Rate over recent updates, so the ETA follows speed changes (browser warm-up, cache hits).
  private readonly window: Array<[number, number]> = [];

  constructor(label: string, total: number, opts: ProgressOptions = {}) {
    if (!Number.isFinite(total) || total < 0) throw new RangeError(`progress total must be a non-negative number, got ${total}`);
    this.label = label;
    this.total = total;
    this.opts = { unit: 'items', interval: 100, width: 28, now: () => performance.now(), stream: process.stderr, ...opts };
    this.start = this.opts.now();
    this.window.push([this.start, 0]);
  }

  get value(): number {
    return this.done;
  }

  /** Items per second over the recent window (0 before the first update). */
  rate(): number {
    const [t0, n0] = this.window[0];
    const dt = (this.opts.now() - t0) / 1000;
    return dt > 0 ? (this.done - n0) / dt : 0;
  }

  /** Seconds left at the recent rate (Infinity when unknown). */
  eta(): number {
    const r = this.rate();
    return r > 0 ? (this.total - this.done) / r : Infinity;
  }

  /** The line as drawn now. */
  line(): string {
    const frac = this.total > 0 ? Math.min(1, this.done / this.total) : 1;
    const fill = Math.round(frac * this.opts.width);
    const bar = '#'.repeat(fill) + '-'.repeat(this.opts.width - fill);
    const elapsed = (this.opts.now() - this.start) / 1000;
    const tail = this.done >= this.total ? `in ${formatDuration(elapsed)}` : `ETA ${formatDuration(this.eta())}`;
    return `${this.label} [${bar}] ${this.done}/${this.total} ${this.rate().toFixed(1)} ${this.opts.unit}/s ${tail}`;
  }

  /** Advances by n (default 1). */
  tick(n = 1): void {
    this.update(this.done + n);
  }

  /** Sets the absolute count. */
  update(done: number): void {
    this.done = Math.min(this.total, Math.max(0, done));
    const t = this.opts.now();
    this.window.push([t, this.done]);
    while (this.window.length > 2 && t - this.window[0][0] > 5000) this.window.shift();
    if (this.opts.stream.isTTY) {
      if (t - this.lastDraw >= this.opts.interval || this.done >= this.total) {
        this.lastDraw = t;
        this.opts.stream.write(`\r${this.line()}\x1b[K`);
      }
    } else {
      const decile = this.total > 0 ? Math.floor((10 * this.done) / this.total) : 10;
      if (decile > this.lastDecile) {
        this.lastDecile = decile;
        this.opts.stream.write(`${this.line()}\n`);
      }
    }
  }

  /** Ends the bar (newline on a TTY). */
  finish(): void {
    this.update(this.total);
    if (this.opts.stream.isTTY) this.opts.stream.write('\n');
  }
}
