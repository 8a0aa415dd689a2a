/**
 * A store that cannot be written: the job fails with one line that names the store and the problem
 * in plain words, and leaves nothing half-written. Real failures, not simulated ones: a tmpfs of
 * 2 MB filled up (ENOSPC) and remounted read-only (EROFS), where this process may mount one (root
 * with CAP_SYS_ADMIN; elsewhere those two cases skip and say why), and a file standing where the
 * outputs folder goes (ENOTDIR), which needs no privilege. Running as root, permissions (chmod)
 * cannot make a folder unwritable, hence these.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createReadStream, mkdtempSync, openSync, closeSync, writeSync } from 'node:fs';
import { readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { loadCv } from '../src/cv.js';
import { buildClip, buildScene } from '../src/demo/scene.js';
import { toBytes } from '../src/image.js';
import { encodePng } from '../src/io/encode.js';
import { EmbeddedBackend } from '../src/service/backend.js';
import type { JobKind, JobRecord } from '../src/service/jobs.js';
import { DirStore, newJobId } from '../src/service/store.js';
import { tempDir } from './helpers.js';

const HAS_FFMPEG = spawnSync('ffmpeg', ['-version']).status === 0;
const W = 256, H = 192, N = 12;

/** A 2 MB tmpfs, if this process may mount one. */
const mount = (() => {
  const dir = mkdtempSync(join(tmpdir(), 'cleanplate-tmpfs-'));
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', dir], { encoding: 'utf8' });
  return r.status === 0 ? { dir, skip: false as const } : { dir, skip: `cannot mount a tmpfs here (${(r.stderr || r.error?.message || '').trim()}): needs root with CAP_SYS_ADMIN` };
})();

let dir: string, image: string, plate: string, video: string;

