/**
 * The paper's bias/gain colour correction of the plate, made robust: per channel,
 * gain = std(I)/std(B) and bias = mean(I) - gain·mean(B), measured in a ring around the subject
 * (background near the subject, where the exposure matters), over pixels where the plate covers the
 * image. Outliers (things that moved, the subject outside the prior) are trimmed and the fit is
 * refitted; gains are bounded, and the fit is kept only if it lowers the residual.
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
    let n = 0, si = 0, sb = 0, sii = 0, sbb = 0;
    for (let p = 0; p < use.length; p++) {
      if (!use[p]) continue;
      const a = image.data[p * 3 + ch]!, b = plate.data[p * 3 + ch]!;
      n++; si += a; sb += b; sii += a * a; sbb += b * b;
    }
    const mi = si / n, mb = sb / n;
    const vi = Math.max(0, sii / n - mi * mi), vb = Math.max(0, sbb / n - mb * mb);
    let g = vb > 1e-6 ? Math.sqrt(vi / vb) : 1;
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
  let model = fit(image, plate, use);
  // Trim the worst 25% (moved objects, parallax, the subject's unmasked parts) and refit.
  for (let round = 0; round < 2; round++) {
    const r = residuals(image, plate, model.gain, model.bias, use);
    const sorted = Float32Array.from(r.filter((_, p) => use[p] === 1)).sort();
    const cut = sorted[Math.floor(sorted.length * 0.75)]!;
    const trimmed = new Uint8Array(use.length);
    let n = 0;
    for (let p = 0; p < use.length; p++) if (use[p] && r[p]! <= cut) { trimmed[p] = 1; n++; }
    if (n < MIN_PIXELS) break;
    model = fit(image, plate, trimmed);
  }
  const residualAfter = meanWhere(residuals(image, plate, model.gain, model.bias, use), use);
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
