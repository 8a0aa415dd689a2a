/**
 * A synthetic capture with known ground truth, built in code so the demo and tests need no files:
 * a textured background, a subject with a solid body and hundreds of thin semi-transparent
 * hair-like strands (anti-aliased by supersampling), and a plate re-"captured" with a small camera
 * motion, an exposure change and sensor noise.
 */
import { createImage, createPlane, type ImageF32, type Plane } from '../image.js';
import { resize } from '../ops.js';

/** Small deterministic PRNG (mulberry32) so scenes are identical on every machine. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function gaussian(random: () => number): number {
  return Math.sqrt(-2 * Math.log(random() + 1e-12)) * Math.cos(2 * Math.PI * random());
}

/** Distinct shapes scattered over the background give the feature matcher something to hold on to. */
const SPOTS = (() => {
  const r = rng(99);
  return Array.from({ length: 140 }, () => ({ x: r() * 700 - 30, y: r() * 540 - 30, r: 4 + r() * 18, c: [r(), r(), r()] as const, ring: r() < 0.4 }));
})();

/** Background colour at any real coordinate, so that a moved camera can re-render it exactly. */
function backgroundAt(x: number, y: number): [number, number, number] {
  for (const s of SPOTS) {
    const d = Math.hypot(x - s.x, y - s.y);
    if (d < s.r && (!s.ring || d > s.r * 0.6)) return [0.1 + 0.8 * s.c[0], 0.1 + 0.8 * s.c[1], 0.1 + 0.8 * s.c[2]];
  }
  const u = x / 97, v = y / 71;
  const stripes = 0.5 + 0.5 * Math.sin(u * 2.1 + Math.sin(v * 1.3) * 2);
  const blobs = 0.5 + 0.5 * Math.sin(u * 0.7) * Math.cos(v * 0.9);
  const fine = 0.5 + 0.5 * Math.sin(x / 5.3 + y / 7.1) * Math.sin(x / 3.7 - y / 4.9);
  const checker = (Math.floor(x / 40) + Math.floor(y / 40)) % 2;
  return [
    0.15 + 0.45 * stripes + 0.15 * fine + 0.1 * checker,
    0.25 + 0.35 * blobs + 0.12 * fine,
    0.2 + 0.3 * (1 - stripes) + 0.2 * blobs + 0.08 * checker,
  ];
}

export interface Scene {
  image: ImageF32;
  plate: ImageF32;
  alpha: Plane;
  foreground: ImageF32;
  background: ImageF32;
}

