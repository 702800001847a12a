# What scripts/demo.sh and scripts/tour.sh share: where things go, how each command is
# shown, and stage 1 (the synthetic corpus, the tiny models, every feature kind
# extracted). Sourced, not run: `source scripts/common.sh OUT`.
OUT=${1:-demo}
BIN=${BIN:-.venv/bin}
SER="$BIN/ser"
CORPUS="$OUT/IEMOCAP_full_release"
STORE="$OUT/features.zarr"
RUNS="$OUT/runs"

# Each command echoed before it runs: bold on a terminal, plain in a log (no raw codes).
if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold='' plain=''; fi
step() { printf '\n%s$ %s%s\n' "$bold" "$*" "$plain"; "$@"; }

# Stage 1: a synthetic IEMOCAP-layout corpus, tiny random encoders saved with
# save_pretrained (the same from_pretrained path a real HuBERT / MPNet / BERT takes, with
# no download), and HuBERT, MPNet, BERT, IS13 and log-mel extracted into one store.
extract_demo_store() {
  rm -rf "$OUT"
  mkdir -p "$OUT"
  step "$SER" demo-corpus "$CORPUS" --seed 0
  step "$SER" corpus summary "$CORPUS" --classes 4
  step "$BIN/python" -m ser.synth.tiny "$OUT/models"
  step "$SER" extract "$CORPUS" --store "$STORE" --features hubert,mpnet,bert,is13,logmel \
    --hubert-model "$OUT/models/tiny-hubert" --mpnet-model "$OUT/models/tiny-mpnet" \
    --bert-model "$OUT/models/tiny-bert" --layers last --classes 4
  step "$SER" store info "$STORE"
}

# Stage 2's main job: MSMSER (with random modality masking) and the fusion study, at small
# model sizes, few epochs and one held-out session (session5: train 1-4, test 5;
# validation from a training session), which keep it to minutes on a CPU. Drop these
# flags for the papers' settings and leave-one-session-out. MSMSER's queries need about
# 20 epochs to learn where the text cues sit in the ~250-row memory: with 12 the fused
# model scored below text alone on this corpus. Three seeds, trained side by side as
# members of one ensemble: the table reports mean ± std over seeds, since one seed's UA
# on 83 test utterances is mostly noise. The MSMSER run's probabilities are calibrated (a
# temperature per member, fitted on its validation side) and its curves logged for
# TensorBoard (`tensorboard --logdir <runs>/mit/tensorboard`).
MIT=(--d-model 64 --heads 4 --queries 8 --epochs 20 --batch-size 16 --lr 5e-4)
common=(--store "$STORE" --out "$RUNS" --classes 4 --protocol session5 --seed 0 --seeds 3)
train_main_models() {
  step "$SER" train "${common[@]}" --features hubert+mpnet --fusion mit --rmm "${MIT[@]}" \
    --calibrate temperature --track tensorboard --name mit
  step "$SER" train "${common[@]}" --features is13+bert --fusion add --fusion-at logits \
    --loss perspective --epochs 40 --name add_logits_perspective
}

# The gold transcripts of two of session 5's recordings as a CSV of path,transcript (a
# transcript holding commas in double quotes), for `ser predict`. WAVS is absolute: CSV
# paths are relative to the CSV.
WAVS=""
write_predict_csv() {
  WAVS="$(cd "$CORPUS/Session5/sentences/wav/Ses05M_impro02" && pwd)"
  printf 'path,transcript\n%s,"%s"\n%s,"%s"\n' \
    "$WAVS/Ses05M_impro02_M000.wav" "I can't believe you did that." \
    "$WAVS/Ses05M_impro02_M001.wav" "Well, that went well, didn't it?" > "$OUT/predict.csv"
}

# Fine-tuning from the cache: the tiny HuBERT's layers 1 and 2 in a store of their own
# (one pass of the encoder), then the MLP probe on the frozen last layer beside the same
# probe whose input is layer 1 run through the encoder's top layer, trained with it (no
# audio read: the cached layer 1 is the frozen bottom's output). One seed and few epochs
# keep it short; the report shows both rows.
LAYERS="$OUT/layers.zarr"
finetune_from_cache() {
  step "$SER" extract "$CORPUS" --store "$LAYERS" --features hubert \
    --hubert-model "$OUT/models/tiny-hubert" --layers 1,2 --classes 4
  local probe=(--store "$LAYERS" --out "$RUNS" --classes 4 --protocol session5 --seeds 1
    --fusion none --epochs 8)
  step "$SER" train "${probe[@]}" --features tiny-hubert.L2 --name frozen_probe
  step "$SER" train "${probe[@]}" --features tiny-hubert.L1 \
    --finetune tiny-hubert.L1:top=1,lr=1e-3 --name finetuned_probe
  step "$SER" report "$RUNS"/frozen_probe "$RUNS"/finetuned_probe
}
