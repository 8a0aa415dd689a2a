/**
 * `cleanplate serve` in its default, embedded mode (no Redis): the API, uploads, limits, tokens,
 * concurrency and restarts, against a real server process.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import { loadCv } from '../src/cv.js';
import { buildClip, buildScene } from '../src/demo/scene.js';
import { toBytes } from '../src/image.js';
import { encodePng } from '../src/io/encode.js';
import { parseRange } from '../src/service/server.js';
import { BIN, tempDir } from './helpers.js';
import { finished, form, job, serve, start, stop, waitFor, type Server } from './service-helpers.js';

let dir: string, image: string, plate: string, server: Server;
const children: Server[] = [];

before(async () => {
  await loadCv();
  dir = await tempDir('cleanplate-service-');
  const scene = buildScene(128, 96, 11);
  image = join(dir, 'image.png'); plate = join(dir, 'plate.png');
  await writeFile(image, await encodePng(scene.image));
  await writeFile(plate, await encodePng(scene.plate));
  server = await serve(['--data', join(dir, 'data'), '--workers', '2']);
  children.push(server);
});

after(async () => {
  for (const c of children) await stop(c);
});

async function post(url: string, files: Record<string, string | Buffer>, fields: Record<string, string> = {}, headers: Record<string, string> = {}) {
  const r = await fetch(`${url}/v1/jobs`, { method: 'POST', body: await form(files, fields), headers });
  return { status: r.status, body: (await r.json()) as { id?: string; error?: string }, headers: r.headers };
}

test('an image job through the API gives byte for byte the CLI\'s outputs', async () => {
  const r = await post(server.url, { input: image, plate }, { prior: 'none', color: '#00ff00' });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  assert.match(r.body.id!, /^[A-Za-z0-9_-]{22}$/, 'an unguessable 128-bit id');
  const j = await finished(server.url, r.body.id!);
  assert.equal(j.state, 'completed', j.error ?? '');
  assert.deepEqual(j.outputs, ['alpha.png', 'composite.png', 'foreground.png', 'report.json']);
  assert.deepEqual(j.progress, { framesDone: 1, framesTotal: 1, fps: 0, etaSeconds: 0 });

  const out = join(dir, 'cli-out');
  const cli = spawnSync(process.execPath, [BIN, 'matte', image, '--plate', plate, '--out', out, '--prior', 'none', '--color', '#00ff00'], { encoding: 'utf8' });
  assert.equal(cli.status, 0, cli.stderr);
  for (const name of ['alpha.png', 'foreground.png', 'composite.png']) {
    const res = await fetch(`${server.url}/v1/jobs/${r.body.id}/outputs/${name}`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'image/png');
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(await readFile(join(out, name))), `${name} equals the CLI's`);
  }
  const report = await fetch(`${server.url}/v1/jobs/${r.body.id}/outputs/report.json`);
  assert.match(report.headers.get('content-type')!, /^application\/json/);
  assert.equal(((await report.json()) as { engine: string }).engine, 'classic');
});

test('outputs honour Range requests', async () => {
  const { body } = await post(server.url, { input: image, plate }, { prior: 'none' });
  await finished(server.url, body.id!);
  const url = `${server.url}/v1/jobs/${body.id}/outputs/alpha.png`;
  const whole = Buffer.from(await (await fetch(url)).arrayBuffer());
  const part = await fetch(url, { headers: { range: 'bytes=10-19' } });
  assert.equal(part.status, 206);
  assert.equal(part.headers.get('content-range'), `bytes 10-19/${whole.length}`);
  assert.equal(part.headers.get('accept-ranges'), 'bytes');
  assert.ok(Buffer.from(await part.arrayBuffer()).equals(whole.subarray(10, 20)));
  const tail = await fetch(url, { headers: { range: 'bytes=-5' } });
  assert.ok(Buffer.from(await tail.arrayBuffer()).equals(whole.subarray(whole.length - 5)));
  const beyond = await fetch(url, { headers: { range: `bytes=${whole.length}-` } });
  assert.equal(beyond.status, 416);
  assert.equal(beyond.headers.get('content-range'), `bytes */${whole.length}`);
  // Parser edge cases.
  assert.deepEqual(parseRange('bytes=0-', 10), { start: 0, end: 9 });
  assert.deepEqual(parseRange('bytes=5-100', 10), { start: 5, end: 9 });
  assert.equal(parseRange('bytes=0-1,4-5', 10), undefined);
  assert.equal(parseRange('bytes=7-3', 10), null);
});

test('bad uploads and requests are refused with a 4xx that names the problem, and leave nothing behind', async () => {
  const junk = Buffer.from('this is not an image\n');
  const truncated = (await readFile(image)).subarray(0, 600);
  const tiny = await sharp({ create: { width: 4, height: 4, channels: 3, background: '#fff' } }).png().toBuffer();
  const cases: [Record<string, string | Buffer>, Record<string, string>, number, RegExp][] = [
    [{ input: junk, plate }, {}, 422, /^input: not a readable image or video/],
    [{ input: truncated, plate }, { prior: 'none' }, 422, /^input: corrupt or truncated image/],
    [{ input: tiny, plate }, { prior: 'none' }, 422, /^input: image is 4x4, too small/],
    [{ input: image, plate: junk }, { prior: 'none' }, 422, /^plate: not a readable image/],
    [{ input: image, plate }, { prior: 'none', align: 'sideways' }, 400, /body\.align must be equal to one of the allowed values \(auto, homography, none\)/],
    [{ input: image, plate }, { prior: 'none', color: 'purple' }, 400, /body\.color must match pattern/],
    [{ input: image, plate }, { prior: 'none', 'max-pixels': '9' }, 400, /additional properties 'max-pixels'/],
    [{ input: image, plate, background: image }, { prior: 'none', color: '#fff' }, 400, /either a background or a color/],
    [{ input: image }, { prior: 'none' }, 400, /nothing to matte from/],
    [{ plate }, { prior: 'none' }, 400, /required property 'input'/],
    [{ input: image, script: image }, {}, 400, /unexpected file field 'script'/],
    [{ input: Buffer.alloc(0), plate }, { prior: 'none' }, 422, /input: empty file/],
  ];
  for (const [files, fields, status, pattern] of cases) {
    const r = await post(server.url, files, fields);
    assert.equal(r.status, status, `${JSON.stringify(fields)} ${JSON.stringify(r.body)}`);
    assert.match(r.body.error!, pattern);
  }
  const json = await fetch(`${server.url}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"input":{"file":"../../etc/passwd"}}' });
  assert.equal(json.status, 400, 'a JSON body cannot name a stored file');
  // Ids and output names are checked before anything reaches the store.
  for (const path of ['/v1/jobs/..%2F..%2Fetc', '/v1/jobs/short', '/v1/jobs/AAAAAAAAAAAAAAAAAAAAAA/outputs/..%2Fjob.json', '/v1/jobs/AAAAAAAAAAAAAAAAAAAAAA/outputs/passwd']) {
    const r = await fetch(server.url + path);
    assert.ok(r.status === 400 || r.status === 404, `${path}: ${r.status}`);
  }
  assert.equal((await fetch(`${server.url}/v1/jobs/AAAAAAAAAAAAAAAAAAAAAA`)).status, 404);
  // Refused uploads are removed: only accepted jobs have folders.
  const jobs = await readdir(join(dir, 'data', 'jobs'));
  for (const id of jobs) assert.ok(existsSync(join(dir, 'data', 'jobs', id, 'job.json')), `${id} is an accepted job`);
  assert.equal((await fetch(`${server.url}/healthz`)).status, 200, 'the server is still up');
});

