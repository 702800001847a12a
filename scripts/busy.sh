#!/usr/bin/env bash
# Run a command with one CPU-bound competitor per core of this process's affinity mask
# (what `make test-busy` runs the suite under): results must not move with the load.
# Usage: scripts/busy.sh COMMAND [ARGS...]
set -euo pipefail
cores=$(python3 -c 'import os; print(len(os.sched_getaffinity(0)))')
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; }
trap cleanup EXIT
for _ in $(seq "$cores"); do
  python3 -c 'while True: pass' &
  pids+=($!)
done
echo "busy.sh: $cores CPU-bound competitor(s) running beside: $*" >&2
"$@"
