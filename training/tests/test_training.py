import json
import os
import shutil
import subprocess

import numpy as np
import pytest
import torch
from PIL import Image

import data
from common import run_generator, save_checkpoint
from losses import alpha_loss, compositional_loss, foreground_loss, gradient_loss, supervised_loss
from network import Discriminator, Exportable, Generator, gmacs

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
torch.set_num_threads(1)


@pytest.fixture(scope='module')
def pool():
    return data.PhotoPool(photo_dirs=[], cutout_dirs=[], seed=3)  # procedural photos: no packages needed


def test_generator_shapes_and_range():
    g = Generator(ngf=8).eval()
    x = torch.rand(2, 3, 64, 48) * 2 - 1
    alpha, fg = g(x, x, x[:, :1], torch.rand(2, 4, 64, 48))
    assert alpha.shape == (2, 1, 64, 48) and fg.shape == (2, 3, 64, 48)
    assert alpha.min() >= -1 and alpha.max() <= 1


def test_motion_branch_is_used_unless_the_released_bug_is_reproduced():
    torch.manual_seed(0)
    fixed = Generator(ngf=8).eval()
    buggy = Generator(ngf=8, motion_bug=True).eval()
    buggy.load_state_dict(fixed.state_dict())
    x = torch.rand(1, 3, 32, 32)
    m1, m2 = torch.rand(1, 4, 32, 32), torch.rand(1, 4, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(fixed(x, x, x[:, :1], m1)[0], fixed(x, x, x[:, :1], m2)[0])
        assert torch.allclose(buggy(x, x, x[:, :1], m1)[0], buggy(x, x, x[:, :1], m2)[0])


def test_paper_cost_at_512():
    assert abs(gmacs(64) - 402) < 5  # the paper's generator; DESIGN.md lists 402 GMac at ngf 64


def test_discriminator_patch_output():
    d = Discriminator()
    assert d(torch.rand(1, 3, 64, 64)).shape == (1, 1, 6, 6)


def test_losses_on_toy_tensors():
    gt = torch.tensor([[[[0.0, 1.0], [0.5, 0.25]]]])
    pred = torch.tensor([[[[0.1, 0.8], [0.5, 0.75]]]])
    assert alpha_loss(pred, gt).item() == pytest.approx(0.2)
    fg_gt = torch.ones(1, 3, 2, 2) * 0.5
    fg_pred = torch.ones(1, 3, 2, 2) * 0.7
    # alpha > 0 at 3 pixels: sum |0.2| over 9 values / (9 + 1)
    assert foreground_loss(fg_pred, fg_gt, gt).item() == pytest.approx(0.2 * 9 / 10)
    bg = torch.zeros(1, 3, 2, 2)
    image = gt * fg_gt
    assert compositional_loss(gt, fg_gt, bg, image).item() == pytest.approx(0.0, abs=1e-7)
    assert gradient_loss(gt, gt).item() == 0
    assert gradient_loss(pred, gt).item() > 0


def test_synthesis_invariants_and_determinism(pool):
    ds = data.SyntheticMatting(pool, size=64, length=8, seed=5, noise=False)
    for i in range(4):
        s = ds[i]
        comp = s['alpha'] * s['fg'] + (1 - s['alpha']) * s['bg']
        assert torch.allclose(comp, s['image'], atol=1e-5), 'compositing equation holds without noise'
        for k in ('alpha', 'seg', 'plate', 'motion', 'image'):
            assert s[k].min() >= 0 and s[k].max() <= 1, k
        assert s['seg'].shape == (1, 64, 64) and s['motion'].shape == (4, 64, 64)
        assert not torch.allclose(s['plate'], s['bg']), 'the plate is perturbed'
    a, b = ds[2], data.SyntheticMatting(pool, size=64, length=8, seed=5, noise=False)[2]
    for k in a:
        assert torch.equal(a[k], b[k]), f'{k} is deterministic given the seed'


def test_reserved_evaluation_photos_are_refused(tmp_path):
    for name in ('lxqt', 'lomiri-x', 'ok'):
        (tmp_path / name).mkdir()
        Image.new('RGB', (80, 80), (10, 20, 30)).save(tmp_path / name / 'p.png')
    files = data._files([str(tmp_path)], ['png'])
    assert [os.path.basename(os.path.dirname(f)) for f in files] == ['ok']


def test_one_optimiser_step_lowers_the_loss_on_a_fixed_batch(pool):
    torch.manual_seed(0)
    g = Generator(ngf=8)
    ds = data.SyntheticMatting(pool, size=64, length=4, seed=1)
    batch = {k: torch.stack([ds[i][k] for i in range(2)]) for k in ds[0]}
    opt = torch.optim.Adam(g.parameters(), lr=1e-3)
    g.train()
    losses = []
    for _ in range(3):
        alpha, fg = run_generator(g, batch)
        loss, _ = supervised_loss(alpha, fg, batch)
        opt.zero_grad(); loss.backward(); opt.step()
        losses.append(loss.item())
    g.eval()  # BN statistics aside, the same batch must now fit better
    assert losses[-1] < losses[0]


def test_supervised_training_resumes(tmp_path, pool, monkeypatch):
    import train_supervised
    monkeypatch.setattr(train_supervised, 'PhotoPool', lambda *a, **k: pool)
    common = ['--out', str(tmp_path), '--ngf', '8', '--size', '64', '--batch', '2', '--log-every', '1', '--val-every', '2', '--val-size', '2']
    train_supervised.main(common + ['--steps', '2'])
    state = torch.load(tmp_path / 'last.pt')
    assert state['step'] == 2
    train_supervised.main(common + ['--steps', '3', '--resume', str(tmp_path / 'last.pt')])
    assert torch.load(tmp_path / 'last.pt')['step'] == 3
    rows = [json.loads(l) for l in open(tmp_path / 'log.jsonl')]
    assert any('val_alpha_l1' in r for r in rows) and rows[-1]['step'] == 3
    # A time budget (a lent machine's minutes) stops the run early with a checkpoint and a final validation.
    train_supervised.main(common + ['--steps', '1000', '--minutes', '0', '--resume', str(tmp_path / 'last.pt')])
    assert torch.load(tmp_path / 'last.pt')['step'] == 3
    last = json.loads(open(tmp_path / 'log.jsonl').read().splitlines()[-1])
    assert last['stopped'] == 'time budget' and 'val_alpha_l1' in last


def test_packed_pool_keeps_photos_and_cutouts_in_order(tmp_path, monkeypatch):
    import pack_pool
    photos, cutouts = tmp_path / 'src' / 'photos', tmp_path / 'src' / 'cutouts'
    photos.mkdir(parents=True)
    cutouts.mkdir(parents=True)
    for k in range(3):
        y, x = np.mgrid[0:90, 0:120]
        smooth = np.stack([x * 2, y * 2 + k * 20, (x + y) % 200], -1)  # a photo-like smooth picture
        Image.fromarray(smooth.astype(np.uint8)).save(photos / f'p{k}.png')
        a = np.zeros((64, 64, 4), np.uint8)
        a[..., :3] = 200
        a[16:48, 16:48, 3] = 255
        Image.fromarray(a, 'RGBA').save(cutouts / f'c{k}.png')
    monkeypatch.setattr(data, 'DEFAULT_PHOTO_DIRS', [str(photos)])
    monkeypatch.setattr(data, 'DEFAULT_CUTOUT_DIRS', [str(cutouts)])
    pack_pool.main(['--out', str(tmp_path / 'pool')])
    original = data.PhotoPool(seed=1)
    packed = data.PhotoPool([str(tmp_path / 'pool' / 'photos')], [str(tmp_path / 'pool' / 'cutouts')], seed=1)
    assert len(packed.photos) == 3 and len(packed.cutouts) == 3
    for a, b in zip(original.photos, packed.photos):
        assert a.shape == b.shape and (a - b).abs().mean() < 0.02  # JPEG at quality 95
    for a, b in zip(original.cutouts, packed.cutouts):
        assert torch.equal(a, b)  # PNG: exact


def test_adversarial_stage_runs_end_to_end_on_a_tiny_folder(tmp_path, pool, monkeypatch):
    import train_adversarial
    monkeypatch.setattr(train_adversarial, 'PhotoPool', lambda *a, **k: pool)
    teacher = Generator(ngf=8)
    save_checkpoint(str(tmp_path / 't.pt'), generator=teacher.state_dict(), config={'ngf': 8})
    pairs = tmp_path / 'pairs'
    pairs.mkdir()
    rng = np.random.default_rng(0)
    for name in ('a', 'b'):
        plate = (rng.random((48, 48, 3)) * 255).astype(np.uint8)
        img = plate.copy(); img[10:30, 15:35] = 200
        Image.fromarray(img).save(pairs / f'{name}_img.png')
        Image.fromarray(plate).save(pairs / f'{name}_back.png')
    student = train_adversarial.main(['--pairs', str(pairs), '--teacher', str(tmp_path / 't.pt'), '--out', str(tmp_path / 's2'),
                                      '--size', '48', '--batch', '2', '--epochs', '2'])
    rows = [json.loads(l) for l in open(tmp_path / 's2' / 'log.jsonl')]
    assert len(rows) == 2 and rows[0]['lambda'] == pytest.approx(0.05) and 'd' in rows[0]
    assert torch.load(tmp_path / 's2' / 'last.pt')['epoch'] == 2
    assert isinstance(student, Generator)


@pytest.mark.skipif(shutil.which('node') is None or not os.path.isdir(os.path.join(ROOT, 'node_modules', 'onnxruntime-node')),
                    reason='node and onnxruntime-node are needed for the parity check')
def test_export_folds_batch_norm_and_matches_onnxruntime(tmp_path):
    import export_onnx
    torch.manual_seed(0)
    g = Generator(ngf=8)
    # Non-trivial BN statistics, so that folding them matters.
    g.train()
    with torch.no_grad():
        x = torch.rand(2, 3, 32, 32)
        g(x, x, x[:, :1], torch.rand(2, 4, 32, 32))
    save_checkpoint(str(tmp_path / 'g.pt'), generator=g.state_dict(), config={'ngf': 8}, step=1)
    model, _, sha = export_onnx.export(str(tmp_path / 'g.pt'), str(tmp_path / 'g.onnx'))
    assert len(sha) == 64
    assert b'BatchNormalization' not in (tmp_path / 'g.onnx').read_bytes()
    assert export_onnx.parity(model, str(tmp_path / 'g.onnx')) <= 1e-4
    assert isinstance(model, Exportable)
