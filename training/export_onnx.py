"""Export a trained generator to ONNX (opset 17, dynamic height/width, batch-norm folded) and check
parity with onnxruntime-node on a fixed input.

    /usr/bin/python3 training/export_onnx.py CHECKPOINT models/NAME.onnx [--no-parity]

The exported model takes image, plate (RGB), prior (1 channel) and motion (4 grey channels) in [0, 1],
NCHW float32, height and width multiples of 4, and returns alpha (N,1,H,W) and foreground (N,3,H,W) in [0, 1].
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import torch

from common import load_generator
from network import Exportable

HERE = os.path.dirname(os.path.abspath(__file__))


def export(checkpoint, out_path):
    g, state = load_generator(checkpoint)
    model = Exportable(g).eval()
    h, w = 64, 96
    x = torch.rand(1, 3, h, w)
    args = (x, torch.rand(1, 3, h, w), torch.rand(1, 1, h, w), torch.rand(1, 4, h, w))
    dyn = {0: 'batch', 2: 'height', 3: 'width'}
    os.makedirs(os.path.dirname(out_path) or '.', exist_ok=True)
    tmp = out_path + '.tmp'
    torch.onnx.export(model, args, tmp, opset_version=17, do_constant_folding=True,
                      training=torch.onnx.TrainingMode.EVAL,
                      input_names=['image', 'plate', 'prior', 'motion'], output_names=['alpha', 'foreground'],
                      dynamic_axes={'image': dyn, 'plate': dyn, 'prior': dyn, 'motion': dyn, 'alpha': dyn, 'foreground': dyn})
    with open(tmp, 'rb') as f:
        data = f.read()
    if b'BatchNormalization' in data:
        raise SystemExit('export left BatchNormalization nodes: batch norm was not folded')
    os.replace(tmp, out_path)
    return model, state, hashlib.sha256(data).hexdigest()


def onnx_parity(onnx_path, inputs, outputs, tol=1e-4):
    """Runs named input tensors through onnxruntime-node (parity.mjs) and compares its outputs with the
    expected ones; returns the max abs difference, exits when it exceeds `tol`."""
    fixture = onnx_path + '.parity'
    os.makedirs(fixture, exist_ok=True)
    meta = {'inputs': {}, 'outputs': {}}
    for kind, tensors in (('inputs', inputs), ('outputs', outputs)):
        for name, t in tensors.items():
            t.numpy().astype('<f4').tofile(os.path.join(fixture, name + '.bin'))
            meta[kind][name] = list(t.shape)
    with open(os.path.join(fixture, 'meta.json'), 'w') as f:
        json.dump(meta, f)
    r = subprocess.run(['node', os.path.join(HERE, 'parity.mjs'), onnx_path, fixture], capture_output=True, text=True)
    for name in os.listdir(fixture):
        os.remove(os.path.join(fixture, name))
    os.rmdir(fixture)
    if r.returncode != 0:
        raise SystemExit(f'parity check could not run: {r.stderr.strip()}')
    diff = float(json.loads(r.stdout)['maxAbsDiff'])
    if diff > tol:
        raise SystemExit(f'ONNX parity failed: max abs difference {diff:.2e} > {tol:.0e}')
    return diff


def parity(model, onnx_path, tol=1e-4):
    """Runs a fixed input through torch and through onnxruntime-node; returns the max abs difference."""
    gen = torch.Generator().manual_seed(1234)
    h, w = 72, 120
    inputs = {'image': torch.rand(1, 3, h, w, generator=gen), 'plate': torch.rand(1, 3, h, w, generator=gen),
              'prior': torch.rand(1, 1, h, w, generator=gen), 'motion': torch.rand(1, 4, h, w, generator=gen)}
    with torch.no_grad():
        alpha, fg = model(*inputs.values())
    return onnx_parity(onnx_path, inputs, {'alpha': alpha, 'foreground': fg}, tol)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('checkpoint')
    p.add_argument('out')
    p.add_argument('--no-parity', action='store_true')
    a = p.parse_args(argv)
    model, state, sha = export(a.checkpoint, a.out)
    print(json.dumps({'onnx': a.out, 'sha256': sha, 'step': state.get('step'), 'config': state.get('config')}))
    if not a.no_parity:
        print(json.dumps({'parity_max_abs_diff': parity(model, a.out)}))


if __name__ == '__main__':
    sys.exit(main())
