#!/usr/bin/env bash
# Everything a lent GPU machine (H100/H200, 16 cores, a CUDA torch) should run, in one call,
# within about 8 minutes (docs/gpu_check.md):
#
#   scripts/gpu_check.sh OUTDIR
#
# Phases, each stopped at its own time limit (550 s in all at most) so that the results of the
# earlier ones always come back; OUTDIR gets at most 8 files:
#   summary.md         device, driver, CUDA, torch, date; each phase's status and time
#   build.log          in-place build: MAX_JOBS=16, sm_90 only, with the engine on CUDA
#   tests.log          tests/test_cuda.py, the operator tests on the cuda device, and the
#                      emulated-vs-real comparison (test_emulated_kernels_equal_the_gpu)
#   cuda_backward_*.md/.json   bench/bench_backward.py --device cuda (backward vs torch, % of floor)
#   cuda_forward_*.md/.json    bench/bench_cuda_forward.py (engine and public functions vs torch)
# Without a GPU it stops with exit status 2 after the build, saying so.
#
# Environment: PYTHON (default python3), MAX_JOBS (16), TORCH_CUDA_ARCH_LIST ("9.0"),
# GPU_CHECK_QUICK=1 (small benchmark batches: a smoke run), GPU_CHECK_BUILD_LIMIT (200 s; a
# dry run on a 2-core machine without a GPU needs about 500-900), GPU_CHECK_COMMIT (the commit
# to name in the summary when the tree is a copy without .git).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:?usage: scripts/gpu_check.sh OUTDIR}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
PYTHON=${PYTHON:-python3}
export PYTHONPATH=python PYTHONUNBUFFERED=1
SUMMARY="$OUT/summary.md"
QUICK=()
[[ "${GPU_CHECK_QUICK:-}" == 1 ]] && QUICK=(--quick)

status=0
# phase NAME LIMIT_SECONDS LOG COMMAND...: run with a time limit, append its status to the summary.
phase() {
  local name=$1 limit=$2 log=$3
  shift 3
  local start rc
  start=$(date +%s)
  echo "== $name (limit ${limit}s)" | tee -a "$log"
  timeout --kill-after=15 "$limit" "$@" >> "$log" 2>&1
  rc=$?
  local took=$(( $(date +%s) - start ))
  local what="ok"
  if [[ $rc == 124 || $rc == 137 ]]; then what="TIMED OUT"; elif [[ $rc != 0 ]]; then what="FAILED (exit $rc)"; fi
  echo "| $name | $what | ${took} s | $(basename "$log") |" >> "$SUMMARY"
  echo "   $name: $what in ${took} s"
  [[ $rc != 0 ]] && status=1
  return $rc
}

{
  echo "# GPU check"
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  if git rev-parse --git-dir > /dev/null 2>&1; then
    echo "- commit: $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (+ uncommitted changes)')"
  else  # a copy of the tree without .git: the caller may name the commit
    echo "- commit: ${GPU_CHECK_COMMIT:-unknown (not a git checkout; set GPU_CHECK_COMMIT)}"
  fi
  echo "- host: $(nproc) cores, $(uname -m)"
  if command -v nvidia-smi >/dev/null; then
    echo "- GPU: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -1)"
  else
    echo "- GPU: nvidia-smi not found"
  fi
  echo "- nvcc: $(nvcc --version 2>/dev/null | tail -2 | head -1)"
  echo "- $("$PYTHON" -c 'import sys, torch; print(f"python {sys.version.split()[0]}, torch {torch.__version__}, CUDA {torch.version.cuda}, GPU visible to torch: {torch.cuda.is_available()}")' 2>&1 | tail -1)"
  echo
  echo "| phase | status | time | log |"
  echo "|---|---|---|---|"
} > "$SUMMARY"

# 1. Build in place: sm_90 only, all cores, the one-matrix-per-thread engine included
#    (the benchmarks compare it with cuSOLVER).
phase build "${GPU_CHECK_BUILD_LIMIT:-200}" "$OUT/build.log" env FORCE_CUDA=1 SAFESVD_CUDA_JACOBI=1 MAX_JOBS="${MAX_JOBS:-16}" \
  TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}" "$PYTHON" setup.py build_ext --inplace || {
  echo "build failed: see $OUT/build.log"; exit 1; }

if ! "$PYTHON" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  echo "| gpu | NO CUDA DEVICE: stopped before the GPU phases | - | - |" >> "$SUMMARY"
  echo "gpu_check: no CUDA device is visible (torch.cuda.is_available() is False): the build is done," \
       "the GPU phases (tests, benchmarks) need a GPU. Summary: $SUMMARY" >&2
  exit 2
fi
"$PYTHON" -c 'import torch, safesvd; assert torch.ops.safesvd._has_device_kernels("cuda"), "no CUDA kernels in the build"' \
  >> "$OUT/build.log" 2>&1 || { echo "| kernels | the build has no CUDA kernels | - | build.log |" >> "$SUMMARY"; exit 1; }

# 2. Correctness on the GPU: the CUDA tests (not the nvcc check: the build just compiled every
#    unit), every operator test on the cuda device, the emulated-vs-real comparison.
phase tests 110 "$OUT/tests.log" "$PYTHON" -m pytest -q -p no:cacheprovider -k "not nvcc" tests/test_cuda.py
phase device-tests 80 "$OUT/tests.log" "$PYTHON" -m pytest -q -p no:cacheprovider -k "cuda and not emulat" \
  tests/test_svd.py tests/test_eigh.py tests/test_functions.py tests/test_properties.py tests/test_func.py \
  tests/test_topk.py tests/test_gauge_async.py

# 3. Speed, vs torch in the same run (CUDA events, graph replays).
phase bench-backward 80 "$OUT/tests.log" "$PYTHON" bench/bench_backward.py --device cuda --sizes 3 8 16 32 \
  --dtypes float32 float64 --plain --repeats 5 --out "$OUT" "${QUICK[@]}"
phase bench-forward 80 "$OUT/tests.log" "$PYTHON" bench/bench_cuda_forward.py --out "$OUT" "${QUICK[@]}"
rm -f "$OUT"/*.png  # at most 8 files come back from a lent machine; the tables carry the figures

echo
echo "summary: $SUMMARY"
cat "$SUMMARY"
exit $status
