// README's main command, `dyntet-train demo` (what `./dyntet demo` runs): with no option it serves
// the gallery with the embedded default avatar on 127.0.0.1, prints the address, and stops cleanly
// on SIGTERM; --sheet keeps the CPU contact sheet; options of one mode are refused in another.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../../e2e/support/shared.js';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_AVATAR, parseArgs } from '../src/commands/demo.js';
import { writeSyntheticAvatar } from '../src/commands/synth.js';
import { UsageError } from '../src/commands/command.js';
import { decodePng } from '../src/image/index.js';

const bin = join(REPO_ROOT, 'trainer', 'bin', 'dyntet-train.mjs');
const dir = mkdtempSync(join(tmpdir(), 'dyntet-demo-serve-'));
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** Starts the CLI and resolves with the address it prints (and everything it printed so far). */
function startDemo(args: string[]): Promise<{ child: ChildProcess; address: string; out: () => string }> {
  const child = spawn(process.execPath, [bin, 'demo', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  return new Promise((ok, fail) => {
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = /^gallery: (http:\/\/127\.0\.0\.1:\d+\/\S*)\n[^]*--sheet/m.exec(out);
      if (m) ok({ child, address: m[1], out: () => out });
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => fail(new Error(`demo exited (${code}) before printing its address:\n${out}`)));
  });
}
const exited = (c: ChildProcess) => new Promise<number | null>((ok) => (c.exitCode !== null ? ok(c.exitCode) : c.on('exit', (code) => ok(code))));

describe('dyntet-train demo', () => {
  it('serves the gallery with the default avatar on 127.0.0.1 and stops on SIGTERM', async () => {
    const { child, address, out } = await startDemo(['--port', '0']);
    expect(out()).toMatch(/--screenshot out\.png/); // the hint for machines without a display
    const index = await fetch(address);
    expect(index.status).toBe(200);
    expect(index.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await index.text()).toMatch(/<title>DynTet gallery<\/title>[\s\S]*gallery\.js/);
    const js = await fetch(new URL('gallery.js', address));
    expect(js.headers.get('content-type')).toBe('text/javascript');
    expect((await js.text()).length).toBeGreaterThan(10_000);
    // The avatar the page opens is the embedded trained one, byte for byte.
    const avatar = new Uint8Array(await (await fetch(new URL('avatars/default.dyntet', address))).arrayBuffer());
    expect(Buffer.compare(Buffer.from(avatar), readFileSync(DEFAULT_AVATAR))).toBe(0);
    // onnxruntime-web's loader is a module: served as JavaScript or the browser refuses it.
    expect((await fetch(new URL('ort/ort-wasm-simd-threaded.mjs', address))).headers.get('content-type')).toBe('text/javascript');
    expect((await fetch(new URL('no-such-file', address))).status).toBe(404);
    expect((await fetch(new URL('%E0%A4%A', address))).status).toBe(400);

    child.kill('SIGTERM');
    expect(await exited(child)).toBe(0);
    expect(out()).toMatch(/gallery stopped \(SIGTERM\)/);
    await expect(fetch(address)).rejects.toThrow();
  }, 300_000);

  it('serves and opens a given --avatar beside the default one', async () => {
    const avatar = join(dir, 'tiny head.dyntet');
    writeSyntheticAvatar({ out: avatar, resolution: 16, width: 64, height: 64, frames: 4 });
    const { child, address } = await startDemo(['--port', '0', '--avatar', avatar]);
    const url = new URL(address);
    expect(url.searchParams.get('src')).toBe('user/tiny_head.dyntet');
    expect(url.hash).toBe(`#avatar=${encodeURIComponent('user/tiny_head.dyntet')}`);
    const got = Buffer.from(await (await fetch(new URL('user/tiny_head.dyntet', url.origin))).arrayBuffer());
    expect(Buffer.compare(got, readFileSync(avatar))).toBe(0);
    child.kill('SIGINT');
    expect(await exited(child)).toBe(0);
  }, 300_000);

  it('--sheet renders the CPU contact sheet', () => {
    const avatar = join(dir, 'sheet.dyntet');
    writeSyntheticAvatar({ out: avatar, resolution: 16, width: 64, height: 64, frames: 4 });
    const r = spawnSync(process.execPath, [bin, 'demo', '--sheet', '--avatar', avatar, '--frames', '2', '--no-video', '--out', join(dir, 'sheet')], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const sheet = decodePng(readFileSync(join(dir, 'sheet', 'contact_sheet.png')));
    expect([sheet.width, sheet.height]).toEqual([4 * 64 + 3 * 4, 3 * 64 + 2 * 4]); // 8 stills + 2 frames, 4 per row
    expect(existsSync(join(dir, 'sheet', 'clip.mp4'))).toBe(false);
  }, 120_000);

  it('parses modes: serve by default, --sheet and --screenshot on request, misplaced options refused', () => {
    expect(parseArgs([]).mode).toBe('serve');
    expect(parseArgs(['--serve', '--port', '9000'])).toMatchObject({ mode: 'serve', port: 9000 });
    expect(parseArgs(['--sheet', '--frames', '8', '--no-video'])).toMatchObject({ mode: 'sheet', clipFrames: 8, video: false });
    expect(parseArgs(['--screenshot', 'a.png', '--size', '128'])).toMatchObject({ mode: 'screenshot', screenshot: 'a.png', size: 128 });
    expect(() => parseArgs(['--frames', '8'])).toThrow(/--frames applies to the CPU contact sheet: add --sheet/);
    expect(() => parseArgs(['--sheet', '--screenshot', 'a.png'])).toThrow(UsageError);
    expect(() => parseArgs(['--sheet', '--port', '1'])).toThrow(/apply to the gallery/);
    expect(() => parseArgs(['--port', 'x'])).toThrow(/port number/);
  });

  it('--help leads with the gallery and names the headless options', () => {
    const r = spawnSync(process.execPath, [bin, 'demo', '--help'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^Usage: dyntet-train demo \[--port N\]/);
    expect(r.stdout).toMatch(/--screenshot OUT\.png/);
    expect(r.stdout).toMatch(/--sheet/);
  });
});
