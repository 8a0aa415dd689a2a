/**
 * The training-free, plate-guided engine.
 *
 * 1. Difference evidence: d = |I − B'| per pixel, with the noise level measured where the prior
 *    says background. Strong differences that form solid regions are the subject; scattered ones
 *    (parallax along trees and roofs, noise) are dropped unless they belong to a region the prior
 *    supports, and prior blobs that the plate does not support at all are dropped too.
 * 2. Subject core C = fill-holes(kept evidence ∪ supported prior): the prior fills the places where
 *    skin meets a background of the same colour.
 * 3. In a band around C's edge, alpha comes from the compositing equation with the known background:
 *    α = (I−B)·(F̂−B)/|F̂−B|², F̂ the subject's colours propagated from nearby opaque pixels; where F̂
 *    and B coincide the equation is ill-posed and the prior's alpha is used instead.
 * 4. A light colour-guided filter removes per-pixel noise; F by the regularised compositing solve.
 */
import { createPlane, quantile, smoothstep, type ImageF32, type Plane } from '../image.js';
import { binarize, components, dilateDisc, distanceOutside, erodeDisc, fillHoles, gaussianBlur } from '../ops.js';
import type { MatteEngine, MatteInput, MatteOutput } from './engine.js';
import { estimateForeground, propagateCoarse } from './foreground.js';
import { guidedFilter } from './guided.js';

function colourDistance(a: ImageF32, b: ImageF32): Plane {
  const out = createPlane(a.width, a.height);
  for (let p = 0; p < out.data.length; p++) {
    const dr = a.data[p * 3]! - b.data[p * 3]!, dg = a.data[p * 3 + 1]! - b.data[p * 3 + 1]!, db = a.data[p * 3 + 2]! - b.data[p * 3 + 2]!;
    out.data[p] = Math.sqrt((dr * dr + dg * dg + db * db) / 3);
  }
  return out;
}

function count(plane: Plane, threshold = 0.5): number {
  let n = 0;
  for (let i = 0; i < plane.data.length; i++) if (plane.data[i]! > threshold) n++;
  return n;
}

/**
 * Noise level of d: its median where the prior is confident there is background, but never more
 * than the 30th percentile over the whole plate (the prior can miss a subject that fills the frame).
 */
function noiseLevel(d: Plane, prior: Plane, valid: Plane | undefined): number {
  const background: number[] = [], all: number[] = [];
  const step = Math.max(1, Math.floor(d.data.length / 200000));
  for (let i = 0; i < d.data.length; i += step) {
    if (valid && valid.data[i]! <= 0.5) continue;
    all.push(d.data[i]!);
    if (prior.data[i]! < 0.05) background.push(d.data[i]!);
  }
  const cap = 1.5 * quantile(Float32Array.from(all), 0.3);
  return background.length ? Math.min(quantile(Float32Array.from(background), 0.5), cap) : cap;
}

/**
 * Which strong-difference regions are the subject. With a prior: regions touching the zone the
 * prior allows, plus large solid regions anywhere (an object held up, a pet). Without one: the
 * largest region and others of comparable size (the paper keeps the largest component).
 */
function subjectEvidence(strong: Plane, prior: Plane): Plane {
  const { width, height } = strong;
  const diag = Math.hypot(width, height);
  const { labels, stats } = components(strong);
  const hasPrior = count(prior, 0.5) > 0.002 * width * height;
  const zone = hasPrior ? dilateDisc(binarize(prior, 0.3), 0.03 * diag) : undefined;
  const inZone = new Int32Array(stats.length + 1);
  if (zone) for (let i = 0; i < labels.length; i++) if (zone.data[i]! > 0.5) inZone[labels[i]!]!++;
  const largest = stats.reduce((m, s) => Math.max(m, s.area), 0);
  const keep = new Uint8Array(stats.length + 1);
  for (const s of stats) {
    const fill = s.area / (s.width * s.height);
    const solid = fill > 0.25 && s.area > 0.004 * width * height;
    if (zone) keep[s.label] = inZone[s.label]! > 0.2 * s.area || (solid && s.area > 0.02 * width * height) ? 1 : 0;
    else keep[s.label] = s.area === largest || (solid && s.area > 0.2 * largest) ? 1 : 0;
  }
  const kept = createPlane(width, height);
  for (let i = 0; i < labels.length; i++) kept.data[i] = keep[labels[i]!]!;
  return kept;
}

/** Prior regions that the plate supports (enough difference inside them): false blobs are dropped. */
function supportedPrior(prior: Plane, strong: Plane): Plane {
  const mask = binarize(prior, 0.5);
  const { labels, stats } = components(mask);
  const hits = new Int32Array(stats.length + 1);
  for (let i = 0; i < labels.length; i++) if (strong.data[i]! > 0.5) hits[labels[i]!]!++;
  const keep = new Uint8Array(stats.length + 1);
  for (const s of stats) keep[s.label] = hits[s.label]! > 0.1 * s.area ? 1 : 0;
  const out = createPlane(prior.width, prior.height);
  for (let i = 0; i < labels.length; i++) out.data[i] = keep[labels[i]!]!;
  return out;
}

export interface ClassicOptions {
  /** Radius of the colour-guided refinement (0 disables it). */
  refineRadius?: number;
}

export class ClassicEngine implements MatteEngine {
  readonly name = 'classic' as const;
  constructor(private readonly options: ClassicOptions = {}) {}

