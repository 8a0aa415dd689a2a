/**
 * Photo mode on the page's thread: picking or dropping the files, decoding them (the browser's own
 * decoder, with EXIF orientation applied as the CLI does), handing them to the matte worker, and
 * showing and offering the results. The matting is photo.ts's, the CLI's own steps.
 */
import type { Engine } from './engine.js';
import type { FromMatte, FromPrior, PhotoAlign, PhotoPrior, PhotoResult } from './protocol.js';
import type { Status } from './status.js';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

const INPUTS = ['photo-image', 'photo-plate', 'photo-background'] as const;

export class PhotoMode {
  private nextId = 0;
  private pending: { id: number; started: number } | undefined;
  private urls: string[] = [];
  /** The last result's report (as the CLI's report.json) and metrics, for scripts. */
  last: { report: PhotoResult['report']; metrics?: PhotoResult['metrics'] } | undefined;

  constructor(private readonly engine: Engine, private readonly status: Status) {
    engine.matte.addEventListener('message', (e: MessageEvent<FromMatte>) => this.fromMatte(e.data));
    engine.prior.addEventListener('message', (e: MessageEvent<FromPrior>) => {
      const m = e.data;
      if (this.pending && m.type === 'progress' && /rvm\.bin$/.test(m.file) && m.loaded < m.total) {
        this.status.set('working', `Loading the RVM model… ${Math.round((100 * m.loaded) / m.total)}%`);
      }
    });
    $('photo-form').addEventListener('submit', (e) => { e.preventDefault(); void this.run(); });
    for (const id of INPUTS) {
      const input = $<HTMLInputElement>(id);
      const zone = input.closest<HTMLElement>('.drop')!;
      input.addEventListener('change', () => this.showName(input));
      zone.addEventListener('dragover', (e) => { e.preventDefault(); zone.classList.add('over'); });
      zone.addEventListener('dragleave', () => zone.classList.remove('over'));
      zone.addEventListener('drop', (e) => {
        e.preventDefault(); e.stopPropagation();
        zone.classList.remove('over');
        if (e.dataTransfer?.files.length) { input.files = e.dataTransfer.files; this.showName(input); }
      });
    }
    // Files dropped elsewhere on the page fill the empty slots in order: photo, plate, background.
    document.addEventListener('dragover', (e) => e.preventDefault());
    document.addEventListener('drop', (e) => {
      e.preventDefault();
      if ($('photo').hidden) return;
      const files = [...(e.dataTransfer?.files ?? [])];
      for (const id of INPUTS) {
        const input = $<HTMLInputElement>(id);
        if (input.files?.length || !files.length) continue;
        const dt = new DataTransfer();
        dt.items.add(files.shift()!);
        input.files = dt.files;
        this.showName(input);
      }
    });
    $('photo-colour').addEventListener('input', () => { $<HTMLInputElement>('photo-use-colour').checked = true; });
  }

  private showName(input: HTMLInputElement): void {
    const name = input.closest('.drop')!.querySelector('.drop-name')!;
    const f = input.files?.[0];
    name.textContent = f ? `${f.name} (${(f.size / 1e6).toFixed(1)} MB)` : '';
  }

  /** A file decoded by the browser, or a plain message naming it. */
  private static async decode(file: File): Promise<ImageBitmap> {
    try {
      return await createImageBitmap(file, { imageOrientation: 'from-image', premultiplyAlpha: 'none' });
    } catch {
      throw new Error(`${file.name}: not a readable image (expected PNG, JPEG or WebP).`);
    }
  }