test('limits: upload size, pixels and jobs per token', async () => {
  const s = await serve(['--data', join(dir, 'data-limits'), '--workers', '1', '--max-upload-mb', '1', '--max-pixels', '10000', '--max-jobs-per-token', '1']);
  children.push(s);
  const big = Buffer.alloc(1.5 * 2 ** 20, 7);
  let r = await post(s.url, { input: big, plate }, { prior: 'none' });
  assert.equal(r.status, 413);
  assert.match(r.body.error!, /input: upload over the limit of 1048576 bytes/);
  r = await post(s.url, { input: image, plate }, { prior: 'none' });
  assert.equal(r.status, 422);
  assert.match(r.body.error!, /input: image is 128x96 \(0\.0 MP\), over the limit/);
  const small = await sharp(image).resize(64, 48).png().toBuffer();
  const smallPlate = await sharp(plate).resize(64, 48).png().toBuffer();
  const first = await post(s.url, { input: small, plate: smallPlate }, { prior: 'none' });
  assert.equal(first.status, 202);
  const second = await post(s.url, { input: small, plate: smallPlate }, { prior: 'none' });
  const state = (await job(s.url, first.body.id!)).state;
  if (state === 'queued' || state === 'active') {
    assert.equal(second.status, 429, 'one open job per token');
    assert.match(second.body.error!, /too many jobs .* \(limit 1\)/);
  }
  await finished(s.url, first.body.id!);
  assert.equal((await post(s.url, { input: small, plate: smallPlate }, { prior: 'none' })).status, 202, 'accepted again once the first finished');
});

