"""Stage 1: supervised training on synthetic composites (data.py), with the paper's losses.

    /usr/bin/python3 training/train_supervised.py --out training/runs/s1 --ngf 16 --size 256 --batch 4 --steps 3000

Resumable: --resume PATH continues from a checkpoint (weights, optimiser, step, data position).
Logs one JSON line per --log-every steps to OUT/log.jsonl and validates on a fixed synthetic set.
"""
import argparse
import os
import time

import numpy as np
import torch

from common import Log, run_generator, save_checkpoint
from data import PhotoPool, SyntheticMatting
from losses import supervised_loss
from network import Generator


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--out', required=True)
    p.add_argument('--ngf', type=int, default=16)
    p.add_argument('--blocks', type=int, default=7)
    p.add_argument('--head-blocks', type=int, default=3)
    p.add_argument('--size', type=int, default=256)
    p.add_argument('--batch', type=int, default=4)
    p.add_argument('--steps', type=int, default=1000, help='total steps (a resumed run continues up to this)')
    p.add_argument('--lr', type=float, default=1e-4)
    p.add_argument('--seed', type=int, default=1)
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--workers', type=int, default=0)
    p.add_argument('--resume')
    p.add_argument('--photos', nargs='*', help='photo folders (default: Debian wallpaper packages)')
    p.add_argument('--cutouts', nargs='*', help='RGBA cut-out folders (default: tuxpaint stamps)')
    p.add_argument('--max-photos', type=int, default=400)
    p.add_argument('--log-every', type=int, default=10)
    p.add_argument('--val-every', type=int, default=200)
    p.add_argument('--val-size', type=int, default=16)
    p.add_argument('--save-every', type=int, default=100)
    p.add_argument('--minutes', type=float, help='stop (and save) after this much wall-clock time, for a lent machine with a fixed budget')
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    return p.parse_args(argv)


@torch.no_grad()
def validate(g, val, device):
    g.eval()
    err = []
    for b in val:
        b = {k: v.to(device) for k, v in b.items()}
        alpha, _ = run_generator(g, b)
        err.append((alpha - b['alpha']).abs().mean().item())
    g.train()
    return float(np.mean(err))


def main(argv=None):
    args = parse(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    config = {'ngf': args.ngf, 'blocks': args.blocks, 'head_blocks': args.head_blocks, 'size': args.size}
    g = Generator(ngf=args.ngf, n_blocks_shared=args.blocks, n_blocks_head=args.head_blocks).to(device)
    opt = torch.optim.Adam(g.parameters(), lr=args.lr, betas=(0.5, 0.999))
    step = 0
    if args.resume and os.path.exists(args.resume):
        state = torch.load(args.resume, map_location=device, weights_only=False)  # our own files; newer torch defaults to True
        g.load_state_dict(state['generator'])
        if 'optimizer' in state:
            opt.load_state_dict(state['optimizer'])
        step = state.get('step', 0)
        print(f'resumed from {args.resume} at step {step}', flush=True)
    pool = PhotoPool(args.photos, args.cutouts, max_photos=args.max_photos, seed=args.seed)
    print(f'{len(pool.photos)} photos, {len(pool.cutouts)} cut-outs', flush=True)
    train = SyntheticMatting(pool, args.size, length=10 ** 9, seed=args.seed)
    val_set = SyntheticMatting(pool, args.size, length=args.val_size, seed=10_000 + args.seed)
    val = torch.utils.data.DataLoader(val_set, batch_size=args.batch)
    # Continue the data stream where the checkpoint left it, so a resumed run sees new samples.
    sampler = range(step * args.batch, 10 ** 9)
    loader = iter(torch.utils.data.DataLoader(torch.utils.data.Subset(train, sampler), batch_size=args.batch, num_workers=args.workers))
    log = Log(os.path.join(args.out, 'log.jsonl'))
    ckpt = os.path.join(args.out, 'last.pt')
    g.train()
    started = time.time()
    while step < args.steps:
        if args.minutes is not None and time.time() - started > 60 * args.minutes:
            save_checkpoint(ckpt, generator=g.state_dict(), optimizer=opt.state_dict(), step=step, config=config, args=vars(args))
            log.write(step=step, stopped='time budget', val_alpha_l1=validate(g, val, device))
            break
        batch = {k: v.to(device) for k, v in next(loader).items()}
        alpha, fg = run_generator(g, batch)
        loss, terms = supervised_loss(alpha, fg, batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        if step % args.log_every == 0 or step == 1:
            log.write(step=step, loss=loss.item(), **{k: v.item() for k, v in terms.items()})
        if step % args.val_every == 0 or step == args.steps:
            log.write(step=step, val_alpha_l1=validate(g, val, device))
        if step % args.save_every == 0 or step == args.steps:
            save_checkpoint(ckpt, generator=g.state_dict(), optimizer=opt.state_dict(), step=step, config=config, args=vars(args))
    return g


if __name__ == '__main__':
    main()
