// A small static file server over the repository (page, built bundle, fixtures), bound to
// 127.0.0.1 so the page is a secure context. Every response carries the CSP the player must live
// under: only 'self' scripts, WebAssembly compilation allowed, no eval.
import { createServer, type Server } from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize } from 'node:path';
import { REPO_ROOT } from './shared.js';

const TYPES: Record<string, string> = {
  '.html': 'text/html', '.css': 'text/css', '.js': 'text/javascript', '.mjs': 'text/javascript', '.json': 'application/json',
  '.wasm': 'application/wasm', '.map': 'application/json', '.dyntet': 'application/octet-stream', '.png': 'image/png',
};

export const CSP = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' blob: data:; connect-src 'self'";

/** The gallery's: the player's CSP, plus media from blob: URLs (a video file the visitor picks). */
export const GALLERY_CSP = `${CSP}; media-src 'self' blob:`;

export interface StaticServer {
  url: string;
  close(): Promise<void>;
}

export async function startServer(csp: string = CSP): Promise<StaticServer> {
  const server: Server = createServer(async (req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
    if (path.includes('..')) {
      res.writeHead(400).end();
      return;
    }
    try {
      const body = await readFile(join(REPO_ROOT, path));
      res.writeHead(200, { 'content-type': TYPES[extname(path)] ?? 'application/octet-stream', 'content-security-policy': csp, 'cache-control': 'no-store' });
      res.end(body);
    } catch {
      res.writeHead(404, { 'content-security-policy': csp }).end('not found');
    }
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((ok) => server.close(() => ok())) };
}
