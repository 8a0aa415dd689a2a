"""The training curve of a refiner run for its model card (matplotlib, Debian's python3-matplotlib).

    /usr/bin/python3 training/refiner_curve.py models/refiner-w16.log.jsonl models/refiner-w16.curve.svg
"""
import json
import sys

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402


def main(log_path, out_path):
    rows = [json.loads(line) for line in open(log_path) if line.strip()]
    train = [r for r in rows if 'band_l1' in r]
    val = [r for r in rows if 'val_band_sad' in r]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    a.plot([r['step'] for r in train], [r['band_l1'] for r in train], label='refined', lw=1)
    a.plot([r['step'] for r in train], [r['classic_band_l1'] for r in train], label='classic (same tiles)', lw=1)
    a.set_title('training tiles: band L1'); a.set_xlabel('step'); a.legend()
    b.plot([r['step'] for r in val], [r['val_band_sad'] for r in val], 'o-', label='refined')
    b.plot([r['step'] for r in val], [r['val_classic_band_sad'] for r in val], '--', label='classic')
    b.set_title('held-out shards: band SAD / image (/1000)'); b.set_xlabel('step'); b.set_ylim(bottom=0); b.legend()
    fig.tight_layout()
    fig.savefig(out_path)


if __name__ == '__main__':
    main(*sys.argv[1:3])
