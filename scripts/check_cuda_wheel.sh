#!/usr/bin/env bash
# Build the CUDA wheel against a CUDA build of torch and check it on a machine without a GPU
# (docs/gpu_check.md, "The CUDA wheel"):
#
#   scripts/check_cuda_wheel.sh WORKDIR [RESULT.md]
#
#  1. a venv with the CUDA torch ($CUDA_TORCH, from the local package files) builds the
#     wheel: FORCE_CUDA=1, TORCH_CUDA_ARCH_LIST="8.0;9.0+PTX" (scripts/build_wheel.sh);
#  2. a fresh venv with only that torch (and the test tools) installs the wheel and checks:
#     it imports, the version tag reads +pt<torch><cuda>, the CUDA kernels are in the
#     library's table and the dispatcher, the fatbinary holds sm_80 and sm_90 code and
#     compute_90 PTX (cuobjdump, or the build's nvcc commands where the toolkit has none),
#     and the CPU tests pass with it;
#  3. a venv with the CPU torch ($CPU_TORCH) given the same wheel (--no-deps): importing it
#     is the clear ImportError, not an undefined symbol.
# Writes a report (sizes, times, versions) to RESULT.md (default WORKDIR/cuda_wheel.md).
# Several GB of venvs, about 20-30 minutes on 2 cores: not part of `make test`.
#
# Environment: PYTHON (python3), CUDA_TORCH (2.14.1), CPU_TORCH (2.13.0), MAX_JOBS, REUSE_WHEEL=1
# (check the wheel a previous run left in WORKDIR/dist instead of building again),
# TORCH_CUDA_ARCH_LIST ("8.0;9.0+PTX"), BUILD_VENV / RUN_VENV / CPU_VENV (reuse existing
# venvs instead of creating them; RUN_VENV must hold only torch, the test tools and pip).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
WORK=${1:?usage: scripts/check_cuda_wheel.sh WORKDIR [RESULT.md]}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
REPORT=${2:-$WORK/cuda_wheel.md}
PYTHON=${PYTHON:-python3}
CUDA_TORCH=${CUDA_TORCH:-2.14.1}
CPU_TORCH=${CPU_TORCH:-2.13.0}
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-"8.0;9.0+PTX"}
TEST_TOOLS="pytest==9.2.0 hypothesis==6.170.15 numpy==2.4.6 mpmath==1.3.0 packaging==26.3"
LOG="$WORK/check.log"
: > "$LOG"
say() { echo "$*" | tee -a "$LOG"; }
venv() {  # venv DIR PACKAGES...: create DIR (unless it exists) with the packages
  local dir=$1
  shift
  if [[ ! -x "$dir/bin/python" ]]; then
    "$PYTHON" -m venv "$dir"
    "$dir/bin/python" -m pip install -q "$@" >> "$LOG" 2>&1
  fi
}
seconds() { echo $(( $(date +%s) - $1 )); }

t0=$(date +%s)
BUILD_VENV=${BUILD_VENV:-$WORK/venv-build}
say "== build venv: $BUILD_VENV (torch==$CUDA_TORCH)"
venv "$BUILD_VENV" "torch==$CUDA_TORCH" setuptools==84.2.1 wheel==0.48.0 packaging==26.3 ninja==1.13.2
"$BUILD_VENV/bin/python" -c 'import torch; assert torch.version.cuda, "not a CUDA build of torch"; print("torch", torch.__version__, "CUDA", torch.version.cuda)' | tee -a "$LOG"
t_venv=$(seconds "$t0")

t1=$(date +%s)
say "== build the wheel (FORCE_CUDA=1, TORCH_CUDA_ARCH_LIST=$TORCH_CUDA_ARCH_LIST, MAX_JOBS=${MAX_JOBS:-all})"
# From a copy of the tracked files (and uncommitted changes to them), so that the checkout's
# own build/ (the CPU torch's objects) is left alone.
if [[ "${REUSE_WHEEL:-}" == 1 && -n "$(ls "$WORK"/dist/safesvd-*.whl 2>/dev/null)" ]]; then
  say "(REUSE_WHEEL=1: the wheel already in $WORK/dist)"
