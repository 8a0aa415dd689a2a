// Runs an exported model on a fixture written by export_onnx.py / export_refiner.py and prints the max abs difference.
// meta.json: { inputs: {name: shape}, outputs: {name: shape} } (or the generator's older flat form).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import ort from 'onnxruntime-node';

// ONNX Runtime's telemetry off, as src/platform/ort.ts sets it for cleanplate itself.
process.env.ORT_DISABLE_TELEMETRY ??= '1';

const [model, dir] = process.argv.slice(2);
const meta = JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8'));
const inputs = meta.inputs ?? Object.fromEntries(['image', 'plate', 'prior', 'motion'].map((n) => [n, meta[n]]));
const outputs = meta.outputs ?? Object.fromEntries(['alpha', 'foreground'].map((n) => [n, meta[n]]));
const load = (name) => {
  const b = readFileSync(join(dir, `${name}.bin`));
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
};
const session = await ort.InferenceSession.create(model);
const feeds = {};
for (const [name, shape] of Object.entries(inputs)) feeds[name] = new ort.Tensor('float32', load(name), shape);
const out = await session.run(feeds);
let max = 0;
for (const name of Object.keys(outputs)) {
  const want = load(name), got = out[name].data;
  for (let i = 0; i < want.length; i++) max = Math.max(max, Math.abs(want[i] - got[i]));
}
console.log(JSON.stringify({ maxAbsDiff: max }));
