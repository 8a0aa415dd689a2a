/**
 * The page's URL parameters. `mode` and `background` are part of the test contract (README, Browser
 * app); the others tune the live mode for measurements and tests.
 *
 *   ?mode=live|photo             which mode opens
 *   ?background=color:RRGGBB     live background: a colour (also blur)
 *   ?size=640x360|1280x720       live processing size
 *   ?countdown=3                 seconds before the plate is captured (0: at once)
 *   ?plateFrames=8               frames averaged into the plate
 *   ?prior=selfie|rvm            live person model;  ?priorSide=256  its grid's long side
 *   ?work=320                    the classic engine's working grid (long side)
 *   ?refine=0                    its guided refinement's radius (0: none)
 *   ?threads=1                   TensorFlow.js WebAssembly threads (needs cross-origin isolation)
 *   ?autostart=0                 do not open the camera until asked
 */
import type { LivePrior } from './protocol.js';

export interface Params {
  mode: 'live' | 'photo';
  background?: { kind: 'colour'; hex: string } | { kind: 'blur' };
  width: number;
  height: number;
  countdown: number;
  plateFrames: number;
  prior: LivePrior;
  priorSide: number;
  work: number;
  refine: number;
  threads: number;
  autostart: boolean;
}

export const SIZES: readonly [number, number][] = [[640, 360], [1280, 720]];

function number(q: URLSearchParams, name: string, fallback: number, min: number, max: number): number {
  const v = Number(q.get(name));
  return q.has(name) && Number.isFinite(v) ? Math.min(max, Math.max(min, v)) : fallback;
}

export function readParams(search: string): Params {
  const q = new URLSearchParams(search);
  const size = /^(\d+)x(\d+)$/.exec(q.get('size') ?? '');
  const known = size && SIZES.find(([w, h]) => w === Number(size[1]) && h === Number(size[2]));
  const [width, height] = known ?? SIZES[0]!;
  const bg = q.get('background') ?? '';
  const colour = /^colou?r:#?([0-9a-f]{6})$/i.exec(bg);
  const prior: LivePrior = q.get('prior') === 'rvm' ? 'rvm' : 'selfie';
  return {
    mode: q.get('mode') === 'photo' ? 'photo' : 'live',
    background: colour ? { kind: 'colour', hex: `#${colour[1]!.toLowerCase()}` } : bg === 'blur' ? { kind: 'blur' } : undefined,
    width, height,
    countdown: number(q, 'countdown', 3, 0, 10),
    plateFrames: Math.round(number(q, 'plateFrames', 8, 1, 60)),
    prior,
    priorSide: Math.round(number(q, 'priorSide', 256, 96, 640) / 32) * 32,
    work: Math.round(number(q, 'work', 320, 128, 1280)),
    refine: Math.round(number(q, 'refine', 0, 0, 8)),
    threads: Math.round(number(q, 'threads', 1, 1, 8)),
    autostart: q.get('autostart') !== '0',
  };
}
