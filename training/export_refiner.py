"""Export a trained band refiner to ONNX (opset 17, dynamic batch and tile size) and check parity with
onnxruntime-node; updates models/refiner.json.

    /usr/bin/python3 training/export_refiner.py training/runs/refiner/last.pt models/refiner-w16.onnx [--name refiner-w16] [--default]
"""
import argparse
import hashlib
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_onnx import onnx_parity  # noqa: E402
from refiner import Refiner  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def load(checkpoint):
    state = torch.load(checkpoint, map_location='cpu', weights_only=False)  # our own file
    model = Refiner(state['config']['width'])
    model.load_state_dict(state['model'])
    return model.eval(), state


def export(model, out_path):
    os.makedirs(os.path.dirname(out_path) or '.', exist_ok=True)
    tmp = out_path + '.tmp'
    x = torch.rand(2, 12, 48, 48)
    dyn = {0: 'batch', 2: 'height', 3: 'width'}
    torch.onnx.export(model, (x,), tmp, opset_version=17, do_constant_folding=True, training=torch.onnx.TrainingMode.EVAL,
                      input_names=['tiles'], output_names=['alpha'], dynamic_axes={'tiles': dyn, 'alpha': dyn})
    with open(tmp, 'rb') as f:
        data = f.read()
    os.replace(tmp, out_path)
    return hashlib.sha256(data).hexdigest()


def parity(model, onnx_path, tol=1e-4):
    """A fixed batch of tiles through torch and through onnxruntime-node; the max abs difference."""
    gen = torch.Generator().manual_seed(1234)
    x = torch.rand(3, 12, 48, 48, generator=gen)
    x[:, 11] = (x[:, 11] > 0.3).float()
    with torch.no_grad():
        y = model(x)
    return onnx_parity(onnx_path, {'tiles': x}, {'alpha': y}, tol)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('checkpoint')
    p.add_argument('out')
    p.add_argument('--name')
    p.add_argument('--default', action='store_true', help='make it the manifest default')
    p.add_argument('--manifest', default=os.path.join(HERE, '..', 'models', 'refiner.json'))
    a = p.parse_args(argv)
    model, state = load(a.checkpoint)
    sha = export(model, a.out)
    diff = parity(model, a.out)
    name = a.name or os.path.splitext(os.path.basename(a.out))[0]
    manifest = {'default': name, 'models': {}}
    if os.path.exists(a.manifest):
        with open(a.manifest) as f:
            manifest = json.load(f)
    cfg = state['config']
    manifest['models'][name] = {'file': os.path.relpath(a.out, os.path.dirname(a.manifest)), 'sha256': sha, 'tile': cfg['tile'], 'pad': cfg['pad'],
                                'channels': cfg['channels'], 'width': cfg['width'], 'step': state['step']}
    if a.default or manifest.get('default') not in manifest['models']:
        manifest['default'] = name
    tmp = a.manifest + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(manifest, f, indent=2)
        f.write('\n')
    os.replace(tmp, a.manifest)
    print(json.dumps({'onnx': a.out, 'sha256': sha, 'step': state['step'], 'parity_max_abs_diff': diff}))


if __name__ == '__main__':
    sys.exit(main())
