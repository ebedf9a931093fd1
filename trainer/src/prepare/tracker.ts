// Runs MediaPipe FaceLandmarker and selfie segmentation over decoded frames in headless Chromium.
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, extname, join, normalize } from 'node:path';
import type { AddressInfo } from 'node:net';
import { PrepareError } from './errors.js';
import { TRACKER_PAGE } from './tracker-page.js';

export interface RawFace {
  /** 478 x (x, y, z), normalised image coordinates as the tracker returns them. */
  landmarks: number[];
  /** [name, score] in the tracker's order. */
  blendshapes: Array<[string, number]>;
  /** Column-major 4x4 facial transformation matrix. */
  pose: number[];
}

export interface RawFrame {
  index: number;
  faces: RawFace[];
  /** Person matte, MATTE_SIZE^2 bytes (0-255), base64; empty on frames that were not segmented. */
  matte: string;
  ms: { track: number; matte: number };
}

export interface TrackerOptions {
  framesDir: string;
  modelPath: string;
  width: number;
  height: number;
  fps: number;
  numFaces?: number;
  /** Segment every Nth frame only (others get an empty matte). */
  matteEvery?: number;
  chromium?: string;
}

/** The segmenter's own output resolution: mattes cross the browser boundary at this size. */
export const MATTE_SIZE = 256;

const MIME: Record<string, string> = {
  '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm',
  '.png': 'image/png', '.data': 'application/octet-stream', '.binarypb': 'application/octet-stream',
  '.tflite': 'application/octet-stream', '.task': 'application/octet-stream',
};

function packageDir(name: string): string {
  const req = createRequire(import.meta.url);
  try {
    return dirname(req.resolve(name));
  } catch {
    throw new PrepareError(`the npm package ${name} is not installed: run \`npm install\` in the dyntet checkout`, 'BROWSER_MISSING');
  }
}

/** Finds a Chromium: $DYNTET_CHROMIUM, $CHROME_PATH, then the usual system locations. */
export function findChromium(explicit?: string): string {
  const candidates = [explicit, process.env.DYNTET_CHROMIUM, process.env.CHROME_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome']
    .filter((p): p is string => !!p);
  for (const c of candidates) if (existsSync(c)) return c;
  throw new PrepareError(
    'no Chromium found for face tracking: install it (Debian/Ubuntu: `apt-get install chromium`) or set DYNTET_CHROMIUM to a Chrome/Chromium binary',
    'BROWSER_MISSING',
  );
}

/** A running tracker: a local HTTP server plus one headless Chromium page. */
export class Tracker {
  private constructor(
    private readonly server: Server,
    private readonly browser: import('playwright-core').Browser,
    private readonly page: import('playwright-core').Page,
    private readonly fps: number,
  ) {}

  static async start(opts: TrackerOptions): Promise<Tracker> {
    const roots: Record<string, string> = {
      '/tasks-vision/': packageDir('@mediapipe/tasks-vision'),
      '/selfie/': packageDir('@mediapipe/selfie_segmentation'),
      '/frames/': opts.framesDir,
    };
    const server = createServer((req, res) => {
      const url = decodeURIComponent((req.url ?? '/').split('?')[0]);
      let file: string | undefined;
      if (url === '/') {
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end(TRACKER_PAGE);
        return;
      }
      if (url === '/model.task') file = opts.modelPath;
      for (const [prefix, root] of Object.entries(roots)) {
        if (url.startsWith(prefix)) {
          const rel = normalize(url.slice(prefix.length));
          if (!rel.startsWith('..')) file = join(root, rel);
        }
      }
      if (!file || !existsSync(file)) {
        res.writeHead(404);
        res.end();
        return;
      }
      res.writeHead(200, { 'content-type': MIME[extname(file)] ?? 'application/octet-stream' });
      res.end(readFileSync(file));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const { chromium } = await import('playwright-core');
    let browser;
    try {
      browser = await chromium.launch({
        executablePath: findChromium(opts.chromium),
        headless: true,
        args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run',
          '--disable-quic', '--use-angle=swiftshader', '--enable-unsafe-swiftshader'],
      });
    } catch (e) {
      server.close();
      if (e instanceof PrepareError) throw e;
      throw new PrepareError(`could not start headless Chromium for face tracking: ${(e as Error).message.split('\n')[0]}`, 'BROWSER_MISSING');
    }
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`http://127.0.0.1:${port}/`);
    try {
      await page.waitForFunction(() => typeof (window as unknown as { initTracker?: unknown }).initTracker === 'function', null, { timeout: 30000 });
      await page.evaluate(
        (o) => (window as unknown as { initTracker(o: unknown): Promise<boolean> }).initTracker(o),
        { numFaces: opts.numFaces ?? 2, width: opts.width, height: opts.height, matteSize: MATTE_SIZE, matteEvery: opts.matteEvery ?? 1 },
      );
    } catch (e) {
      await browser.close();
      server.close();
      const msg = [(e as Error).message.split('\n')[0], ...errors].join('; ');
      throw new PrepareError(`the face tracker failed to start (${msg}): check that --face-model is a MediaPipe face_landmarker.task file`, 'MODEL_MISSING');
    }
    return new Tracker(server, browser, page, opts.fps);
  }

  /** Tracks frames [start, end) in order (VIDEO mode: call with increasing ranges). */
  async track(start: number, end: number): Promise<RawFrame[]> {
    const json = await this.page.evaluate(
      ([s, e, f]) => (window as unknown as { trackBatch(s: number, e: number, f: number): Promise<string> }).trackBatch(s, e, f),
      [start, end, this.fps] as const,
    );
    return JSON.parse(json) as RawFrame[];
  }

  async close(): Promise<void> {
    await this.browser.close().catch(() => {});
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
