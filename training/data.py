"""Synthetic training data for the matting network (the Adobe set is not available here).

A sample is a composite I = alpha*F + (1-alpha)*B with known alpha, F and B, a plate B' that is B
re-captured (small homography, the paper's gamma / noise perturbation, gain and bias), a soft
segmentation S made from alpha by the paper's recipe plus typical prior failures, and a grey motion
stack M. Foregrounds are photographs cut by procedural mattes (blobs and silhouettes, thin
anti-aliased hair-like strands of varied opacity, semi-transparent regions, motion blur) or photo
cut-outs that carry their own alpha (tuxpaint stamps). Everything is deterministic given a seed.

Photos for training come from Debian packages (see DEFAULT_PHOTO_DIRS). Reserved for evaluation and
refused here: lxqt-themes, lomiri-wallpapers and anything under shared/data.
"""
import glob
import math
import os

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

DEFAULT_PHOTO_DIRS = ['/usr/share/backgrounds/mate', '/usr/share/backgrounds/gnome', '/usr/share/wallpapers']
DEFAULT_CUTOUT_DIRS = ['/usr/share/tuxpaint/stamps']
RESERVED = ('lxqt', 'lomiri', 'shared/data')
PHOTO_LONG_SIDE = 720


def _files(dirs, exts):
    out = []
    for d in dirs:
        for ext in exts:
            out += glob.glob(os.path.join(d, '**', f'*.{ext}'), recursive=True)
    out = sorted(set(p for p in out if not any(r in p for r in RESERVED)))
    return out


def _load_rgb(path, long_side):
    im = Image.open(path)
    im.draft('RGB', (long_side, long_side))
    im = im.convert('RGB')
    s = long_side / max(im.size)
    if s < 1:
        im = im.resize((max(1, round(im.size[0] * s)), max(1, round(im.size[1] * s))), Image.BILINEAR)
    return torch.from_numpy(np.asarray(im, dtype=np.float32) / 255).permute(2, 0, 1).contiguous()


def procedural_texture(rng, size=384):
    """A photo stand-in for tests and for machines without the photo packages."""
    y, x = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32), indexing='ij')
    chans = []
    for _ in range(3):
        f1, f2, p = rng.uniform(0.01, 0.2, 2).tolist() + [rng.uniform(0, 6.28)]
        chans.append(0.5 + 0.25 * torch.sin(x * f1 + p) * torch.cos(y * f2) + 0.2 * torch.sin((x + y) * rng.uniform(0.05, 0.5)))
    return torch.stack(chans).clamp(0, 1)


class PhotoPool:
    """Decoded photos (downsized) and RGBA cut-outs, loaded once."""

    def __init__(self, photo_dirs=None, cutout_dirs=None, max_photos=400, max_cutouts=300, seed=0):
        rng = np.random.default_rng(seed)
        photos = _files(photo_dirs if photo_dirs is not None else DEFAULT_PHOTO_DIRS, ['jpg', 'jpeg', 'png', 'webp'])
        cutouts = _files(cutout_dirs if cutout_dirs is not None else DEFAULT_CUTOUT_DIRS, ['png'])
        if len(photos) > max_photos:
            photos = sorted(rng.choice(photos, max_photos, replace=False).tolist())
        if len(cutouts) > max_cutouts:
            cutouts = sorted(rng.choice(cutouts, max_cutouts, replace=False).tolist())
        self.photo_paths = photos
        self.photos = [p for p in (self._safe(_load_rgb, f, PHOTO_LONG_SIDE) for f in photos) if p is not None and min(p.shape[1:]) >= 64]
        self.cutouts = [c for c in (self._safe(self._load_rgba, f) for f in cutouts) if c is not None]
        if not self.photos:
            self.photos = [procedural_texture(np.random.default_rng(seed + k)) for k in range(8)]

    @staticmethod
    def _safe(fn, *args):
        try:
            return fn(*args)
        except Exception:  # an unreadable file in a system folder is skipped, not fatal
            return None

    @staticmethod
    def _load_rgba(path):
        im = Image.open(path).convert('RGBA')
        if min(im.size) < 48:
            return None
        a = np.asarray(im, dtype=np.float32) / 255
        if a[..., 3].mean() < 0.05 or a[..., 3].min() > 0.99:
            return None
        return torch.from_numpy(a).permute(2, 0, 1).contiguous()


