/**
 * TensorFlow.js's three packages, for Node: loaded with `require`. They ship CommonJS builds, and
 * an ESM import of one first scans all of its source for the names it exports (cjs-module-lexer over
 * 2.9 MB: ~250-350 ms against ~50 ms for `require`, measured; a prior thread's start-up, on the way
 * to a video's first prior and a photo's). The web bundle swaps this module for ./tfjs-browser.ts
 * (scripts/build-web.mjs), whose static imports the bundler resolves.
 */
import { createRequire } from 'node:module';
import type * as Core from '@tensorflow/tfjs-core';
import type * as Converter from '@tensorflow/tfjs-converter';
import type * as Wasm from '@tensorflow/tfjs-backend-wasm';

const require = createRequire(import.meta.url);
export const tf = require('@tensorflow/tfjs-core') as typeof Core;
export const converter = require('@tensorflow/tfjs-converter') as typeof Converter;
export const wasm = require('@tensorflow/tfjs-backend-wasm') as typeof Wasm;
