/**
 * Speed of the browser app's live mode: headless Chromium (Debian's, CPU and WebAssembly only) with
 * a fake camera playing a generated clip (the empty scene, then a subject who walks in and stands),
 * the plate captured on the empty scene, then live fps and the milliseconds of every stage measured
 * over a window, at 640x360 and 1280x720; and the model load time (page start to both workers ready).
 * Writes bench/results/web-speed.{json,md} and the README's table between <!-- web:start/end -->,
 * and with --screenshot FILE a screenshot of the live page (docs/web-live.png).
 *
 *   npm run bench:web [-- --seconds 10] [--sizes 640x360,1280x720] [--variants selfie,rvm] [--quick] [--no-readme] [--screenshot docs/web-live.png]
 *
 * A variant is the live prior with options: selfie, rvm, rvm@320 (its grid), selfie+t2 (two wasm threads), selfie~w256 (engine grid).
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startWebServer } from '../src/cli/web.js';
import { loadCv } from '../src/cv.js';
import { PACKAGE_ROOT } from '../src/paths.js';
import { buildLiveClip, captureAtLoopStart, CHROMIUM, launchChromium, phaseWatcherSource } from './web-harness.js';

interface Row {
  size: string;
  variant: string;
  fps: number;
  frames: number;
  seconds: number;
  /** Mean ms per frame over the window, per stage. */
  ms: Record<string, number>;
  priorFps: number;
  /** Mean frames between a matted frame and the one its prior came from. */
  priorLag?: number;
  band?: number;
  scratchMb?: number;
  modelLoadMs: number;
  backend: { simd: boolean; threads: number };
}

const { values } = parseArgs({ options: {
  seconds: { type: 'string', default: '10' }, sizes: { type: 'string', default: '640x360,1280x720' },
  variants: { type: 'string', default: 'selfie,rvm' }, quick: { type: 'boolean' }, 'no-readme': { type: 'boolean' },
  screenshot: { type: 'string' }, out: { type: 'string', default: join(PACKAGE_ROOT, 'bench', 'results') },
} });

/** A variant is the live prior and its options: "selfie", "rvm", "rvm@320" (prior grid), "selfie+t2" (2 threads). */
function variantQuery(variant: string): string {
  const m = /^(selfie|rvm)(?:@(\d+))?(?:\+t(\d+))?(?:~w(\d+))?$/.exec(variant);
  if (!m) throw new Error(`unknown variant '${variant}' (selfie, rvm, rvm@320, selfie+t2, selfie~w256)`);
  return `&prior=${m[1]}${m[2] ? `&priorSide=${m[2]}` : ''}${m[3] ? `&threads=${m[3]}` : ''}${m[4] ? `&work=${m[4]}` : ''}`;
}

