"""Packs the training photo pool into one folder, so that a machine without the Debian photo packages
(the lent GPU machine) trains on exactly the same photos and cut-outs.

    /usr/bin/python3 training/pack_pool.py --out training/pool [--max-photos 400] [--seed 1]

Photos are written at the pool's working size (720 px long side, JPEG quality 95) and cut-outs as
RGBA PNG, named by their index in the pool so that a pool loaded from the folder keeps the order,
and so each sample index draws the same photo. Reserved evaluation images are refused as always.
"""
import argparse
import os
import sys

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from data import PhotoPool  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--out', required=True)
    p.add_argument('--max-photos', type=int, default=400)
    p.add_argument('--seed', type=int, default=1)
    args = p.parse_args(argv)
    pool = PhotoPool(max_photos=args.max_photos, seed=args.seed)
    photos, cutouts = os.path.join(args.out, 'photos'), os.path.join(args.out, 'cutouts')
    os.makedirs(photos, exist_ok=True)
    os.makedirs(cutouts, exist_ok=True)
    for k, t in enumerate(pool.photos):
        a = (t.permute(1, 2, 0).numpy() * 255 + 0.5).clip(0, 255).astype(np.uint8)
        Image.fromarray(a, 'RGB').save(os.path.join(photos, f'{k:04d}.jpg'), quality=95)
    for k, t in enumerate(pool.cutouts):
        a = (t.permute(1, 2, 0).numpy() * 255 + 0.5).clip(0, 255).astype(np.uint8)
        Image.fromarray(a, 'RGBA').save(os.path.join(cutouts, f'{k:04d}.png'), optimize=True)
    print(f'{len(pool.photos)} photos, {len(pool.cutouts)} cut-outs -> {args.out}')


if __name__ == '__main__':
    main()
