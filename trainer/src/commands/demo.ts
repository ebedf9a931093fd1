// `dyntet-train demo`: renders the default avatar at a few expressions and through its built-in
// clip on the CPU (no GPU needed) and writes a contact sheet PNG, the stills, and an MP4 when
// ffmpeg is on PATH. Frames come from the reference renderer (native/core/render_ref.h) through
// the native tool. Until a trained default avatar ships, the default is the synthetic test
// avatar (dyntet-train synth), generated on first use.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { blit, createImage, decodePng, encodePng, resize, type Image } from '../image/index.js';
import type { Command } from './command.js';
import { UsageError } from './command.js';
import { synthToolPath, writeSyntheticAvatar } from './synth.js';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
/** Where the generated default avatar lives (build/ is not committed). */
/** The embedded default: the avatar trained on may_5s (demos/avatars/README.md says how it was made). */
export const DEFAULT_AVATAR = join(REPO_ROOT, 'demos', 'avatars', 'may_5s.dyntet');
/** The synthetic test head, generated into build/ when the trained avatar is absent. */
export const SYNTHETIC_AVATAR = join(REPO_ROOT, 'build', 'fixtures', 'default-avatar.dyntet');
/** Clip frames the demo renders unless --frames says otherwise (the CPU renders ~1 frame/s at 512x512). */
export const DEFAULT_CLIP_FRAMES = 50;

/** The expressions of the contact sheet's first row. */
export const STILLS: { name: string; label: string; args: string[] }[] = [
  { name: 'neutral', label: 'neutral', args: [] },
  { name: 'jaw-half', label: 'jawOpen 0.5', args: ['--set', 'jawOpen=0.5'] },
  { name: 'jaw-open', label: 'jawOpen 1', args: ['--set', 'jawOpen=1'] },
  { name: 'blink', label: 'eyeBlinkLeft+Right 1', args: ['--set', 'eyeBlinkLeft=1', '--set', 'eyeBlinkRight=1'] },
  { name: 'wink', label: 'eyeBlinkLeft 1', args: ['--set', 'eyeBlinkLeft=1'] },
  { name: 'turn-left', label: 'yaw +30, jawOpen 0.6', args: ['--yaw', '30', '--set', 'jawOpen=0.6'] },
  { name: 'turn-right', label: 'yaw -30', args: ['--yaw', '-30'] },
  { name: 'look-down', label: 'pitch +20, blink 0.5', args: ['--pitch', '20', '--set', 'eyeBlinkLeft=0.5', '--set', 'eyeBlinkRight=0.5'] },
];

interface DemoOptions {
  out: string;
  avatar?: string;
  clipFrames?: number;
  video: boolean;
  serve?: boolean;
  port?: number;
  screenshot?: string;
}

function parseArgs(args: string[]): DemoOptions {
  const o: DemoOptions = { out: 'out', video: true };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const next = () => {
      const v = args[++i];
      if (v === undefined) throw new UsageError(`${a} needs a value`);
      return v;
    };
    if (a === '--out') o.out = next();
    else if (a === '--avatar') o.avatar = next();
    else if (a === '--frames') {
      const v = next();
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1 || n > 100000) throw new UsageError(`--frames needs a positive integer, got "${v}"`);
      o.clipFrames = n;
    } else if (a === '--no-video') o.video = false;
    else if (a === '--serve') o.serve = true;
    else if (a === '--port') {
      const v = next();
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0 || n > 65535) throw new UsageError(`--port needs a port number 0-65535, got "${v}"`);
      o.port = n;
    } else if (a === '--screenshot') o.screenshot = next();
    else throw new UsageError(`unknown option "${a}" (see dyntet-train demo --help)`);
  }
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

