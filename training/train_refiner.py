"""Trains the learned band refiner (refiner.py) on shards of the classic engine's own output.

    /usr/bin/python3 training/train_refiner.py --shards training/work/shards --out training/runs/refiner

From scratch with a fixed seed; resumable (re-running the command continues from OUT/last.pt up to
--steps); one JSON line per --log-every steps in OUT/log.jsonl. Every 10th shard is held out: the
validation figure is the band SAD of the refined alpha over the held-out images, against classic's.

Tiles are cut around band pixels (half of them around pixels classic gets wrong by > 0.1, where
there is something to learn), with `pad` pixels of context and zeros beyond the image, as
src/matte/refine.ts cuts them at inference. The loss is L1 over the band pixels of each tile's centre
plus L1 of their gradients (edges, strands).
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Log, save_checkpoint  # noqa: E402
from refiner import RADIUS, Refiner  # noqa: E402

CHANNELS = 13  # the 12 refiner inputs + true alpha (training/shards.ts)


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--shards', required=True)
    p.add_argument('--out', required=True)
    p.add_argument('--width', type=int, default=16)
    p.add_argument('--tile', type=int, default=32)
    p.add_argument('--pad', type=int, default=RADIUS)
    p.add_argument('--batch', type=int, default=32)
    p.add_argument('--steps', type=int, default=12000)
    p.add_argument('--lr', type=float, default=2e-3)
    p.add_argument('--seed', type=int, default=1)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--log-every', type=int, default=50)
    p.add_argument('--val-every', type=int, default=2000)
    p.add_argument('--save-every', type=int, default=250)
    p.add_argument('--limit', type=int, help='use only the first N shards (tests)')
    p.add_argument('--minutes', type=float, help='stop (and save) after this much wall-clock time')
    return p.parse_args(argv)


class Shards:
    def __init__(self, folder, limit=None):
        with open(os.path.join(folder, 'index.jsonl')) as f:
            rows = [json.loads(line) for line in f if line.strip()]
        rows.sort(key=lambda r: r['name'])
        if limit:
            rows = rows[:limit]
        self.rows = rows
        self.maps = [np.memmap(os.path.join(folder, r['file']), np.uint8, 'r', shape=(r['height'], r['width'], CHANNELS)) for r in rows]
        self.val = [k for k in range(len(rows)) if k % 10 == 9] or [len(rows) - 1]
        self.train = [k for k in range(len(rows)) if k not in self.val] or list(range(len(rows)))
        # Centres: band pixels, and the band pixels classic gets wrong.
        self.band, self.wrong = {}, {}
        for k in self.train:
            m = self.maps[k]
            band = m[:, :, 11] > 127
            err = np.abs(m[:, :, 6].astype(np.int16) - m[:, :, 12].astype(np.int16)) > 25
            self.band[k] = np.flatnonzero(band)
            self.wrong[k] = np.flatnonzero(band & err)
        self.train = [k for k in self.train if len(self.band[k])]

    def tile(self, k, cy, cx, side, pad, flip):
        m = self.maps[k]
        h, w = m.shape[:2]
        out = np.zeros((side, side, CHANNELS), np.uint8)
        y0, x0 = cy - pad, cx - pad
        ys, xs = max(0, y0), max(0, x0)
        ye, xe = min(h, y0 + side), min(w, x0 + side)
        out[ys - y0:ye - y0, xs - x0:xe - x0] = m[ys:ye, xs:xe]
        if flip:
            out = out[:, ::-1]
        return out

    def batch(self, rng, n, tile, pad):
        side = tile + 2 * pad
        tiles = []
        for _ in range(n):
            k = self.train[rng.integers(len(self.train))]
            pool = self.wrong[k] if len(self.wrong[k]) and rng.random() < 0.5 else self.band[k]
            p = int(pool[rng.integers(len(pool))])
            w = self.maps[k].shape[1]
            cy, cx = p // w, p % w
            oy, ox = cy - int(rng.integers(tile)), cx - int(rng.integers(tile))
            tiles.append(self.tile(k, oy, ox, side, pad, rng.random() < 0.5))
        t = torch.from_numpy(np.ascontiguousarray(np.stack(tiles))).permute(0, 3, 1, 2).float() / 255
        return t[:, :12], t[:, 12:13]


def tile_loss(pred, x, truth, pad):
    """L1 and gradient L1 over the band pixels of the tiles' centres; also classic's L1 on the same pixels."""
    c = slice(pad, -pad) if pad else slice(None)
    band = x[:, 11:12, c, c]
    p, t, a = pred[:, :, c, c], truth[:, :, c, c], x[:, 6:7, c, c]
    n = band.sum().clamp(min=1)
    l1 = ((p - t).abs() * band).sum() / n
    gx = (((p[..., 1:] - p[..., :-1]) - (t[..., 1:] - t[..., :-1])).abs() * band[..., 1:] * band[..., :-1]).sum() / n
    gy = (((p[..., 1:, :] - p[..., :-1, :]) - (t[..., 1:, :] - t[..., :-1, :])).abs() * band[..., 1:, :] * band[..., :-1, :]).sum() / n
    classic = ((a - t).abs() * band).sum() / n
    return l1 + 0.5 * (gx + gy), l1, classic


@torch.no_grad()
def validate(model, shards):
    """Band SAD (/1000, per image) of the refined and of classic's alpha over the held-out shards."""
    model.eval()
    ours = base = 0.0
    for k in shards.val:
        m = torch.from_numpy(np.array(shards.maps[k])).permute(2, 0, 1).float()[None] / 255
        x, truth = m[:, :12], m[:, 12:13]
        pred = model(x)
        band = x[:, 11:12] > 0.5
        ours += ((pred - truth).abs() * band).sum().item() / 1000
        base += ((x[:, 6:7] - truth).abs() * band).sum().item() / 1000
    model.train()
    n = len(shards.val)
    return ours / n, base / n


