"""Helpers shared by the training scripts: checkpoints, batches, logging."""
import json
import os
import time

import torch

from network import Generator


def to_unit(alpha, fg):
    """Network outputs ([-1, 1]) to [0, 1] alpha and foreground."""
    return (alpha + 1) / 2, ((fg + 1) / 2).clamp(0, 1)


def run_generator(g, batch):
    s = lambda x: x * 2 - 1
    alpha, fg = g(s(batch['image']), s(batch['plate']), s(batch['seg']), s(batch['motion']))
    return to_unit(alpha, fg)


def save_checkpoint(path, **state):
    os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
    tmp = path + '.tmp'
    torch.save(state, tmp)
    os.replace(tmp, path)  # never a half-written checkpoint under the real name


def load_generator(path, **overrides):
    state = torch.load(path, map_location='cpu', weights_only=False)  # our own files; newer torch defaults to True
    cfg = dict(state.get('config', {}))
    cfg.update(overrides)
    g = Generator(ngf=cfg.get('ngf', 16), n_blocks_shared=cfg.get('blocks', 7), n_blocks_head=cfg.get('head_blocks', 3))
    g.load_state_dict(state['generator'])
    return g, state


class Log:
    def __init__(self, path):
        self.path = path
        os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
        self.t0 = time.time()

    def write(self, **row):
        row['elapsed_s'] = round(time.time() - self.t0, 1)
        with open(self.path, 'a') as f:
            f.write(json.dumps(row) + '\n')
        print(' '.join(f'{k}={v:.4f}' if isinstance(v, float) else f'{k}={v}' for k, v in row.items()), flush=True)