  async run(): Promise<void> {
    if (this.pending) return;
    const file = (id: string) => $<HTMLInputElement>(id).files?.[0];
    const image = file('photo-image'), plate = file('photo-plate'), background = file('photo-background'), reference = file('photo-reference');
    const prior = $<HTMLSelectElement>('photo-prior').value as PhotoPrior;
    if (!image) { this.status.set('error', 'Choose a photo first (and its plate: the same view without the subject).'); $('photo-image').focus(); return; }
    if (!plate && prior === 'none') { this.status.set('error', 'Nothing to matte from: give a plate, or choose a person model.'); return; }
    this.status.set('working', 'Reading the files…');
    let bitmaps: { image: ImageBitmap; plate?: ImageBitmap; background?: ImageBitmap; reference?: ImageBitmap };
    try {
      bitmaps = {
        image: await PhotoMode.decode(image),
        ...(plate ? { plate: await PhotoMode.decode(plate) } : {}),
        ...(background ? { background: await PhotoMode.decode(background) } : {}),
        ...(reference ? { reference: await PhotoMode.decode(reference) } : {}),
      };
    } catch (err) {
      this.status.set('error', (err as Error).message);
      return;
    }
    const colour = $<HTMLInputElement>('photo-use-colour').checked && !background ? $<HTMLInputElement>('photo-colour').value : undefined;
    const id = this.nextId++;
    this.pending = { id, started: performance.now() };
    ($('photo-run') as HTMLButtonElement).disabled = true;
    this.status.set('working', `Matting ${image.name}… (the first photo also loads the RVM model)`);
    const transfer = Object.values(bitmaps) as ImageBitmap[];
    this.engine.toMatte({
      type: 'photo', id, ...bitmaps, ...(colour ? { colour } : {}), prior, align: $<HTMLSelectElement>('photo-align').value as PhotoAlign,
      names: { image: image.name, ...(plate ? { plate: plate.name } : {}), ...(background ? { background: background.name } : {}), ...(reference ? { reference: reference.name } : {}) },
    }, transfer);
  }

  private fromMatte(m: FromMatte): void {
    if (!this.pending) return;
    if (m.type === 'error' && m.context === 'photo' && m.id === this.pending.id) {
      this.pending = undefined;
      ($('photo-run') as HTMLButtonElement).disabled = false;
      this.status.set('error', m.message.endsWith('.') ? m.message : `${m.message}.`);
    } else if (m.type === 'photo' && m.id === this.pending.id) {
      const seconds = (performance.now() - this.pending.started) / 1000;
      this.pending = undefined;
      ($('photo-run') as HTMLButtonElement).disabled = false;
      this.show(m);
      const warnings = m.report.plate.warnings;
      this.status.set('done', `Done in ${seconds.toFixed(1)} s.${warnings.length ? ` Warning: ${warnings.join('; ')}.` : ''}`);
    }
  }

  private show(m: PhotoResult): void {
    this.last = { report: m.report, ...(m.metrics ? { metrics: m.metrics } : {}) };
    for (const url of this.urls) URL.revokeObjectURL(url);
    this.urls = [];
    const paint = (id: string, pixels: Uint8ClampedArray) => {
      const canvas = $<HTMLCanvasElement>(id);
      canvas.width = m.width; canvas.height = m.height;
      canvas.getContext('2d')!.putImageData(new ImageData(pixels as Uint8ClampedArray<ArrayBuffer>, m.width, m.height), 0, 0);
    };
    const link = (id: string, png: Uint8Array) => {
      const url = URL.createObjectURL(new Blob([png as Uint8Array<ArrayBuffer>], { type: 'image/png' }));
      this.urls.push(url);
      $<HTMLAnchorElement>(id).href = url;
    };
    paint('photo-alpha', m.preview.alpha); link('dl-alpha', m.png.alpha);
    paint('photo-foreground', m.preview.foreground); link('dl-foreground', m.png.foreground);
    $('photo-composite-figure').hidden = !m.png.composite;
    if (m.preview.composite && m.png.composite) { paint('photo-composite', m.preview.composite); link('dl-composite', m.png.composite); }
    $('photo-results').hidden = false;
    const r = m.report;
    const parts = [`${r.size.width}×${r.size.height}`, `prior ${r.prior}`, `engine ${r.engine}`];
    if (r.alignment) parts.push(`alignment ${r.alignment.method}${r.alignment.inliers ? ` (${r.alignment.inliers} inliers)` : ''}`);
    if (r.plate.confidence !== undefined) parts.push(`the plate explains ${(r.plate.confidence * 100).toFixed(0)}% of the visible background`);
    parts.push(Object.entries(r.timings).map(([k, v]) => `${k} ${Math.round(v)} ms`).join(', '));
    $('photo-details').textContent = parts.join(' · ');
    const table = $<HTMLTableElement>('photo-metrics');
    table.hidden = !m.metrics;
    if (m.metrics) {
      const entries = Object.entries(m.metrics);
      table.tHead!.rows[0]!.replaceChildren(...entries.map(([k]) => Object.assign(document.createElement('th'), { scope: 'col', textContent: k })));
      const row = table.tBodies[0]!.rows[0]!;
      row.replaceChildren(...entries.map(([k, v]) => {
        const td = Object.assign(document.createElement('td'), { textContent: (v as number).toFixed(3) });
        td.dataset.metric = k;
        return td;
      }));
    }
  }
}
