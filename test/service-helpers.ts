/** Starting `cleanplate serve` / `cleanplate worker` / `redis-server` as child processes for the service tests. */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { BIN } from './helpers.js';

export interface Proc { child: ChildProcess; log: () => string; exited: Promise<number | null> }

export function start(args: string[], env: Record<string, string> = {}): Proc {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let log = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => { log += d; });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { log += d; });
  const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  return { child, log: () => log, exited };
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, ms = 60_000, every = 100): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

export interface Server extends Proc { url: string }

/** `cleanplate serve --port 0 ...`; resolves once it listens, with its URL. */
export async function serve(args: string[], env: Record<string, string> = {}): Promise<Server> {
  const p = start(['serve', '--port', '0', ...args], env);
  const url = await waitFor('serve to listen', () => {
    if (p.child.exitCode !== null) throw new Error(`serve exited: ${p.log()}`);
    return /listening on (http:\/\/\S+)/.exec(p.log())?.[1];
  }, 30_000);
  return { ...p, url };
}

export async function stop(p: Proc, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill(signal);
  await p.exited;
}

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => { const port = (s.address() as { port: number }).port; s.close(() => res(port)); });
    s.on('error', rej);
  });
}

export async function form(files: Record<string, string | Buffer>, fields: Record<string, string> = {}): Promise<FormData> {
  const f = new FormData();
  for (const [name, file] of Object.entries(files)) {
    const bytes = typeof file === 'string' ? await readFile(file) : file;
    f.append(name, new Blob([new Uint8Array(bytes)]), typeof file === 'string' ? file.split('/').pop() : `${name}.bin`);
  }
  for (const [k, v] of Object.entries(fields)) f.append(k, v);
  return f;
}

export interface JobView { id: string; state: string; error: string | null; outputs: string[]; progress: { framesDone: number; framesTotal: number }; attempts: number }

export async function job(url: string, id: string, headers: Record<string, string> = {}): Promise<JobView> {
  const r = await fetch(`${url}/v1/jobs/${id}`, { headers });
  assert.equal(r.status, 200, `GET job ${id}: ${r.status}`);
  return (await r.json()) as JobView;
}

export async function finished(url: string, id: string, headers: Record<string, string> = {}, ms = 120_000): Promise<JobView> {
  return waitFor(`job ${id} to finish`, async () => {
    const j = await job(url, id, headers);
    return j.state === 'completed' || j.state === 'failed' ? j : undefined;
  }, ms, 200);
}

export const HAS_REDIS = spawnSync('redis-server', ['--version']).status === 0;
