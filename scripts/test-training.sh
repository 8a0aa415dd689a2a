#!/usr/bin/env bash
# The training pipeline's tests (pytest, Debian's PyTorch). CI installs python3-torch and must run
# them; elsewhere they are skipped with a notice when PyTorch is not installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
if ! "$PY" -c 'import torch, pytest' 2>/dev/null; then
  if [ -n "${CI:-}" ]; then echo "training tests: PyTorch or pytest missing for $PY" >&2; exit 1; fi
  echo "training tests skipped: apt-get install -y python3-torch python3-torchvision python3-pytest" >&2
  exit 0
fi
exec "$PY" -m pytest -q -p no:cacheprovider -W ignore::UserWarning training/tests
