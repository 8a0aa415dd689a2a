/**
 * The distributed mode against a real Redis: this test starts `redis-server` on a free loopback
 * port (with an append-only file, as a deployment must have for jobs to survive a Redis restart),
 * an API with --redis, and two `cleanplate worker` processes sharing one --data folder.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import { loadCv } from '../src/cv.js';
import { buildScene } from '../src/demo/scene.js';
import { encodePng } from '../src/io/encode.js';
import { BIN, tempDir } from './helpers.js';
import { finished, form, freePort, HAS_REDIS, serve, start, stop, waitFor, type Proc, type Server } from './service-helpers.js';

const skip = HAS_REDIS ? false : 'redis-server is not installed (apt install redis-server)';
/** A dead worker's job goes to another after about this long (BullMQ's lock). */
const LOCK_MS = '3000';

let dir: string, data: string, image: string, plate: string, redisUrl: string, redisPort: number;
let redis: ChildProcess | undefined, api: Server;
const workers: Proc[] = [];

async function startRedis(): Promise<void> {
  const child = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--dir', join(dir, 'redis'), '--save', '',
    '--appendonly', 'yes', '--appendfsync', 'always', '--daemonize', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => { log += d; });
  await waitFor('redis-server to start', () => {
    if (child.exitCode !== null) throw new Error(`redis-server exited: ${log}`);
    return /Ready to accept connections/.test(log) || undefined;
  }, 20_000);
  redis = child;
}

async function stopRedis(signal: NodeJS.Signals): Promise<void> {
  const r = redis;
  redis = undefined;
  if (!r || r.exitCode !== null) return;
  const exited = new Promise((res) => r.on('exit', res));
  r.kill(signal);
  await exited;
}

function worker(): Proc {
  const w = start(['worker', '--redis', redisUrl, '--data', data, '--concurrency', '1'], { CLEANPLATE_LOCK_MS: LOCK_MS });
  workers.push(w);
  return w;
}

async function post(files: Record<string, string | Buffer>, fields: Record<string, string>) {
  const r = await fetch(`${api.url}/v1/jobs`, { method: 'POST', body: await form(files, fields) });
  return { status: r.status, body: (await r.json()) as { id?: string; error?: string } };
}

async function output(id: string, name: string): Promise<Buffer> {
  const r = await fetch(`${api.url}/v1/jobs/${id}/outputs/${name}`);
  assert.equal(r.status, 200, `${name} of ${id}`);
  return Buffer.from(await r.arrayBuffer());
}

let cliAlpha: Buffer, cliForeground: Buffer;

before(async () => {
  if (!HAS_REDIS) return;
  await loadCv();
  dir = await tempDir('cleanplate-redis-');
  data = join(dir, 'data');
  await mkdir(join(dir, 'redis'));
  // Large enough that a job takes a while (the kill has to land mid-job), small enough to stay quick.
  const scene = buildScene(480, 360, 5);
  image = join(dir, 'image.png'); plate = join(dir, 'plate.png');
  await writeFile(image, await encodePng(scene.image));
  await writeFile(plate, await encodePng(scene.plate));
  const out = join(dir, 'cli');
  const cli = spawnSync(process.execPath, [BIN, 'matte', image, '--plate', plate, '--out', out, '--prior', 'none'], { encoding: 'utf8' });
  assert.equal(cli.status, 0, cli.stderr);
  cliAlpha = await readFile(join(out, 'alpha.png'));
  cliForeground = await readFile(join(out, 'foreground.png'));
  redisPort = await freePort();
  redisUrl = `redis://127.0.0.1:${redisPort}`;
  await startRedis();
  api = await serve(['--data', data, '--redis', redisUrl]);
  worker(); worker();
  await waitFor('workers to be ready', () => workers.every((w) => /waiting for jobs/.test(w.log())) || undefined, 30_000);
});

after(async () => {
  if (!HAS_REDIS) return;
  for (const w of workers) await stop(w, 'SIGKILL');
  if (api) await stop(api);
  await stopRedis('SIGTERM');
});