test('bearer token: missing or wrong is 401; right is accepted; jobs are private to their token', async () => {
  const tokens = join(dir, 'tokens');
  await writeFile(tokens, '# one per line\nalpha-token-0123456789\nbravo-token-0123456789\n');
  const s = await serve(['--data', join(dir, 'data-auth'), '--workers', '1', '--token-file', tokens]);
  children.push(s);
  const a = { authorization: 'Bearer alpha-token-0123456789' }, b = { authorization: 'Bearer bravo-token-0123456789' };
  let r = await post(s.url, { input: image, plate }, { prior: 'none' });
  assert.equal(r.status, 401);
  assert.match(r.body.error!, /missing bearer token/);
  r = await post(s.url, { input: image, plate }, { prior: 'none' }, { authorization: 'Bearer not-the-token-at-all' });
  assert.equal(r.status, 401);
  assert.match(r.body.error!, /invalid token/);
  for (const path of ['/metrics', '/v1/jobs/AAAAAAAAAAAAAAAAAAAAAA']) assert.equal((await fetch(s.url + path)).status, 401, path);
  assert.equal((await fetch(`${s.url}/healthz`)).status, 200, '/healthz needs no token');
  r = await post(s.url, { input: image, plate }, { prior: 'none' }, a);
  assert.equal(r.status, 202);
  assert.equal((await finished(s.url, r.body.id!, a)).state, 'completed');
  assert.equal((await fetch(`${s.url}/v1/jobs/${r.body.id}`, { headers: b })).status, 404, 'another token does not see the job');
  assert.equal((await fetch(`${s.url}/v1/jobs/${r.body.id}/outputs/alpha.png`, { headers: b })).status, 404);
  assert.equal((await fetch(`${s.url}/v1/jobs/${r.body.id}/outputs/alpha.png`, { headers: a })).status, 200);
});

test('serve refuses a non-loopback host without a token, in one line', async () => {
  const p = start(['serve', '--host', '0.0.0.0', '--port', '0', '--data', join(dir, 'data-open')]);
  assert.equal(await p.exited, 1);
  assert.match(p.log(), /^cleanplate: refusing to listen on 0\.0\.0\.0 without authentication: give --token-file FILE/);
  assert.equal(p.log().trim().split('\n').length, 1);
});

