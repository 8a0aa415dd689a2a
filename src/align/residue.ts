/**
 * Alignment residue is not subject. One homography leaves a pixel or two of error along strong edges
 * of the plate (a ridge, a roof line, a window frame, a pole): sub-pixel misfit, lens distortion or
 * parallax. Differencing turns that into thin lines of "subject" that cross the frame and stick to
 * the real subject where they touch it.
 *
 * Local re-alignment: on and next to the plate's strong edges, each pixel takes the plate pixel of
 * the small shift (up to RADIUS px, in half-pixel steps) whose 3x3 neighbourhood best explains the
 * image there, when that shift explains it much better than no shift and well enough to be background. A subject in front
 * of the edge matches no shift of the plate and keeps the plate as it was.
 *
 * Written by hand: OpenCV's optical flow gives one vector per point and smooths across the subject's
 * outline; a per-pixel block match over a 5x5 window on edge pixels only is a few lines and costs
 * tens of milliseconds on a 1080p frame (only differing edge pixels are searched).
 */
import { f32, f32Copy, u8 } from '../alloc.js';
import type { ImageF32, Plane, Rect } from '../image.js';

/** Largest shift searched, in pixels. */
const RADIUS = 2;
/** A plate edge: grey-level change over two pixels (0..1) above this. */
const EDGE = 0.06;
/** The best shift must cut the 3x3 difference to this share of the unshifted one... */
const GAIN = 0.5;
/**
 * ...and leave a mean difference (0..1) under this, for its 3x3 block and for the pixel itself:
 * background, not a subject that happens to match better. (0.06 for the block recovered more of a
 * blurred ridge but cost 0.13 SAD on the dev benchmark: real subjects matched shifted edges.)
 */
const EXPLAINED = 0.04;

/** Edge pixels that differed from the plate and were searched; of those, the ones given a shifted plate pixel. */
export interface ResidueReport { edgePixels: number; realigned: number }

/**
 * 1 where the plate has a strong edge (grey-level change over two pixels above EDGE), found inside
 * `rect` only (pixels one in from its border; the rest stays 0, and its pages untouched).
 */
function edgeMap(plate: ImageF32, rect: Rect): Uint8Array {
  const { width: w, height: h } = plate;
  const [x0, y0, x1, y1] = rect;
  const d = plate.data;
  // From the caller's scratch arena when it runs in one: fresh pages cost a video ~15-25 µs each.
  const grey = f32(w * h);
  for (let y = y0; y < y1; y++) for (let p = y * w + x0; p < y * w + x1; p++) grey[p] = 0.299 * d[p * 3]! + 0.587 * d[p * 3 + 1]! + 0.114 * d[p * 3 + 2]!;
  const edges = u8(w * h);
  for (let y = Math.max(1, y0 + 1); y < Math.min(h - 1, y1 - 1); y++) for (let x = Math.max(1, x0 + 1); x < Math.min(w - 1, x1 - 1); x++) {
    const p = y * w + x;
    if (Math.abs(grey[p + 1]! - grey[p - 1]!) > EDGE || Math.abs(grey[p + w]! - grey[p - w]!) > EDGE) edges[p] = 1;
  }
  return edges;
}

/** The edge map grown by a (2r+1)² square inside `rect`: a separable running maximum, rows then columns. */
function grow(edges: Uint8Array, w: number, h: number, r: number, rect: Rect): Uint8Array {
  const [x0, y0, x1, y1] = rect;
  const rows = u8(w * h), out = u8(w * h);
  for (let y = y0; y < y1; y++) {
    const row = y * w;
    let last = -Infinity;
    for (let x = x0; x < x1 + r; x++) {
      if (x < x1 && edges[row + x]) last = x;
      const at = x - r;
      if (at >= x0 && x - last <= 2 * r) rows[row + at] = 1;
    }
  }
  for (let x = x0; x < x1; x++) {
    let last = -Infinity;
    for (let y = y0; y < y1 + r; y++) {
      if (y < y1 && rows[y * w + x]) last = y;
      const at = y - r;
      if (at >= y0 && y - last <= 2 * r) out[at * w + x] = 1;
    }
  }
  return out;
}

