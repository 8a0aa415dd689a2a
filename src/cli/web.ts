/**
 * `cleanplate web`: serves the built browser app (dist/web, `npm run build:web`) from this package,
 * with the headers WebAssembly threads need (cross-origin isolation: COOP same-origin, COEP
 * require-corp) and the page's privacy policy (CSP: connections to its own origin only). A plain
 * static server: any other static host can serve the same folder (see README, Browser app).
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, resolve, sep } from 'node:path';
import { parseArgs } from 'node:util';
import { CleanplateError } from '../errors.js';
import { PACKAGE_ROOT } from '../paths.js';

export const WEB_DIR = join(PACKAGE_ROOT, 'dist', 'web');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.bin': 'application/octet-stream',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.txt': 'text/plain; charset=utf-8',
  '.md': 'text/markdown; charset=utf-8',
};

/**
 * The same policy as the page's meta tag, for the workers too (they take it from their script's
 * response). 'unsafe-eval' is OpenCV.js's: its bindings build functions at run time (tried without:
 * the matte worker cannot start); 'wasm-unsafe-eval' lets WebAssembly compile; blob: scripts are
 * TensorFlow.js's thread workers (?threads=2).
 */
export const CONTENT_SECURITY_POLICY = "default-src 'self'; script-src 'self' blob: 'wasm-unsafe-eval' 'unsafe-eval'; worker-src 'self' blob:; "
  + "connect-src 'self'; img-src 'self' blob: data:; media-src 'self' blob: mediastream:; style-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'";

const HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Content-Security-Policy': CONTENT_SECURITY_POLICY,
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Permissions-Policy': 'camera=(self), microphone=()',
};

export interface WebServer {
  url: string;
  server: Server;
  close(): Promise<void>;
}

/** Refuses a folder without the built app, with the command that builds it. */
export async function checkBuilt(root: string): Promise<void> {
  for (const file of ['index.html', 'app.js', 'assets.json']) {
    const found = await stat(join(root, file)).then((s) => s.isFile(), () => false);
    if (!found) throw new CleanplateError(`the browser app is not built (no ${file}): run \`npm run build:web\` in the package folder`, root);
  }
}

async function handle(root: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const send = (code: number, text: string, extra: Record<string, string> = {}) => {
    res.writeHead(code, { ...HEADERS, 'Content-Type': 'text/plain; charset=utf-8', ...extra });
    res.end(req.method === 'HEAD' ? undefined : `${text}\n`);
  };
  if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'method not allowed', { Allow: 'GET, HEAD' });
  let path: string;
  try {
    path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
  } catch {
    return send(400, 'bad path');
  }
  if (path.includes('\0') || path.split('/').includes('..')) return send(400, 'bad path');
  if (path.endsWith('/')) path += 'index.html';
  const file = resolve(root, `.${path}`);
  if (file !== root && !file.startsWith(root + sep)) return send(400, 'bad path');
  const info = await stat(file).catch(() => undefined);
  if (!info?.isFile()) return send(404, 'not found');
  const etag = `"${info.size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}"`;
  const headers = {
    ...HEADERS,
    'Content-Type': TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream',
    'Cache-Control': 'no-cache',
    ETag: etag,
  };
  if (req.headers['if-none-match'] === etag) { res.writeHead(304, headers); res.end(); return; }
  res.writeHead(200, { ...headers, 'Content-Length': String(info.size) });
  if (req.method === 'HEAD') { res.end(); return; }
  createReadStream(file).on('error', () => res.destroy()).pipe(res);
}

/** Starts the server (port 0: any free port); resolves once it listens. */
export async function startWebServer(options: { root?: string; host?: string; port?: number } = {}): Promise<WebServer> {
  const root = resolve(options.root ?? WEB_DIR);
  await checkBuilt(root);
  const host = options.host ?? '127.0.0.1';
  const server = createServer((req, res) => {
    handle(root, req, res).catch(() => { if (!res.headersSent) res.writeHead(500); res.end(); });
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', (err: NodeJS.ErrnoException) => fail(err.code === 'EADDRINUSE'
      ? new CleanplateError(`port ${options.port} on ${host} is in use: choose another with --port`)
      : err.code === 'EADDRNOTAVAIL' || err.code === 'ENOTFOUND' ? new CleanplateError(`cannot listen on --host ${host} (${err.code})`) : err));
    server.listen(options.port ?? 8080, host, () => ok());
  });
  const { port } = server.address() as AddressInfo;
  const shown = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
  return {
    url: `http://${shown}:${port}/`,
    server,
    close: () => new Promise<void>((ok) => { server.close(() => ok()); server.closeAllConnections(); }),
  };
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|localhost|::1|\[::1\])$/;

export async function webCommand(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { port: { type: 'string' }, host: { type: 'string' }, dir: { type: 'string' } } });
  const port = values.port === undefined ? 8080 : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new CleanplateError(`--port '${values.port}' is not a port number (0-65535)`);
  const host = values.host ?? '127.0.0.1';
  const web = await startWebServer({ root: values.dir, host, port });
  process.stdout.write(`cleanplate web: the browser app is at ${web.url} (Ctrl-C to stop)\n`);
  if (!LOOPBACK.test(host)) {
    process.stderr.write('cleanplate web: note: browsers give the camera only to https pages or to localhost; from another machine, put an https proxy in front (photo mode works either way)\n');
  }
  await new Promise<void>((done) => {
    const stop = () => { process.off('SIGINT', stop); process.off('SIGTERM', stop); void web.close().then(done); };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