else
  rm -rf "$WORK/dist" "$WORK/src"
  mkdir -p "$WORK/src"
  git ls-files -z | xargs -0 cp --parents -t "$WORK/src"
  (cd "$WORK/src" && PATH="$BUILD_VENV/bin:$PATH" FORCE_CUDA=1 PYTHON="$BUILD_VENV/bin/python" \
     bash scripts/build_wheel.sh "$WORK/dist") > "$WORK/build.log" 2>&1 || { say "FAILED: the build, see $WORK/build.log"; exit 1; }
fi
WHEEL=$(ls "$WORK"/dist/safesvd-*.whl)
# The build's time is kept beside the wheel, so a REUSE_WHEEL=1 run reports the real one.
[[ "${REUSE_WHEEL:-}" == 1 && -f "$WORK/dist/build_seconds" ]] || seconds "$t1" > "$WORK/dist/build_seconds"
t_build=$(cat "$WORK/dist/build_seconds")
say "wheel: $(basename "$WHEEL"), $(du -h "$WHEEL" | cut -f1), built in ${t_build} s"

RUN_VENV=${RUN_VENV:-$WORK/venv-run}
say "== fresh venv with only torch==$CUDA_TORCH: $RUN_VENV"
venv "$RUN_VENV" "torch==$CUDA_TORCH" $TEST_TOOLS
"$RUN_VENV/bin/python" -m pip install -q --force-reinstall --no-deps "$WHEEL" >> "$LOG" 2>&1
"$RUN_VENV/bin/python" -m pip check >> "$LOG" 2>&1 || { say "pip check failed: the wheel's requirements do not match"; exit 1; }
CHECK=$(cd "$WORK" && env -u PYTHONPATH "$RUN_VENV/bin/python" - <<'EOF'
import json, torch, safesvd
from importlib.metadata import version
from safesvd import _library
table = torch._C._dispatch_dump_table("safesvd::_svd_backward").splitlines()
info = {"safesvd": version("safesvd"), "torch": torch.__version__, "cuda": torch.version.cuda,
        "library": _library.path(), "cuda kernels in the table": bool(torch.ops.safesvd._has_device_kernels("cuda")),
        "dispatcher, safesvd::_svd_backward on CUDA": next((l.split(" [")[0] for l in table if l.startswith("CUDA:")), None)}
A = torch.diag(torch.tensor([1.0, 1.0, 2.0, 3.0], dtype=torch.float64)).requires_grad_()
U, S, Vh = safesvd.svd(A)
torch.linalg.norm((U * S) @ Vh).backward()
info["cpu smoke test"] = bool(torch.allclose(A.grad, A.detach() / A.detach().norm()))
print(json.dumps(info))
EOF
)
say "installed: $CHECK"
LIB=$("$RUN_VENV/bin/python" -c 'import json,sys; print(json.loads(sys.argv[1])["library"])' "$CHECK")
TAG_OK=$("$RUN_VENV/bin/python" -c '
import json, sys, torch
info = json.loads(sys.argv[1])
major, minor = torch.__version__.split("+")[0].split(".")[:2]
want = "+pt" + major + minor + "cu" + torch.version.cuda.replace(".", "")
ok = info["safesvd"].endswith(want) and info["cuda kernels in the table"] and info["cpu smoke test"]
ok = ok and info["dispatcher, safesvd::_svd_backward on CUDA"] is not None
print(ok, want)' "$CHECK")
say "version tag, CUDA table and smoke test ok: $TAG_OK"
[[ $TAG_OK == True* ]] || { say "FAILED: version tag, CUDA kernels or smoke test"; exit 1; }

CUOBJDUMP=$(command -v cuobjdump || true)
if [[ -n "$CUOBJDUMP" ]]; then
  ELF=$("$CUOBJDUMP" --list-elf "$LIB" 2>/dev/null | grep -o 'sm_[0-9]*' | sort | uniq -c | tr '\n' ' ')
  PTX=$("$CUOBJDUMP" --list-ptx "$LIB" 2>/dev/null | grep -o 'sm_[0-9]*' | sort | uniq -c | tr '\n' ' ')
  FATBIN="cuobjdump: cubins per arch: $ELF; PTX per arch: $PTX"
  [[ $ELF == *sm_80* && $ELF == *sm_90* && -n $PTX ]] || { say "FAILED: sm_80 / sm_90 code or PTX missing"; exit 1; }
else  # a toolkit without cuobjdump: what nvcc was asked to generate, from the build's ninja file
  # (pip's log is quiet; build.ninja holds the nvcc flags and one build line per .cu unit)
  NINJA=$(ls "$WORK"/src/build/temp.*/build.ninja 2>/dev/null | head -1 || true)
  [[ -n $NINJA ]] || { say "FAILED: no cuobjdump and no build.ninja under $WORK/src/build"; exit 1; }
  GENCODE=$(grep -o -- '-gencode=arch=compute_[0-9]*,code=[a-z_0-9]*' "$NINJA" | sort -u | tr '\n' ' ' || true)
  UNITS=$(grep -c '^build .*: cuda_compile ' "$NINJA" || true)
  FATBIN="no cuobjdump here; build.ninja: nvcc $GENCODE for $UNITS .cu units"
  [[ $GENCODE == *code=sm_80* && $GENCODE == *code=sm_90* && $GENCODE == *code=compute_90* ]] || \
    { say "FAILED: sm_80 / sm_90 code or compute_90 PTX missing from the build"; exit 1; }
fi
say "fatbinary: $FATBIN"

t2=$(date +%s)
say "== CPU tests with the CUDA wheel installed (no GPU here: the CUDA-device tests skip)"
(cd "$WORK" && env -u PYTHONPATH "$RUN_VENV/bin/python" -m pytest -q -p no:cacheprovider "$ROOT/tests" \
   --ignore "$ROOT/tests/test_packaging.py" --ignore "$ROOT/tests/test_third_party.py" \
   -m "not cuda_emulated" -k "not nvcc" 2>&1 | tail -3) | tee -a "$LOG"
TESTS=$(tail -1 "$LOG")
[[ $TESTS == *passed* && $TESTS != *failed* && $TESTS != *error* ]] || { say "FAILED: tests"; exit 1; }
t_tests=$(seconds "$t2")

CPU_VENV=${CPU_VENV:-$WORK/venv-cpu}
say "== the CUDA wheel under the CPU torch==$CPU_TORCH"
venv "$CPU_VENV" "torch==$CPU_TORCH" packaging==26.3
"$CPU_VENV/bin/python" -m pip install -q --force-reinstall --no-deps "$WHEEL" >> "$LOG" 2>&1
IMPORT=$(cd "$WORK" && env -u PYTHONPATH "$CPU_VENV/bin/python" -c 'import safesvd' 2>&1 | tail -1 || true)
say "import: $IMPORT"
[[ $IMPORT == ImportError:* ]] || { say "FAILED: expected a clear ImportError"; exit 1; }

cat > "$REPORT" <<EOF
# The CUDA wheel, built and checked without a GPU

- date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (+ uncommitted changes)')
- machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), no GPU
- nvcc: $(nvcc --version | tail -2 | head -1)
- build: \`FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST="$TORCH_CUDA_ARCH_LIST" scripts/build_wheel.sh\` in a venv with torch $CUDA_TORCH (CUDA build), MAX_JOBS=${MAX_JOBS:-all cores}
- scripts/check_cuda_wheel.sh: every check below passed

| | |
|---|---|
| wheel | \`$(basename "$WHEEL")\`, $(du -h "$WHEEL" | cut -f1) |
| build time | ${t_build} s (venv setup ${t_venv} s) |
| installed into a fresh venv with only torch $CUDA_TORCH | $(echo "$CHECK" | sed 's/|/\\|/g') |
| fatbinary | $FATBIN |
| CPU tests with the wheel (tests/, without packaging, third-party, emulated, nvcc) | $TESTS (${t_tests} s) |
| the wheel under the CPU torch $CPU_TORCH | $IMPORT |
EOF
say "report: $REPORT"
