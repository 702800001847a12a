#!/usr/bin/env bash
# The main job in a few minutes on a CPU (`make demo`): a synthetic IEMOCAP-layout corpus,
# the five feature kinds extracted once, MSMSER and the fusion study trained on them, the
# report with its plots, a prediction on two recordings, and an encoder's top layer
# fine-tuned from the cache beside the frozen probe. `make tour`
# (scripts/tour.sh) goes on to every corpus layout, the sweeps, the layer probe, ASR
# text, export with ONNX and the claims summary. Every step is a plain `ser` command, so
# this file doubles as a worked example.
set -euo pipefail
source "$(dirname "$0")/common.sh"
start=$(date +%s)
extract_demo_store

train_main_models
step "$SER" report "$RUNS"/mit "$RUNS"/add_logits_perspective --plots "$OUT/plots" --calibration

# The MSMSER run applied to two recordings as if they were new: features re-created from
# the run's provenance (the tiny encoders it names), probabilities averaged over its
# checkpoints.
write_predict_csv
step "$SER" predict --run "$RUNS"/mit "$OUT/predict.csv" --device cpu

finetune_from_cache

echo
echo "demo finished in $(( $(date +%s) - start )) s; runs in $RUNS, plots in $OUT/plots"
echo "make tour: every corpus layout, sweeps, the layer probe, ASR text, export and ONNX"
