/**
 * Scale figures of the service (README, Service): a generated 1280x720 30 fps clip (20 s by
 * default; a subject moving over a textured background, a keyframe every second, AAC audio) and its
 * plate, posted as one job to
 *   - one `cleanplate worker` pinned to one core (taskset -c 0, --threads 1), with Redis;
 *   - two workers pinned to one core each (taskset -c 0 / -c 1, --threads 1), with Redis: the
 *     video is split at keyframes into segments that the two workers share;
 *   - the in-process service (`cleanplate serve` without Redis, not pinned): the video as one job.
 * Wall time runs from the POST to the job's completion (model loading included, as a cold
 * worker's). The two-worker alpha PNGs must equal the one-worker ones (exit code 1 otherwise);
 * the in-process run, not split, is compared too. Writes bench/results/service-scale.{json,md}
 * and the README's service-scale section.
 *
 *   npm run bench:service [-- --seconds 20 --segment-seconds 5 --prior rvm --engine classic --no-readme --keep]
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readdir, readFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { loadCv } from '../src/cv.js';
import { buildScene, clipFrames } from '../src/demo/scene.js';
import { encodePng } from '../src/io/encode.js';
import { PACKAGE_ROOT } from '../src/paths.js';
import { updateReadme } from './readme.js';
import { encodeClip } from './video-speed.js';

const BIN = join(PACKAGE_ROOT, 'bin', 'cleanplate.js');

interface Proc { child: ChildProcess; log: () => string; exited: Promise<void> }

function launch(command: string, args: string[], env: Record<string, string> = {}): Proc {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let log = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => { log += d; });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { log += d; });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  return { child, log: () => log, exited };
}

async function until<T>(what: string, fn: () => T | undefined | Promise<T | undefined>, ms: number, every = 200): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

async function stop(p: Proc): Promise<void> {
  if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGTERM');
  await p.exited;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => { const port = (s.address() as { port: number }).port; s.close(() => resolve(port)); });
    s.on('error', reject);
  });
}

interface Setup { name: string; redis: boolean; cores: (number | undefined)[] }
interface Run { setup: string; cores: number; wallSeconds: number; fps: number; segments: number; outputs: string }

/** One job on one deployment, from the POST to its completion. */
async function runSetup(dir: string, s: Setup, job: { input: string; plate: string; fields: Record<string, string>; frames: number; segmentSeconds: number }): Promise<Run> {
  const data = join(dir, s.name.replace(/\W+/g, '-'));
  await mkdir(data, { recursive: true });
  const procs: Proc[] = [];
  try {
    let redisUrl: string | undefined;
    if (s.redis) {
      const port = await freePort();
      const redis = launch('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', data]);
      procs.push(redis);
      await until('redis-server', () => (/Ready to accept connections/.test(redis.log()) ? true : undefined), 20_000);
      redisUrl = `redis://127.0.0.1:${port}`;
    }
    const api = launch(process.execPath, [BIN, 'serve', '--port', '0', '--data', data, ...(redisUrl ? ['--redis', redisUrl] : [])]);
    procs.push(api);
    const url = await until('serve', () => /listening on (http:\/\/\S+)/.exec(api.log())?.[1], 60_000);
    for (const core of s.cores) {
      if (!redisUrl) break;
      const args = [BIN, 'worker', '--redis', redisUrl, '--data', data, '--concurrency', '1', '--threads', '1', '--segment-seconds', String(job.segmentSeconds)];
      const w = core === undefined ? launch(process.execPath, args) : launch('taskset', ['-c', String(core), process.execPath, ...args]);
      procs.push(w);
      await until('a worker', () => (/waiting for jobs/.test(w.log()) ? true : undefined), 60_000);
    }
    const form = new FormData();
    form.append('input', new Blob([new Uint8Array(await readFile(job.input))]), 'clip.mp4');
    form.append('plate', new Blob([new Uint8Array(await readFile(job.plate))]), 'plate.png');
    for (const [k, v] of Object.entries(job.fields)) form.append(k, v);
    const t0 = Date.now();
    const posted = await fetch(`${url}/v1/jobs`, { method: 'POST', body: form });
    const { id, error } = (await posted.json()) as { id?: string; error?: string };
    if (!id) throw new Error(`${s.name}: POST refused: ${error}`);
    const done = await until(`the job on ${s.name}`, async () => {
      const j = (await (await fetch(`${url}/v1/jobs/${id}`)).json()) as { state: string; error: string | null; progress: { framesDone: number } };
      if (j.state === 'failed') throw new Error(`${s.name}: the job failed: ${j.error}\n${procs.map((p) => p.log()).join('\n')}`);
      return j.state === 'completed' ? j : undefined;
    }, 6 * 3600_000, 500);
    const wallSeconds = (Date.now() - t0) / 1000;
    void done;
    const outputs = join(data, 'jobs', id, 'outputs');
    const report = JSON.parse(await readFile(join(outputs, 'report.json'), 'utf8')) as { split?: { segments: unknown[] } };
    const cores = s.redis ? s.cores.length : Math.min(2, cpus().length);
    const run = { setup: s.name, cores, wallSeconds: +wallSeconds.toFixed(1), fps: +(job.frames / wallSeconds).toFixed(3), segments: report.split?.segments.length ?? 1, outputs };
    console.error(`${s.name}: ${run.wallSeconds} s, ${run.fps} frames/s, ${run.segments} segment(s)`);
    return run;
  } finally {
    for (const p of procs.reverse()) await stop(p);
  }
}

