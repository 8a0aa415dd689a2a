/** A generated scene for the alignment-residue tests: a ridge crossing the frame behind a subject. */
import { gaussian, rng } from '../src/demo/scene.js';
import { createImage, createPlane, type ImageF32, type Plane } from '../src/image.js';

export interface Horizon { image: ImageF32; plate: ImageF32; alpha: Plane; body: Plane; strands: Plane }

/**
 * A wide landscape: smooth sky over smooth ground, split by a sharp, slightly sloping ridge line
 * that crosses the whole frame behind a subject with thin semi-transparent strands. The plate is
 * the same landscape seen `shiftPx` lower and turned by `turnDegrees`; almost nothing but the ridge has texture,
 * so no alignment can pin it down.
 */
export function horizonScene(width = 400, height = 300, seed = 3, turnDegrees = 0.3, shiftPx = 1.5): Horizon {
  const random = rng(seed);
  const turn = (turnDegrees * Math.PI) / 180, cx = width / 2, cy = height / 2;
  const ridge = (x: number) => 0.45 * height + 0.04 * (x - cx);
  // Landscape colour at a real-valued position (area-sampled across the ridge for anti-aliasing).
  const land = (x: number, y: number): [number, number, number] => {
    let sky = 0;
    for (let k = 0; k < 4; k++) sky += y + (k + 0.5) / 4 - 0.5 < ridge(x) ? 0.25 : 0;
    const t = y / height;
    const s: [number, number, number] = [0.55 + 0.2 * t, 0.7 + 0.15 * t, 0.9];
    const g: [number, number, number] = [0.25 + 0.1 * t, 0.35 - 0.1 * t, 0.18];
    return [0, 1, 2].map((c) => sky * s[c]! + (1 - sky) * g[c]!) as [number, number, number];
  };
  const image = createImage(width, height, 3), plate = createImage(width, height, 3);
  const alpha = createPlane(width, height), body = createPlane(width, height), strands = createPlane(width, height);
  // The subject: an opaque rounded body crossing the ridge, with strands reaching up and out.
  const bx = cx, by = 0.62 * height, rx = 0.12 * width, ry = 0.3 * height;
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) {
    const v = ((x - bx) / rx) ** 2 + ((y - by) / ry) ** 2;
    if (v <= 1) { body.data[y * width + x] = 1; alpha.data[y * width + x] = 1; }
  }
  for (let k = 0; k < 24; k++) {
    const angle = -Math.PI / 2 + (k / 23 - 0.5) * 2.2;
    const len = 40 + 30 * random();
    const x0 = bx + Math.cos(angle) * rx * 0.9, y0 = by + Math.sin(angle) * ry * 0.9;
    for (let t = 0; t < len; t += 0.5) {
      const x = Math.round(x0 + Math.cos(angle) * t), y = Math.round(y0 + Math.sin(angle) * t);
      if (x < 0 || y < 0 || x >= width || y >= height) continue;
      const p = y * width + x;
      if (body.data[p]! > 0.5) continue;
      alpha.data[p] = Math.max(alpha.data[p]!, 0.7);
      strands.data[p] = 1;
    }
  }
  const fg: [number, number, number] = [0.85, 0.45, 0.3];
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) {
    const p = y * width + x;
    const bg = land(x, y);
    // Plate pixel (x, y) sees the landscape at the image position turned and shifted back.
    const dx = x - cx, dy = y - cy;
    const px = cx + Math.cos(turn) * dx - Math.sin(turn) * dy, py = cy + Math.sin(turn) * dx + Math.cos(turn) * dy - shiftPx;
    const pb = land(px, py);
    for (let c = 0; c < 3; c++) {
      image.data[p * 3 + c] = alpha.data[p]! * fg[c]! + (1 - alpha.data[p]!) * bg[c]! + 0.006 * gaussian(random);
      plate.data[p * 3 + c] = 1.02 * pb[c]! + 0.006 * gaussian(random);
    }
  }
  return { image, plate, alpha, body, strands };
}

/** Mean alpha over pixels of `mask` that lie at least `away` px from the subject. */
export function ridgeAlpha(scene: Horizon, alpha: Plane, away: number): { max: number; count: number } {
  const { width, height } = alpha;
  const ridge = (x: number) => 0.45 * height + 0.04 * (x - width / 2);
  let max = 0, count = 0;
  for (let x = 0; x < width; x++) {
    const yr = Math.round(ridge(x));
    for (let y = yr - 3; y <= yr + 3; y++) {
      let near = false;
      for (let yy = y - away; yy <= y + away && !near; yy++) for (let xx = x - away; xx <= x + away && !near; xx++) {
        if (yy >= 0 && yy < height && xx >= 0 && xx < width && scene.alpha.data[yy * width + xx]! > 0) near = true;
      }
      if (near) continue;
      count++;
      max = Math.max(max, alpha.data[y * width + x]!);
    }
  }
  return { max, count };
}

