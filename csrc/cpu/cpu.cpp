// CPU kernels (docs/architecture.md): a Runner that calls a per-matrix Op for
// every matrix of a batch, in parallel over the batch, and the forward engine's
// SIMD tiles (one matrix per lane), with the instruction set chosen at run time.
// Everything else is shared with the other devices (csrc/aten/entries.h, csrc/kernels/).
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cstdlib>
#include <cstring>
#include <vector>

#include "../aten/entries.h"
#include "jacobi_cpu.h"

namespace safesvd {
namespace {

// Largest max(m, n) handled by the fused per-matrix loop; above it batched BLAS
// does the products. Measured on 2 cores (bench/bench_backward.py): fused is
// 1.6-2.7x faster than torch at n = 6 but 0.7-0.9x at n = 8, where the batched
// path is 1.0-1.4x.
constexpr int64_t kFusedMaxDimCPU = 7;

struct CpuRunner {
  template <class Op>
  static void run(const Op& op, int64_t count, const c10::Device&, int64_t work) {
    const int64_t grain = std::max<int64_t>(1, 65536 / std::max<int64_t>(1, work));
    at::parallel_for(0, count, grain, [&](int64_t begin, int64_t end) {
      std::vector<typename Op::scalar_t> scratch(static_cast<size_t>(op.scratch()));
      for (int64_t b = begin; b < end; ++b) op(b, scratch.data());
    });
  }
};

// ------------------------------------------------------------ forward engine

bool cpu_has(const char* feature) {
#if defined(__GNUC__) && defined(__x86_64__)
  if (std::strcmp(feature, "avx2") == 0) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (std::strcmp(feature, "avx512") == 0)
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512dq");
#endif
  return std::strcmp(feature, "baseline") == 0;
}

// The widest variant this CPU runs, or SAFESVD_CPU_ISA=baseline|avx2|avx512 (tests,
// benchmarks; an ISA the CPU lacks is an error, not an illegal instruction).
const cpu::JacobiIsa& jacobi_isa() {
  static const cpu::JacobiIsa isa = [] {
    const char* wanted = std::getenv("SAFESVD_CPU_ISA");
    const std::vector<std::pair<const char*, cpu::JacobiIsa (*)()>> variants = {
        {"avx512", &cpu::jacobi_isa_avx512}, {"avx2", &cpu::jacobi_isa_avx2}, {"baseline", &cpu::jacobi_isa_baseline}};
    for (const auto& [name, make] : variants) {
      if (wanted && *wanted) {
        if (std::strcmp(wanted, name) != 0) continue;
        TORCH_CHECK(cpu_has(name), "SAFESVD_CPU_ISA=", wanted, ": this CPU does not support it");
        return make();
      }
      if (cpu_has(name)) return make();
    }
    TORCH_CHECK(false, "SAFESVD_CPU_ISA must be baseline, avx2 or avx512, got '", wanted, "'");
  }();
  return isa;
}

template <typename Batch, typename Run>
void run_tiles(const Batch& batch, int width, int64_t work, Run run) {
  const int64_t tiles = (batch.B + width - 1) / width;
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, work * width));
  at::parallel_for(0, tiles, grain, [&](int64_t t0, int64_t t1) { run(batch, t0, t1); });
}

void svd_jacobi_cpu(const Tensor& A, bool full, Tensor& U, Tensor& S, Tensor& Vh, Tensor& info) {
  if (A.size(0) == 0) return;
  const cpu::JacobiIsa& isa = jacobi_isa();
  const int64_t work = A.size(1) * A.size(2) * std::min(A.size(1), A.size(2)) * 16;
  if (A.scalar_type() == at::kFloat)
    run_tiles(entries::svd_batch<float>(A, full, U, S, Vh, info), isa.width_float, work, isa.svd_float);
  else
    run_tiles(entries::svd_batch<double>(A, full, U, S, Vh, info), isa.width_double, work, isa.svd_double);
}

void eigh_jacobi_cpu(const Tensor& A, bool lower, Tensor& L, Tensor& Q, Tensor& info) {
  if (A.size(0) == 0) return;
  const cpu::JacobiIsa& isa = jacobi_isa();
  const int64_t work = A.size(1) * A.size(1) * A.size(1) * 16;
  if (A.scalar_type() == at::kFloat)
    run_tiles(entries::eigh_batch<float>(A, lower, L, Q, info), isa.width_float, work, isa.eigh_float);
  else
    run_tiles(entries::eigh_batch<double>(A, lower, L, Q, info), isa.width_double, work, isa.eigh_double);
}

DeviceKernels cpu_kernels() {
  DeviceKernels k = make_device_kernels<CpuRunner>(kFusedMaxDimCPU);
  k.svd_jacobi = &svd_jacobi_cpu;
  k.eigh_jacobi = &eigh_jacobi_cpu;
  k.jacobi_fallback = true;
  k.jacobi_by_default = true;  // measured: bench/results/cpu_engine_*.md
  k.jacobi_rectangular = true;
  return k;
}

const DeviceKernelsRegistration kRegistration(c10::DeviceType::CPU, cpu_kernels());

}  // namespace

TORCH_LIBRARY_IMPL(safesvd, CompositeImplicitAutograd, m) {
  m.impl("_cpu_isa", [] { return std::string(jacobi_isa().name); });
}

}  // namespace safesvd
