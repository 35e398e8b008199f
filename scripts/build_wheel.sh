#!/usr/bin/env bash
# Build a safesvd wheel against the torch installed in the current Python.
#
#   scripts/build_wheel.sh [OUTDIR]          (default OUTDIR: dist/)
#
# - always --no-build-isolation: the extension links against the installed torch;
#   an isolated build would fetch the newest torch and the wheel would not import.
# - CUDA kernels when FORCE_CUDA=1, or when torch has CUDA and a toolkit is found
#   (FORCE_ONLY_CPU=1 for a CPU-only wheel). TORCH_CUDA_ARCH_LIST defaults to
#   "8.0;9.0+PTX" (A100, H100/H200, PTX for newer GPUs): set it explicitly for
#   other clusters, e.g. TORCH_CUDA_ARCH_LIST="7.0;8.0;8.6;9.0+PTX".
# - the wheel's version carries a local tag naming torch and CUDA (+pt213cpu,
#   +pt211cu130) and requires torch of that minor version; importing it with
#   another torch raises a clear ImportError.
#
# Examples:
#   scripts/build_wheel.sh                                   # CPU or CUDA, as detected
#   FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST="9.0+PTX" scripts/build_wheel.sh wheels/
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
OUTDIR=${1:-dist}
if [[ -n "${FORCE_CUDA:-}" || -z "${FORCE_ONLY_CPU:-}" ]]; then
  export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-"8.0;9.0+PTX"}
fi
"$PYTHON" -c "import torch; print('building against torch', torch.__version__, 'cuda', torch.version.cuda)"
rm -rf build/wheel-tmp
"$PYTHON" -m pip wheel --no-build-isolation --no-deps -w "$OUTDIR" . 
ls -1 "$OUTDIR"/safesvd-*.whl
