/**
 * The standard alpha-matting metrics, as defined by the Deep Image Matting evaluation code that
 * every paper in the field reports with (see PAPER.md). Inputs are alpha planes in [0, 1]; the
 * region is the trimap's unknown area (or the whole frame when no region is given).
 * Written by hand: no npm package implements these definitions.
 */
import { createPlane, type Plane } from '../image.js';

export interface AlphaMetrics {
  /** Σ_U |α̂−α| / 1000 */
  sad: number;
  /** Σ_U (α̂−α)² / |U|, ×1e3 */
  mseUnknown: number;
  /** mean |α̂−α| over the whole image, ×1e3 */
  mad: number;
  /** mean (α̂−α)² over the whole image, ×1e3 */
  mse: number;
  /** Σ_U (|∇α̂|−|∇α|)² / 1000, Gaussian-derivative gradients (σ = 1.4) of min-max-normalised mattes */
  grad: number;
  /** connectivity error / 1000 */
  conn: number;
}

function inRegion(region: Plane | undefined, i: number): boolean {
  return !region || region.data[i]! > 0.5;
}

export function sad(pred: Plane, gt: Plane, region?: Plane): number {
  let s = 0;
  for (let i = 0; i < gt.data.length; i++) if (inRegion(region, i)) s += Math.abs(pred.data[i]! - gt.data[i]!);
  return s / 1000;
}

export function mseIn(pred: Plane, gt: Plane, region?: Plane): number {
  let s = 0, n = 0;
  for (let i = 0; i < gt.data.length; i++) if (inRegion(region, i)) { const e = pred.data[i]! - gt.data[i]!; s += e * e; n++; }
  return n ? (s / n) * 1e3 : 0;
}

export function mad(pred: Plane, gt: Plane): number {
  let s = 0;
  for (let i = 0; i < gt.data.length; i++) s += Math.abs(pred.data[i]! - gt.data[i]!);
  return (s / gt.data.length) * 1e3;
}

/** 1-D Gaussian and its derivative, as in the DIM code: half-width ceil(sqrt(-2σ² ln(1e-2·sqrt(2π)σ))). */
function gaussianKernels(sigma: number): { g: number[]; dg: number[] } {
  const half = Math.ceil(Math.sqrt(-2 * sigma * sigma * Math.log(Math.sqrt(2 * Math.PI) * sigma * 0.01)));
  const g: number[] = [], dg: number[] = [];
  for (let x = -half; x <= half; x++) {
    const v = Math.exp(-(x * x) / (2 * sigma * sigma)) / (sigma * Math.sqrt(2 * Math.PI));
    g.push(v);
    dg.push((-x * v) / (sigma * sigma));
  }
  return { g, dg };
}

/** Gradient magnitude with separable Gaussian-derivative filters; the 2-D kernels are L2-normalised. */
export function gradientMagnitude(a: Plane, sigma = 1.4): Plane {
  const { g, dg } = gaussianKernels(sigma);
  const half = (g.length - 1) / 2;
  // DIM normalises the 2-D kernel g(y)·dg(x) to unit L2 norm.
  let norm = 0;
  for (const gy of g) for (const dx of dg) norm += (gy * dx) ** 2;
  norm = Math.sqrt(norm);
  const { width: w, height: h } = a;
  const at = (x: number, y: number) => a.data[Math.min(h - 1, Math.max(0, y)) * w + Math.min(w - 1, Math.max(0, x))]!;
  const conv = (kx: number[], ky: number[]) => {
    const tmp = new Float32Array(w * h);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
      let s = 0;
      for (let k = -half; k <= half; k++) s += kx[k + half]! * at(x - k, y);
      tmp[y * w + x] = s;
    }
    const out = new Float32Array(w * h);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
      let s = 0;
      for (let k = -half; k <= half; k++) s += ky[k + half]! * tmp[Math.min(h - 1, Math.max(0, y - k)) * w + x]!;
      out[y * w + x] = s / norm;
    }
    return out;
  };
  const gx = conv(dg, g), gy = conv(g, dg);
  const out = createPlane(w, h);
  for (let i = 0; i < out.data.length; i++) out.data[i] = Math.hypot(gx[i]!, gy[i]!);
  return out;
}

function minMaxNormalise(a: Plane): Plane {
  let lo = Infinity, hi = -Infinity;
  for (const v of a.data) { if (v < lo) lo = v; if (v > hi) hi = v; }
  const range = hi - lo;
  const out = createPlane(a.width, a.height);
  for (let i = 0; i < out.data.length; i++) out.data[i] = range > 0 ? (a.data[i]! - lo) / range : 0;
  return out;
}