const HALF_STEPS: [number, number][] = [[-0.5, -0.5], [0, -0.5], [0.5, -0.5], [-0.5, 0], [0.5, 0], [-0.5, 0.5], [0, 0.5], [0.5, 0.5]];

/** Mean |I(p) − B(q)| over the three channels. */
function pixelDiff(a: Float32Array, b: Float32Array, p: number, q: number): number {
  return (Math.abs(a[p * 3]! - b[q * 3]!) + Math.abs(a[p * 3 + 1]! - b[q * 3 + 1]!) + Math.abs(a[p * 3 + 2]! - b[q * 3 + 2]!)) / 3;
}

/** Plate channel c sampled bilinearly at (x, y), borders clamped (half-pixel shifts need it). */
function sample(b: Float32Array, w: number, h: number, x: number, y: number, c: number): number {
  const u = Math.min(w - 1, Math.max(0, x)), v = Math.min(h - 1, Math.max(0, y));
  const u0 = Math.floor(u), v0 = Math.floor(v), u1 = Math.min(w - 1, u0 + 1), v1 = Math.min(h - 1, v0 + 1), fu = u - u0, fv = v - v0;
  return (1 - fv) * ((1 - fu) * b[(v0 * w + u0) * 3 + c]! + fu * b[(v0 * w + u1) * 3 + c]!) + fv * ((1 - fu) * b[(v1 * w + u0) * 3 + c]! + fu * b[(v1 * w + u1) * 3 + c]!);
}

/**
 * |I(q) − B(x, y)| summed over the three channels, B sampled bilinearly at (x, y) as `sample` does
 * (the same arithmetic, so the same value), its four neighbours and weights found once for the three.
 */
function sampledDiff(a: Float32Array, q: number, b: Float32Array, w: number, h: number, x: number, y: number): number {
  const u = Math.min(w - 1, Math.max(0, x)), v = Math.min(h - 1, Math.max(0, y));
  const u0 = Math.floor(u), v0 = Math.floor(v), u1 = Math.min(w - 1, u0 + 1), v1 = Math.min(h - 1, v0 + 1), fu = u - u0, fv = v - v0;
  const i00 = (v0 * w + u0) * 3, i01 = (v0 * w + u1) * 3, i10 = (v1 * w + u0) * 3, i11 = (v1 * w + u1) * 3;
  let sum = 0;
  for (let c = 0; c < 3; c++) sum += Math.abs(a[q * 3 + c]! - ((1 - fv) * ((1 - fu) * b[i00 + c]! + fu * b[i01 + c]!) + fv * ((1 - fu) * b[i10 + c]! + fu * b[i11 + c]!)));
  return sum;
}

/**
 * Mean difference of the image's 3x3 block around (x, y) and the plate's block shifted by (dx, dy),
 * borders clamped; Infinity as soon as the sum reaches `bound` (the terms are never negative, so
 * the block can no longer come in under bound / 9).
 */
function blockDiff(a: Float32Array, b: Float32Array, w: number, h: number, x: number, y: number, dx: number, dy: number, bound: number): number {
  let sum = 0;
  const whole = Number.isInteger(dx) && Number.isInteger(dy);
  for (let oy = -1; oy <= 1; oy++) {
    const yy = Math.min(h - 1, Math.max(0, y + oy));
    for (let ox = -1; ox <= 1; ox++) {
      const xx = Math.min(w - 1, Math.max(0, x + ox)), q = yy * w + xx;
      if (whole) sum += pixelDiff(a, b, q, Math.min(h - 1, Math.max(0, yy + dy)) * w + Math.min(w - 1, Math.max(0, xx + dx)));
      else sum += sampledDiff(a, q, b, w, h, xx + dx, yy + dy) / 3;
      if (sum >= bound) return Infinity;
    }
  }
  return sum / 9;
}

/**
 * The plate with its strong edges re-aligned locally to the image. Returns the input plate itself
 * when nothing changed, and the shift chosen at each pixel when any was moved (a finer grid's `hint`). Only
 * pixels that differ from the plate are looked at: residue is a difference, and most edge pixels
 * of a well-aligned plate agree already.
 */