test('20 concurrent submissions all complete, each exactly once; an idempotency key returns the first job', async () => {
  const small = await sharp(image).resize(64, 48).png().toBuffer();
  const smallPlate = await sharp(plate).resize(64, 48).png().toBuffer();
  const posts = await Promise.all(Array.from({ length: 20 }, () => post(server.url, { input: small, plate: smallPlate }, { prior: 'none' })));
  assert.deepEqual(posts.map((p) => p.status), Array(20).fill(202));
  const ids = posts.map((p) => p.body.id!);
  assert.equal(new Set(ids).size, 20, 'distinct ids');
  const done = await Promise.all(ids.map((id) => finished(server.url, id)));
  assert.deepEqual(done.map((j) => j.state), Array(20).fill('completed'));
  assert.deepEqual(done.map((j) => j.attempts), Array(20).fill(1), 'each ran once');
  const alphas = await Promise.all(ids.map(async (id) => Buffer.from(await (await fetch(`${server.url}/v1/jobs/${id}/outputs/alpha.png`)).arrayBuffer())));
  assert.ok(alphas.every((a) => a.equals(alphas[0]!)), 'same input, same output');

  const key = { 'idempotency-key': 'upload-42' };
  const again = await Promise.all([0, 1, 2].map(() => post(server.url, { input: small, plate: smallPlate }, { prior: 'none' }, key)));
  assert.deepEqual(again.map((p) => p.status), [202, 202, 202]);
  assert.equal(new Set(again.map((p) => p.body.id)).size, 1, 'one job for one key, even when posted concurrently');
  assert.equal(again.filter((p) => p.headers.get('idempotent-replayed') === 'true').length, 2);
  await finished(server.url, again[0]!.body.id!);

  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  assert.match(metrics, /^# TYPE cleanplate_jobs gauge$/m);
  assert.match(metrics, /^cleanplate_jobs\{state="completed"\} \d+$/m);
  assert.match(metrics, /^cleanplate_queue_depth 0$/m);
  assert.match(metrics, /^cleanplate_frames_per_second [\d.]+$/m);
});

test('DELETE cancels and removes a job with its files', async () => {
  const { body } = await post(server.url, { input: image, plate }, { prior: 'none' });
  const del = await fetch(`${server.url}/v1/jobs/${body.id}`, { method: 'DELETE' });
  assert.equal(del.status, 204);
  assert.equal((await fetch(`${server.url}/v1/jobs/${body.id}`)).status, 404);
  assert.equal(existsSync(join(dir, 'data', 'jobs', body.id!)), false, 'its folder is gone');
  // The server goes on taking jobs.
  const next = await post(server.url, { input: image, plate }, { prior: 'none' });
  assert.equal((await finished(server.url, next.body.id!)).state, 'completed');
  assert.equal(existsSync(join(dir, 'data', 'jobs', body.id!)), false, 'a cancelled run does not publish later');
});

test('a job pending when the server is killed is run after a restart', async () => {
  const data = join(dir, 'data-restart');
  const a = await serve(['--data', data, '--workers', '1']);
  children.push(a);
  const r = await post(a.url, { input: image, plate }, { prior: 'none' });
  assert.equal(r.status, 202);
  await stop(a, 'SIGKILL');
  const record = JSON.parse(await readFile(join(data, 'jobs', r.body.id!, 'job.json'), 'utf8')) as { state: string };
  assert.notEqual(record.state, 'completed', 'killed before it finished');
  const b = await serve(['--data', data, '--workers', '1']);
  children.push(b);
  const j = await finished(b.url, r.body.id!);
  assert.equal(j.state, 'completed', j.error ?? '');
  assert.deepEqual(j.outputs, ['alpha.png', 'foreground.png', 'report.json']);
});

const HAS_FFMPEG = spawnSync('ffmpeg', ['-version']).status === 0;

test('a video job: progress in frames, video outputs with their content types', { skip: !HAS_FFMPEG && 'ffmpeg is not installed (apt install ffmpeg)' }, async () => {
  const clip = buildClip(10, 96, 64, 2);
  const video = join(dir, 'clip.mkv');
  const enc = spawnSync('ffmpeg', ['-v', 'error', '-y', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', '96x64', '-framerate', '25', '-i', 'pipe:0', '-c:v', 'ffv1', video], { input: Buffer.concat(clip.frames.map((f) => toBytes(f))) });
  assert.equal(enc.status, 0, String(enc.stderr));
  const clipPlate = join(dir, 'clip-plate.png');
  await writeFile(clipPlate, await encodePng(clip.plate));
  const r = await post(server.url, { input: video, plate: clipPlate }, { prior: 'none', color: '#0000ff' });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  const j = await finished(server.url, r.body.id!);
  assert.equal(j.state, 'completed', j.error ?? '');
  assert.deepEqual(j.outputs, ['alpha.mp4', 'composite.mp4', 'foreground.webm', 'report.json']);
  assert.equal(j.progress.framesDone, 10);
  assert.equal(j.progress.framesTotal, 10);
  const mp4 = await fetch(`${server.url}/v1/jobs/${r.body.id}/outputs/alpha.mp4`, { headers: { range: 'bytes=0-99' } });
  assert.equal(mp4.status, 206);
  assert.equal(mp4.headers.get('content-type'), 'video/mp4');
  assert.equal((await fetch(`${server.url}/v1/jobs/${r.body.id}/outputs/foreground.webm`)).headers.get('content-type'), 'video/webm');
  const report = (await (await fetch(`${server.url}/v1/jobs/${r.body.id}/outputs/report.json`)).json()) as { frames: number };
  assert.equal(report.frames, 10);
  // The alpha sequence (as --alpha-sequence): listed as a folder, one PNG per frame.
  const seq = await post(server.url, { input: video, plate: clipPlate }, { prior: 'none', 'alpha-sequence': 'true' });
  assert.equal(seq.status, 202, JSON.stringify(seq.body));
  const js = await finished(server.url, seq.body.id!);
  assert.equal(js.state, 'completed', js.error ?? '');
  assert.deepEqual(js.outputs, ['alpha.mp4', 'alpha/', 'foreground.webm', 'report.json']);
  const png = await fetch(`${server.url}/v1/jobs/${seq.body.id}/outputs/alpha/000010.png`);
  assert.equal(png.status, 200);
  assert.equal(png.headers.get('content-type'), 'image/png');
  assert.deepEqual((await sharp(Buffer.from(await png.arrayBuffer())).metadata()).width, 96);
  assert.equal((await fetch(`${server.url}/v1/jobs/${seq.body.id}/outputs/alpha/000011.png`)).status, 404, 'no frame 11');
  assert.equal((await fetch(`${server.url}/v1/jobs/${seq.body.id}/outputs/alpha/..%2Fjob.json`)).status, 400, 'frame names are checked');
  // A plate that is a video, or a video background for an image, is refused.
  const bad = await post(server.url, { input: image, plate: video }, { prior: 'none' });
  assert.equal(bad.status, 422);
  assert.match(bad.body.error!, /^plate: not a readable image/);
});

test('openapi.json describes every route', async () => {
  const doc = (await (await fetch(`${server.url}/openapi.json`)).json()) as { openapi: string; paths: Record<string, Record<string, { requestBody?: unknown }>> };
  assert.equal(doc.openapi, '3.0.3');
  assert.deepEqual(Object.keys(doc.paths).sort(), ['/healthz', '/metrics', '/v1/jobs', '/v1/jobs/{id}', '/v1/jobs/{id}/outputs/alpha/{frame}', '/v1/jobs/{id}/outputs/{name}']);
  assert.deepEqual(Object.keys(doc.paths['/v1/jobs/{id}']!).sort(), ['delete', 'get']);
  assert.ok(doc.paths['/v1/jobs']!.post!.requestBody, 'the multipart body is described');
});

test('no job is left running', async () => {
  await waitFor('queue to drain', async () => /cleanplate_jobs\{state="active"\} 0/.test(await (await fetch(`${server.url}/metrics`)).text()), 30_000);
});
