// `dyntet-train demo`: serves the gallery (demos/) with the embedded default avatar on 127.0.0.1
// and prints its address; `--screenshot OUT.png` renders one gallery frame in headless Chromium
// instead; `--sheet` renders the default avatar at a few expressions and through its built-in
// clip on the CPU (no GPU, no browser) and writes a contact sheet PNG, the stills, and an MP4 when
// ffmpeg is on PATH. Sheet frames come from the reference renderer (native/core/render_ref.h)
// through the native tool.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { basename, dirname, extname, join, posix, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { blit, createImage, decodePng, encodePng, resize, type Image } from '../image/index.js';
import type { Command } from './command.js';
import { UsageError } from './command.js';
import { synthToolPath, writeSyntheticAvatar } from './synth.js';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
/** The embedded default: the avatar trained on may_5s (demos/avatars/README.md says how it was made). */
export const DEFAULT_AVATAR = join(REPO_ROOT, 'demos', 'avatars', 'may_5s.dyntet');
/** The synthetic test head, generated into build/ when the trained avatar is absent. */
export const SYNTHETIC_AVATAR = join(REPO_ROOT, 'build', 'fixtures', 'default-avatar.dyntet');
/** Clip frames the demo renders unless --frames says otherwise (the CPU renders ~1 frame/s at 512x512). */
export const DEFAULT_CLIP_FRAMES = 50;

/**
 * The expressions of the contact sheet's first row. Each starts from the avatar's rest expression
 * (its clip's median blendshapes, the tool's --rest) and sets a few: a trained avatar has only seen
 * the tracker's coefficients, and all-zero blendshapes lie far outside them (smeared eyes, streaked
 * hair on the may_5s avatar).
 */
export const STILLS: { name: string; label: string; args: string[] }[] = [
  { name: 'neutral', label: 'rest (the clip\'s median blendshapes)', args: [] },
  { name: 'jaw-half', label: 'jawOpen 0.5', args: ['--set', 'jawOpen=0.5'] },
  { name: 'jaw-open', label: 'jawOpen 1', args: ['--set', 'jawOpen=1'] },
  { name: 'blink', label: 'eyeBlinkLeft+Right 1', args: ['--set', 'eyeBlinkLeft=1', '--set', 'eyeBlinkRight=1'] },
  { name: 'wink', label: 'eyeBlinkLeft 1', args: ['--set', 'eyeBlinkLeft=1'] },
  { name: 'turn-left', label: 'yaw +30, jawOpen 0.6', args: ['--yaw', '30', '--set', 'jawOpen=0.6'] },
  { name: 'turn-right', label: 'yaw -30', args: ['--yaw', '-30'] },
  { name: 'look-down', label: 'pitch +20, blink 0.5', args: ['--pitch', '20', '--set', 'eyeBlinkLeft=0.5', '--set', 'eyeBlinkRight=0.5'] },
];

export interface DemoOptions {
  /** serve: the gallery on 127.0.0.1 (the default); sheet: the CPU contact sheet; screenshot: one gallery frame, headless. */
  mode: 'serve' | 'sheet' | 'screenshot';
  out: string;
  avatar?: string;
  clipFrames?: number;
  video: boolean;
  port?: number;
  screenshot?: string;
  /** Avatar canvas size of --screenshot, in pixels. */
  size?: number;
}

/** Options that only the contact sheet reads. */
const SHEET_ONLY = ['--out', '--frames', '--no-video'];

export function parseArgs(args: string[]): DemoOptions {
  const o: DemoOptions = { mode: 'serve', out: 'out', video: true };
  const seen: string[] = [];
  const modes = new Set<DemoOptions['mode']>();
  const int = (a: string, v: string, min: number, max: number, what: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`${a} needs ${what}, got "${v}"`);
    return n;
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    seen.push(a);
    const next = () => {
      const v = args[++i];
      if (v === undefined) throw new UsageError(`${a} needs a value`);
      return v;
    };
    if (a === '--out') o.out = next();
    else if (a === '--avatar') o.avatar = next();
    else if (a === '--frames') o.clipFrames = int(a, next(), 1, 100000, 'a positive integer');
    else if (a === '--no-video') o.video = false;
    else if (a === '--sheet') modes.add('sheet');
    else if (a === '--serve') modes.add('serve');
    else if (a === '--port') o.port = int(a, next(), 0, 65535, 'a port number 0-65535');
    else if (a === '--screenshot') { o.screenshot = next(); modes.add('screenshot'); }
    else if (a === '--size') o.size = int(a, next(), 16, 2048, 'a size in pixels, 16-2048');
    else throw new UsageError(`unknown option "${a}" (see dyntet-train demo --help)`);
  }
  if (modes.size > 1) throw new UsageError(`${[...modes].map((m) => `--${m}`).join(' and ')} are different modes: pick one`);
  o.mode = [...modes][0] ?? 'serve';
  const misplaced = SHEET_ONLY.filter((k) => seen.includes(k));
  if (o.mode !== 'sheet' && misplaced.length)
    throw new UsageError(`${misplaced.join(', ')} ${misplaced.length > 1 ? 'apply' : 'applies'} to the CPU contact sheet: add --sheet`);
  if (o.mode === 'sheet' && (o.port !== undefined || o.size !== undefined)) throw new UsageError('--port and --size apply to the gallery, not to --sheet');
  return o;
}

