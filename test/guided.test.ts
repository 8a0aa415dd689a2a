import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { createImage, createPlane } from '../src/image.js';
import { coefficients, coefficientsWhole } from '../src/matte/guided.js';
import { resize } from '../src/ops.js';
import { cv, imageFromMat, loadCv, matFromImage } from '../src/cv.js';

before(async () => { await loadCv(); });

/** OpenCV's BORDER_REFLECT index (fedcba|abcdefgh|hgfedcb). */
const reflect = (i: number, n: number) => (i < 0 ? -i - 1 : i >= n ? 2 * n - i - 1 : i);

test('the guided filter\'s packed coefficients equal the definition (He et al.), box sums written out', () => {
  const width = 37, height = 23;
  const guide = createImage(width, height, 3), input = createPlane(width, height);
  for (let p = 0; p < width * height; p++) {
    const x = p % width, y = Math.floor(p / width);
    guide.data[p * 3] = 0.5 + 0.4 * Math.sin(x / 7 + y / 11);
    guide.data[p * 3 + 1] = ((x * 37 + y * 91) % 101) / 101;
    guide.data[p * 3 + 2] = x < 15 ? 0.2 : 0.8;
    input.data[p] = Math.min(1, Math.max(0, (x - 12 + 5 * Math.sin(y / 5)) / 9));
  }
  const eps = 1e-4;
  for (const r of [1, 2]) {
    // Box mean of f over the (2r+1)² window at (x, y), borders reflected.
    const box = (f: (q: number) => number, x: number, y: number) => {
      let s = 0;
      for (let dy = -r; dy <= r; dy++) for (let dx = -r; dx <= r; dx++) s += f(reflect(y + dy, height) * width + reflect(x + dx, width));
      return s / (2 * r + 1) ** 2;
    };
    const I = (q: number, c: number) => guide.data[q * 3 + c]!;
    // a = (Σ + εU)⁻¹ cov(I, p), b = mean(p) − a·mean(I), per window.
    const ab = new Float64Array(width * height * 4);
    for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) {
      const mI = [0, 1, 2].map((c) => box((q) => I(q, c), x, y)), mp = box((q) => input.data[q]!, x, y);
      const cov = [0, 1, 2].map((c) => box((q) => I(q, c) * input.data[q]!, x, y) - mI[c]! * mp);
      const S = [0, 1, 2].map((a) => [0, 1, 2].map((b) => box((q) => I(q, a) * I(q, b), x, y) - mI[a]! * mI[b]! + (a === b ? eps : 0)));
      // Cramer's rule for S a = cov.
      const det3 = (m: number[][]) => m[0]![0]! * (m[1]![1]! * m[2]![2]! - m[1]![2]! * m[2]![1]!) - m[0]![1]! * (m[1]![0]! * m[2]![2]! - m[1]![2]! * m[2]![0]!) + m[0]![2]! * (m[1]![0]! * m[2]![1]! - m[1]![1]! * m[2]![0]!);
      const d = det3(S);
      const a = [0, 1, 2].map((k) => det3(S.map((row, i) => row.map((v, j) => (j === k ? cov[i]! : v)))) / d);
      const p = y * width + x;
      ab.set([a[0]!, a[1]!, a[2]!, mp - a[0]! * mI[0]! - a[1]! * mI[1]! - a[2]! * mI[2]!], p * 4);
    }
    const packed = coefficients(guide, input, r, eps);
    assert.equal(packed.length, width * height * 4);
    let worst = 0;
    for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) {
      for (let c = 0; c < 4; c++) worst = Math.max(worst, Math.abs(packed[(y * width + x) * 4 + c]! - box((q) => ab[q * 4 + c]!, x, y)));
    }
    // Float32 sums in OpenCV against float64 here; the coefficients reach ~1e2 where the guide is flat.
    assert.ok(worst < 1e-3, `radius ${r}: largest difference ${worst}`);
    console.log(`radius ${r}: largest difference from the definition ${worst.toExponential(2)}`);
  }
});

test('on a tall plane the coefficients come in strips of rows, equal to the whole plane\'s', () => {
  const width = 48, height = 1300;
  const guide = createImage(width, height, 3), input = createPlane(width, height);
  for (let p = 0; p < width * height; p++) {
    const x = p % width, y = Math.floor(p / width);
    for (let c = 0; c < 3; c++) guide.data[p * 3 + c] = 0.5 + 0.45 * Math.sin((x + 3 * c) / 5 + y / (7 + c));
    input.data[p] = ((x * 13 + y * 7) % 29) / 28;
  }
  for (const r of [1, 2, 3]) {
    const strips = coefficients(guide, input, r, 1e-4), whole = coefficientsWhole(guide, input, r, 1e-4);
    let worst = 0;
    for (let i = 0; i < whole.length; i++) worst = Math.max(worst, Math.abs(strips[i]! - whole[i]!));
    assert.ok(worst <= 1e-6, `radius ${r}: largest difference ${worst}`);
  }
});

test('a large colour image is resized channel by channel, to the values of the three-channel resize', () => {
  // Over the 48 MB of floats above which resize goes channel by channel.
  const width = 3000, height = 1500;
  const image = createImage(width, height, 3);
  for (let i = 0; i < image.data.length; i++) image.data[i] = ((i * 2654435761) % 1000) / 999;
  const c = cv();
  for (const [w, h] of [[512, 256], [3100, 1600]]) {
    const src = matFromImage(c, image), dst = new c.Mat();
    c.resize(src, dst, new c.Size(w, h), 0, 0, w < width ? c.INTER_AREA : c.INTER_LINEAR);
    const expected = imageFromMat(dst);
    src.delete(); dst.delete();
    assert.deepEqual(resize(image, w!, h!).data, expected.data, `${w}x${h}`);
  }
});
