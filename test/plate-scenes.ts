/** Generated captures for the plate-builder tests: a subject crossing a static background, a subject that stays, a hand-held burst. */
import { buildScene, gaussian, rng } from '../src/demo/scene.js';
import { createImage, createPlane, type ImageF32, type Plane } from '../src/image.js';

export interface PlateClip { frames: ImageF32[]; alphas: Plane[]; background: ImageF32 }

/**
 * The demo scene's subject (rendered at `size` px) pasted at the bottom of a `width`×`height`
 * background at whole-pixel x positions `xs` (one frame each), with fresh sensor noise per frame.
 */
export function subjectOver(background: ImageF32, size: number, xs: number[], seed = 5): PlateClip {
  const { width, height } = background;
  const subject = buildScene(size, size, 7, 40);
  const random = rng(seed);
  const y0 = height - size;
  const frames: ImageF32[] = [], alphas: Plane[] = [];
  for (const x0 of xs) {
    const image = createImage(width, height, 3), alpha = createPlane(width, height);
    for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) {
      const p = y * width + x, fx = x - x0, fy = y - y0;
      const a = fx >= 0 && fy >= 0 && fx < size && fy < size ? subject.alpha.data[fy * size + fx]! : 0;
      alpha.data[p] = a;
      for (let c = 0; c < 3; c++) {
        const f = a > 0 ? subject.foreground.data[(fy * size + fx) * 3 + c]! : 0;
        image.data[p * 3 + c] = Math.min(1, Math.max(0, a * f + (1 - a) * background.data[p * 3 + c]! + 0.006 * gaussian(random)));
      }
    }
    frames.push(image);
    alphas.push(alpha);
  }
  return { frames, alphas, background };
}

/** A subject crossing the whole frame, from beyond the left edge to beyond the right one. */
export function crossingClip(frames: number, width = 160, height = 120, size = 72): PlateClip {
  const background = buildScene(width, height, 11, 0).background;
  const xs = Array.from({ length: frames }, (_, t) => Math.round(-size + ((width + size) * t) / (frames - 1)));
  return subjectOver(background, size, xs);
}
