/**
 * The paper's bias/gain colour correction of the plate, made robust. The paper matches moments
 * (gain = std(I)/std(B)) over a ring around the subject; that breaks as soon as the ring holds part
 * of the subject (a prior that missed it, an object filling half the frame). Here: per channel,
 * I ≈ gain·B + bias by least squares over the ring's pixels that agree with the plate, starting from
 * the identity and re-selecting inliers (residual under 2.5x its 25th percentile, so that a subject
 * covering most of the ring cannot take over the fit) a few times; gains and
 * biases are bounded, and the fit is kept only if it lowers the residual.
 */
import { createImage, type ImageF32, type Plane } from '../image.js';
import { binarize, dilateDisc } from '../ops.js';

export interface ColourReport {
  applied: boolean;
  gain: [number, number, number];
  bias: [number, number, number];
  /** Mean absolute difference image − plate over the fitting region, before and after. */
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
  const inner = dilateDisc(binarize(subject, 0.1), 0.01 * Math.max(width, height));
  let hasSubject = false;
  for (let i = 0; i < inner.data.length; i++) if (inner.data[i]! > 0.5) { hasSubject = true; break; }
  if (!hasSubject) return ring;
  const outer = dilateDisc(inner, 0.16 * Math.max(width, height));
  for (let i = 0; i < ring.data.length; i++) ring.data[i] = ring.data[i]! > 0.5 && outer.data[i]! > 0.5 && inner.data[i]! <= 0.5 ? 1 : 0;
  return ring;
}

function fit(image: ImageF32, plate: ImageF32, use: Uint8Array) {
  const gain: [number, number, number] = [1, 1, 1], bias: [number, number, number] = [0, 0, 0];
  for (let ch = 0; ch < 3; ch++) {
    let n = 0, si = 0, sb = 0, sib = 0, sbb = 0;
    for (let p = 0; p < use.length; p++) {
      if (!use[p]) continue;
      const a = image.data[p * 3 + ch]!, b = plate.data[p * 3 + ch]!;
      n++; si += a; sb += b; sib += a * b; sbb += b * b;
    }
    const mi = si / n, mb = sb / n;
    const cov = sib / n - mi * mb, vb = sbb / n - mb * mb;
    let g = vb > 1e-6 ? cov / vb : 1;
    g = Math.min(GAIN_RANGE[1], Math.max(GAIN_RANGE[0], g));
    const b = Math.min(BIAS_LIMIT, Math.max(-BIAS_LIMIT, mi - g * mb));
    gain[ch] = g; bias[ch] = b;
  }
  return { gain, bias };
}

function residuals(image: ImageF32, plate: ImageF32, gain: number[], bias: number[], use: Uint8Array): Float32Array {
  const r = new Float32Array(use.length);
  for (let p = 0; p < use.length; p++) {
    if (!use[p]) continue;
    let s = 0;
    for (let ch = 0; ch < 3; ch++) s += Math.abs(image.data[p * 3 + ch]! - (gain[ch]! * plate.data[p * 3 + ch]! + bias[ch]!));
    r[p] = s / 3;
  }
  return r;
}

function meanWhere(r: Float32Array, use: Uint8Array): number {
  let s = 0, n = 0;
  for (let p = 0; p < use.length; p++) if (use[p]) { s += r[p]!; n++; }
  return n ? s / n : 0;
}

export function fitColour(image: ImageF32, plate: ImageF32, region: Plane): ColourReport {
  const use = new Uint8Array(region.data.length);
  let count = 0;
  for (let p = 0; p < use.length; p++) if (region.data[p]! > 0.5) { use[p] = 1; count++; }
  const identity: ColourReport = { applied: false, gain: [1, 1, 1], bias: [0, 0, 0], residualBefore: 0, residualAfter: 0, pixels: count };
  if (count < MIN_PIXELS) return { ...identity, reason: `only ${count} background pixels to fit on` };
  const before = residuals(image, plate, [1, 1, 1], [0, 0, 0], use);
  const residualBefore = meanWhere(before, use);
  let model = { gain: [1, 1, 1] as [number, number, number], bias: [0, 0, 0] as [number, number, number] };
  for (let round = 0; round < 4; round++) {
    const r = residuals(image, plate, model.gain, model.bias, use);
    const sorted = Float32Array.from(r.filter((_, p) => use[p] === 1)).sort();
    const cut = 2.5 * sorted[Math.floor(sorted.length * 0.25)]! + 1e-3;
    const inliers = new Uint8Array(use.length);
    let n = 0;
    for (let p = 0; p < use.length; p++) if (use[p] && r[p]! <= cut) { inliers[p] = 1; n++; }
    if (n < MIN_PIXELS) break;
    model = fit(image, plate, inliers);
  }
  const residualAfter = meanWhere(residuals(image, plate, model.gain, model.bias, use), use);
  const atBound = model.gain.some((g) => g <= GAIN_RANGE[0] || g >= GAIN_RANGE[1]) || model.bias.some((b) => Math.abs(b) >= BIAS_LIMIT);
  if (atBound) return { ...identity, residualBefore, residualAfter: residualBefore, reason: 'the fit ran into its bounds (unreliable region)' };
  if (!(residualAfter < residualBefore * 0.98)) {
    return { ...identity, residualBefore, residualAfter: residualBefore, reason: 'the fit did not lower the residual' };
  }
  return { applied: true, ...model, residualBefore, residualAfter, pixels: count };
}

export function applyColour(plate: ImageF32, report: Pick<ColourReport, 'gain' | 'bias'>): ImageF32 {
  const out = createImage(plate.width, plate.height, 3);
  for (let p = 0; p < plate.width * plate.height; p++) {
    for (let ch = 0; ch < 3; ch++) {
      const v = report.gain[ch]! * plate.data[p * 3 + ch]! + report.bias[ch]!;
      out.data[p * 3 + ch] = v < 0 ? 0 : v > 1 ? 1 : v;
    }
  }
  return out;
}
