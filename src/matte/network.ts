/**
 * The `network` engine: our ONNX export of the paper's generator (training/), run by ONNX Runtime.
 * Crop a box around the subject (the paper's square box), resize it to the network's working size,
 * run, then upsample alpha to full resolution edge-aware (colour-guided filter) and solve the
 * foreground colours at full resolution; the paper's post-processing keeps only the main subject.
 */
import { cpus } from 'node:os';
import ort from '../platform/ort.js';
import { realignEdges } from '../align/residue.js';
import { CleanplateError } from '../errors.js';
import { createPlane, cropRect, supportRect, toGray, type ImageF32, type Plane } from '../image.js';
import { binarize, components, dilateDisc, erodeDisc, largestComponent, resize } from '../ops.js';
import { MODELS_DIR } from '../paths.js';
import { threadLimit } from '../threads.js';
import type { MatteEngine, MatteInput, MatteOutput } from './engine.js';
import { estimateForeground } from './foreground.js';
import { guidedFilter } from './guided.js';
import { shapePrior } from '../prior/shape.js';
import { openOnnxModel } from './onnx.js';

export interface NetworkModelInfo {
  file: string;
  sha256: string;
  /** Long side of the crop fed to the network. */
  workingSize: number;
  ngf: number;
}

/** The smallest crop the network accepts (two stride-2 stages and 7x7 reflection padding). */
export const MIN_NETWORK_SIDE = 32;

export interface Box { x: number; y: number; width: number; height: number }

/** The paper's crop: a square around the subject's box, grown by 10% on each side, clipped. */
export function subjectBox(mask: Plane, width: number, height: number): Box {
  const rect = supportRect(mask, 0.5);
  if (!rect) return { x: 0, y: 0, width, height };
  const [x0, y0, x1, y1] = [rect[0], rect[1], rect[2] - 1, rect[3] - 1];
  const side = Math.max(x1 - x0 + 1, y1 - y0 + 1) * 1.2;
  const cx = (x0 + x1) / 2, cy = (y0 + y1) / 2;
  const bx0 = Math.max(0, Math.floor(cx - side / 2)), by0 = Math.max(0, Math.floor(cy - side / 2));
  const bx1 = Math.min(width, Math.ceil(cx + side / 2)), by1 = Math.min(height, Math.ceil(cy + side / 2));
  return { x: bx0, y: by0, width: bx1 - bx0, height: by1 - by0 };
}

/** Grows a box symmetrically to at least `side` x `side`, kept inside the image. */
export function growTo(box: Box, side: number, width: number, height: number): Box {
  const grow = (start: number, len: number, limit: number): [number, number] => {
    if (len >= side) return [start, len];
    const s = Math.max(0, Math.min(limit - side, Math.round(start - (side - len) / 2)));
    return [s, side];
  };
  const [x, w] = grow(box.x, box.width, width), [y, h] = grow(box.y, box.height, height);
  return { x, y, width: w, height: h };
}

/** A box in another resolution's pixels, kept at least one pixel. */
export function scaleBox(box: Box, sx: number, sy: number): Box {
  const x = Math.floor(box.x * sx), y = Math.floor(box.y * sy);
  return { x, y, width: Math.max(1, Math.ceil((box.x + box.width) * sx) - x), height: Math.max(1, Math.ceil((box.y + box.height) * sy) - y) };
}

export function cropImage<T extends ImageF32>(image: T, box: Box): T {
  return cropRect(image, box.x, box.y, box.x + box.width, box.y + box.height);
}

function toNCHW(image: ImageF32, width: number, height: number): Float32Array {
  const small = resize(image, width, height);
  const c = small.channels, n = width * height;
  const out = new Float32Array(c * n);
  for (let p = 0; p < n; p++) for (let k = 0; k < c; k++) out[k * n + p] = small.data[p * c + k]!;
  return out;
}

export async function loadNetworkModel(name?: string, modelsDir = MODELS_DIR): Promise<{ session: ort.InferenceSession; info: NetworkModelInfo; name: string }> {
  return openOnnxModel<NetworkModelInfo>(modelsDir, 'network.json', name, 'network', 'the network engine needs a trained model', threadLimit() ?? Math.max(1, Math.min(4, cpus().length)));
}

export class NetworkEngine implements MatteEngine {
  readonly name = 'network' as const;
  /** S shaped from a prior plane, kept while that plane lives: video asks for the crop box before the matte. */
  private readonly shaped = new WeakMap<Plane, Plane>();

  private constructor(private readonly session: ort.InferenceSession, readonly info: NetworkModelInfo, readonly modelName: string) {}

  /** The network was trained on the paper's shaped S, not on the prior's raw matte. */
  private shapedPrior(prior: Plane): Plane {
    let s = this.shaped.get(prior);
    if (!s) { s = shapePrior(prior); this.shaped.set(prior, s); }
    return s;
  }

  static async create(modelName?: string, modelsDir?: string): Promise<NetworkEngine> {
    const { session, info, name } = await loadNetworkModel(modelName, modelsDir);
    return new NetworkEngine(session, info, name);
  }

