/** TensorFlow.js's three packages in the web bundle (see ./tfjs.ts, which this module replaces there). */
import * as tf from '@tensorflow/tfjs-core';
import * as converter from '@tensorflow/tfjs-converter';
import * as wasm from '@tensorflow/tfjs-backend-wasm';

export { tf, converter, wasm };