function runTool(args: string[]): string {
  const tool = synthToolPath();
  if (!existsSync(tool)) throw new UsageError(`the native renderer ${tool} is not built: run \`npm run build:native\` (./dyntet demo builds everything)`);
  const r = spawnSync(tool, args, { encoding: 'utf8' });
  if (r.error) throw new UsageError(`could not run ${tool}: ${r.error.message}`);
  if (r.status !== 0) throw new UsageError((r.stderr || r.stdout || `${tool} failed with status ${r.status}`).trim());
  return r.stdout.trim();
}

/**
 * The tool's RGBA frame as RGB. The native renderer composites over RGBA8 plates itself; a PNG
 * plate (what `export` writes) it leaves to us: the frame is then premultiplied over black with
 * coverage in alpha, and out = rgb + (1 - alpha) * plate, render_ref.h's step 8.
 */
function readRgba(path: string, width: number, height: number, plate?: Image): Image {
  const bytes = readFileSync(path);
  if (bytes.length !== width * height * 4) throw new Error(`${path}: expected ${width * height * 4} bytes of RGBA, got ${bytes.length}`);
  const img = createImage(width, height, 3);
  for (let i = 0, j = 0, p = 0; i < bytes.length; i += 4, j += 3, p++) {
    const under = plate ? 1 - bytes[i + 3] / 255 : 0;
    for (let c = 0; c < 3; c++) img.data[j + c] = Math.min(255, Math.round(bytes[i + c] + under * (plate ? plate.data[p * plate.channels + c] : 0)));
  }
  return img;
}

/** The asset's plate when it is an encoded image the native renderer does not decode, at the frame size. */
async function encodedPlate(avatar: string, width: number, height: number): Promise<Image | undefined> {
  const { decodeAsset } = await import('@dyntet/player');
  const plate = (await decodeAsset(new Uint8Array(readFileSync(avatar)))).plate;
  if (!plate || plate.encoding !== 'png') return undefined;
  const img = decodePng(plate.bytes);
  return img.width === width && img.height === height ? img : resize(img, width, height);
}

function frameSize(avatar: string): { width: number; height: number } {
  // The tool prints "rendered FILE at WxH"; render one still to learn the size without parsing the asset here.
  const probe = join(mkdtempSync(join(tmpdir(), 'dyntet-demo-')), 'probe.rgba');
  try {
    const m = /at (\d+)x(\d+)/.exec(runTool(['render', '--in', avatar, '--out', probe]));
    if (!m) throw new Error('the renderer did not report the frame size');
    return { width: Number(m[1]), height: Number(m[2]) };
  } finally {
    rmSync(dirname(probe), { recursive: true, force: true });
  }
}

function haveFfmpeg(): boolean {
  return spawnSync('ffmpeg', ['-version'], { stdio: 'ignore' }).status === 0;
}

/** What the contact sheet reads. */
export type SheetOptions = Pick<DemoOptions, 'out' | 'avatar' | 'clipFrames' | 'video'>;