  async matte(input: MatteInput): Promise<MatteOutput> {
    const { image, plate, prior } = input;
    if (!plate) {
      const alpha = prior;
      return { alpha, foreground: estimateForeground(image, alpha), details: { source: 'prior' } };
    }
    const { width, height } = image;
    const diag = Math.hypot(width, height);
    const d = colourDistance(image, plate);
    const noise = noiseLevel(d, prior, input.plateValid);
    const lo = Math.min(0.12, Math.max(0.025, 2 * noise));
    const hi = lo + 0.04;

    // Strong evidence, opened to drop specks and one-pixel parallax lines.
    const strongRaw = binarize(d, hi);
    const strong = dilateDisc(erodeDisc(strongRaw, 1), 1);
    const kept = subjectEvidence(strong, prior);
    const priorCore = supportedPrior(prior, strong);
    const evidenceCore = fillHoles(erodeDisc(dilateDisc(kept, 2), 2));
    const core = createPlane(width, height);
    for (let i = 0; i < core.data.length; i++) core.data[i] = evidenceCore.data[i]! > 0.5 || priorCore.data[i]! > 0.5 ? 1 : 0;

    // Where alpha may be non-zero: the core grown by a ring, extended along weak evidence touching it.
    const ringOut = Math.max(3, 0.03 * diag), ringIn = Math.max(2, 0.006 * diag);
    // Weak evidence joins only through a connected path to the core (strands reach out from the
    // subject; parallax clutter floats apart), and never further than a tenth of the diagonal.
    const fromCore = distanceOutside(core).data;
    const far = 0.1 * diag;
    const reach = createPlane(width, height);
    for (let i = 0; i < reach.data.length; i++) reach.data[i] = fromCore[i]! <= ringOut || (d.data[i]! > lo && fromCore[i]! <= far) ? 1 : 0;
    const { labels: reachLabels, stats: reachStats } = components(reach);
    const touches = new Uint8Array(reachStats.length + 1);
    for (let i = 0; i < reachLabels.length; i++) if (core.data[i]! > 0.5) touches[reachLabels[i]!] = 1;
    const region = createPlane(width, height);
    for (let i = 0; i < region.data.length; i++) region.data[i] = touches[reachLabels[i]!] ? 1 : 0;
    // Opaque for sure: only the interior of a prior silhouette that the plate supports. Evidence
    // alone never forces alpha to 1: a semi-transparent strand differs from the plate as much as skin.
    const confident = createPlane(width, height);
    for (let i = 0; i < confident.data.length; i++) confident.data[i] = priorCore.data[i]! > 0.5 && prior.data[i]! > 0.95 ? 1 : 0;
    const sure = erodeDisc(confident, ringIn);
    // Where the compositing equation is ill-posed, fall back on the prior or on the evidence's silhouette.
    const silhouette = gaussianBlur(evidenceCore, 2 * Math.round(ringIn) + 1);
    const fallback = createPlane(width, height);
    for (let i = 0; i < fallback.data.length; i++) fallback.data[i] = Math.max(prior.data[i]!, silhouette.data[i]!);

    // Subject colours F̂: first from the sure interior and thick strong evidence inside the core, then
    // re-estimated from the pixels the first pass found opaque.
    let opaque = createPlane(width, height);
    // Strong difference alone does not mean opaque (a half-transparent strand over a contrasting
    // background differs strongly too): take thick strong regions away from the core's edge.
    const thick = erodeDisc(strongRaw, 2);
    const interior = erodeDisc(core, 2 * ringIn);
    for (let i = 0; i < opaque.data.length; i++) {
      opaque.data[i] = sure.data[i]! > 0.5 || (thick.data[i]! > 0.5 && interior.data[i]! > 0.5) ? 1 : 0;
    }
    const alpha = createPlane(width, height);
    let ambiguous = 0;
    for (let pass = 0; pass < 2; pass++) {
      const fHat = propagateCoarse(image, opaque);
      ambiguous = 0;
      for (let p = 0; p < alpha.data.length; p++) {
        if (sure.data[p]! > 0.5) { alpha.data[p] = 1; continue; }
        if (region.data[p]! <= 0.5) { alpha.data[p] = 0; continue; }
        let num = 0, den = 0;
        for (let c = 0; c < 3; c++) {
          const i = p * 3 + c;
          const fb = fHat.data[i]! - plate.data[i]!;
          num += (image.data[i]! - plate.data[i]!) * fb;
          den += fb * fb;
        }
        const sep = Math.sqrt(den / 3);
        const floor = Math.min(0.45, (1.5 * noise) / Math.max(sep, 1e-3));
        const eq = den > 1e-6 ? num / den : 0;
        const a = Math.min(1, Math.max(0, (eq - floor) / Math.max(0.05, 1 - 2 * floor)));
        const trust = smoothstep(0.04, 0.16, sep);
        if (trust < 0.5) ambiguous++;
        alpha.data[p] = trust * a + (1 - trust) * fallback.data[p]!;
      }
      opaque = createPlane(width, height);
      for (let i = 0; i < opaque.data.length; i++) opaque.data[i] = alpha.data[i]! > 0.9 ? 1 : 0;
    }
    const band = region;
    const refineRadius = this.options.refineRadius ?? 3;
    const refined = refineRadius > 0 ? guidedFilter(image, alpha, refineRadius, 1e-4, band) : alpha;
    // Keep the refinement from spreading alpha beyond the band or into the sure core.
    for (let p = 0; p < refined.data.length; p++) {
      if (sure.data[p]! > 0.5) refined.data[p] = 1;
      else if (band.data[p]! <= 0.5) refined.data[p] = 0;
      else if (refined.data[p]! < 0.01) refined.data[p] = 0;
    }
    const foreground = estimateForeground(image, refined, plate);
    return {
      alpha: refined,
      foreground,
      details: { noise: +noise.toFixed(4), thresholdLow: +lo.toFixed(4), thresholdHigh: +hi.toFixed(4), bandPixels: count(band), ambiguousPixels: ambiguous },
    };
  }
}
