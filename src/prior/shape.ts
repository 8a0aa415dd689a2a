/**
 * The paper's shaping of the segmentation S before it enters the matting stage
 * (threshold > 0.2, erode 3x3 x10, dilate 5x5 x5, Gaussian blur 31x31, all at 512 px scale):
 * a blurred, slightly grown silhouette that tells "person around here" without claiming edges.
 */
import type { Plane } from '../image.js';
import { binarize, dilateDisc, erodeDisc, gaussianBlur } from '../ops.js';

export function shapePrior(prior: Plane): Plane {
  // The paper's kernel sizes are for a ~512 px crop: scale iterations with the image.
  const scale = Math.max(prior.width, prior.height) / 512;
  const mask = binarize(prior, 0.2);
  // 10 erosions by a 3x3 ellipse and 5 dilations by a 5x5 one are discs of radius 10 and 10;
  // a distance transform gives them in one pass whatever the scale (75 iterations at 4K otherwise).
  const eroded = erodeDisc(mask, Math.max(1, 10 * scale));
  const dilated = dilateDisc(eroded, Math.max(1, 10 * scale));
  const k = Math.max(3, Math.round(31 * scale) | 1);
  return gaussianBlur(dilated, k);
}
