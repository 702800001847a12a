#!/usr/bin/env bash
# GPU figures in one command: stacked training by torch.func (the per-member step under
# torch.compile, a benchmark-only path) and extraction throughput.
# Each part ends inside 10 minutes on an H100 so that a lent machine's per-call limit
# holds it; with no part named, all run one after the other.
#
#   bash benchmarks/gpu.sh      # parts 1 to 6
#   bash benchmarks/gpu.sh 1    # paper-size MSMSER, 1 seed (5 members): stacked, one by one, compiled
#   bash benchmarks/gpu.sh 2    # paper-size MSMSER, 3 seeds (15 members): stacked vs compiled
#   bash benchmarks/gpu.sh 3    # the fusion study's dialog models, 20 seeds; profiles of a step
#   bash benchmarks/gpu.sh 4    # extraction: HuBERT-base and a Whisper encoder, fp16, utt/s
#   bash benchmarks/gpu.sh 5    # the 195-probe layer sweep (13 x 768, LOSO x 3 seeds) on the GPU
#   bash benchmarks/gpu.sh 6    # ser predict --segment on a 10- and a 60-minute recording
#   GPU_SHARE=20 bash benchmarks/gpu.sh   # every part, each given 20 % of its time (a short lease)
#
# Parts 4 and 5 need transformers, soundfile, soxr, zarr and rich beside torch (ser's own
# dependencies; PYTHON=.venv/bin/python points it at a venv). Its code path runs on the CPU
# with tiny models in tests/benchmarks/test_bench_layers.py: no GPU was lent when it was
# written, so its first GPU figures are still to be measured.
#
# No test under tests/ needs CUDA any more (the CUDA-graph replay's went with capture.py);
# the runs' own comparisons are the GPU's checks: each prints the largest gap between two
# runs' per-epoch training losses (dropout and RMM on: other draws, not float rounding).
# Results: one file per benchmark and a log in $OUT (the device tool's folder) or
# ./gpu-results; each run's figures also reach the log as it ends (stderr), so a step cut
# off by its time limit still leaves the runs it finished. Needs python3 with torch
# (CUDA), numpy, h5py, safetensors and tqdm: the GPU image's own Python has them; nothing
# is installed. A step that fails is logged and the next one still runs; the exit status
# says whether any failed.
set -u
cd "$(dirname "$0")/.."
out="${OUT:-gpu-results}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1
# The benchmarks import ser from this checkout, installed or not.
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
# A lease shorter than the five parts: each part's limit scaled to this percentage; a run
# cut off still leaves the figures of the runs it finished.
share=${GPU_SHARE:-100}
failed=0

logged() {  # name, seconds allowed, command...: its output in $out/name.txt
  local name=$1 limit=$(($2 * share / 100))
  shift 2
  echo "== $name: $*" | tee -a "$out/log.txt"
  local start=$SECONDS
  if timeout "$limit" "$@" >"$out/$name.txt" 2>>"$out/log.txt"; then
    echo "   ok in $((SECONDS - start)) s" | tee -a "$out/log.txt"
  else
    echo "   FAILED (status $?) after $((SECONDS - start)) s" | tee -a "$out/log.txt"
    failed=1
  fi
  tail -c 2000 "$out/$name.txt"
}

part1() {
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >>"$out/log.txt"
  python3 -c "import torch; print('torch', torch.__version__)" >>"$out/log.txt"
  # Stacked (5 members under vmap), the same one after another (eager, 1 at a time) and
  # one at a time with the step compiled (reduce-overhead: CUDA graphs per shape).
  logged msmser-1seed 570 python3 benchmarks/bench_train.py msmser --size paper --device cuda \
    --seeds 1 --epochs 3 --sequential --compile --json
}

part2() {
  # Two epochs: 15 members one at a time, compiled, then fit beside the stacked run.
  logged msmser-3seeds 570 python3 benchmarks/bench_train.py msmser --size paper --device cuda \
    --seeds 3 --epochs 2 --compile --json
}

part3() {
  logged dialog-20seeds 240 python3 benchmarks/bench_train.py dialog --device cuda \
    --seeds 20 --epochs 10 --sequential --json
  logged profile-stacked 120 python3 benchmarks/profile_train.py --device cuda --seeds 1 --steps 20
  logged profile-compiled 210 python3 benchmarks/profile_train.py --device cuda --seeds 1 \
    --steps 20 --compile
}

part4() {
  # 400 IEMOCAP-shaped utterances (~30 min of audio), all 13 layers kept, the runner's
  # GPU batches (240 padded s); random weights: the compute is the real models'.
  logged extract-throughput 540 "${PYTHON:-python3}" benchmarks/bench_layers.py throughput \
    --device cuda --utterances 400 --json "$out/extract-throughput.json"
}

part5() {
  # The probe sweep (its CPU figure: benchmarks/README.md, "How long does a layer probe sweep
  # take?"), stacked and one after another, on the GPU; the synthetic store is built on the CPU
  # first.
  logged probe-sweep 540 "${PYTHON:-python3}" benchmarks/bench_probe.py --only stacked,sequential \
    --fix device=cuda
}

part6() {
  # Long recordings predicted window by window on the GPU: wall time and peak memory of a
  # 10- and a 60-minute file (the setup, a tiny MIT run, trains on the CPU first).
  logged segments 420 "${PYTHON:-python3}" benchmarks/bench_segments.py --workdir /tmp/bench-segments \
    --device cuda
}

case "${1:-all}" in
  1) part1 ;;
  2) part2 ;;
  3) part3 ;;
  4) part4 ;;
  5) part5 ;;
  6) part6 ;;
  all) part1; part2; part3; part4; part5; part6 ;;
  *) echo "usage: bash benchmarks/gpu.sh [1|2|3|4|5|6]" >&2; exit 2 ;;
esac
exit $failed
