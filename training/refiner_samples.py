"""Capture-like samples for the learned band refiner (issue 11): image, plate and true alpha as PNG files.

    /usr/bin/python3 training/refiner_samples.py --out training/work/samples --count 900 --seed 11

The TypeScript engine then runs on every sample exactly as at inference (`node dist/training/shards.js`),
and the refiner learns what it gets wrong. Compared with data.py's composites (made for the paper's
generator), these look like real captures, because the classic engine's errors come from what real
captures do:
- hand-held plates with parallax: the background is a far layer and a near layer (a ridge, a branch,
  a post) and the plate's camera moved, so the two layers shift by different amounts, plus a small
  homography of the whole view;
- exposure and white-balance drift between plate and shot (per-channel gain, bias, gamma);
- sensor noise that grows with brightness, JPEG compression of both pictures (what H.264 does to
  edges is similar: block and ringing artefacts);
- motion blur of the subject (alpha and colour blurred together);
- subject colours close to the background's: a quarter of the subjects are cut from the very photo
  the background comes from, or tinted towards its mean colour;
- semi-transparent regions and thin strands (procedural mattes from data.py), people-shaped silhouettes
  (head, shoulders reaching the bottom edge) and real RGBA cut-outs (tuxpaint stamps).
Sizes vary (480–800 px) so that the engine's working grid (512 px) is sometimes coarser than the
picture and sometimes not, as on real inputs. Photos come from data.py's PhotoPool (Debian wallpaper
packages; the evaluation sets and reserved packages are refused there). Deterministic given the seed.
"""
import argparse
import io
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from data import PhotoPool, _crop, _homography_grid, gaussian_blur, line_kernel, place_cutout, procedural_matte  # noqa: E402


def person_matte(rng, h, w):
    """Head and shoulders (ellipse + trapezoid reaching the bottom), with strands of hair at the top."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cx = rng.uniform(0.35, 0.65) * w
    hy = rng.uniform(0.25, 0.45) * h
    rx, ry = rng.uniform(0.1, 0.18) * w, rng.uniform(0.14, 0.22) * h
    head = ((xx - cx) / rx) ** 2 + ((yy - hy) / ry) ** 2 <= 1
    top = hy + ry * 0.8
    half = rx * rng.uniform(1.8, 3.0)
    body = (yy > top) & (np.abs(xx - cx) < rx * 0.6 + (yy - top) / max(1.0, h - top) * half)
    a = (head | body).astype(np.float32)
    a = gaussian_blur(torch.from_numpy(a)[None, None], 3)[0, 0].numpy()
    # Hair: strands leaving the top half of the head.
    hi = np.zeros_like(a)
    for _ in range(int(rng.integers(40, 200))):
        ang = rng.uniform(math.pi * 1.05, math.pi * 1.95)
        x, y = cx + rx * math.cos(ang), hy + ry * math.sin(ang)
        d = ang + rng.normal(0, 0.4)
        length = rng.uniform(0.02, 0.12) * max(h, w)
        steps = int(length * 2)
        ds = d + rng.normal(0, 0.03) * np.arange(steps)
        px, py = x + np.cumsum(np.cos(ds)) / 2, y + np.cumsum(np.sin(ds)) / 2
        ok = (px >= 0) & (py >= 0) & (px < w - 1) & (py < h - 1)
        np.maximum.at(hi, (py[ok].astype(int), px[ok].astype(int)), rng.uniform(0.2, 0.9))
    a = np.maximum(a, gaussian_blur(torch.from_numpy(hi)[None, None], 3)[0, 0].numpy() * 1.6)
    return torch.from_numpy(a.clip(0, 1))[None]


def near_layer_mask(rng, size):
    """Where a near object covers the far background: a ridge / roof line, a post or a branch."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    kind = rng.integers(3)
    if kind == 0:  # a ridge or roof line: everything below a wavy line
        base = rng.uniform(0.4, 0.85) * size
        amp, f, p = rng.uniform(0, 0.08) * size, rng.uniform(0.005, 0.03), rng.uniform(0, 6.3)
        m = yy > base + amp * np.sin(xx * f + p)
    elif kind == 1:  # a post or door frame
        x0, wd = rng.uniform(0, 0.9) * size, rng.uniform(0.03, 0.15) * size
        m = (xx > x0) & (xx < x0 + wd)
    else:  # a branch: a thick curved line
        x0, y0 = rng.uniform(0, size), rng.uniform(0, size * 0.5)
        ang = rng.uniform(0, math.pi)
        d = np.abs((xx - x0) * math.sin(ang) - (yy - y0) * math.cos(ang) + 0.001 * ((xx - x0) ** 2))
        m = d < rng.uniform(2, 10)
    return torch.from_numpy(m.astype(np.float32))[None]


def shifted(x, dx, dy):
    """Sub-pixel translation (bilinear, border replicated)."""
    _, h, w = x.shape
    theta = torch.tensor([[1, 0, -2 * dx / w], [0, 1, -2 * dy / h]], dtype=torch.float32)[None]
    grid = F.affine_grid(theta, (1, 1, h, w), align_corners=False)
    return F.grid_sample(x[None], grid, align_corners=False, padding_mode='border')[0]


def jpeg(x, quality):
    a = (x.permute(1, 2, 0).numpy() * 255 + 0.5).clip(0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, 'JPEG', quality=int(quality))
    return torch.from_numpy(np.asarray(Image.open(buf).convert('RGB'), np.float32) / 255).permute(2, 0, 1)


