#!/usr/bin/env bash
# The GPU checks and figures of issue 11 (stacked training; steps replayed from CUDA
# graphs), one command. Each part ends inside 10 minutes on an H100 so that a lent
# machine's per-call limit holds it; with no part named, all run one after the other.
#
#   bash benchmarks/gpu.sh      # parts 1, 2 and 3
#   bash benchmarks/gpu.sh 1    # the CUDA tests of the replay; 1 seed (5 members) eager vs replayed; profile
#   bash benchmarks/gpu.sh 2    # 3 seeds (15 members) eager vs replayed
#   bash benchmarks/gpu.sh 3    # the fusion study's dialog models, 20 seeds; the capture probe
#
# Results: one file per benchmark and a log in $OUT (the device tool's folder) or
# ./gpu-results. Needs python3 with torch (CUDA), numpy, h5py, safetensors, tqdm and
# pytest: the GPU image's own Python has them; nothing is installed. A step that fails is
# logged and the next one still runs; the exit status says whether any failed.
set -u
cd "$(dirname "$0")/.."
out="${OUT:-gpu-results}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1
failed=0

logged() {  # name, seconds allowed, command...: its output in $out/name.txt
  local name=$1 limit=$2
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
  logged cuda-tests 150 python3 -m pytest -q -p no:cacheprovider tests/train/test_capture.py -k cuda
  logged msmser-1seed 330 python3 benchmarks/bench_train.py msmser --size paper --device cuda \
    --seeds 1 --epochs 3 --cuda-graphs --json
  logged profile-1seed 90 python3 benchmarks/profile_train.py --device cuda --seeds 1 --steps 20
}

part2() {
  logged msmser-3seeds 540 python3 benchmarks/bench_train.py msmser --size paper --device cuda \
    --seeds 3 --epochs 3 --cuda-graphs --json
}

part3() {
  logged dialog-20seeds 240 python3 benchmarks/bench_train.py dialog --device cuda \
    --seeds 20 --epochs 10 --cuda-graphs --json
  logged probe-capture 300 python3 benchmarks/probe_capture.py --device cuda --members 1 5 15 --draws
}

case "${1:-all}" in
  1) part1 ;;
  2) part2 ;;
  3) part3 ;;
  all) part1; part2; part3 ;;
  *) echo "usage: bash benchmarks/gpu.sh [1|2|3]" >&2; exit 2 ;;
esac
exit $failed