test('CI has redis-server', { skip: !process.env.CI && 'only required under CI' }, () => {
  assert.ok(HAS_REDIS, 'redis-server must be installed under CI (.ci/run installs it)');
});

test('redis: the API only enqueues; a worker runs the job and its outputs equal the CLI\'s', { skip }, async () => {
  const health = (await (await fetch(`${api.url}/healthz`)).json()) as { mode: string };
  assert.equal(health.mode, 'redis');
  const r = await post({ input: image, plate }, { prior: 'none' });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  const j = await finished(api.url, r.body.id!);
  assert.equal(j.state, 'completed', j.error ?? '');
  assert.ok((await output(r.body.id!, 'alpha.png')).equals(cliAlpha));
  assert.ok((await output(r.body.id!, 'foreground.png')).equals(cliForeground));
  // Bad uploads are refused by the API before anything is enqueued.
  const bad = await post({ input: Buffer.from('not an image'), plate }, { prior: 'none' });
  assert.equal(bad.status, 422);
  assert.match(bad.body.error!, /^input: not a readable image/);
  assert.match(await (await fetch(`${api.url}/metrics`)).text(), /^cleanplate_jobs\{state="completed"\} [1-9]/m);
});

test('redis: a worker killed (-9) mid-job: another worker completes it, with the same output', { skip }, async () => {
  const before = workers.map((w) => w.log().length);
  const r = await post({ input: image, plate }, { prior: 'none' });
  assert.equal(r.status, 202);
  const victim = await waitFor('a worker to take the job', () => workers.find((w, i) => w.log().slice(before[i] ?? 0).includes(`job ${r.body.id}: attempt 1`)), 30_000, 20);
  victim.child.kill('SIGKILL');
  await victim.exited;
  assert.doesNotMatch(victim.log(), new RegExp(`job ${r.body.id}: completed`), 'killed before it finished');
  workers.splice(workers.indexOf(victim), 1);
  const j = await finished(api.url, r.body.id!);
  assert.equal(j.state, 'completed', j.error ?? '');
  assert.ok(j.attempts >= 1);
  assert.match(workers.map((w) => w.log()).join('\n'), new RegExp(`job ${r.body.id}: completed`), 'the other worker finished it');
  assert.ok((await output(r.body.id!, 'alpha.png')).equals(cliAlpha), 'equal to an uninterrupted run');
  worker(); // back to two
});

test('redis: Redis restarted mid-job: the job completes', { skip }, async () => {
  const before = workers.map((w) => w.log().length);
  const r = await post({ input: image, plate }, { prior: 'none' });
  assert.equal(r.status, 202);
  await waitFor('a worker to take the job', () => workers.find((w, i) => w.log().slice(before[i] ?? 0).includes(`job ${r.body.id}: attempt`)), 30_000, 20);
  await stopRedis('SIGKILL');
  await new Promise((res) => setTimeout(res, 1000));
  await startRedis();
  const j = await finished(api.url, r.body.id!);
  assert.equal(j.state, 'completed', j.error ?? '');
  assert.ok((await output(r.body.id!, 'alpha.png')).equals(cliAlpha));
});

test('redis: 20 concurrent submissions over two workers all complete, none lost or duplicated', { skip }, async () => {
  const small = await sharp(image).resize(64, 48).png().toBuffer();
  const smallPlate = await sharp(plate).resize(64, 48).png().toBuffer();
  const posts = await Promise.all(Array.from({ length: 20 }, () => post({ input: small, plate: smallPlate }, { prior: 'none' })));
  assert.deepEqual(posts.map((p) => p.status), Array(20).fill(202));
  const ids = posts.map((p) => p.body.id!);
  assert.equal(new Set(ids).size, 20);
  const done = await Promise.all(ids.map((id) => finished(api.url, id)));
  assert.deepEqual(done.map((j) => j.state), Array(20).fill('completed'));
  const logs = workers.map((w) => w.log()).join('\n');
  for (const id of ids) assert.equal(logs.split(`job ${id}: completed`).length - 1, 1, `${id} ran exactly once`);
});
