#!/usr/bin/env bash
# Rebuilds the learned band refiner from scratch (issue 11) on this machine's two cores:
#   samples (Python, two processes) → shards (the TypeScript engine, two processes) → training → ONNX.
#
#   bash training/refiner.sh [WORK_DIR] [NAME]
#
# Defaults: WORK_DIR=training/work, NAME=refiner-w16. Every step is resumable: re-running the command
# continues where it stopped. The model card (models/NAME.md) records the figures of the shipped run.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK="${1:-training/work}"
NAME="${2:-refiner-w16}"
# Samples 0..SAMPLES/2-1 and 500..500+SAMPLES/2-1 (two processes; SAMPLES <= 1000).
SAMPLES="${SAMPLES:-400}"
STEPS="${STEPS:-8000}"
SEED=11
PY=/usr/bin/python3
HALF=$(( SAMPLES / 2 ))
log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*"; }

log "samples: $SAMPLES capture-like samples, seed $SEED"
"$PY" training/refiner_samples.py --out "$WORK/samples" --count "$HALF" --start 0 --seed "$SEED" &
"$PY" training/refiner_samples.py --out "$WORK/samples" --count "$HALF" --start 500 --seed "$SEED" &
wait
log "shards: the classic engine on every sample (npm run build first)"
npx tsc -p tsconfig.json
node dist/training/shards.js --samples "$WORK/samples" --out "$WORK/shards" --part 0/2 &
node dist/training/shards.js --samples "$WORK/samples" --out "$WORK/shards" --part 1/2 &
wait
log "training: $STEPS steps"
"$PY" training/train_refiner.py --shards "$WORK/shards" --out "$WORK/run-$NAME" --width 16 --steps "$STEPS" --seed 1 --threads 2
log "export"
"$PY" training/export_refiner.py "$WORK/run-$NAME/last.pt" "models/$NAME.onnx" --name "$NAME" --default
cp "$WORK/run-$NAME/log.jsonl" "models/$NAME.log.jsonl"
log "done: models/$NAME.onnx"