export async function runDemo(o: SheetOptions): Promise<{ sheet: string; video?: string; stills: string[] }> {
  const t0 = Date.now();
  let avatar = o.avatar ? resolve(o.avatar) : existsSync(DEFAULT_AVATAR) ? DEFAULT_AVATAR : SYNTHETIC_AVATAR;
  if (o.avatar && !existsSync(avatar)) throw new UsageError(`--avatar ${o.avatar}: no such file`);
  if (!o.avatar && !existsSync(avatar)) {
    console.log('generating the default avatar (synthetic test head, grid R=48, 320x320)...');
    console.log(writeSyntheticAvatar({ out: avatar, resolution: 48, width: 320, height: 320 }));
  }
  avatar = resolve(avatar);
  const outDir = resolve(o.out);
  mkdirSync(join(outDir, 'stills'), { recursive: true });
  const { width, height } = frameSize(avatar);
  const plate = await encodedPlate(avatar, width, height);

  const stills: Image[] = [];
  const stillPaths: string[] = [];
  const work = mkdtempSync(join(tmpdir(), 'dyntet-demo-'));
  try {
    for (const s of STILLS) {
      const raw = join(work, `${s.name}.rgba`);
      runTool(['render', '--in', avatar, '--out', raw, '--rest', ...s.args]);
      const img = readRgba(raw, width, height, plate);
      const png = join(outDir, 'stills', `${s.name}.png`);
      writeFileSync(png, encodePng(img));
      stills.push(img);
      stillPaths.push(png);
    }
    const clipArgs = ['render', '--in', avatar, '--clip', '0', '--out', join(work, 'clip_')];
    clipArgs.push('--frames', String(o.clipFrames ?? DEFAULT_CLIP_FRAMES));
    const clipMsg = runTool(clipArgs);
    const nFrames = Number(/rendered (\d+) frames/.exec(clipMsg)?.[1] ?? 0);
    const clipFrames: Image[] = [];
    for (let t = 0; t < nFrames; t++) clipFrames.push(readRgba(join(work, `clip_${String(t).padStart(4, '0')}.rgba`), width, height, plate));

    // Contact sheet: the stills in the first row(s), 8 evenly spaced clip frames below.
    const cols = 4;
    const strip = Array.from({ length: Math.min(8, nFrames) }, (_, k) => clipFrames[Math.floor((k * nFrames) / Math.min(8, nFrames))]);
    const cells = [...stills, ...strip];
    const rows = Math.ceil(cells.length / cols);
    const gap = 4;
    const sheet = createImage(cols * width + (cols - 1) * gap, rows * height + (rows - 1) * gap, 3);
    sheet.data.fill(255);
    cells.forEach((img, k) => blit(sheet, img, (k % cols) * (width + gap), Math.floor(k / cols) * (height + gap)));
    const sheetPath = join(outDir, 'contact_sheet.png');
    writeFileSync(sheetPath, encodePng(sheet));

    let video: string | undefined;
    if (o.video && nFrames > 0 && haveFfmpeg()) {
      video = join(outDir, 'clip.mp4');
      const raw = Buffer.concat(clipFrames.map((f) => Buffer.from(f.data)));
      const r = spawnSync('ffmpeg', ['-v', 'error', '-y', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${width}x${height}`, '-r', '25', '-i', '-',
        '-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-crf', '18', video], { input: raw });
      if (r.status !== 0) {
        console.warn(`ffmpeg could not write the MP4 (${String(r.stderr).trim()}); the PNGs are complete`);
        video = undefined;
      }
    }
    const legend = [
      `Contact sheet of ${relative(process.cwd(), avatar) || avatar} (${width}x${height}), left to right, top to bottom:`,
      ...STILLS.map((s, k) => `  ${k + 1}. ${s.label}`),
      '  (each still: the rest expression with the blendshapes named set, the clip\'s first head pose turned as named)',
      `  then ${strip.length} evenly spaced frames of the avatar's built-in clip (${nFrames} frames at 25 fps)`,
      'Rendered on the CPU by the reference renderer (native/core/render_ref.h), the same math the player runs.',
    ].join('\n');
    writeFileSync(join(outDir, 'contact_sheet.txt'), legend + '\n');
    console.log(legend);
    console.log(`\nwrote ${sheetPath}`);
    console.log(`wrote ${stillPaths.length} stills to ${join(outDir, 'stills')}`);
    if (video) console.log(`wrote ${video}`);
    else if (o.video) console.log('no MP4: ffmpeg is not on PATH (install it to get clip.mp4)');
    console.log(`done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    return { sheet: sheetPath, video, stills: stillPaths };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

export default {
  summary: 'serve the gallery with the default avatar on 127.0.0.1 (--screenshot, --sheet: no display needed)',
  usage: [
    'Usage: dyntet-train demo [--port N] [--avatar FILE.dyntet]',
    '       dyntet-train demo --screenshot OUT.png [--size PX] [--avatar FILE.dyntet]',
    '       dyntet-train demo --sheet [--out DIR] [--avatar FILE.dyntet] [--frames N] [--no-video]',
    '',
    'By default, serves the gallery (demos/, built into demos/dist when missing or older than its',
    'sources) on 127.0.0.1 and prints its address: the default avatar playing its clip, sliders for',
    'the 52 blendshapes and the head angles, webcam and ONNX-model driving, and any .dyntet dropped',
    'on the page. Ctrl+C (or SIGTERM) stops the server.',
    '',
    'The default avatar is demos/avatars/may_5s.dyntet, trained on the may_5s clip (see',
    'demos/avatars/README.md); without it, the synthetic test head (generated into build/fixtures).',
    '',
    'Options:',
    '  --port N             port of the gallery (default 8080, or a free one when 8080 is taken;',
    '                       0 always picks a free one)',
    '  --avatar FILE        also serve this .dyntet and open it (with --sheet: render it instead)',
    '  --screenshot OUT.png instead of serving: render one frame of the avatar page in headless',
    '                       Chromium (WebGPU, software where there is no GPU) and write OUT.png',
    '  --size PX            avatar size of --screenshot (default 256)',
    '  --serve              serve the gallery (the default; kept for scripts)',
    '',
    'For machines without a browser GPU or without Chromium: --sheet renders the avatar at a few',
    'expressions and through its built-in clip with the CPU reference renderer and writes',
    'DIR/contact_sheet.png, DIR/contact_sheet.txt (what each cell shows), DIR/stills/*.png and,',
    'when ffmpeg is on PATH, DIR/clip.mp4.',
    '  --sheet              the CPU contact sheet instead of the gallery',
    '  --out DIR            its output folder (default ./out)',
    `  --frames N           render the first N frames of the clip (default ${DEFAULT_CLIP_FRAMES})`,
    '  --no-video           skip the MP4',
  ].join('\n'),
  async run(args: string[]): Promise<number> {
    const o = parseArgs(args);
    if (o.mode === 'sheet') {
      await runDemo(o);
      return 0;
    }
    if (o.mode === 'screenshot') return screenshotGallery(o);
    return serveUntilStopped(o);
  },
} satisfies Command;

const GALLERY_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.mjs': 'text/javascript', '.css': 'text/css', '.wasm': 'application/wasm',
  '.json': 'application/json', '.png': 'image/png', '.mp4': 'video/mp4', '.webm': 'video/webm', '.dyntet': 'application/octet-stream',
};
export const GALLERY_DIST = join(REPO_ROOT, 'demos', 'dist');

/** Newest modification time (ms) of the files under `path` (a file or a folder), 0 when absent. */
function newest(path: string): number {
  if (!existsSync(path)) return 0;
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  return readdirSync(path).reduce((m, f) => Math.max(m, newest(join(path, f))), st.mtimeMs);
}

/** Builds demos/dist with demos/build.mjs when it is missing or older than what it is built from. */
export async function ensureGallery(): Promise<string> {
  const built = newest(join(GALLERY_DIST, 'index.html'));
  const inputs = ['demos/src', 'demos/index.html', 'demos/build.mjs', 'demos/avatars', 'sdk/dist'].map((p) => newest(join(REPO_ROOT, p)));
  if (built && inputs.every((t) => t <= built)) return GALLERY_DIST;
  if (!existsSync(join(REPO_ROOT, 'sdk', 'dist', 'index.js'))) throw new UsageError('the SDK is not built: run `npm run build` (./dyntet demo builds everything)');
  if (!existsSync(SYNTHETIC_AVATAR)) writeSyntheticAvatar({ out: SYNTHETIC_AVATAR, resolution: 48, width: 320, height: 320 });
  console.log('building the gallery (demos/build.mjs)...');
  const { buildGallery } = (await import(pathToFileURL(join(REPO_ROOT, 'demos', 'build.mjs')).href)) as { buildGallery(out: string): Promise<string> };
  // Built beside, then swapped in: a build cut short (Ctrl+C) never leaves a half gallery that looks current.
  const tmp = join(REPO_ROOT, 'build', `gallery-${process.pid}`);
  try {
    await buildGallery(tmp);
    rmSync(GALLERY_DIST, { recursive: true, force: true });
    renameSync(tmp, GALLERY_DIST);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return GALLERY_DIST;
}

export interface GalleryServer {
  /** http://127.0.0.1:PORT/ */
  url: string;
  /** Page address that opens `avatar` (or the index). */
  page: string;
  close(): Promise<void>;
}

/**
 * Serves demos/dist on 127.0.0.1 (a secure context: WebGPU and the camera work there). An
 * --avatar file is served as user/NAME and the page address opens it. A port of undefined means
 * 8080, or a free port when 8080 is taken.
 */
export async function startGalleryServer(o: { port?: number; avatar?: string } = {}): Promise<GalleryServer> {
  const dist = await ensureGallery();
  let userPath = '';
  let userFile = '';
  if (o.avatar) {
    userFile = resolve(o.avatar);
    if (!existsSync(userFile)) throw new UsageError(`--avatar ${o.avatar}: no such file`);
    userPath = `user/${basename(userFile).replace(/[^A-Za-z0-9._-]/g, '_')}`;
  }
  const server = createServer((req, res) => {
    let path: string;
    try {
      path = posix.normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
    } catch {
      return void res.writeHead(400).end('bad request');
    }
    const file = userPath && path === `/${userPath}` ? userFile : join(dist, path.endsWith('/') ? path + 'index.html' : path);
    if (path.includes('..') || !existsSync(file) || !statSync(file).isFile()) return void res.writeHead(404).end('not found');
    res.writeHead(200, { 'content-type': GALLERY_TYPES[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-cache' });
    res.end(req.method === 'HEAD' ? undefined : readFileSync(file));
  });
  const listen = (port: number) => new Promise<void>((ok, fail) => {
    const onError = (e: Error) => fail(e);
    server.once('error', onError).listen(port, '127.0.0.1', () => { server.off('error', onError); ok(); });
  });
  try {
    await listen(o.port ?? 8080);
  } catch (e) {
    if (o.port !== undefined || (e as NodeJS.ErrnoException).code !== 'EADDRINUSE')
      throw new UsageError(`cannot listen on 127.0.0.1:${o.port ?? 8080} (${(e as Error).message}): pick another port with --port`);
    await listen(0); // 8080 is taken: any free port
  }
  const addr = server.address();
  const url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/`;
  const page = userPath ? `${url}?src=${encodeURIComponent(userPath)}#avatar=${encodeURIComponent(userPath)}` : url;
  return {
    url,
    page,
    close: () => new Promise<void>((ok) => {
      server.close(() => ok());
      server.closeAllConnections(); // keep-alive connections of an open browser tab
    }),
  };
}

/** `dyntet-train demo`: serves until Ctrl+C or SIGTERM, then closes the server and returns 0. */
async function serveUntilStopped(o: DemoOptions): Promise<number> {
  const g = await startGalleryServer(o);
  console.log([
    `gallery: ${g.page}`,
    '  open it in a browser with WebGPU (Chrome, Edge); Ctrl+C stops the server.',
    '  no display? `./dyntet demo --screenshot out.png` renders a frame headlessly; `./dyntet demo --sheet` renders a contact sheet on the CPU.',
  ].join('\n'));
  // The handlers stay installed (signal handles do not keep Node alive): a second signal while
  // closing, e.g. Ctrl+C reaching both ./dyntet and this process, is not fatal.
  const signal = await new Promise<NodeJS.Signals>((ok) => {
    process.on('SIGINT', ok);
    process.on('SIGTERM', ok);
  });
  await g.close();
  console.log(`gallery stopped (${signal})`);
  return 0;
}

/** --screenshot: the avatar page in headless Chromium (WebGPU, SwiftShader without a GPU), one frame to a PNG. */
async function screenshotGallery(o: DemoOptions): Promise<number> {
  const g = await startGalleryServer({ port: 0, avatar: o.avatar });
  try {
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({
      executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
      headless: true,
      args: ['--no-sandbox', '--no-first-run', '--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-vulkan=swiftshader', '--use-angle=swiftshader'],
    }).catch((e: Error) => {
      throw new UsageError(`could not start Chromium (${e.message.split('\n')[0]}): install it (apt-get install chromium) or set CHROMIUM; --sheet needs no browser`);
    });
    try {
      const page = await browser.newPage();
      const size = o.size ?? 256;
      const id = o.avatar ? new URL(g.page).hash.slice('#avatar='.length) : 'default';
      const search = new URL(g.page).search.replace(/^\?/, '');
      await page.goto(`${g.url}index.html?size=${size}${search ? `&${search}` : ''}#avatar=${id}`);
      await page.waitForFunction(() => Number(document.getElementById('avatar')?.dataset.frames ?? 0) >= 1 || !document.getElementById('error')?.hidden,
        undefined, { timeout: 300_000 });
      if (await page.locator('#error:not([hidden])').count()) throw new UsageError(`the gallery reported: ${await page.locator('#error').textContent()}`);
      // Paused, the GPU's queue drains and the canvas holds the frame of the time it stopped at.
      await page.click('#pause', { force: true }).catch(() => {});
      await page.locator('#avatar').screenshot({ path: resolve(o.screenshot!), timeout: 300_000 });
    } finally {
      await browser.close();
    }
    console.log(`wrote ${resolve(o.screenshot!)}`);
    return 0;
  } finally {
    await g.close();
  }
}