def _crop(photo, rng, out, scale_range=(0.5, 1.0)):
    """A random square crop of a photo, resized to out x out."""
    _, h, w = photo.shape
    side = max(16, int(min(h, w) * rng.uniform(*scale_range)))
    y0, x0 = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
    crop = photo[:, y0:y0 + side, x0:x0 + side]
    if rng.random() < 0.5:
        crop = crop.flip(2)
    return F.interpolate(crop[None], size=(out, out), mode='bilinear', align_corners=False)[0]


def _homography_grid(rng, size, jitter_px):
    """Sampling grid of a small random homography (corner jitter) near the identity."""
    src = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=np.float64)
    dst = src + rng.normal(0, jitter_px * 2 / size, src.shape)
    A = []
    for (x, y), (u, v) in zip(src, dst):
        A.append([x, y, 1, 0, 0, 0, -u * x, -u * y, -u])
        A.append([0, 0, 0, x, y, 1, -v * x, -v * y, -v])
    _, _, vt = np.linalg.svd(np.asarray(A))
    H = torch.tensor(vt[-1].reshape(3, 3) / vt[-1][-1], dtype=torch.float32)
    lin = torch.linspace(-1, 1, size)
    yy, xx = torch.meshgrid(lin, lin, indexing='ij')
    pts = torch.stack([xx, yy, torch.ones_like(xx)], -1) @ H.T
    return (pts[..., :2] / pts[..., 2:]).unsqueeze(0)


