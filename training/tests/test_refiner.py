"""The learned band refiner: shapes, identity start, tiles = whole image, training lowers the loss on
tiny shards, resuming continues the same run, export matches onnxruntime-node."""
import json
import os
import shutil

import numpy as np
import pytest
import torch

from refiner import RADIUS, Refiner

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
torch.set_num_threads(1)


def write_shards(folder, count=6, size=64, seed=0):
    """Shards in training/shards.ts's layout: a disc over a textured background, classic's alpha a
    noisy, biased copy of the truth in a band around the edge, where a refiner has something to learn."""
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, 'index.jsonl'), 'w') as index:
        for k in range(count):
            yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
            r = np.hypot(yy - size / 2 - rng.uniform(-5, 5), xx - size / 2 - rng.uniform(-5, 5))
            truth = np.clip((size * 0.3 - r) / 3 + 0.5, 0, 1)
            fg = np.stack([np.full_like(truth, v) for v in rng.uniform(0.5, 1, 3)], -1)
            bg = rng.uniform(0, 0.4, (size, size, 3)).astype(np.float32)
            image = truth[..., None] * fg + (1 - truth[..., None]) * bg
            band = (np.abs(r - size * 0.3) < 8).astype(np.float32)
            classic = np.where(band > 0, np.clip(truth + 0.25 * (truth > 0.05) - 0.15 + rng.normal(0, 0.1, truth.shape), 0, 1), np.round(truth))
            planes = [image, bg, classic[..., None], fg * band[..., None], (truth > 0.5)[..., None].astype(np.float32) * band[..., None], band[..., None], truth[..., None]]
            shard = np.concatenate(planes, -1)
            (np.clip(shard, 0, 1) * 255 + 0.5).astype(np.uint8).tofile(os.path.join(folder, f'{k:05d}.bin'))
            index.write(json.dumps({'name': f'{k:05d}', 'file': f'{k:05d}.bin', 'width': size, 'height': size}) + '\n')


def test_refiner_starts_as_classic_and_keeps_shape():
    m = Refiner(8)
    x = torch.rand(2, 12, 40, 40)
    y = m(x)
    assert y.shape == (2, 1, 40, 40)
    assert torch.equal(y, x[:, 6:7].clamp(0, 1))


def test_a_tile_with_pad_context_gives_the_whole_image_result():
    torch.manual_seed(0)
    m = Refiner(8).eval()
    torch.nn.init.normal_(m.body[-1].weight, 0, 0.1)
    x = torch.rand(1, 12, 80, 80)
    whole = m(x)
    tile = m(x[:, :, 20 - RADIUS:52 + RADIUS, 30 - RADIUS:62 + RADIUS])
    assert torch.allclose(whole[:, :, 20:52, 30:62], tile[:, :, RADIUS:-RADIUS, RADIUS:-RADIUS], atol=1e-6)


def test_training_lowers_the_band_error_and_resumes(tmp_path):
    import train_refiner
    write_shards(str(tmp_path / 'shards'), count=10)
    log = tmp_path / 'run' / 'log.jsonl'
    args = ['--shards', str(tmp_path / 'shards'), '--out', str(tmp_path / 'run'), '--width', '8', '--batch', '8',
            '--threads', '1', '--log-every', '20', '--val-every', '100', '--save-every', '50']
    train_refiner.main(args + ['--steps', '200', '--minutes', '0'])  # a zero time budget stops before step 1
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert rows[-1].get('stopped') == 'time budget'
    train_refiner.main(args + ['--steps', '200'])
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    vals = [r for r in rows if 'val_band_sad' in r]
    first, last = vals[0], vals[-1]
    assert first['val_band_sad'] == pytest.approx(first['val_classic_band_sad'])
    assert last['step'] == 200
    assert last['val_band_sad'] < 0.8 * last['val_classic_band_sad']
    # Resumed: the checkpoint at 200 is picked up, nothing more to do.
    train_refiner.main(args + ['--steps', '200'])
    assert torch.load(str(tmp_path / 'run' / 'last.pt'), weights_only=False)['step'] == 200


@pytest.mark.skipif(shutil.which('node') is None or not os.path.isdir(os.path.join(ROOT, 'node_modules', 'onnxruntime-node')),
                    reason='node and onnxruntime-node are needed for the parity check')
def test_refiner_export_matches_onnxruntime(tmp_path):
    import export_refiner
    from common import save_checkpoint
    torch.manual_seed(0)
    m = Refiner(8)
    torch.nn.init.normal_(m.body[-1].weight, 0, 0.1)
    save_checkpoint(str(tmp_path / 'r.pt'), model=m.state_dict(), step=3, config={'width': 8, 'tile': 32, 'pad': RADIUS, 'channels': 12})
    manifest = tmp_path / 'refiner.json'
    export_refiner.main([str(tmp_path / 'r.pt'), str(tmp_path / 'r.onnx'), '--manifest', str(manifest)])
    entry = json.loads(manifest.read_text())['models']['r']
    assert entry['tile'] == 32 and entry['pad'] == RADIUS and len(entry['sha256']) == 64
