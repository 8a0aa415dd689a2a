"""Ship a trained checkpoint: export models/NAME.onnx (with the parity check), record it in
models/network.json (file, sha256, working size, width) and keep the resumable checkpoint in
models/checkpoints/NAME.pt so that training can continue in a later session.

    /usr/bin/python3 training/ship_model.py training/runs/s1/last.pt cleanplate-s1-ngf16 [--working-size 512] [--default]
"""
import argparse
import json
import os
import shutil

import torch

import export_onnx

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('checkpoint')
    p.add_argument('name')
    p.add_argument('--working-size', type=int, default=512)
    p.add_argument('--default', action='store_true', help='make it the default network model')
    a = p.parse_args(argv)
    models = os.path.join(ROOT, 'models')
    onnx_path = os.path.join(models, a.name + '.onnx')
    model, state, sha = export_onnx.export(a.checkpoint, onnx_path)
    diff = export_onnx.parity(model, onnx_path)
    os.makedirs(os.path.join(models, 'checkpoints'), exist_ok=True)
    shutil.copyfile(a.checkpoint, os.path.join(models, 'checkpoints', a.name + '.pt'))
    manifest_path = os.path.join(models, 'network.json')
    manifest = json.load(open(manifest_path)) if os.path.exists(manifest_path) else {'default': a.name, 'models': {}}
    manifest['models'][a.name] = {'file': a.name + '.onnx', 'sha256': sha, 'workingSize': a.working_size,
                                  'ngf': state.get('config', {}).get('ngf'), 'step': state.get('step')}
    if a.default or manifest.get('default') not in manifest['models']:
        manifest['default'] = a.name
    with open(manifest_path + '.tmp', 'w') as f:
        json.dump(manifest, f, indent=2)
        f.write('\n')
    os.replace(manifest_path + '.tmp', manifest_path)
    print(json.dumps({'name': a.name, 'sha256': sha, 'step': state.get('step'), 'parity_max_abs_diff': diff,
                      'bytes': os.path.getsize(onnx_path)}))


if __name__ == '__main__':
    main()
