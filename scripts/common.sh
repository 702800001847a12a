# What scripts/demo.sh and scripts/tour.sh share: where things go, how each command is
# shown, and the main job's settings. Sourced, not run: `source scripts/common.sh OUT`.
OUT=${1:-demo}
BIN=${BIN:-.venv/bin}
SER="$BIN/ser"
CORPUS="$OUT/IEMOCAP_full_release"
STORE="$OUT/features.zarr"
RUNS="$OUT/runs"

# Each command echoed before it runs: bold on a terminal, plain in a log (no raw codes).
if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold='' plain=''; fi
step() { printf '\n%s$ %s%s\n' "$bold" "$*" "$plain"; "$@"; }

# The main job's models are small, train few epochs and hold one session out (session5:
# train 1-4, test 5; validation from a training session), which keep it to minutes on a
# CPU. Drop these flags for the papers' settings and leave-one-session-out. MSMSER's
# queries need about 20 epochs to learn where the text cues sit in the ~250-row memory:
# with 12 the fused model scored below text alone on this corpus. Three seeds, trained
# side by side as members of one ensemble: the table reports mean ± std over seeds, since
# one seed's UA on 83 test utterances is mostly noise.
MIT=(--d-model 64 --heads 4 --queries 8 --epochs 20 --batch-size 16 --lr 5e-4)
common=(--store "$STORE" --out "$RUNS" --classes 4 --protocol session5 --seed 0 --seeds 3)

# The folder of two of session 5's recordings, absolute: CSV paths are relative to the
# CSV, and the tour predicts from another folder too.
wavs() { (cd "$CORPUS/Session5/sentences/wav/Ses05M_impro02" && pwd); }

# Their gold transcripts as a CSV of path,transcript (a transcript holding commas in
# double quotes), for `ser predict`.
write_predict_csv() {
  local at
  at="$(wavs)"
  printf 'path,transcript\n%s,"%s"\n%s,"%s"\n' \
    "$at/Ses05M_impro02_M000.wav" "I can't believe you did that." \
    "$at/Ses05M_impro02_M001.wav" "Well, that went well, didn't it?" > "$OUT/predict.csv"
}