export interface RealignOptions {
  /** Marks the pixels the warped plate really covers. */
  valid?: Plane;
  /**
   * The only pixels to look at (a coarse-to-fine engine's uncertain band): their indices in raster
   * order, and the rectangle [x0, y0, x1) around them. A list, not a plane: the band is a tenth of
   * a frame or less, its rectangle often most of it (a 1080p photo's pass over its rectangle cost
   * ~60 ms; the list's, a few).
   */
  pixels?: { list: Int32Array; box: Rect };
  /** Shifts found on a coarser grid (in its pixels): the search is centred on them, scaled up. */
  hint?: ShiftField;
  /** Whether the shifts are wanted (a finer grid's `hint`); false spares two frame-sized planes. Default true. */
  shifts?: boolean;
  /**
   * The images are rows [offset, offset + their height) of a frame `frameHeight` tall (a part of
   * the band sent to another thread, `bandPart`): the hint and the frame's border are looked up in
   * the frame's rows, so that every listed pixel gets what the whole frame would give it. `pixels`
   * are then in the part's own coordinates, and the part must reach `realignReach` rows beyond them
   * (or the frame's border).
   */
  rows?: { offset: number; frameHeight: number };
}

/**
 * How many rows beyond its own a listed pixel's search reads (the largest hinted shift scaled up
 * from the coarser grid, the search radius, the 3x3 block, bilinear half steps) and the edge map
 * around it is made from (RADIUS + 3): a part of the band carries this many more rows on either side.
 */
export function realignReach(height: number, hint: ShiftField | undefined): number {
  let largest = 0;
  if (hint) for (let k = 0; k < hint.dy.length; k++) largest = Math.max(largest, Math.abs(hint.dy[k]!));
  const scaled = hint ? Math.ceil(largest / (hint.height / height)) + 1 : 0;
  return Math.max(scaled + RADIUS + 2, RADIUS + 3) + 2;
}

/** Per pixel of a grid, the shift that re-aligned it (0, 0 where none did). */
export interface ShiftField { width: number; height: number; dx: Float32Array; dy: Float32Array }

/** One `realignEdges` call's inputs and what it found so far (one object: the search below updates it in place). */
interface Search {
  a: Float32Array; b: Float32Array; w: number; h: number; near: Uint8Array; valid: Float32Array | undefined; plate: ImageF32;
  hint: ShiftField | undefined; hx: number; hy: number; wantShifts: boolean;
  /** The frame row of the images' first row (RealignOptions.rows). */
  row0: number;
  /** The candidate shifts of the pixel being searched, (dx, dy) pairs. */
  shifts: Int32Array;
  out: ImageF32 | undefined; field: ShiftField | undefined; looked: number; realigned: number;
  /** Instead of `out`: each moved pixel and its new colour, appended (a band part's moves, `realignPart`). */
  moves: number[] | undefined;
}

/**
 * Searches pixel p (column x, row y) for the shift of the plate that explains the image there, and
 * writes the shifted plate pixel into `s.out` when one does. A function of its own on one state
 * object: as a closure over the caller's counters, V8 compiled it several times slower.
 */