export function buildScene(width = 640, height = 480, seed = 7, strands = 420): Scene {
  const random = rng(seed);
  const ss = 3; // supersampling factor for the strands
  const W = width * ss, H = height * ss;
  const hi = createPlane(W, H);
  const cx = width * 0.5, cy = height * 0.58, rx = width * 0.16, ry = height * 0.24;
  // Solid body: an ellipse (head) on a rounded trapezoid (shoulders).
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
    const px = x / ss, py = y / ss;
    const head = ((px - cx) / rx) ** 2 + ((py - cy) / ry) ** 2 <= 1;
    const shoulders = py > cy + ry * 0.6 && Math.abs(px - cx) < rx * 1.6 + (py - cy - ry * 0.6) * 0.8;
    if (head || shoulders) hi.data[y * W + x] = 1;
  }
  // Hair strands leaving the top half of the head outwards, curling slightly.
  for (let s = 0; s < strands; s++) {
    const angle = Math.PI * (1.05 + 0.9 * random());
    let x = cx + rx * 0.95 * Math.cos(angle), y = cy + ry * 0.95 * Math.sin(angle);
    let dir = angle + gaussian(random) * 0.25;
    const length = (0.15 + 0.35 * random()) * Math.min(width, height);
    const opacity = 0.35 + 0.6 * random();
    const radius = (0.35 + 0.5 * random()) * ss;
    const curl = gaussian(random) * 0.01;
    for (let t = 0; t < length * 2; t++) {
      x += Math.cos(dir) * 0.5; y += Math.sin(dir) * 0.5; dir += curl;
      const X = x * ss, Y = y * ss;
      const r = Math.ceil(radius);
      for (let dy = -r; dy <= r; dy++) for (let dx = -r; dx <= r; dx++) {
        const qx = Math.round(X) + dx, qy = Math.round(Y) + dy;
        if (qx < 0 || qy < 0 || qx >= W || qy >= H) continue;
        if ((qx - X) ** 2 + (qy - Y) ** 2 > radius * radius) continue;
        const i = qy * W + qx;
        hi.data[i] = Math.max(hi.data[i]!, opacity);
      }
    }
  }
  const alpha = resize(hi, width, height) as Plane;
  const foreground = createImage(width, height, 3);
  const background = createImage(width, height, 3);
  const image = createImage(width, height, 3);
  const plate = createImage(width, height, 3);
  // The plate's camera: a small rotation, zoom and shift (plate pixel → scene coordinate).
  const theta = 0.006, zoom = 1.01, tx = 5.5, ty = -3.2;
  const gain = [1.08, 0.95, 1.05], bias = [-0.03, 0.02, 0.0];
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) {
    const p = y * width + x;
    const bg = backgroundAt(x, y);
    const shade = 0.75 + 0.25 * Math.sin(x / 23) * Math.cos(y / 31);
    const fg = [0.55 * shade + 0.1, 0.33 * shade + 0.05, 0.18 * shade + 0.03];
    const sx = zoom * (Math.cos(theta) * (x - width / 2) - Math.sin(theta) * (y - height / 2)) + width / 2 + tx;
    const sy = zoom * (Math.sin(theta) * (x - width / 2) + Math.cos(theta) * (y - height / 2)) + height / 2 + ty;
    const pb = backgroundAt(sx, sy);
    const a = alpha.data[p]!;
    for (let c = 0; c < 3; c++) {
      const clampv = (v: number) => Math.min(1, Math.max(0, v));
      foreground.data[p * 3 + c] = clampv(fg[c]!);
      background.data[p * 3 + c] = clampv(bg[c]!);
      image.data[p * 3 + c] = clampv(a * fg[c]! + (1 - a) * bg[c]! + 0.008 * gaussian(random));
      plate.data[p * 3 + c] = clampv(gain[c]! * pb[c]! + bias[c]! + 0.008 * gaussian(random));
    }
  }
  return { image, plate, alpha, foreground, background };
}

export interface Clip {
  frames: ImageF32[];
  alphas: Plane[];
  plate: ImageF32;
}

/**
 * A tripod clip with ground truth: the scene's subject slides across the static background by
 * `speed` pixels a frame (whole pixels, so every frame's alpha is exact), with fresh sensor noise
 * in every frame. `speed` 0 gives a static subject, the case where flicker shows most.
 */
export function buildClip(frames: number, width = 256, height = 192, speed = 2, seed = 11, strands = 60): Clip {
  const scene = buildScene(width, height, seed, strands);
  const out: Clip = { frames: [], alphas: [], plate: scene.background };
  for (const { image, alpha } of clipFrames(scene, frames, speed, seed)) {
    out.frames.push(image);
    out.alphas.push(alpha);
  }
  return out;
}

/**
 * The frames of `buildClip` one at a time, for clips too long to hold (a 20 s 720p clip is 6.6 GB
 * of float frames): `scene` is `buildScene(width, height, seed, strands)`, its background the plate.
 */
export function* clipFrames(scene: Scene, frames: number, speed = 2, seed = 11): Generator<{ image: ImageF32; alpha: Plane }> {
  const { width, height } = scene.image;
  const random = rng(seed + 1);
  const start = -Math.round((speed * (frames - 1)) / 2);
  for (let t = 0; t < frames; t++) {
    const dx = start + speed * t;
    const alpha = createPlane(width, height);
    const image = createImage(width, height, 3);
    for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) {
      const p = y * width + x, sx = x - dx;
      const q = y * width + sx;
      const a = sx >= 0 && sx < width ? scene.alpha.data[q]! : 0;
      alpha.data[p] = a;
      for (let c = 0; c < 3; c++) {
        const f = a > 0 ? scene.foreground.data[q * 3 + c]! : 0;
        const v = a * f + (1 - a) * scene.background.data[p * 3 + c]! + 0.006 * gaussian(random);
        image.data[p * 3 + c] = Math.min(1, Math.max(0, v));
      }
    }
    yield { image, alpha };
  }
}
