// The synthetic test avatar through the real native tool: it decodes with the core reader, its
// jaw opens and eyelids close where they should and nowhere else, and its bytes are deterministic.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UsageError } from '../src/commands/command.js';
import { parseSynthArgs, synthToolPath, writeSyntheticAvatar } from '../src/commands/synth.js';

interface Mesh {
  vertices: number;
  triangles: number;
  positions: number[];
  canonical: number[];
  edgeKeys: number[];
}

let dir = '';
let asset = '';

function tool(args: string[]): string {
  const r = spawnSync(synthToolPath(), args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`make_synthetic_avatar ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

function mesh(...set: string[]): Mesh {
  const out = join(dir, `mesh-${set.join('_') || 'neutral'}.json`);
  tool(['mesh', '--in', asset, '--out', out, ...set.flatMap((s) => ['--set', s])]);
  return JSON.parse(readFileSync(out, 'utf8')) as Mesh;
}

/** Vertices keyed by edge key: canonical and deformed positions. */
function byKey(m: Mesh): Map<number, { c: number[]; p: number[] }> {
  const out = new Map<number, { c: number[]; p: number[] }>();
  m.edgeKeys.forEach((k, i) => out.set(k, { c: m.canonical.slice(3 * i, 3 * i + 3), p: m.positions.slice(3 * i, 3 * i + 3) }));
  return out;
}

/** Keys whose vertex appears, disappears or moves between a and b, with canonical positions. */
function changes(a: Mesh, b: Mesh): number[][] {
  const ka = byKey(a), kb = byKey(b);
  const out: number[][] = [];
  for (const [k, va] of ka) {
    const vb = kb.get(k);
    if (!vb || va.p.some((x, i) => x !== vb.p[i])) out.push(va.c);
  }
  for (const [k, vb] of kb) if (!ka.has(k)) out.push(vb.c);
  return out;
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'dyntet-synth-'));
  asset = join(dir, 'synthetic.dyntet');
  writeSyntheticAvatar({ out: asset, resolution: 32, width: 256, height: 256 });
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('synthetic avatar', () => {
  it('is a .dyntet the core reader accepts, with a surface of sensible size', () => {
    const bytes = readFileSync(asset);
    expect([...bytes.subarray(0, 8)]).toEqual([0x89, 0x44, 0x59, 0x4e, 0x54, 0x45, 0x54, 0x0a]);
    const m = mesh();
    expect(m.triangles).toBeGreaterThan(5000);
    expect(m.vertices).toBe(m.edgeKeys.length);
    // The head lies inside its box and spans a head's size (cm).
    const ys = m.canonical.filter((_, i) => i % 3 === 1);
    expect(Math.max(...ys) - Math.min(...ys)).toBeGreaterThan(18);
  });

  it('opens its jaw under jawOpen: the mesh changes around the mouth and chin, and nowhere else', () => {
    const closed = mesh();
    const open = mesh('jawOpen=1');
    const changed = changes(closed, open);
    expect(changed.length).toBeGreaterThan(50);
    for (const [x, y, z] of changed) {
      expect(y).toBeLessThan(-2.5);  // below the nose
      expect(z).toBeGreaterThan(-0.5);  // front half
      expect(Math.abs(x)).toBeLessThan(8);
    }
    // The chin drops: the lowest front vertex near the midline moves down by more than 0.6 cm
    // (the jaw moves up to 1.6 cm; the chin's underside sits where the motion fades out).
    const chin = (m: Mesh) => {
      let best = Infinity;
      for (let i = 0; i < m.vertices; i++) {
        const [cx, cy, cz] = m.canonical.slice(3 * i, 3 * i + 3);
        if (Math.abs(cx) < 1 && cz > 3 && cy < -8 && cy > -11) best = Math.min(best, m.positions[3 * i + 1]);
      }
      return best;
    };
    expect(chin(closed) - chin(open)).toBeGreaterThan(0.6);
    // A mouth opening adds surface inside the mouth box.
    const inMouth = (m: Mesh) => {
      let n = 0;
      for (let i = 0; i < m.vertices; i++) {
        const [cx, cy, cz] = m.canonical.slice(3 * i, 3 * i + 3);
        if (Math.abs(cx) < 1.5 && cy > -5.6 && cy < -3.3 && cz > 3) n++;
      }
      return n;
    };
    expect(inMouth(open)).toBeGreaterThan(inMouth(closed));
  });

  it('closes its eyelids under eyeBlink*: changes stay around the eyes, the left blink on the left eye', () => {
    const neutral = mesh();
    const left = changes(neutral, mesh('eyeBlinkLeft=1'));
    expect(left.length).toBeGreaterThan(5);
    for (const [x, y, z] of left) {
      expect(x).toBeGreaterThan(0);  // the subject's left eye is at +x in face space
      expect(Math.abs(y - 2.6)).toBeLessThan(2);
      expect(z).toBeGreaterThan(4);
    }
    const both = changes(neutral, mesh('eyeBlinkLeft=1', 'eyeBlinkRight=1'));
    expect(both.some(([x]) => x < 0)).toBe(true);
  });

  it('writes the same bytes every run, and different bytes for different options', () => {
    const again = join(dir, 'again.dyntet');
    writeSyntheticAvatar({ out: again, resolution: 32, width: 256, height: 256 });
    expect(Buffer.compare(readFileSync(asset), readFileSync(again))).toBe(0);
    const other = join(dir, 'other.dyntet');
    writeSyntheticAvatar({ out: other, resolution: 24, width: 256, height: 256 });
    expect(Buffer.compare(readFileSync(asset), readFileSync(other))).not.toBe(0);
  });

  it('passes its own behaviour checks (condition routing, texture fit, framing)', () => {
    expect(tool(['check', '--resolution', '24'])).toContain('synthetic avatar checks passed');
  });

  it('rejects bad options with a message that says what to do', () => {
    expect(() => parseSynthArgs(['--resolution', '32'])).toThrow(/--out FILE.dyntet is required/);
    expect(() => parseSynthArgs(['--out', 'x.dyntet', '--resolution', '2'])).toThrow(UsageError);
    expect(() => parseSynthArgs(['--out', 'x.dyntet', '--size', '256'])).toThrow(/WIDTHxHEIGHT/);
    expect(() => parseSynthArgs(['--out', 'x.dyntet', '--bogus'])).toThrow(/unknown option/);
    expect(() => writeSyntheticAvatar({ out: join(dir, 'no', 'such', 'dir', '\0bad') })).toThrow();
    const r = spawnSync(synthToolPath(), ['mesh', '--in', join(dir, 'missing.dyntet'), '--out', join(dir, 'x.json')], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/cannot read/);
  });
});
