/**
 * The paper's bias/gain colour correction of the plate, made robust. The paper matches moments
 * (gain = std(I)/std(B)) over a ring around the subject; that breaks as soon as the ring holds part
 * of the subject (a prior that missed it, an object filling half the frame). Here: per channel,
 * I ≈ gain·B + bias by least squares over the ring's pixels that agree with the plate, starting from
 * the identity and re-selecting inliers (residual under 2.5x its 25th percentile, so that a subject
 * covering most of the ring cannot take over the fit) a few times; gains and
 * biases are bounded, and the fit is kept only if it lowers the residual.
 */
import { clamp01, createImage, quantile, type ImageF32, type Plane } from '../image.js';
import { binarize, distanceOutside } from '../ops.js';

export interface ColourReport {
  applied: boolean;
  gain: [number, number, number];
  bias: [number, number, number];
  /** Median absolute difference image − plate over the fitting region, before and after. */
  residualBefore: number;
  residualAfter: number;
  pixels: number;
  reason?: string;
}

const GAIN_RANGE: [number, number] = [0.6, 1.6];
const BIAS_LIMIT = 0.25;
const MIN_PIXELS = 200;

/** The paper's ring: between the subject grown a little and grown a lot (scaled to image size). */
export function colourRing(subject: Plane | undefined, valid: Plane): Plane {
  const { width, height } = valid;
  const ring = binarize(valid);
  if (!subject) return ring;
  const core = binarize(subject, 0.1);
  if (!core.data.includes(1)) return ring;
  // One distance transform gives both discs (a disc grown by a disc is the disc of the summed radius).
  const distance = distanceOutside(core).data;
  const inner = 0.01 * Math.max(width, height), outer = inner + 0.16 * Math.max(width, height);
  for (let i = 0; i < ring.data.length; i++) ring.data[i] = ring.data[i]! > 0.5 && distance[i]! <= outer && distance[i]! > inner ? 1 : 0;
  return ring;
}

/** Least-squares I = gain·B + bias per channel over the sampled pixels `idx`. */
function fit(image: ImageF32, plate: ImageF32, idx: Int32Array) {
  const gain: [number, number, number] = [1, 1, 1], bias: [number, number, number] = [0, 0, 0];
  const n = idx.length;
  for (let ch = 0; ch < 3; ch++) {
    let si = 0, sb = 0, sib = 0, sbb = 0;
    for (let k = 0; k < n; k++) {
      const p = idx[k]!;
      const a = image.data[p * 3 + ch]!, b = plate.data[p * 3 + ch]!;
      si += a; sb += b; sib += a * b; sbb += b * b;
    }
    const mi = si / n, mb = sb / n;
    const cov = sib / n - mi * mb, vb = sbb / n - mb * mb;
    let g = vb > 1e-6 ? cov / vb : 1;
    g = Math.min(GAIN_RANGE[1], Math.max(GAIN_RANGE[0], g));
    gain[ch] = g;
    bias[ch] = Math.min(BIAS_LIMIT, Math.max(-BIAS_LIMIT, mi - g * mb));
  }
  return { gain, bias };
}

/** Per sampled pixel, the mean absolute difference image − (gain·plate + bias) over the channels, into `out`. */
function residuals(image: ImageF32, plate: ImageF32, gain: number[], bias: number[], idx: Int32Array, out = new Float32Array(idx.length)): Float32Array {
  const a = image.data, b = plate.data;
  const g0 = gain[0]!, g1 = gain[1]!, g2 = gain[2]!, b0 = bias[0]!, b1 = bias[1]!, b2 = bias[2]!;
  for (let k = 0; k < idx.length; k++) {
    const q = idx[k]! * 3;
    out[k] = (Math.abs(a[q]! - (g0 * b[q]! + b0)) + Math.abs(a[q + 1]! - (g1 * b[q + 1]! + b1)) + Math.abs(a[q + 2]! - (g2 * b[q + 2]! + b2))) / 3;
  }
  return out;
}

const MAX_SAMPLES = 60_000;

export function fitColour(image: ImageF32, plate: ImageF32, region: Plane): ColourReport {
  const rd = region.data;
  let count = 0;
  for (let p = 0; p < rd.length; p++) if (rd[p]! > 0.5) count++;
  const identity: ColourReport = { applied: false, gain: [1, 1, 1], bias: [0, 0, 0], residualBefore: 0, residualAfter: 0, pixels: count };
  if (count < MIN_PIXELS) return { ...identity, reason: `only ${count} background pixels to fit on` };
  // A regular subsample is as good as every pixel for six parameters, and keeps 4K fast.
  const stride = Math.max(1, Math.floor(count / MAX_SAMPLES));
  const all = new Int32Array(Math.ceil(count / stride));
  for (let p = 0, seen = 0, k = 0; p < rd.length; p++) if (rd[p]! > 0.5 && seen++ % stride === 0) all[k++] = p;
  // The rounds' residuals and inliers in buffers of their own, kept across the rounds, filled by
  // plain loops (with a number[] sample, fresh arrays and TypedArray filter with a callback each
  // round, a 720p colour-pass sample's fit took ~42 ms; now ~18).
  const r = new Float32Array(all.length), kept = new Int32Array(all.length);
  // Residuals are compared by their median: the subject and moved objects must not decide.
  const residualBefore = quantile(residuals(image, plate, [1, 1, 1], [0, 0, 0], all, r), 0.5);
  let model = { gain: [1, 1, 1] as [number, number, number], bias: [0, 0, 0] as [number, number, number] };
  for (let round = 0; round < 4; round++) {
    residuals(image, plate, model.gain, model.bias, all, r);
    const cut = 2.5 * quantile(r, 0.25) + 1e-3;
    let m = 0;
    for (let k = 0; k < all.length; k++) if (r[k]! <= cut) kept[m++] = all[k]!;
    if (m < MIN_PIXELS) break;
    model = fit(image, plate, kept.subarray(0, m));
  }
  const residualAfter = quantile(residuals(image, plate, model.gain, model.bias, all, r), 0.5);
  const atBound = model.gain.some((g) => g <= GAIN_RANGE[0] || g >= GAIN_RANGE[1]) || model.bias.some((b) => Math.abs(b) >= BIAS_LIMIT);
  if (atBound) return { ...identity, residualBefore, residualAfter: residualBefore, reason: 'the fit ran into its bounds (unreliable region)' };
  if (!(residualAfter < residualBefore * 0.98)) {
    return { ...identity, residualBefore, residualAfter: residualBefore, reason: 'the fit did not lower the residual' };
  }
  return { applied: true, ...model, residualBefore, residualAfter, pixels: count };
}

/** The gain and bias applied (clipped to 0..1), into a new image or, given `inPlace`, into the plate itself. */
export function applyColour(plate: ImageF32, report: Pick<ColourReport, 'gain' | 'bias'>, inPlace = false): ImageF32 {
  const out = inPlace ? plate : createImage(plate.width, plate.height, 3);
  const s = plate.data, o = out.data;
  const [g0, g1, g2] = report.gain, [b0, b1, b2] = report.bias;
  for (let i = 0; i < s.length; i += 3) {
    o[i] = clamp01(g0 * s[i]! + b0); o[i + 1] = clamp01(g1 * s[i + 1]! + b1); o[i + 2] = clamp01(g2 * s[i + 2]! + b2);
  }
  return out;
}
