/** `cleanplate serve` and `cleanplate worker`. */
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { cpus } from 'node:os';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { CleanplateError } from '../errors.js';
import { EmbeddedBackend, type Backend } from './backend.js';
import { ABORT_GRACE_MS } from './pool.js';
import { DEFAULT_LIMITS, type Limits } from './probe.js';
import { RedisBackend, startWorker } from './redis.js';
import { SEGMENT_SECONDS } from './segments.js';
import { buildServer } from './server.js';
import { DirStore } from './store.js';

/** `--segment-seconds S`: a number >= 0 (0: never split a video). */
function segmentSeconds(value: string | undefined): number {
  if (value === undefined) return SEGMENT_SECONDS;
  const n = Number(value);
  if (!(Number.isFinite(n) && n >= 0)) throw new CleanplateError(`--segment-seconds '${value}' is not a number of seconds >= 0`);
  return n;
}

/** `--threads N`: every library and ffmpeg of this process (and its threads) at most N threads each. */
function limitThreads(value: string | undefined): void {
  if (value === undefined) return;
  process.env.CLEANPLATE_THREADS = String(positiveInt('threads', value, 1));
}

function positiveInt(flag: string, value: string | undefined, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new CleanplateError(`--${flag} '${value}' is not a whole number >= ${min}`);
  return n;
}

/** Loopback addresses (and names) need no token; anything else does. */
export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) return host === '::1' || host.toLowerCase() === '0:0:0:0:0:0:0:1';
  return false;
}

async function readTokens(file: string): Promise<string[]> {
  const text = await readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => { throw new CleanplateError(`cannot read the token file (${e.code ?? e.message})`, file); });
  const tokens = text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  if (!tokens.length) throw new CleanplateError('token file holds no token (one per line)', file);
  if (tokens.some((t) => t.length < 16 || /\s/.test(t))) throw new CleanplateError('tokens must be at least 16 characters, without spaces', file);
  return tokens;
}

function version(): Promise<string> {
  return readFile(new URL('../../../package.json', import.meta.url), 'utf8').then((t) => (JSON.parse(t) as { version: string }).version, () => '0');
}

export async function serveCommand(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      host: { type: 'string' }, port: { type: 'string' }, data: { type: 'string' }, 'token-file': { type: 'string' },
      redis: { type: 'string' }, workers: { type: 'string' }, 'max-upload-mb': { type: 'string' }, 'max-pixels': { type: 'string' },
      'max-seconds': { type: 'string' }, 'max-frames': { type: 'string' }, 'max-jobs-per-token': { type: 'string' },
      'segment-seconds': { type: 'string' }, threads: { type: 'string' },
    },
  });
  limitThreads(values.threads);
  const segments = segmentSeconds(values['segment-seconds']);
  const host = values.host ?? '127.0.0.1';
  const port = positiveInt('port', values.port, 8080, 0);
  if (port > 65535) throw new CleanplateError(`--port ${port} is not a port`);
  if (!isLoopback(host) && !values['token-file']) throw new CleanplateError(`refusing to listen on ${host} without authentication: give --token-file FILE (one token per line), or use a loopback --host`);
  const tokens = values['token-file'] ? await readTokens(values['token-file']) : undefined;
  const limits: Limits = {
    maxUploadBytes: positiveInt('max-upload-mb', values['max-upload-mb'], DEFAULT_LIMITS.maxUploadBytes / 2 ** 20) * 2 ** 20,
    maxPixels: positiveInt('max-pixels', values['max-pixels'], DEFAULT_LIMITS.maxPixels),
    maxVideoSeconds: positiveInt('max-seconds', values['max-seconds'], DEFAULT_LIMITS.maxVideoSeconds),
    maxVideoFrames: positiveInt('max-frames', values['max-frames'], DEFAULT_LIMITS.maxVideoFrames),
    maxOpenJobsPerOwner: positiveInt('max-jobs-per-token', values['max-jobs-per-token'], DEFAULT_LIMITS.maxOpenJobsPerOwner),
  };
  const dataDir = resolve(values.data ?? 'cleanplate-data');
  const store = new DirStore(dataDir);
  await store.init();
  // Embedded: N threads (default: the cores but one, for the API). With --redis the API only enqueues
  // unless --workers N asks it to run N workers too.
  const workers = values.redis ? positiveInt('workers', values.workers, 0, 0) : positiveInt('workers', values.workers, Math.max(1, cpus().length - 1));
  const backend: Backend = values.redis ? new RedisBackend(values.redis) : new EmbeddedBackend(store, workers, dataDir, { abortGraceMs: abortGraceMs() });
  await backend.start();
  const app = await buildServer({ store, backend, limits, tokens, version: await version() });
  const address = await app.listen({ host, port }).catch((e: Error) => { throw new CleanplateError(`cannot listen on ${host}:${port} (${e.message})`); });
  // With --redis and --workers N, this process also runs N workers (a one-machine deployment).
  const local = values.redis && workers > 0 ? await startWorker({ redis: values.redis, store, dataDir, concurrency: workers, lockMs: lockMs(), abortGraceMs: abortGraceMs(), segmentSeconds: segments }) : undefined;
  process.stderr.write(`cleanplate serve: listening on ${address} (${backend.name}${values.redis ? `, ${local ? workers : 'no'} local workers` : `, ${workers} workers`}), data in ${dataDir}${tokens ? ', bearer token required' : ''}\n`);
  await untilSignal();
  process.stderr.write('cleanplate serve: stopping\n');
  await app.close();
  await local?.close();
  await backend.close();
}

/** How long a cancelled job may take to stop before its thread is replaced (ThreadPool's retire). */
function abortGraceMs(): number {
  return positiveInt('abort grace (CLEANPLATE_ABORT_GRACE_MS)', process.env.CLEANPLATE_ABORT_GRACE_MS, ABORT_GRACE_MS, 0);
}

function lockMs(): number {
  return positiveInt('lock (CLEANPLATE_LOCK_MS)', process.env.CLEANPLATE_LOCK_MS, 30_000, 1000);
}

function untilSignal(): Promise<void> {
  return new Promise((done) => {
    const stop = () => { process.off('SIGINT', stop); process.off('SIGTERM', stop); done(); };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

export async function workerCommand(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: { redis: { type: 'string' }, data: { type: 'string' }, concurrency: { type: 'string' }, 'segment-seconds': { type: 'string' }, threads: { type: 'string' } },
  });
  if (!values.redis) throw new CleanplateError('worker needs --redis URL (e.g. redis://127.0.0.1:6379)');
  limitThreads(values.threads);
  const segments = segmentSeconds(values['segment-seconds']);
  const dataDir = resolve(values.data ?? 'cleanplate-data');
  const store = new DirStore(dataDir);
  await store.init();
  const concurrency = positiveInt('concurrency', values.concurrency, 1);
  const w = await startWorker({
    redis: values.redis, store, dataDir, concurrency, lockMs: lockMs(), abortGraceMs: abortGraceMs(), segmentSeconds: segments,
    log: (line) => process.stderr.write(`cleanplate worker ${process.pid}: ${line}\n`),
  });
  process.stderr.write(`cleanplate worker ${process.pid}: waiting for jobs (${concurrency} at a time), data in ${dataDir}\n`);
  await untilSignal();
  process.stderr.write(`cleanplate worker ${process.pid}: finishing running jobs, then stopping\n`);
  await w.close();
}