export async function runDemo(o: DemoOptions): Promise<{ sheet: string; video?: string; stills: string[] }> {
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
      runTool(['render', '--in', avatar, '--out', raw, ...s.args]);
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
  summary: 'render the default avatar on the CPU: contact sheet PNG (+ MP4) in ./out',
  usage: [
    'Usage: dyntet-train demo [--out DIR] [--avatar FILE.dyntet] [--frames N] [--no-video]',
    '',
    'Renders an avatar at a few expressions and through its built-in clip with the CPU renderer',
    '(no GPU) and writes DIR/contact_sheet.png, DIR/contact_sheet.txt (what each cell shows),',
    'DIR/stills/*.png and, when ffmpeg is on PATH, DIR/clip.mp4.',
    '',
    'The default avatar is demos/avatars/may_5s.dyntet, trained on the may_5s clip (see',
    'demos/avatars/README.md); without it, the synthetic test head (generated into build/fixtures).',
    '',
    'Options:',
    '  --out DIR            output folder (default ./out)',
    '  --avatar FILE        render this .dyntet instead of the default avatar',
    `  --frames N           render the first N frames of the clip (default ${DEFAULT_CLIP_FRAMES})`,
    '  --no-video           skip the MP4',
    '  --serve              instead: serve the gallery (demos/) on 127.0.0.1 and print its address',
    '  --port N             port for --serve (default 8080; 0 picks a free one)',
    '  --screenshot OUT.png instead: render a gallery frame headlessly in Chromium (WebGPU) to OUT.png',
  ].join('\n'),
  async run(args: string[]): Promise<number> {
    const o = parseArgs(args);
    if (o.serve || o.screenshot) return serveGallery(o);
    await runDemo(o);
    return 0;
  },
} satisfies Command;

const GALLERY_TYPES: Record<string, string> = {
  '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.wasm': 'application/wasm', '.json': 'application/json',
};

/** Serves demos/dist (built first when missing) on 127.0.0.1; with --screenshot renders one frame in Chromium and stops. */
async function serveGallery(o: DemoOptions): Promise<number> {
  const dist = join(REPO_ROOT, 'demos', 'dist');
  if (!existsSync(join(dist, 'index.html'))) {
    if (!existsSync(SYNTHETIC_AVATAR)) writeSyntheticAvatar({ out: SYNTHETIC_AVATAR, resolution: 48, width: 320, height: 320 });
    const build = join(REPO_ROOT, 'demos', 'build.mjs');
    const { buildGallery } = (await import(pathToFileURL(build).href)) as { buildGallery(): Promise<string> };
    await buildGallery();
  }
  const { createServer } = await import('node:http');
  const { extname, normalize } = await import('node:path');
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
    const file = join(dist, path.endsWith('/') ? path + 'index.html' : path);
    if (path.includes('..') || !existsSync(file)) return void res.writeHead(404).end('not found');
    res.writeHead(200, { 'content-type': GALLERY_TYPES[extname(file)] ?? 'application/octet-stream' });
    res.end(readFileSync(file));
  });
  const port = o.screenshot ? 0 : (o.port ?? 8080);
  await new Promise<void>((ok, fail) => server.once('error', (e) => fail(new UsageError(`cannot listen on 127.0.0.1:${port} (${e.message}): pick another with --port`))).listen(port, '127.0.0.1', ok));
  const addr = server.address();
  const url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : port}/`;
  if (!o.screenshot) {
    console.log(`gallery: ${url}  (Ctrl+C stops)`);
    await new Promise<void>((ok) => process.once('SIGINT', () => server.close(() => ok())));
    return 0;
  }
  try {
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({
      executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
      headless: true,
      args: ['--no-sandbox', '--no-first-run', '--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-vulkan=swiftshader', '--use-angle=swiftshader'],
    });
    try {
      const page = await browser.newPage();
      await page.goto(`${url}index.html?size=256#avatar=default`);
      await page.waitForFunction(() => Number(document.getElementById('avatar')?.dataset.frames ?? 0) >= 1, undefined, { timeout: 300_000 });
      const err = await page.locator('#error:not([hidden])').count();
      if (err) throw new UsageError(`the gallery reported: ${await page.locator('#error').textContent()}`);
      await page.locator('#avatar').screenshot({ path: resolve(o.screenshot) });
    } finally {
      await browser.close();
    }
    console.log(`wrote ${resolve(o.screenshot)}`);
    return 0;
  } finally {
    server.close();
  }
}
