import assert from 'node:assert/strict';
import { test } from 'node:test';
import { initTfjs, tf } from '../src/prior/tfjs.js';

/** Element (n, h, w, c) of an NHWC array of the given shape. */
const at = (data: Float32Array, shape: number[], n: number, h: number, w: number, c: number) => data[((n * shape[1]! + h) * shape[2]! + w) * shape[3]! + c]!;

function filled(shape: number[], seed: number): Float32Array {
  const size = shape.reduce((a, b) => a * b, 1);
  return Float32Array.from({ length: size }, (_, i) => Math.sin(i * 12.9898 + seed) * 1000);
}

test('the wasm backend\'s Concat, Slice and SplitV (ours, registered over tfjs\'s) copy the right elements', async () => {
  await initTfjs();
  assert.equal(tf.getBackend(), 'wasm');
  // Channels of different counts, some short runs (a loop) and one long (a set), as RVM's decoder has.
  const shapes = [[2, 3, 5, 4], [2, 3, 5, 70], [2, 3, 5, 1]];
  const datas = shapes.map((s, k) => filled(s, k));
  const cat = tf.concat(datas.map((d, k) => tf.tensor4d(d, shapes[k] as [number, number, number, number])), 3);
  assert.deepEqual(cat.shape, [2, 3, 5, 75]);
  const got = cat.dataSync() as Float32Array;
  for (let n = 0; n < 2; n++) for (let h = 0; h < 3; h++) for (let w = 0; w < 5; w++) {
    let c0 = 0;
    for (let k = 0; k < shapes.length; k++) {
      for (let c = 0; c < shapes[k]![3]!; c++) assert.equal(at(got, cat.shape, n, h, w, c0 + c), at(datas[k]!, shapes[k]!, n, h, w, c), `concat ${n},${h},${w},${c0 + c}`);
      c0 += shapes[k]![3]!;
    }
  }
  // Along another axis too.
  const rows = tf.concat([tf.tensor4d(datas[0]!, [2, 3, 5, 4]), tf.tensor4d(filled([2, 1, 5, 4], 9), [2, 1, 5, 4])], 1);
  assert.equal(rows.shape[1], 4);
  assert.equal(at(rows.dataSync() as Float32Array, rows.shape, 1, 3, 2, 1), at(filled([2, 1, 5, 4], 9), [2, 1, 5, 4], 1, 0, 2, 1));

  const part = tf.slice(cat, [1, 1, 2, 3], [1, 2, 3, 70]);
  const p = part.dataSync() as Float32Array;
  for (let h = 0; h < 2; h++) for (let w = 0; w < 3; w++) for (let c = 0; c < 70; c++) {
    assert.equal(at(p, part.shape, 0, h, w, c), at(got, cat.shape, 1, 1 + h, 2 + w, 3 + c), `slice ${h},${w},${c}`);
  }
  const flat = tf.slice(tf.tensor1d(datas[1]!), [7], [20]);
  assert.deepEqual(Array.from(flat.dataSync()), Array.from(datas[1]!.subarray(7, 27)));

  const [a, b] = tf.split(cat, [30, 45], 3);
  assert.deepEqual([a!.shape, b!.shape], [[2, 3, 5, 30], [2, 3, 5, 45]]);
  const bv = b!.dataSync() as Float32Array;
  for (let n = 0; n < 2; n++) for (let h = 0; h < 3; h++) for (let w = 0; w < 5; w++) for (let c = 0; c < 45; c++) {
    assert.equal(at(bv, b!.shape, n, h, w, c), at(got, cat.shape, n, h, w, 30 + c), `split ${n},${h},${w},${c}`);
  }
  // RVM's image and alpha: runs of 3 and 1 channels (their own loops), split back, and a whole tensor sliced (one copy).
  const rgb = filled([1, 4, 6, 3], 3), pha = filled([1, 4, 6, 1], 4);
  const rgba = tf.concat([tf.tensor4d(rgb, [1, 4, 6, 3]), tf.tensor4d(pha, [1, 4, 6, 1])], 3);
  const rv = rgba.dataSync() as Float32Array;
  for (let p = 0; p < 24; p++) assert.deepEqual(Array.from(rv.subarray(p * 4, p * 4 + 4)), [rgb[p * 3], rgb[p * 3 + 1], rgb[p * 3 + 2], pha[p]], `rgba pixel ${p}`);
  const back3 = tf.slice(rgba, [0, 1, 2, 0], [1, 2, 3, 3]), back1 = tf.slice(rgba, [0, 1, 2, 3], [1, 2, 3, 1]), whole = tf.slice(rgba, [0, 0, 0, 0], [1, 4, 6, 4]);
  const b3 = back3.dataSync() as Float32Array, b1 = back1.dataSync() as Float32Array;
  for (let h = 0; h < 2; h++) for (let w = 0; w < 3; w++) {
    const q = (1 + h) * 6 + 2 + w;
    assert.deepEqual(Array.from(b3.subarray((h * 3 + w) * 3, (h * 3 + w) * 3 + 3)), Array.from(rgb.subarray(q * 3, q * 3 + 3)), `rgb ${h},${w}`);
    assert.equal(b1[h * 3 + w], pha[q], `alpha ${h},${w}`);
  }
  assert.deepEqual(whole.dataSync(), rv);
  tf.dispose([cat, rows, part, flat, a!, b!, rgba, back3, back1, whole]);
});

