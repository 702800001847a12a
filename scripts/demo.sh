#!/usr/bin/env bash
# The main job in a few minutes on a CPU (`make demo`): a synthetic IEMOCAP-layout corpus,
# the five feature kinds extracted once, MSMSER and the fusion study trained on them, the
# report with its plots, and a prediction on two recordings. `make tour`
# (scripts/tour.sh) goes on to every corpus layout, the sweeps, the layer probe, ASR
# text, export with ONNX and the claims summary. Every step is a plain `ser` command, so
# this file doubles as a worked example.
set -euo pipefail
source "$(dirname "$0")/common.sh"
start=$(date +%s)
extract_demo_store

# Small model sizes, few epochs and one held-out session (session5: train 1-4, test 5;
# validation from a training session) keep it to minutes on a CPU. Drop these flags for
# the papers' settings and leave-one-session-out. Three seeds, trained side by side as
# members of one ensemble: the table reports mean ± std over seeds, since one seed's UA on
# 83 test utterances is mostly noise.
MIT=(--d-model 64 --heads 4 --queries 8 --epochs 20 --batch-size 16 --lr 5e-4)
common=(--store "$STORE" --out "$RUNS" --classes 4 --protocol session5 --seed 0 --seeds 3)
step "$SER" train "${common[@]}" --features hubert+mpnet --fusion mit --rmm "${MIT[@]}" --name mit
step "$SER" train "${common[@]}" --features is13+bert --fusion add --fusion-at logits \
  --loss perspective --epochs 40 --name add_logits_perspective
step "$SER" report "$RUNS"/mit "$RUNS"/add_logits_perspective --plots "$OUT/plots"

# The MSMSER run applied to two recordings as if they were new: features re-created from
# the run's provenance (the tiny encoders it names), probabilities averaged over its
# checkpoints.
write_predict_csv
step "$SER" predict --run "$RUNS"/mit "$OUT/predict.csv" --device cpu

echo
echo "demo finished in $(( $(date +%s) - start )) s; runs in $RUNS, plots in $OUT/plots"
echo "make tour: every corpus layout, sweeps, the layer probe, ASR text, export and ONNX"
