import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { loadCv } from '../src/cv.js';
import { createImage, createPlane } from '../src/image.js';
import { coefficients, coefficientsPacked } from '../src/matte/guided.js';

before(async () => { await loadCv(); });

test('the guided filter\'s coefficients packed four to a Mat equal the plane-by-plane ones', () => {
  const width = 97, height = 61;
  const guide = createImage(width, height, 3), input = createPlane(width, height);
  for (let p = 0; p < width * height; p++) {
    const x = p % width, y = Math.floor(p / width);
    guide.data[p * 3] = 0.5 + 0.4 * Math.sin(x / 7 + y / 11);
    guide.data[p * 3 + 1] = ((x * 37 + y * 91) % 101) / 101;
    guide.data[p * 3 + 2] = x < 40 ? 0.2 : 0.8;
    input.data[p] = Math.min(1, Math.max(0, (x - 35 + 8 * Math.sin(y / 9)) / 15));
  }
  for (const radius of [1, 2, 5]) {
    const planes = coefficients(guide, input, radius, 1e-4);
    const packed = coefficientsPacked(guide, input, radius, 1e-4);
    assert.equal(packed.length, width * height * 4);
    let worst = 0;
    for (let p = 0; p < width * height; p++) {
      for (let c = 0; c < 3; c++) worst = Math.max(worst, Math.abs(packed[p * 4 + c]! - planes.mA[c]![p]!));
      worst = Math.max(worst, Math.abs(packed[p * 4 + 3]! - planes.mB[p]!));
    }
    assert.ok(worst <= 1e-6, `radius ${radius}: largest difference ${worst}`);
  }
});
