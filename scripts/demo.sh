#!/usr/bin/env bash
# The main job in a few minutes on a CPU (`make demo`): a synthetic IEMOCAP-layout corpus,
# the five feature kinds extracted once, MSMSER and the fusion study trained on them, the
# report with its plots, a prediction on two recordings, and an encoder's top layer
# fine-tuned from the cache beside the frozen probe. `make tour` (scripts/tour.sh) runs
# this, then goes on to every corpus layout, the sweeps, the layer probe, ASR text, export
# with ONNX and the claims summary. Every step is a plain `ser` command, so this file
# doubles as a worked example.
set -euo pipefail
source "$(dirname "$0")/common.sh"
start=$(date +%s)
rm -rf "$OUT"
mkdir -p "$OUT"

# Stage 1: a synthetic IEMOCAP-layout corpus, tiny random encoders saved with
# save_pretrained (the same from_pretrained path a real HuBERT / MPNet / BERT takes, with
# no download), and HuBERT, MPNet, BERT, IS13 and log-mel extracted into one store.
step "$SER" demo-corpus "$CORPUS" --seed 0
step "$SER" corpus summary "$CORPUS" --classes 4
step "$BIN/python" -m ser.synth.tiny "$OUT/models"
step "$SER" extract "$CORPUS" --store "$STORE" --features hubert,mpnet,bert,is13,logmel \
  --hubert-model "$OUT/models/tiny-hubert" --mpnet-model "$OUT/models/tiny-mpnet" \
  --bert-model "$OUT/models/tiny-bert" --layers last --classes 4
step "$SER" store info "$STORE"

# Stage 2's main job: MSMSER (with random modality masking) and the fusion study, at the
# sizes common.sh gives. The MSMSER run's probabilities are calibrated (a temperature per
# member, fitted on its validation side) and its curves logged for TensorBoard
# (`tensorboard --logdir <runs>/mit/tensorboard`).
step "$SER" train "${common[@]}" --features hubert+mpnet --fusion mit --rmm "${MIT[@]}" \
  --calibrate temperature --track tensorboard --name mit
step "$SER" train "${common[@]}" --features is13+bert --fusion add --fusion-at logits \
  --loss perspective --epochs 40 --name add_logits_perspective
step "$SER" report "$RUNS"/mit "$RUNS"/add_logits_perspective --plots "$OUT/plots" --calibration

# The MSMSER run applied to two recordings as if they were new: features re-created from
# the run's provenance (the tiny encoders it names), probabilities averaged over its
# checkpoints.
write_predict_csv
step "$SER" predict --run "$RUNS"/mit "$OUT/predict.csv" --device cpu

# Fine-tuning from the cache: the tiny HuBERT's layers 1 and 2 in a store of their own
# (one pass of the encoder), then the MLP probe on the frozen last layer beside the same
# probe whose input is layer 1 run through the encoder's top layer, trained with it (no
# audio read: the cached layer 1 is the frozen bottom's output). One seed and few epochs
# keep it short; the report shows both rows.
LAYERS="$OUT/layers.zarr"
probe=(--store "$LAYERS" --out "$RUNS" --classes 4 --protocol session5 --seeds 1 --fusion none
  --epochs 8)
step "$SER" extract "$CORPUS" --store "$LAYERS" --features hubert \
  --hubert-model "$OUT/models/tiny-hubert" --layers 1,2 --classes 4
step "$SER" train "${probe[@]}" --features tiny-hubert.L2 --name frozen_probe
step "$SER" train "${probe[@]}" --features tiny-hubert.L1 \
  --finetune tiny-hubert.L1:top=1,lr=1e-3 --name finetuned_probe
step "$SER" report "$RUNS"/frozen_probe "$RUNS"/finetuned_probe

echo
echo "demo finished in $(( $(date +%s) - start )) s; runs in $RUNS, plots in $OUT/plots"
echo "make tour: every corpus layout, sweeps, the layer probe, ASR text, export and ONNX"
