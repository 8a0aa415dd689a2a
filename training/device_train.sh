#!/usr/bin/env bash
# One prepared training run for a lent GPU machine (see the tool library's `device` entry), which has
# PyTorch but neither the Debian photo packages nor our run folder. Here, first:
#   /usr/bin/python3 training/pack_pool.py --out training/pool
# then, through the device tool, with carry ["training/pool"]:
#   bash training/device_train.sh [MINUTES]
# It resumes the shipped checkpoint, trains on the packed pool until MINUTES (default 8) have passed,
# and leaves the checkpoint and log under $OUT/s1. Back here:
#   /usr/bin/python3 training/ship_model.py <files_at>/s1/last.pt cleanplate-s1-ngf16
set -euo pipefail
cd "$(dirname "$0")/.."
minutes="${1:-8}"
out="${OUT:?the device tool sets OUT}/s1"
[ -d training/pool/photos ] || { echo "training/pool is missing: run training/pack_pool.py here and carry it" >&2; exit 1; }
python3 -c 'import torch; assert torch.cuda.is_available(), "no CUDA device"; print(torch.__version__, torch.cuda.get_device_name(0))'
mkdir -p "$out"
cp training/runs/s1/log.jsonl "$out/log.jsonl" 2>/dev/null || true
# Batch 32 at 256 px keeps the GPU busy; 12 workers synthesise samples on the CPUs meanwhile.
python3 training/train_supervised.py --out "$out" --ngf 16 --size 256 --batch 32 --lr 2e-4 --steps 1000000 \
  --minutes "$minutes" --workers 12 --threads 4 --seed 1 --save-every 500 --val-every 1000 --log-every 100 \
  --photos training/pool/photos --cutouts training/pool/cutouts \
  --resume models/checkpoints/cleanplate-s1-ngf16.pt --device cuda
ls -la "$out"