function visit(s: Search, p: number, x: number, y: number): void {
  const { a, b, w, h, hint } = s;
  if ((s.valid && s.valid[p]! <= 0.5) || !s.near[p] || pixelDiff(a, b, p, p) < EXPLAINED) return;
  s.looked++;
  // A shift of the plate can only explain p if the plate pixel it brings matches p itself: that
  // cheap test picks the few shifts worth a block match and turns the subject's pixels away.
  const shifts = s.shifts;
  let n = 0;
  let ox = 0, oy = 0;
  if (hint) {
    const k = Math.min(hint.height - 1, Math.floor((y + s.row0) * s.hy)) * hint.width + Math.min(hint.width - 1, Math.floor(x * s.hx));
    ox = Math.round(hint.dx[k]! / s.hx); oy = Math.round(hint.dy[k]! / s.hy);
  }
  for (let dy = oy - RADIUS; dy <= oy + RADIUS; dy++) for (let dx = ox - RADIUS; dx <= ox + RADIUS; dx++) {
    if (dx === 0 && dy === 0) continue;
    const q = Math.min(h - 1, Math.max(0, y + dy)) * w + Math.min(w - 1, Math.max(0, x + dx));
    if (pixelDiff(a, b, p, q) < EXPLAINED) { shifts[n++] = dx; shifts[n++] = dy; }
  }
  if (!n) return;
  const unshifted = blockDiff(a, b, w, h, x, y, 0, 0, Infinity);
  const limit = Math.min(unshifted * GAIN, EXPLAINED);
  let best = Infinity, bestDx = 0, bestDy = 0;
  for (let k = 0; k < n; k += 2) {
    const mean = blockDiff(a, b, w, h, x, y, shifts[k]!, shifts[k + 1]!, best * 9);
    if (mean < best) { best = mean; bestDx = shifts[k]!; bestDy = shifts[k + 1]!; }
  }
  // The residue is rarely a whole number of pixels: anti-aliased edge pixels match only at the
  // right fraction. When no whole shift is good enough, half-pixel steps around the best one.
  // Only a half step that comes in under `limit` can be taken: the search stops a block as soon as
  // it cannot (most pixels searched here keep their plate pixel, and their half steps end early).
  if (best >= limit) {
    const cx = bestDx, cy = bestDy;
    for (const [hx2, hy2] of HALF_STEPS) {
      const mean = blockDiff(a, b, w, h, x, y, cx + hx2, cy + hy2, Math.min(best, limit) * 9);
      if (mean < best) { best = mean; bestDx = cx + hx2; bestDy = cy + hy2; }
    }
  }
  if (best >= limit) return;
  if (bestDx === 0 && bestDy === 0) return;
  s.realigned++;
  if (s.moves) {
    s.moves.push(p, sample(b, w, h, x + bestDx, y + bestDy, 0), sample(b, w, h, x + bestDx, y + bestDy, 1), sample(b, w, h, x + bestDx, y + bestDy, 2));
    return;
  }
  // From the caller's scratch arena when it runs in one (a video's frames reuse its pages).
  const out = s.out ??= { ...s.plate, data: f32Copy(s.plate.data) };
  for (let c = 0; c < 3; c++) out.data[p * 3 + c] = sample(b, w, h, x + bestDx, y + bestDy, c);
  if (s.wantShifts) {
    const field = s.field ??= { width: w, height: h, dx: new Float32Array(w * h), dy: new Float32Array(w * h) };
    field.dx[p] = bestDx; field.dy[p] = bestDy;
  }
}

export function realignEdges(image: ImageF32, plate: ImageF32, options: RealignOptions = {}): { plate: ImageF32; report: ResidueReport; shifts?: ShiftField } {
  const s = search(image, plate, options, false);
  if (!s) return { plate, report: { edgePixels: 0, realigned: 0 } };
  const { out, field, looked, realigned } = s;
  return { plate: out ?? plate, report: { edgePixels: looked, realigned }, ...(field ? { shifts: field } : {}) };
}

/** `realignEdges`' search, its moves written into a copy of the plate or, with `record`, listed (undefined: nothing to look at). */
function search(image: ImageF32, plate: ImageF32, options: RealignOptions, record: boolean): Search | undefined {
  const { valid, pixels, hint } = options;
  const wantShifts = options.shifts ?? true;
  const { width: w, height: h } = image;
  const row0 = options.rows?.offset ?? 0, frameHeight = options.rows?.frameHeight ?? h;
  const a = image.data, b = plate.data;
  // Only the listed pixels are looked at: the edge map is needed around their bounding
  // rectangle only (a coarse-to-fine engine's band covers part of the frame), as far out as the
  // grown edges reach (RADIUS + 1) and the edge test looks (one more).
  const looking = pixels ? (pixels.list.length ? pixels.box : undefined) : [0, 0, w, h] as Rect;
  if (!looking) return undefined;
  const margin = RADIUS + 2;
  const around: Rect = [Math.max(0, looking[0] - margin), Math.max(0, looking[1] - margin), Math.min(w, looking[2] + margin), Math.min(h, looking[3] + margin)];
  // Residue lies on the plate's edges and beside them, up to the search radius (and one more).
  const near = grow(edgeMap(plate, around), w, h, RADIUS + 1, around);
  const s: Search = {
    a, b, w, h, near, valid: valid?.data, plate, hint, hx: hint ? hint.width / w : 0, hy: hint ? hint.height / frameHeight : 0, wantShifts, row0,
    shifts: new Int32Array(2 * (2 * RADIUS + 1) ** 2), out: undefined, field: undefined, looked: 0, realigned: 0, moves: record ? [] : undefined,
  };
  // The frame's outermost pixels are never looked at (the edge test needs a neighbour on each side).
  if (pixels) {
    for (const p of pixels.list) {
      const y = Math.floor(p / w), x = p - y * w;
      if (x >= 1 && y + row0 >= 1 && x < w - 1 && y + row0 < frameHeight - 1) visit(s, p, x, y);
    }
  } else {
    for (let y = 1; y < h - 1; y++) for (let x = 1; x < w - 1; x++) visit(s, y * w + x, x, y);
  }
  return s;
}