  /**
   * The crop the network sees: the paper's square around the subject, which is the prior's
   * silhouette when it found one, else the largest region that differs clearly from the plate
   * (the subject need not be a person). Video smooths these boxes over time.
   */
  cropBox(image: ImageF32, plate: ImageF32, prior: Plane): Box {
    const { width, height } = image;
    let where = binarize(this.shapedPrior(prior), 0.1);
    if (!where.data.some((v) => v > 0.5)) {
      const diff = createPlane(width, height);
      for (let p = 0; p < diff.data.length; p++) {
        let d = 0;
        for (let c = 0; c < 3; c++) d += Math.abs(image.data[p * 3 + c]! - plate.data[p * 3 + c]!);
        diff.data[p] = d / 3 > 0.12 ? 1 : 0;
      }
      where = largestComponent(dilateDisc(erodeDisc(diff, 1), 1));
    }
    return growTo(subjectBox(where, width, height), Math.min(MIN_NETWORK_SIDE, width, height), width, height);
  }

  async matte(input: MatteInput): Promise<MatteOutput> {
    const { image, prior } = input;
    if (!input.plate) return { alpha: prior, foreground: estimateForeground(image, prior), details: { source: 'prior' } };
    const plate = input.plate;
    const priorShaped = this.shapedPrior(prior);
    const { width, height } = image;
    if (width < MIN_NETWORK_SIDE || height < MIN_NETWORK_SIDE) {
      throw new CleanplateError(`image is ${width}x${height}, smaller than the network's minimum of ${MIN_NETWORK_SIDE}x${MIN_NETWORK_SIDE}`, 'image');
    }
    const box = input.box ?? this.cropBox(image, plate, prior);
    const scale = Math.min(1, this.info.workingSize / Math.max(box.width, box.height));
    const w = Math.max(MIN_NETWORK_SIDE, Math.round((box.width * scale) / 4) * 4), h = Math.max(MIN_NETWORK_SIDE, Math.round((box.height * scale) / 4) * 4);
    const imageCrop = cropImage(image, box);
    // Alignment residue along the plate's edges is not subject (see align/residue.ts): re-aligned on
    // the crop at the network's size, the only place the network looks at the plate.
    const plateSmall = resize(cropImage(plate, box), w, h);
    const { plate: plateCrop, report: residue } = input.realign === false ? { plate: plateSmall, report: { realigned: 0 } } : realignEdges(resize(imageCrop, w, h), plateSmall);
    const grey = toGray(imageCrop);
    const motion = input.motion ? input.motion.map((m) => resize(cropImage(m, scaleBox(box, m.width / width, m.height / height)), w, h).data) : [0, 1, 2, 3].map(() => resize(grey, w, h).data);
    const motionData = new Float32Array(4 * w * h);
    motion.forEach((m, k) => motionData.set(m, k * w * h));
    const feeds = {
      image: new ort.Tensor('float32', toNCHW(imageCrop, w, h), [1, 3, h, w]),
      plate: new ort.Tensor('float32', toNCHW(plateCrop, w, h), [1, 3, h, w]),
      prior: new ort.Tensor('float32', toNCHW(cropImage(priorShaped, box), w, h), [1, 1, h, w]),
      motion: new ort.Tensor('float32', motionData, [1, 4, h, w]),
    };
    const t0 = performance.now();
    const out = await this.session.run(feeds);
    const inferenceMs = performance.now() - t0;
    const lowAlpha: Plane = { width: w, height: h, channels: 1, data: Float32Array.from(out.alpha!.data as Float32Array) };
    // Edge-aware upsampling: bilinear to the crop's resolution, then a colour-guided filter.
    const up = resize(lowAlpha, box.width, box.height);
    const radius = Math.max(1, Math.round(1 / scale));
    const cropAlpha = scale < 1 ? guidedFilter(imageCrop, up, radius, 1e-4) : up;
    const alpha = createPlane(width, height);
    for (let y = 0; y < box.height; y++) alpha.data.set(cropAlpha.data.subarray(y * box.width, (y + 1) * box.width), (box.y + y) * width + box.x);
    keepMainSubject(alpha);
    const foreground = estimateForeground(image, alpha, plate);
    for (let p = 0; p < alpha.data.length; p++) if (alpha.data[p]! <= 0.01) { alpha.data[p] = 0; foreground.data.fill(0, p * 3, p * 3 + 3); }
    return { alpha, foreground, details: { model: this.modelName, crop: `${box.width}x${box.height}+${box.x}+${box.y}`, networkSize: `${w}x${h}`, inferenceMs: +inferenceMs.toFixed(1), realignedPixels: residue.realigned } };
  }
}

/** The paper: alpha is kept only on the largest connected component of alpha > 0.05. */
function keepMainSubject(alpha: Plane): void {
  const { labels, stats } = components(binarize(alpha, 0.05));
  if (stats.length <= 1) return;
  const best = stats.reduce((a, b) => (b.area > a.area ? b : a)).label;
  for (let i = 0; i < labels.length; i++) if (labels[i] !== best) alpha.data[i] = 0;
}