test('the wasm backend\'s SpaceToBatchND and BatchToSpaceND (ours) equal their definition by pad, reshape and transpose', async () => {
  await initTfjs();
  // Odd sizes, a non-square block, uneven paddings and crops; C as RVM's (a long run) and short.
  for (const [shape, block, pads] of [
    [[2, 5, 7, 70], [2, 3], [[1, 0], [2, 0]]],
    [[1, 15, 20, 3], [2, 2], [[1, 0], [0, 0]]],
  ] as [[number, number, number, number], [number, number], [[number, number], [number, number]]][]) {
    const x = tf.tensor4d(filled(shape, 5), shape);
    const got = tf.spaceToBatchND(x, block, pads);
    // TensorFlow's definition: zero-pad H and W, split each into (size / block, block), move the block offsets to the batch.
    const [n, h, w, c] = shape;
    const [bh, bw] = block;
    const ph = h + pads[0][0] + pads[0][1], pw = w + pads[1][0] + pads[1][1];
    const padded = tf.pad(x, [[0, 0], pads[0], pads[1], [0, 0]]);
    const expected = tf.reshape(tf.transpose(tf.reshape(padded, [n, ph / bh, bh, pw / bw, bw, c]), [2, 4, 0, 1, 3, 5]), [bh * bw * n, ph / bh, pw / bw, c]);
    assert.deepEqual(got.shape, expected.shape);
    assert.deepEqual(got.dataSync(), expected.dataSync(), `spaceToBatchND ${shape}`);
    // And back, the crops taking the paddings off again: the input itself.
    const back = tf.batchToSpaceND(got, block, pads);
    assert.deepEqual(back.shape, shape);
    assert.deepEqual(back.dataSync(), x.dataSync(), `batchToSpaceND ${shape}`);
    // Crops other than the paddings: the same slice of the uncropped result.
    const uncropped = tf.batchToSpaceND(got, block, [[0, 0], [0, 0]]);
    const cropped = tf.batchToSpaceND(got, block, [[0, 1], [1, 0]]);
    assert.deepEqual(cropped.dataSync(), tf.slice(uncropped, [0, 0, 1, 0], [n, ph - 1, pw - 1, c]).dataSync(), `cropped ${shape}`);
    tf.dispose([x, got, padded, expected, back, uncropped, cropped]);
  }
});
