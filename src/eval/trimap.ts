import { createPlane, type Plane } from '../image.js';

/** Unknown region of a 0/128/255 trimap: values strictly between the two ends. */
export function binarizeTrimapUnknown(trimap: Plane): Plane {
  const out = createPlane(trimap.width, trimap.height);
  for (let i = 0; i < out.data.length; i++) { const v = trimap.data[i]!; out.data[i] = v > 0.1 && v < 0.9 ? 1 : 0; }
  return out;
}