def dilate(mask, k, iters):
    for _ in range(iters):
        mask = F.max_pool2d(mask, k, 1, k // 2)
    return mask


def erode(mask, k, iters):
    return 1 - dilate(1 - mask, k, iters)


def gaussian_blur(x, k):
    sigma = 0.3 * ((k - 1) * 0.5 - 1) + 0.8  # OpenCV's default for a given kernel size
    t = torch.arange(k, dtype=torch.float32) - k // 2
    g = torch.exp(-t ** 2 / (2 * sigma ** 2))
    g = (g / g.sum()).to(x)
    c = x.shape[1]
    x = F.conv2d(F.pad(x, (k // 2, k // 2, 0, 0), mode='reflect'), g.view(1, 1, 1, k).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(F.pad(x, (0, 0, k // 2, k // 2), mode='reflect'), g.view(1, 1, k, 1).repeat(c, 1, 1, 1), groups=c)


def line_kernel(k, rng):
    """A k x k motion-blur kernel along a horizontal or a vertical line (one random draw decides)."""
    ker = torch.zeros(1, 1, k, k)
    if rng.random() < 0.5:
        ker[0, 0, k // 2, :] = 1 / k
    else:
        ker[0, 0, :, k // 2] = 1 / k
    return ker


def procedural_matte(rng, size):
    """Blobs / silhouettes with hair-like strands, semi-transparent parts and motion blur."""
    ss = 2
    S = size * ss
    yy, xx = np.mgrid[0:S, 0:S].astype(np.float32) / ss
    alpha = np.zeros((S, S), np.float32)
    cx, cy = rng.uniform(0.3, 0.7) * size, rng.uniform(0.35, 0.75) * size
    for k in range(rng.integers(1, 5)):
        ex, ey = cx + rng.normal(0, 0.12) * size, cy + rng.normal(0, 0.12) * size
        rx, ry = rng.uniform(0.08, 0.3) * size, rng.uniform(0.08, 0.35) * size
        th = rng.uniform(0, math.pi)
        u, v = (xx - ex) * math.cos(th) + (yy - ey) * math.sin(th), -(xx - ex) * math.sin(th) + (yy - ey) * math.cos(th)
        alpha = np.maximum(alpha, ((u / rx) ** 2 + (v / ry) ** 2 <= 1).astype(np.float32))
    if rng.random() < 0.5:  # a body reaching the bottom edge, like a person's shoulders
        w = rng.uniform(0.2, 0.45) * size
        alpha = np.maximum(alpha, ((yy > cy + 0.1 * size) & (np.abs(xx - cx) < w + (yy - cy) * 0.4)).astype(np.float32))
    if rng.random() < 0.7:  # hair-like strands leaving the boundary
        hi = np.zeros_like(alpha)
        n = rng.integers(30, 250)
        for _ in range(n):
            ang = rng.uniform(0, 2 * math.pi)
            r0 = rng.uniform(0.05, 0.2) * size
            x, y = cx + r0 * math.cos(ang), cy + r0 * math.sin(ang) - 0.05 * size
            d = ang + rng.normal(0, 0.3)
            length = rng.uniform(0.05, 0.35) * size
            curl = rng.normal(0, 0.02)
            steps = int(length * 2 * ss)
            ds = d + curl * np.arange(steps)
            px = (x + np.cumsum(np.cos(ds)) / (2 * ss)) * ss
            py = (y + np.cumsum(np.sin(ds)) / (2 * ss)) * ss
            ok = (px >= 0) & (py >= 0) & (px < S - 1) & (py < S - 1)
            op = rng.uniform(0.25, 1.0)
            xi, yi = px[ok].astype(int), py[ok].astype(int)
            np.maximum.at(hi, (yi, xi), op)
            if rng.random() < 0.4:  # thicker strand
                np.maximum.at(hi, (yi, xi + 1), op)
        alpha = np.maximum(alpha, hi)
    if rng.random() < 0.25:  # a semi-transparent region (veil, glass, motion)
        ex, ey, r = rng.uniform(0.2, 0.8) * size, rng.uniform(0.2, 0.8) * size, rng.uniform(0.05, 0.2) * size
        semi = (((xx - ex) ** 2 + (yy - ey) ** 2) <= r * r).astype(np.float32) * rng.uniform(0.2, 0.8)
        alpha = np.maximum(alpha, semi)
    a = torch.from_numpy(alpha)[None, None]
    a = F.avg_pool2d(gaussian_blur(a, 3), ss)  # anti-aliasing by supersampling
    if rng.random() < 0.2:  # motion blur along a random direction
        k = int(rng.integers(1, 5)) * 2 + 1
        a = F.conv2d(F.pad(a, (k // 2,) * 4, mode='replicate'), line_kernel(k, rng))
    return a[0].clamp(0, 1)


def synth_segmentation(alpha, rng):
    """The paper's S from ground truth (scaled from 512 px), plus typical prior failures."""
    size = alpha.shape[-1]
    sc = size / 512
    m = (alpha[None] > 0.5).float()
    m = erode(m, 5, max(1, round(rng.integers(10, 20) * sc)))
    m = dilate(m, 5, max(1, round(rng.integers(15, 30) * sc)))
    for _ in range(rng.integers(0, 3)):
        side = max(2, round(int(rng.choice([15, 25, 35, 45])) * sc))
        y, x = rng.integers(0, size - side), rng.integers(0, size - side)
        m[..., y:y + side, x:x + side] = 0
    fail = rng.random()
    if fail < 0.1:
        m.zero_()  # the prior saw nothing (a subject it does not know)
    elif fail < 0.2:  # an extra blob somewhere else
        r = rng.uniform(0.05, 0.15) * size
        yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing='ij')
        cy, cx = rng.uniform(0, size), rng.uniform(0, size)
        m = torch.maximum(m, (((yy - cy) ** 2 + (xx - cx) ** 2) < r * r).float()[None, None])
    elif fail < 0.3:  # a missed limb: a band cut away
        y0 = rng.integers(0, size // 2)
        m[..., y0:y0 + size // 4, :] = 0 if rng.random() < 0.5 else m[..., y0:y0 + size // 4, :]
        x0 = rng.integers(0, size // 2)
        m[..., :, x0:x0 + size // 5] = 0
    k = max(3, int(round(int(rng.choice([21, 31, 41])) * sc)) | 1)
    return gaussian_blur(m, k)[0].clamp(0, 1)


def place_cutout(c, rng, size, scale_range):
    """An RGBA cut-out scaled to a random share of a size x size canvas at a random place: (fg, alpha)."""
    scale = rng.uniform(*scale_range) * size / max(c.shape[1:])
    h, w = max(8, int(c.shape[1] * scale)), max(8, int(c.shape[2] * scale))
    c = F.interpolate(c[None], size=(h, w), mode='bilinear', align_corners=False)[0]
    canvas = torch.zeros(4, size, size)
    y0, x0 = rng.integers(0, size - h + 1), rng.integers(0, size - w + 1)
    canvas[:, y0:y0 + h, x0:x0 + w] = c
    return canvas[:3], canvas[3:4].clamp(0, 1)


def grey(x):
    return (0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2])[None]


class SyntheticMatting(torch.utils.data.Dataset):
    def __init__(self, pool, size=256, length=100000, seed=0, noise=True):
        self.pool, self.size, self.length, self.seed, self.noise = pool, size, length, seed, noise

    def __len__(self):
        return self.length

    def __getitem__(self, index):
        rng = np.random.default_rng([self.seed, index])
        size = self.size
        if self.pool.cutouts and rng.random() < 0.3:
            fg, alpha = place_cutout(self.pool.cutouts[rng.integers(len(self.pool.cutouts))], rng, size, (0.5, 0.95))
        else:
            fg = _crop(self.pool.photos[rng.integers(len(self.pool.photos))], rng, size)
            alpha = procedural_matte(rng, size)
        # Background: a larger crop, so that the plate's moved camera sees real pixels at the border.
        photo = self.pool.photos[rng.integers(len(self.pool.photos))]
        big = _crop(photo, rng, size + 32)
        ident = _homography_grid(np.random.default_rng(0), size, 0.0) * (size / (size + 32))
        moved = _homography_grid(rng, size, rng.uniform(0, 3)) * (size / (size + 32))
        bg = F.grid_sample(big[None], ident, align_corners=False, padding_mode='reflection')[0]
        plate = F.grid_sample(big[None], moved, align_corners=False, padding_mode='reflection')[0]
        if rng.random() < 0.4:  # the paper: Gaussian noise with a random mean (0..255 units)
            plate = plate + torch.from_numpy(rng.normal(rng.uniform(-7, 6), rng.uniform(2, 5), plate.shape).astype(np.float32)) / 255
        else:  # the paper: gamma ~ N(1, 0.12)
            plate = plate.clamp(0, 1) ** float(np.clip(rng.normal(1, 0.12), 0.6, 1.5))
        gain = torch.tensor(rng.uniform(0.92, 1.08, 3), dtype=torch.float32).view(3, 1, 1)
        bias = torch.tensor(rng.uniform(-0.03, 0.03, 3), dtype=torch.float32).view(3, 1, 1)
        plate = (plate * gain + bias).clamp(0, 1)
        image = alpha * fg + (1 - alpha) * bg
        if self.noise:
            image = image + torch.from_numpy(rng.normal(0, rng.uniform(0, 0.015), image.shape).astype(np.float32))
        image = image.clamp(0, 1)
        seg = synth_segmentation(alpha, rng)
        if rng.random() < 0.5:  # a still image: four copies of its grey (the paper)
            motion = grey(image).repeat(4, 1, 1)
        else:  # a moving subject: neighbours with the subject shifted a few pixels
            frames = []
            for _ in range(4):
                dy, dx = (int(v) for v in rng.integers(-4, 5, 2))
                a2, f2 = alpha.roll((dy, dx), (1, 2)), fg.roll((dy, dx), (1, 2))
                frames.append(grey(a2 * f2 + (1 - a2) * bg))
            motion = torch.cat(frames, 0)
        return {'image': image, 'plate': plate, 'seg': seg, 'motion': motion.clamp(0, 1),
                'alpha': alpha, 'fg': fg.clamp(0, 1), 'bg': bg.clamp(0, 1)}
