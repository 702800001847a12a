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
