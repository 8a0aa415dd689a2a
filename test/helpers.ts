import { existsSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32, deflateSync } from 'node:zlib';

/** Repository root (tests run from dist/test). */
export const ROOT = resolve(fileURLToPath(new URL('../../', import.meta.url)));
export const BIN = join(ROOT, 'bin', 'cleanplate.js');
/** Evaluation data beside the checkout, or where CLEANPLATE_DATA points. */
export const DATA = process.env.CLEANPLATE_DATA ?? resolve(ROOT, '..', 'shared', 'data');
export const HAS_DATA = existsSync(join(DATA, 'bgm-samples', 'input', '0001_img.png'));

export function tempDir(prefix = 'cleanplate-test-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

function pngChunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4); crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

/** A valid PNG header declaring width x height over a tiny data stream: only the header is read. */
export function hugePngHeader(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0); ihdr.writeUInt32BE(height, 4); ihdr.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), pngChunk('IHDR', ihdr), pngChunk('IDAT', deflateSync(Buffer.alloc(10))), pngChunk('IEND', Buffer.alloc(0))]);
}

/**
 * A plate off by a pixel and a half (the mean of the plate and the plate moved by (1, 2) px, its
 * edge repeated): residue along its edges for the re-alignment to find.
 */
export function plateOffByOneAndAHalf(plate: { width: number; height: number; data: Float32Array }): { width: number; height: number; channels: 3; data: Float32Array } {
  const { width: w, height: h } = plate;
  const out = { width: w, height: h, channels: 3 as const, data: new Float32Array(w * h * 3) };
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const q = Math.min(h - 1, y + 2) * w + Math.min(w - 1, x + 1), p = y * w + x;
    for (let c = 0; c < 3; c++) out.data[p * 3 + c] = 0.5 * (plate.data[p * 3 + c]! + plate.data[q * 3 + c]!);
  }
  return out;
}
