// Mesh files for extracted surfaces: Wavefront OBJ (text) and binary little-endian PLY.
import { writeFileSync } from 'node:fs';
import { ReportError } from './errors.js';

export interface Mesh {
  /** Vertex positions, [n][3]. */
  positions: Float32Array;
  /** Triangles as vertex indices, [m][3], counter-clockwise seen from outside. */
  triangles: Uint32Array;
  /** Optional per-vertex normals, [n][3]. */
  normals?: Float32Array;
  /** Optional per-vertex colours, [n][3]: bytes 0-255, or floats 0-1. */
  colors?: Uint8Array | Float32Array;
}

export function checkMesh(m: Mesh): { vertices: number; faces: number } {
  if (m.positions.length % 3) throw new ReportError(`mesh positions must be [n][3], got ${m.positions.length} values`, 'BAD_INPUT');
  if (m.triangles.length % 3) throw new ReportError(`mesh triangles must be [m][3], got ${m.triangles.length} indices`, 'BAD_INPUT');
  const n = m.positions.length / 3;
  if (m.normals && m.normals.length !== 3 * n) throw new ReportError(`mesh has ${n} vertices but ${m.normals.length / 3} normals`, 'BAD_INPUT');
  if (m.colors && m.colors.length !== 3 * n) throw new ReportError(`mesh has ${n} vertices but ${m.colors.length / 3} colours`, 'BAD_INPUT');
  for (let i = 0; i < m.triangles.length; i++)
    if (m.triangles[i] >= n) throw new ReportError(`mesh triangle ${Math.floor(i / 3)} refers to vertex ${m.triangles[i]}, but there are only ${n}`, 'BAD_INPUT');
  for (let i = 0; i < m.positions.length; i++)
    if (!Number.isFinite(m.positions[i])) throw new ReportError(`mesh vertex ${Math.floor(i / 3)} has a non-finite coordinate`, 'BAD_INPUT');
  return { vertices: n, faces: m.triangles.length / 3 };
}

const colorByte = (c: Uint8Array | Float32Array, i: number) => (c instanceof Uint8Array ? c[i] : Math.max(0, Math.min(255, Math.round(c[i] * 255))));

/** OBJ text; colours use the common "v x y z r g b" extension (floats 0-1), indices are 1-based. */
export function meshToObj(m: Mesh, comment?: string): string {
  const { vertices } = checkMesh(m);
  const lines: string[] = [];
  if (comment) for (const l of comment.split('\n')) lines.push(`# ${l}`);
  const f = (v: number) => String(Math.fround(v));
  for (let i = 0; i < vertices; i++) {
    let l = `v ${f(m.positions[3 * i])} ${f(m.positions[3 * i + 1])} ${f(m.positions[3 * i + 2])}`;
    if (m.colors) l += ` ${(colorByte(m.colors, 3 * i) / 255).toFixed(4)} ${(colorByte(m.colors, 3 * i + 1) / 255).toFixed(4)} ${(colorByte(m.colors, 3 * i + 2) / 255).toFixed(4)}`;
    lines.push(l);
  }
  if (m.normals) for (let i = 0; i < vertices; i++) lines.push(`vn ${f(m.normals[3 * i])} ${f(m.normals[3 * i + 1])} ${f(m.normals[3 * i + 2])}`);
  for (let t = 0; t < m.triangles.length; t += 3) {
    const [a, b, c] = [m.triangles[t] + 1, m.triangles[t + 1] + 1, m.triangles[t + 2] + 1];
    lines.push(m.normals ? `f ${a}//${a} ${b}//${b} ${c}//${c}` : `f ${a} ${b} ${c}`);
  }
  return lines.join('\n') + '\n';
}

/** Binary little-endian PLY: float x y z [nx ny nz] [uchar red green blue]; faces as uchar count + uint indices. */
export function meshToPly(m: Mesh, comment?: string): Uint8Array {
  const { vertices, faces } = checkMesh(m);
  const head = ['ply', 'format binary_little_endian 1.0'];
  if (comment) for (const l of comment.split('\n')) head.push(`comment ${l}`);
  head.push(`element vertex ${vertices}`, 'property float x', 'property float y', 'property float z');
  if (m.normals) head.push('property float nx', 'property float ny', 'property float nz');
  if (m.colors) head.push('property uchar red', 'property uchar green', 'property uchar blue');
  head.push(`element face ${faces}`, 'property list uchar uint vertex_indices', 'end_header', '');
  const header = new TextEncoder().encode(head.join('\n'));
  const vsize = 12 + (m.normals ? 12 : 0) + (m.colors ? 3 : 0);
  const out = new Uint8Array(header.length + vertices * vsize + faces * 13);
  out.set(header);
  const dv = new DataView(out.buffer);
  let o = header.length;
  for (let i = 0; i < vertices; i++) {
    for (let k = 0; k < 3; k++, o += 4) dv.setFloat32(o, m.positions[3 * i + k], true);
    if (m.normals) for (let k = 0; k < 3; k++, o += 4) dv.setFloat32(o, m.normals[3 * i + k], true);
    if (m.colors) for (let k = 0; k < 3; k++) out[o++] = colorByte(m.colors, 3 * i + k);
  }
  for (let t = 0; t < faces; t++) {
    out[o++] = 3;
    for (let k = 0; k < 3; k++, o += 4) dv.setUint32(o, m.triangles[3 * t + k], true);
  }
  return out;
}

/** Writes a mesh as .obj or .ply, chosen by the file's extension. */
export function writeMesh(path: string, m: Mesh, comment?: string): void {
  const lower = path.toLowerCase();
  if (lower.endsWith('.obj')) writeFileSync(path, meshToObj(m, comment));
  else if (lower.endsWith('.ply')) writeFileSync(path, meshToPly(m, comment));
  else throw new ReportError(`unknown mesh format for ${path}: use a .obj or .ply file name`, 'BAD_INPUT');
}