def main(argv=None):
    args = parse(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = Refiner(args.width)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.steps, pct_start=0.05)
    step = 0
    ckpt = os.path.join(args.out, 'last.pt')
    config = {'width': args.width, 'tile': args.tile, 'pad': args.pad, 'channels': 12}
    if os.path.exists(ckpt):
        state = torch.load(ckpt, map_location='cpu', weights_only=False)  # our own file
        model.load_state_dict(state['model'])
        opt.load_state_dict(state['optimizer'])
        sched.load_state_dict(state['scheduler'])
        sched.total_steps = args.steps  # a resumed run may be asked to go further than first planned
        step = state['step']
        print(f'resumed from {ckpt} at step {step}', flush=True)
    shards = Shards(args.shards, args.limit)
    print(f'{len(shards.train)} training shards, {len(shards.val)} held out', flush=True)
    log = Log(os.path.join(args.out, 'log.jsonl'))
    if step == 0:
        ours, base = validate(model, shards)
        log.write(step=0, val_band_sad=ours, val_classic_band_sad=base)
    started = time.time()
    run_l1 = run_classic = 0.0
    while step < args.steps:
        if args.minutes is not None and time.time() - started > 60 * args.minutes:
            log.write(step=step, stopped='time budget')
            break
        # The data stream is a function of the step: a resumed run draws what the uninterrupted one would.
        rng = np.random.default_rng([args.seed, step])
        x, truth = shards.batch(rng, args.batch, args.tile, args.pad)
        pred = model(x)
        loss, l1, classic = tile_loss(pred, x, truth, args.pad)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        step += 1
        run_l1 += l1.item()
        run_classic += classic.item()
        if step % args.log_every == 0:
            log.write(step=step, loss=loss.item(), band_l1=run_l1 / args.log_every, classic_band_l1=run_classic / args.log_every, lr=sched.get_last_lr()[0])
            run_l1 = run_classic = 0.0
        if step % args.val_every == 0 or step == args.steps:
            ours, base = validate(model, shards)
            log.write(step=step, val_band_sad=ours, val_classic_band_sad=base)
        if step % args.save_every == 0 or step == args.steps:
            save_checkpoint(ckpt, model=model.state_dict(), optimizer=opt.state_dict(), scheduler=sched.state_dict(), step=step, config=config, args=vars(args))
    save_checkpoint(ckpt, model=model.state_dict(), optimizer=opt.state_dict(), scheduler=sched.state_dict(), step=step, config=config, args=vars(args))
    return model


if __name__ == '__main__':
    main()