def sample(pool, index, seed):
    rng = np.random.default_rng([seed, index])
    size = int(rng.integers(480, 801))
    margin = 40
    photo_bg = pool.photos[rng.integers(len(pool.photos))]
    big = _crop(photo_bg, rng, size + 2 * margin)
    # Foreground: a cut-out, a person or a procedural matte over a photo crop.
    r = rng.random()
    if pool.cutouts and r < 0.25:
        fg, alpha = place_cutout(pool.cutouts[rng.integers(len(pool.cutouts))], rng, size, (0.45, 0.95))
    else:
        alpha = person_matte(rng, size, size) if r < 0.55 else procedural_matte(rng, size)
        same = rng.random() < 0.25  # leaves in front of leaves: the subject cut from the background's photo
        fg = _crop(photo_bg if same else pool.photos[rng.integers(len(pool.photos))], rng, size)
    if rng.random() < 0.2:  # subject colours drawn towards the background's (skin against a beige wall)
        k = rng.uniform(0.3, 0.7)
        fg = (1 - k) * fg + k * big.mean(dim=(1, 2), keepdim=True)
    if rng.random() < 0.15:  # motion blur of the subject: colour and alpha together
        k = int(rng.integers(2, 7)) * 2 + 1
        ker = line_kernel(k, rng)
        premul = torch.cat([fg * alpha, alpha])[:, None]
        premul = F.conv2d(F.pad(premul, (k // 2,) * 4, mode='replicate'), ker)[:, 0]
        alpha = premul[3:4].clamp(0, 1)
        fg = (premul[:3] / alpha.clamp(min=1e-3)).clamp(0, 1)
    # Background and plate: a far layer and, often, a near layer that moves more when the camera moves.
    near_mask = near_layer_mask(rng, size + 2 * margin) if rng.random() < 0.45 else None
    near = _crop(pool.photos[rng.integers(len(pool.photos))], rng, size + 2 * margin) if near_mask is not None else None
    hand_held = rng.random() < 0.7
    far_shift = rng.normal(0, 1.0, 2) if hand_held else np.zeros(2)
    near_shift = far_shift + (rng.normal(0, 2.0, 2) if hand_held else np.zeros(2))

    def scene(fs, ns):
        s = shifted(big, *fs)
        if near_mask is not None:
            m = shifted(near_mask, *ns)
            s = m * shifted(near, *ns) + (1 - m) * s
        return s

    ident = _homography_grid(np.random.default_rng(0), size, 0.0) * (size / (size + 2 * margin))
    moved = _homography_grid(rng, size, rng.uniform(0, 3) if hand_held else 0.0) * (size / (size + 2 * margin))
    bg = F.grid_sample(scene((0, 0), (0, 0))[None], ident, align_corners=False, padding_mode='reflection')[0]
    plate = F.grid_sample(scene(far_shift, near_shift)[None], moved, align_corners=False, padding_mode='reflection')[0]
    # Exposure and white balance drift, gamma.
    gain = torch.tensor(rng.uniform(0.9, 1.1, 3), dtype=torch.float32).view(3, 1, 1) * float(rng.uniform(0.93, 1.07))
    bias = torch.tensor(rng.uniform(-0.03, 0.03, 3), dtype=torch.float32).view(3, 1, 1)
    plate = (plate.clamp(0, 1) ** float(np.clip(rng.normal(1, 0.08), 0.75, 1.3)) * gain + bias).clamp(0, 1)
    image = alpha * fg + (1 - alpha) * bg
    # Sensor noise (shot noise grows with brightness) on both captures, then JPEG.
    for_noise = rng.uniform(0.002, 0.02)
    image = image + torch.from_numpy(rng.normal(0, 1, image.shape).astype(np.float32)) * for_noise * (0.4 + image.clamp(0, 1)).sqrt()
    plate = plate + torch.from_numpy(rng.normal(0, 1, plate.shape).astype(np.float32)) * for_noise * (0.4 + plate.clamp(0, 1)).sqrt()
    image, plate = image.clamp(0, 1), plate.clamp(0, 1)
    if rng.random() < 0.6:
        image = jpeg(image, rng.uniform(70, 96))
        plate = jpeg(plate, rng.uniform(70, 96))
    return image, plate, alpha


def save_rgb(x, path):
    a = (x.permute(1, 2, 0).numpy() * 255 + 0.5).clip(0, 255).astype(np.uint8)
    Image.fromarray(a, 'RGB').save(path, compress_level=1)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--out', required=True)
    p.add_argument('--count', type=int, default=900)
    p.add_argument('--start', type=int, default=0, help='first sample index (a resumed or parallel run)')
    p.add_argument('--seed', type=int, default=11)
    p.add_argument('--max-photos', type=int, default=400)
    p.add_argument('--photos', nargs='*')
    p.add_argument('--cutouts', nargs='*')
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    pool = PhotoPool(a.photos, a.cutouts, max_photos=a.max_photos, seed=a.seed)
    print(f'{len(pool.photos)} photos, {len(pool.cutouts)} cut-outs', flush=True)
    for i in range(a.start, a.start + a.count):
        d = os.path.join(a.out, f'{i:05d}')
        if os.path.exists(os.path.join(d, 'alpha.png')):
            continue  # written by an earlier run: resumable
        image, plate, alpha = sample(pool, i, a.seed)
        tmp = d + '.tmp'
        os.makedirs(tmp, exist_ok=True)
        save_rgb(image, os.path.join(tmp, 'image.png'))
        save_rgb(plate, os.path.join(tmp, 'plate.png'))
        Image.fromarray((alpha[0].numpy() * 255 + 0.5).clip(0, 255).astype(np.uint8), 'L').save(os.path.join(tmp, 'alpha.png'))
        os.replace(tmp, d)
        if (i - a.start + 1) % 50 == 0:
            print(f'{i - a.start + 1}/{a.count} samples', flush=True)


if __name__ == '__main__':
    main()