async function measure(size: string, variant: string, seconds: number, dir: string, screenshot?: string): Promise<Row> {
  const [width, height] = size.split('x').map(Number) as [number, number];
  process.stderr.write(`${size} ${variant}: building the clip… `);
  const clip = await buildLiveClip(dir, { width, height, fps: 30, seconds: { empty: 1.5, entering: 0.5, still: 5, moved: 0 } });
  const web = await startWebServer({ port: 0 });
  const browser = await launchChromium(clip.path);
  try {
    const page = await browser.newPage({ viewport: { width: 1200, height: 760 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    await page.goto(`${web.url}?size=${size}&countdown=0${screenshot ? '' : '&background=color:00b140'}${variantQuery(variant)}`);
    await page.waitForFunction(() => ['ready', 'error'].includes(document.querySelector<HTMLElement>('[data-testid="status"]')!.dataset.state!), null, { timeout: 180_000 });
    const load = await page.evaluate(() => ({ ms: window.cleanplate.modelLoadMs!, backend: window.cleanplate.backend!, status: document.querySelector('[data-testid="status"]')!.textContent }));
    if (!load.ms) throw new Error(`the page did not load: ${load.status}`);
    process.stderr.write(`models loaded in ${load.ms} ms; capturing the plate… `);
    await page.evaluate(phaseWatcherSource(clip.probes));
    await captureAtLoopStart(page);
    await page.evaluate(() => (window as unknown as { __stopClipWatcher(): void }).__stopClipWatcher());
    await page.waitForFunction(() => document.querySelector<HTMLElement>('[data-testid="status"]')!.dataset.state === 'live', null, { timeout: 60_000 });
    await page.waitForTimeout(2000); // warm-up: the engine's first frames, the prior's first results
    const stats = () => page.evaluate(() => ({ t: performance.now(), s: window.cleanplate.stats()! }));
    const a = await stats();
    process.stderr.write(`measuring ${seconds} s… `);
    await page.waitForTimeout(seconds * 1000);
    const b = await stats();
    if (screenshot) {
      await page.evaluate(() => new Promise((r) => setTimeout(r, 300)));
      await mkdir(join(screenshot, '..'), { recursive: true });
      await page.screenshot({ path: screenshot });
    }
    if (errors.length) throw new Error(`console errors: ${errors.join(' | ')}`);
    const elapsed = (b.t - a.t) / 1000;
    const ms: Record<string, number> = {};
    for (const [stage, [sum, n]] of Object.entries(b.s.sums)) {
      const [sum0, n0] = a.s.sums[stage] ?? [0, 0];
      if (n > n0) ms[stage] = +((sum - sum0) / (n - n0)).toFixed(stage.startsWith('prior lag') ? 2 : 1);
    }
    const frames = b.s.frames - a.s.frames;
    const priorRuns = (b.s.sums['prior (worker)']?.[1] ?? 0) - (a.s.sums['prior (worker)']?.[1] ?? 0);
    const row: Row = {
      size, variant, fps: +(frames / elapsed).toFixed(2), frames, seconds: +elapsed.toFixed(1), ms,
      priorFps: +(priorRuns / elapsed).toFixed(2), priorLag: ms['prior lag (frames)'], band: b.s.band, scratchMb: b.s.scratchMb, modelLoadMs: load.ms, backend: load.backend,
    };
    process.stderr.write(`${row.fps} fps\n`);
    return row;
  } finally {
    await browser.close();
    await web.close();
  }
}

function table(rows: Row[]): string {
  const f = (v: number | undefined) => (v === undefined ? '' : v.toFixed(1));
  const lines = [
    '| size | live prior | fps | frame in | prior resize | colour fit | matte (decide / band / refine / foreground) | composite | plate check | draw | prior worker ms (runs/s) | prior lag (frames) | scratch MB | model load |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    const m = r.ms;
    const parts = ['decide', 'band', 'refine', 'foreground'].map((k) => f(m[`matte.${k}`])).join(' / ');
    lines.push(`| ${r.size} | ${r.variant} | **${r.fps.toFixed(1)}** | ${f(m.frame)} | ${f(m.prior)} | ${f(m.colour)} | ${f(m.matte)} (${parts}) | ${f(m.composite)} | ${f(m.check)} | ${f(m['draw (page)'])} | ${f(m['prior (worker)'])} (${r.priorFps.toFixed(1)}) | ${r.priorLag?.toFixed(1) ?? ''} | ${r.scratchMb ?? ''} | ${(r.modelLoadMs / 1000).toFixed(1)} s |`);
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  await loadCv();
  const seconds = values.quick ? 4 : Number(values.seconds);
  const sizes = values.quick ? ['640x360'] : values.sizes!.split(',');
  const variants = values.variants!.split(',');
  const dir = join(PACKAGE_ROOT, 'bench', 'results', 'web-clips');
  await mkdir(dir, { recursive: true });
  const rows: Row[] = [];
  const load = [loadavg()[0]!];
  for (const size of sizes) for (const variant of variants) rows.push(await measure(size, variant, seconds, dir));
  load.push(loadavg()[0]!);
  if (values.screenshot) await measure('640x360', variants[0]!, 3, dir, values.screenshot);

  const version = (await import('node:child_process')).spawnSync(CHROMIUM, ['--version'], { encoding: 'utf8' }).stdout.trim().replace(/\s+built on.*$/, '');
  const machine = `${cpus().length}x ${cpus()[0]?.model.trim() ?? 'CPU'}`;
  const note = `Headless ${version} on ${machine} (no GPU: TensorFlow.js and OpenCV.js on WebAssembly, SIMD${rows[0]?.backend.threads && rows[0].backend.threads > 1 ? `, ${rows[0].backend.threads} threads` : ', one thread each'}), `
    + `\`npm run bench:web\`, ${new Date().toISOString().slice(0, 10)}, one-minute load average ${load.map((l) => l.toFixed(1)).join(' at the start, ')} at the end (other work on the machine takes cores from the browser). A fake camera plays a generated 30 fps clip (the empty scene 1.5 s, a subject with 150 hair strands walking in and standing 5.5 s, looped); `
    + `the plate is captured on the empty scene, then fps counts the composites drawn over ${seconds} s after a 2 s warm-up, and each stage's milliseconds are means over the same frames `
    + '(matte worker: frame in, prior resize, the classic engine with its steps, composite; colour fit and plate check: each time they run, every 2 s and every 1 s; page: draw; prior worker: one prior). '
    + 'The prior runs beside the matting on the other core and the matte uses the newest prior there is; "prior lag" is, on average, how many frames older than the matted frame the prior\'s frame was. '
    + '"scratch MB": the buffers the matte worker keeps for a frame\'s temporary planes (src/alloc.ts). '
    + 'Model load: from the page\'s start to both workers holding their models (OpenCV.js, TensorFlow.js, the prior\'s weights; served from localhost).';
  const text = `${table(rows)}\n\n${note}`;
  await mkdir(values.out!, { recursive: true });
  await writeFile(join(values.out!, 'web-speed.json'), JSON.stringify({ date: new Date().toISOString(), chromium: version, machine, loadAverage: load, rows }, null, 2) + '\n');
  await writeFile(join(values.out!, 'web-speed.md'), text + '\n');
  process.stdout.write(text + '\n');
  if (!values.quick && !values['no-readme']) {
    const path = join(PACKAGE_ROOT, 'README.md');
    const readme = await readFile(path, 'utf8');
    const re = /(<!-- web:start -->\n)[\s\S]*?(\n<!-- web:end -->)/;
    if (!re.test(readme)) throw new Error('README.md has no web markers');
    await writeFile(path, readme.replace(re, (_m, a: string, b: string) => a + text + b));
  }
}

await main();
