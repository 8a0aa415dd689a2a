"""Stage 2: self-supervised adversarial training on unlabelled real captures (the paper's recipe).

A frozen teacher (the stage-1 network) guides a fresh student; a PatchGAN discriminator (LS-GAN)
judges the student's composites onto other backgrounds against real frames. The generator loss is
LSGAN(D(aF + (1-a)B_new), 1) + lambda * (|a - a_t| + |F - F_t| + compositional + 0.5 * gradient),
lambda starting at 0.05 and halving every two epochs; D is updated every 5 generator steps.

    /usr/bin/python3 training/train_adversarial.py --pairs DIR --teacher S1.pt --out training/runs/s2

DIR holds NAME_img.png + NAME_back.png (aligned plate), optionally NAME_seg.png (the person prior);
without it S is the teacher's alpha shaped like the paper's segmentation.
"""
import argparse
import glob
import os

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from common import Log, load_generator, run_generator, save_checkpoint
from data import PhotoPool, dilate, erode, gaussian_blur, grey, _crop
from losses import compositional_loss, gradient_loss, lsgan
from network import Discriminator, Generator


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--pairs', required=True)
    p.add_argument('--teacher', required=True)
    p.add_argument('--out', required=True)
    p.add_argument('--size', type=int, default=256)
    p.add_argument('--batch', type=int, default=2)
    p.add_argument('--epochs', type=int, default=15)
    p.add_argument('--max-steps', type=int, default=0, help='stop after this many generator steps (0: no limit)')
    p.add_argument('--lambda0', type=float, default=0.05)
    p.add_argument('--d-every', type=int, default=5)
    p.add_argument('--seed', type=int, default=1)
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--photos', nargs='*', help='target background folders (default: Debian wallpapers)')
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    return p.parse_args(argv)


def _load(path, size):
    im = Image.open(path).convert('RGB').resize((size, size), Image.BILINEAR)
    return torch.from_numpy(np.asarray(im, dtype=np.float32) / 255).permute(2, 0, 1).contiguous()


class RealPairs(torch.utils.data.Dataset):
    def __init__(self, folder, size):
        self.items = sorted(glob.glob(os.path.join(folder, '*_img.png')))
        if not self.items:
            raise SystemExit(f'{folder}: no NAME_img.png files')
        for f in self.items:
            if not os.path.exists(f.replace('_img.png', '_back.png')):
                raise SystemExit(f'{f}: no matching _back.png plate')
        self.size = size

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        f = self.items[i]
        image, plate = _load(f, self.size), _load(f.replace('_img.png', '_back.png'), self.size)
        seg_path = f.replace('_img.png', '_seg.png')
        seg = _load(seg_path, self.size)[:1] if os.path.exists(seg_path) else torch.full((1, self.size, self.size), -1.0)
        return {'image': image, 'plate': plate, 'seg': seg, 'motion': grey(image).repeat(4, 1, 1)}


def shaped(alpha):
    """The paper's inference-time S shaping, applied to the teacher's alpha (size-scaled)."""
    sc = alpha.shape[-1] / 512
    m = (alpha > 0.2).float()
    m = dilate(erode(m, 3, max(1, round(10 * sc))), 5, max(1, round(5 * sc)))
    return gaussian_blur(m, max(3, round(31 * sc) | 1))


def main(argv=None):
    args = parse(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    teacher, tstate = load_generator(args.teacher)
    teacher = teacher.to(device).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    config = tstate.get('config', {})
    student = Generator(ngf=config.get('ngf', 16), n_blocks_shared=config.get('blocks', 7), n_blocks_head=config.get('head_blocks', 3)).to(device)
    disc = Discriminator().to(device)
    opt_g = torch.optim.Adam(student.parameters(), lr=1e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), lr=1e-5, betas=(0.5, 0.999))
    data = RealPairs(args.pairs, args.size)
    loader = torch.utils.data.DataLoader(data, batch_size=args.batch, shuffle=True, drop_last=len(data) >= args.batch,
                                         generator=torch.Generator().manual_seed(args.seed))
    pool = PhotoPool(args.photos, [], max_photos=100, seed=args.seed)
    rng = np.random.default_rng(args.seed)
    log = Log(os.path.join(args.out, 'log.jsonl'))
    step = 0
    for epoch in range(args.epochs):
        lam = args.lambda0 * 0.5 ** (epoch // 2)
        for batch in loader:
            batch = {k: v.to(device) for k, v in batch.items()}
            with torch.no_grad():
                if (batch['seg'] < 0).any():  # no prior on disk: let the teacher supply S
                    t_alpha, _ = run_generator(teacher, {**batch, 'seg': torch.zeros_like(batch['seg'])})
                    batch['seg'] = shaped(t_alpha)
                t_alpha, t_fg = run_generator(teacher, batch)
            alpha, fg = run_generator(student, batch)
            new_bg = torch.stack([_crop(pool.photos[rng.integers(len(pool.photos))], rng, args.size) for _ in range(alpha.shape[0])]).to(device)
            fake = alpha * fg + (1 - alpha) * new_bg
            guide = (alpha - t_alpha).abs().mean() + (fg - t_fg).abs().mean() \
                + compositional_loss(alpha, fg, batch['plate'], batch['image']) + 0.5 * gradient_loss(alpha, t_alpha)
            adv = lsgan(disc(fake * 2 - 1), True)
            loss_g = adv + lam * guide
            opt_g.zero_grad()
            loss_g.backward()
            opt_g.step()
            row = {'epoch': epoch, 'step': step, 'lambda': lam, 'g_adv': adv.item(), 'g_guide': guide.item()}
            if step % args.d_every == 0:
                loss_d = 0.5 * (lsgan(disc(batch['image'] * 2 - 1), True) + lsgan(disc(fake.detach() * 2 - 1), False))
                opt_d.zero_grad()
                loss_d.backward()
                opt_d.step()
                row['d'] = loss_d.item()
            log.write(**row)
            step += 1
            if args.max_steps and step >= args.max_steps:
                break
        save_checkpoint(os.path.join(args.out, 'last.pt'), generator=student.state_dict(), discriminator=disc.state_dict(),
                        step=step, epoch=epoch + 1, config=config, args=vars(args))
        if args.max_steps and step >= args.max_steps:
            break
    return student


if __name__ == '__main__':
    main()