export function grad(pred: Plane, gt: Plane, region?: Plane): number {
  const gp = gradientMagnitude(minMaxNormalise(pred)), gg = gradientMagnitude(minMaxNormalise(gt));
  let s = 0;
  for (let i = 0; i < gt.data.length; i++) if (inRegion(region, i)) s += (gp.data[i]! - gg.data[i]!) ** 2;
  return s / 1000;
}

/** Largest 4-connected component of a boolean mask (flood fill, iterative). */
function largest4Component(mask: Uint8Array, w: number, h: number): Uint8Array {
  const label = new Int32Array(w * h);
  const stack = new Int32Array(w * h);
  let next = 0, bestLabel = 0, bestSize = 0;
  for (let start = 0; start < mask.length; start++) {
    if (!mask[start] || label[start]) continue;
    next++;
    let top = 0, size = 0;
    stack[top++] = start; label[start] = next;
    while (top) {
      const p = stack[--top]!; size++;
      const x = p % w, y = (p - x) / w;
      const visit = (q: number) => { if (mask[q] && !label[q]) { label[q] = next; stack[top++] = q; } };
      if (x > 0) visit(p - 1);
      if (x < w - 1) visit(p + 1);
      if (y > 0) visit(p - w);
      if (y < h - 1) visit(p + w);
    }
    if (size > bestSize) { bestSize = size; bestLabel = next; }
  }
  const out = new Uint8Array(w * h);
  for (let i = 0; i < out.length; i++) out[i] = bestLabel && label[i] === bestLabel ? 1 : 0;
  return out;
}

export function conn(pred: Plane, gt: Plane, region?: Plane, step = 0.1): number {
  const n = gt.data.length, { width: w, height: h } = gt;
  const level = new Float32Array(n).fill(1);
  const thresholds: number[] = [];
  for (let k = 1; k * step <= 1 + 1e-9; k++) thresholds.push(+(k * step).toFixed(6));
  for (const t of thresholds) {
    const both = new Uint8Array(n);
    for (let i = 0; i < n; i++) both[i] = pred.data[i]! >= t && gt.data[i]! >= t ? 1 : 0;
    const omega = largest4Component(both, w, h);
    // l = the last threshold at which the pixel was still connected: set once, when it drops out.
    for (let i = 0; i < n; i++) if (level[i] === 1 && !omega[i]) level[i] = t - step;
  }
  let s = 0;
  for (let i = 0; i < n; i++) {
    if (!inRegion(region, i)) continue;
    const dp = pred.data[i]! - level[i]!, dg = gt.data[i]! - level[i]!;
    const phiP = 1 - dp * (dp >= 0.15 ? 1 : 0), phiG = 1 - dg * (dg >= 0.15 ? 1 : 0);
    s += Math.abs(phiP - phiG);
  }
  return s / 1000;
}

export function alphaMetrics(pred: Plane, gt: Plane, unknown?: Plane): AlphaMetrics {
  if (pred.width !== gt.width || pred.height !== gt.height) {
    throw new Error(`prediction is ${pred.width}x${pred.height} but ground truth is ${gt.width}x${gt.height}`);
  }
  return { sad: sad(pred, gt, unknown), mseUnknown: mseIn(pred, gt, unknown), mad: mad(pred, gt), mse: mseIn(pred, gt), grad: grad(pred, gt, unknown), conn: conn(pred, gt, unknown) };
}

/** Temporal coherence of a matte sequence: sqrt(Σ((α̂t−α̂t−1)−(αt−αt−1))² / N) × 100, N = pixels × transitions. */
export function dtSSD(pred: Plane[], gt: Plane[]): number {
  if (pred.length !== gt.length) throw new Error(`${pred.length} predicted frames but ${gt.length} ground-truth frames`);
  let s = 0, n = 0;
  for (let t = 1; t < gt.length; t++) {
    const p1 = pred[t]!.data, p0 = pred[t - 1]!.data, g1 = gt[t]!.data, g0 = gt[t - 1]!.data;
    for (let i = 0; i < g1.length; i++) { const e = (p1[i]! - p0[i]!) - (g1[i]! - g0[i]!); s += e * e; n++; }
  }
  return n ? Math.sqrt(s / n) * 100 : 0;
}