/**
 * A part of a band to re-align elsewhere (another thread): the rows its pixels' searches read,
 * copied, with the pixels in the part's coordinates (`realignPart`).
 */
export interface BandPart {
  image: ImageF32;
  plate: ImageF32;
  valid?: Plane;
  pixels: { list: Int32Array; box: Rect };
  hint?: ShiftField;
  rows: { offset: number; frameHeight: number };
}

/** What re-aligning a part changed: the frame pixels given a shifted plate pixel, their colours, and the part's counts. */
export interface BandMoves { at: Int32Array; rgb: Float32Array; report: ResidueReport }

/**
 * The part of a band made of `list` (frame pixel indices in raster order, inside `box`): its rows
 * and `realignReach` more on either side, copied. `realignPart` of it gives those pixels exactly
 * what `realignEdges` over the whole frame gives them.
 */
export function bandPart(image: ImageF32, plate: ImageF32, valid: Plane | undefined, list: Int32Array, box: Rect, hint: ShiftField | undefined): BandPart {
  const { width: w, height: h } = image;
  const reach = realignReach(h, hint);
  const r0 = Math.max(0, box[1] - reach), r1 = Math.min(h, box[3] + reach);
  const rowsOf = <T extends ImageF32>(x: T): T => ({ ...x, height: r1 - r0, data: x.data.slice(r0 * w * x.channels, r1 * w * x.channels) });
  const local = new Int32Array(list.length);
  for (let i = 0; i < list.length; i++) local[i] = list[i]! - r0 * w;
  return {
    image: rowsOf(image), plate: rowsOf(plate), ...(valid ? { valid: rowsOf(valid) } : {}),
    pixels: { list: local, box: [box[0], box[1] - r0, box[2], box[3] - r0] }, ...(hint ? { hint } : {}),
    rows: { offset: r0, frameHeight: h },
  };
}

/** `realignEdges` of a band part (no shift field): the pixels it moved, in frame indices, and their new colours (no copy of the plate made). */
export function realignPart(part: BandPart): BandMoves {
  const s = search(part.image, part.plate, { ...(part.valid ? { valid: part.valid } : {}), pixels: part.pixels, ...(part.hint ? { hint: part.hint } : {}), shifts: false, rows: part.rows }, true);
  const moved = s?.moves ?? [];
  const offset = part.rows.offset * part.image.width, n = moved.length / 4;
  const at = new Int32Array(n), rgb = new Float32Array(n * 3);
  for (let k = 0; k < n; k++) {
    at[k] = moved[k * 4]! + offset;
    rgb[k * 3] = moved[k * 4 + 1]!; rgb[k * 3 + 1] = moved[k * 4 + 2]!; rgb[k * 3 + 2] = moved[k * 4 + 3]!;
  }
  return { at, rgb, report: { edgePixels: s?.looked ?? 0, realigned: s?.realigned ?? 0 } };
}

/** The moves of parts re-aligned elsewhere written into `into` (a frame-sized plate). */
export function applyMoves(into: ImageF32, moves: BandMoves): void {
  for (let k = 0; k < moves.at.length; k++) into.data.set(moves.rgb.subarray(k * 3, k * 3 + 3), moves.at[k]! * 3);
}