/** Pixels that differ between two folders of alpha PNGs, and the mean absolute difference (0..1). */
async function compareAlpha(a: string, b: string): Promise<{ frames: number; differing: number; mad: number }> {
  const names = (await readdir(join(a, 'alpha'))).sort();
  const other = (await readdir(join(b, 'alpha'))).sort();
  if (names.join() !== other.join()) throw new Error(`${a} and ${b} hold different frames`);
  let differing = 0, sum = 0, count = 0;
  for (const n of names) {
    const [x, y] = await Promise.all([a, b].map((d) => sharp(join(d, 'alpha', n)).toColourspace('b-w').raw().toBuffer()));
    for (let p = 0; p < x!.length; p++) { const d = Math.abs(x![p]! - y![p]!); if (d) differing++; sum += d; }
    count += x!.length;
  }
  return { frames: names.length, differing, mad: sum / 255 / count };
}

async function main() {
  const { values } = parseArgs({ options: {
    seconds: { type: 'string', default: '20' }, size: { type: 'string', default: '1280x720' }, fps: { type: 'string', default: '30' },
    'segment-seconds': { type: 'string', default: '5' }, prior: { type: 'string', default: 'rvm' }, engine: { type: 'string', default: 'classic' },
    out: { type: 'string', default: 'bench/results' }, 'no-readme': { type: 'boolean' }, keep: { type: 'boolean' },
  } });
  const seconds = Number(values.seconds), fps = Number(values.fps), segmentSeconds = Number(values['segment-seconds']);
  const [width, height] = values.size!.split('x').map(Number) as [number, number];
  if (!(seconds > 0 && fps > 0 && segmentSeconds >= 0 && width > 0 && height > 0)) throw new Error('--seconds, --fps, --size and --segment-seconds must be positive');
  for (const tool of ['ffmpeg', 'redis-server']) if (spawnSync(tool, ['-version']).error) throw new Error(`${tool} is needed (apt install ${tool === 'ffmpeg' ? 'ffmpeg' : 'redis-server'})`);
  const pin = spawnSync('taskset', ['-c', '0', 'true']).status === 0 && cpus().length >= 2;
  await loadCv();
  const frames = Math.round(seconds * fps);
  const dir = await mkdtemp(join(tmpdir(), 'cleanplate-bench-service-'));
  console.error(`building a ${seconds} s ${width}x${height} ${fps} fps clip (${frames} frames) in ${dir}`);
  // The scene of the video speed matrix; a slower subject so that it stays in the frame for 20 s.
  const scene = buildScene(width, height, 21, 150);
  const speed = Math.max(1, Math.min(4, Math.floor(600 / frames)));
  const input = join(dir, 'clip.mp4'), plate = join(dir, 'plate.png');
  await encodeClip((function* () { for (const f of clipFrames(scene, frames, speed, 21)) yield f.image; })(), input, { fps, keyframeEvery: fps, audio: true });
  await writeFile(plate, await encodePng(scene.background));

  const job = { input, plate, frames, segmentSeconds, fields: { prior: values.prior!, engine: values.engine!, 'alpha-sequence': 'true' } };
  const setups: Setup[] = [
    { name: '1 worker', redis: true, cores: [pin ? 0 : undefined] },
    { name: '2 workers', redis: true, cores: [pin ? 0 : undefined, pin ? 1 : undefined] },
    { name: 'in-process', redis: false, cores: [] },
  ];
  const runs: Run[] = [];
  for (const s of setups) runs.push(await runSetup(dir, s, job));
  const [one, two, embedded] = runs as [Run, Run, Run];
  const pair = await compareAlpha(one.outputs, two.outputs);
  const whole = await compareAlpha(one.outputs, embedded.outputs);
  const same = (c: typeof pair) => (c.differing ? `MAD ${c.mad.toExponential(1)} (${c.differing} px differ)` : 'identical');
  const pinned = pin ? 'taskset -c N, --threads 1' : 'not pinned: taskset or a second core is missing';
  const table = [
    '| setup | cores | wall | frames/s | × 1 worker | alpha PNGs vs 1 worker |',
    '|---|---|---|---|---|---|',
    `| 1 worker, Redis (${pinned}) | 1 | ${one.wallSeconds} s | ${one.fps.toFixed(2)} | 1.00 | — |`,
    `| 2 workers, Redis (${pinned}) | 2 | ${two.wallSeconds} s | ${two.fps.toFixed(2)} | ${(one.wallSeconds / two.wallSeconds).toFixed(2)} | ${same(pair)} |`,
    `| in-process \`serve\`, no Redis (not pinned, one job thread + the prior's) | ${embedded.cores} | ${embedded.wallSeconds} s | ${embedded.fps.toFixed(2)} | ${(one.wallSeconds / embedded.wallSeconds).toFixed(2)} | ${same(whole)} (one whole run, not split) |`,
  ].join('\n');
  const note = `${seconds} s ${width}x${height} ${fps} fps clip (${frames} frames, a keyframe a second, AAC audio), \`--prior ${values.prior} --engine ${values.engine}\`, `
    + `\`--segment-seconds ${segmentSeconds}\`: ${two.segments} segment${two.segments === 1 ? '' : 's'} with Redis; wall time from the POST to completion, model loading included; `
    + `${cpus()[0]?.model.trim() ?? 'unknown CPU'}, ${cpus().length} cores, ${new Date().toISOString().slice(0, 10)} (\`npm run bench:service\`).`;
  const text = `${table}\n\n${note}`;
  console.log(text);
  await mkdir(values.out!, { recursive: true });
  await writeFile(join(values.out!, 'service-scale.json'), JSON.stringify({ seconds, width, height, fps, frames, segmentSeconds, prior: values.prior, engine: values.engine, pinned: pin, runs, twoVsOne: pair, wholeVsOne: whole }, null, 2) + '\n');
  await writeFile(join(values.out!, 'service-scale.md'), text + '\n');
  if (!values['no-readme']) await updateReadme('service-scale', text);
  if (!values.keep) await rm(dir, { recursive: true, force: true });
  if (pair.differing) {
    console.error('the two-worker output differs from the one-worker output');
    process.exitCode = 1;
  }
}

await main();
