#!/usr/bin/env bash
# The GPU's figures in one call, under 9 minutes on a fresh H100 (set-up included):
# extraction from audio file to committed store (HuBERT-base last layer, all 13 layers
# pooled, all 13 layers' frames; WavLM-large), `make features` over 7 h of IEMOCAP-shaped
# audio, paper-size MSMSER leave-one-session-out, profiles, and the code before beside
# today's where it fits (benchmarks/gpu_figures.py says what each figure times).
#
#   bash benchmarks/gpu.sh                 # the figures -> $OUT/gpu-DATE-CARD.json
#   GPU_BUDGET=300 bash benchmarks/gpu.sh  # seconds for the figures (default 500)
#   GPU_ONLY=msmser_paper bash benchmarks/gpu.sh   # some steps (gpu_figures.py --only)
#   bash benchmarks/gpu.sh probe           # the 195-probe layer sweep, stacked vs one by one
#   bash benchmarks/gpu.sh segments        # ser predict --segment on 10- and 60-min files
#
# Before the call, here (a machine with pip and the registries): `bash
# benchmarks/gpu_prepare.sh` downloads the wheels the GPU image lacks into .whl/ and puts
# the code before (BEFORE, default the last commit that touched no benchmark) into
# .before/; the device call carries both: carry [".whl", ".before"]. Copy the JSON into
# benchmarks/results/ and commit it. Each step runs in its own process under the time
# left, so a step that fails or runs out of time leaves the others' figures.
set -u
cd "$(dirname "$0")/.."
out="${OUT:-gpu-results}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
# The benchmarks import ser from this checkout, installed or not.
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >"$out/log.txt" 2>&1
before=()
[ -d .before/ser ] && before=(--before .before)
[ -f .before/measured-commit ] && export SER_COMMIT="$(cat .before/measured-commit)"

case "${1:-figures}" in
  figures)
    "${PYTHON:-python3}" benchmarks/gpu_figures.py --out "$out" "${before[@]}" \
      --budget "${GPU_BUDGET:-500}" --only "${GPU_ONLY:-}" 2>>"$out/log.txt"
    ;;
  probe)
    "${PYTHON:-python3}" benchmarks/bench_probe.py --only stacked,sequential \
      --fix device=cuda >"$out/probe.txt" 2>>"$out/log.txt"
    ;;
  segments)
    "${PYTHON:-python3}" benchmarks/bench_segments.py --workdir /tmp/bench-segments \
      --device cuda >"$out/segments.txt" 2>>"$out/log.txt"
    ;;
  *) echo "usage: bash benchmarks/gpu.sh [figures|probe|segments]" >&2; exit 2 ;;
esac
status=$?
tail -c 3000 "$out/log.txt"
exit $status