before(async () => {
  await loadCv();
  dir = await tempDir('cleanplate-store-');
  const scene = buildScene(W, H, 11);
  image = join(dir, 'image.png'); plate = join(dir, 'plate.png');
  await writeFile(image, await encodePng(scene.image));
  await writeFile(plate, await encodePng(scene.plate));
  if (HAS_FFMPEG) {
    const clip = buildClip(N, W, H, 2);
    video = join(dir, 'clip.mp4');
    const r = spawnSync('ffmpeg', ['-v', 'error', '-y', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${W}x${H}`, '-framerate', '25', '-i', 'pipe:0',
      '-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-crf', '16', video], { input: Buffer.concat(clip.frames.map((f) => Buffer.from(toBytes(f)))) });
    assert.equal(r.status, 0, String(r.stderr));
  }
});

after(async () => {
  if (!mount.skip) spawnSync('umount', [mount.dir]);
  await rm(mount.dir, { recursive: true, force: true });
});

/** A job as the API would store it: uploads saved, record written. */
async function addJob(store: DirStore, kind: JobKind): Promise<JobRecord> {
  const id = newJobId();
  const input = kind === 'video' ? 'input.mkv' : 'input.img';
  const bytes = await store.saveInput(id, input, createReadStream(kind === 'video' ? video : image));
  const plateBytes = await store.saveInput(id, 'plate.img', createReadStream(plate));
  const t = new Date().toISOString();
  const record: JobRecord = {
    id, kind, owner: 'anonymous', state: 'queued',
    options: { prior: 'none', engine: 'classic', align: 'auto', maxPixels: 1e8, ...(kind === 'video' ? { temporal: true } : {}) },
    inputs: { input: { file: input, bytes, kind, width: W, height: H, ...(kind === 'video' ? { frames: N, fps: 25 } : {}) }, plate: { file: 'plate.img', bytes: plateBytes, kind: 'image', width: W, height: H } },
    progress: { framesDone: 0, framesTotal: kind === 'video' ? N : 1, fps: 0, etaSeconds: null }, error: null, outputs: [], attempts: 0, createdAt: t, updatedAt: t,
  };
  await store.writeRecord(record);
  return record;
}

/** The embedded backend (worker threads, as `cleanplate serve` runs jobs), started on an empty store. */
async function startBackend(store: DirStore): Promise<EmbeddedBackend> {
  const backend = new EmbeddedBackend(store, 1, store.root);
  await backend.start();
  return backend;
}

/** Runs the job; resolves with its final status, or fails if it neither fails nor completes in 60 s (a hang). */
async function run(backend: EmbeddedBackend, record: JobRecord): Promise<{ state: string; error: string | null }> {
  await backend.enqueue(record);
  const end = Date.now() + 60_000;
  for (;;) {
    const s = await backend.status(record);
    if (s.state === 'completed' || s.state === 'failed') return s;
    if (Date.now() > end) throw new Error(`job ${record.id} neither failed nor completed within 60 s (state ${s.state})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Nothing of the failed run is left in the job's folder: no staging, no outputs. The job's status
 * turns failed before its last record writes end (the status is the backend's own; the writes
 * follow it to the store), and a record write the full disk refuses removes its temporary file
 * when it gives up: that file may be seen for a moment, never kept.
 */
async function nothingWritten(store: DirStore, id: string): Promise<void> {
  const left = async () => (await readdir(join(store.root, 'jobs', id))).filter((n) => n !== 'inputs' && n !== 'job.json');
  for (let k = 0; k < 40 && (await left()).some((n) => /^\.job-.*\.json$/.test(n)); k++) await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(await left(), []);
}

/** Fills the file system at `dir` up to the last byte. */
function fill(file: string): void {
  const fd = openSync(file, 'w');
  const chunk = Buffer.alloc(64 * 1024, 1);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (err) {
    assert.equal((err as NodeJS.ErrnoException).code, 'ENOSPC');
    for (let n = 4096; n >= 1; n >>= 1) for (;;) { try { writeSync(fd, chunk, 0, n); } catch { break; } }
  } finally {
    closeSync(fd);
  }
}

test('a full store (ENOSPC): a video job fails with one line naming the store, nothing half-written', { skip: mount.skip || (!HAS_FFMPEG && 'ffmpeg is not installed') }, async () => {
  const store = new DirStore(join(mount.dir, 'full'));
  await store.init();
  const backend = await startBackend(store);
  const record = await addJob(store, 'video');
  const filler = join(mount.dir, 'filler');
  fill(filler);
  try {
    const s = await run(backend, record);
    assert.equal(s.state, 'failed');
    const where = store.root.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    assert.match(s.error!, new RegExp(`^store ${where}: cannot (write the outputs|create a folder for the outputs): the disk is full \\(ENOSPC\\)$`));
    await nothingWritten(store, record.id);
  } finally {
    await backend.close();
    await rm(filler, { force: true });
  }
});

test('a read-only store (EROFS): the job fails with one line naming the store', { skip: mount.skip }, async () => {
  const store = new DirStore(join(mount.dir, 'ro'));
  await store.init();
  const backend = await startBackend(store);
  const record = await addJob(store, 'image');
  assert.equal(spawnSync('mount', ['-o', 'remount,ro', mount.dir]).status, 0, 'remount read-only');
  try {
    const s = await run(backend, record);
    assert.equal(s.state, 'failed');
    assert.equal(s.error, `store ${store.root}: cannot create a folder for the outputs: the file system is read-only (EROFS)`);
  } finally {
    await backend.close();
    assert.equal(spawnSync('mount', ['-o', 'remount,rw', mount.dir]).status, 0, 'remount read-write');
  }
  await nothingWritten(store, record.id);
});

test('a file where the outputs folder goes (ENOTDIR): the job fails with one line naming the store; the inputs are untouched', async () => {
  const store = new DirStore(join(dir, 'blocked'));
  await store.init();
  const backend = await startBackend(store);
  const record = await addJob(store, 'image');
  const blocker = join(store.root, 'jobs', record.id, 'outputs');
  await writeFile(blocker, 'not a folder\n');
  const inputBefore = await stat(join(store.root, 'jobs', record.id, 'inputs', 'input.img'));
  const s = await run(backend, record).finally(() => backend.close());
  assert.equal(s.state, 'failed');
  assert.equal(s.error, `store ${store.root}: cannot publish the outputs: a file is in the way where a folder should be (ENOTDIR)`);
  const names = await readdir(join(store.root, 'jobs', record.id));
  assert.ok(!names.some((n) => n.startsWith('.staging-')), `no staging folder left: ${names.join(', ')}`);
  assert.equal((await stat(join(store.root, 'jobs', record.id, 'inputs', 'input.img'))).size, inputBefore.size);
});
