// CPU kernels (docs/architecture.md): a Runner that calls a per-matrix Op for
// every matrix of a batch, in parallel over the batch, and the forward engine's
// SIMD tiles (one matrix per lane), with the instruction set chosen at run time,
// and the SoA backward of small real matrices in the same kind of tiles
// (docs/soa_backward.md).
// Everything else is shared with the other devices (csrc/aten/entries.h, csrc/kernels/).
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <type_traits>
#include <vector>

#include "../aten/entries.h"
#include "jacobi_cpu.h"
#include "soa_cpu.h"

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

// Tiles of `width` matrices in parallel; a chunk holds about `chunk_work` units of the
// per-matrix `work` estimate (the forward engine and the SoA backward each measured theirs).
template <typename Batch, typename Run>
void run_tiles(const Batch& batch, int width, int64_t work, int64_t chunk_work, Run run) {
  const int64_t tiles = (batch.B + width - 1) / width;
  const int64_t grain = std::max<int64_t>(1, chunk_work / std::max<int64_t>(1, work * width));
  at::parallel_for(0, tiles, grain, [&](int64_t t0, int64_t t1) { run(batch, t0, t1); });
}
constexpr int64_t kJacobiChunkWork = 16384, kSoaChunkWork = 32768;

void svd_jacobi_cpu(const Tensor& A, bool full, Tensor& U, Tensor& S, Tensor& Vh, Tensor& info) {
  if (A.size(0) == 0) return;
  const cpu::JacobiIsa& isa = jacobi_isa();
  const int64_t work = A.size(1) * A.size(2) * std::min(A.size(1), A.size(2)) * 16;
  if (A.scalar_type() == at::kFloat)
    run_tiles(entries::svd_batch<float>(A, full, U, S, Vh, info), isa.width_float, work, kJacobiChunkWork,
              isa.svd_float);
  else
    run_tiles(entries::svd_batch<double>(A, full, U, S, Vh, info), isa.width_double, work, kJacobiChunkWork,
              isa.svd_double);
}

void eigh_jacobi_cpu(const Tensor& A, bool lower, Tensor& L, Tensor& Q, Tensor& info) {
  if (A.size(0) == 0) return;
  const cpu::JacobiIsa& isa = jacobi_isa();
  const int64_t work = A.size(1) * A.size(1) * A.size(1) * 16;
  if (A.scalar_type() == at::kFloat)
    run_tiles(entries::eigh_batch<float>(A, lower, L, Q, info), isa.width_float, work, kJacobiChunkWork,
              isa.eigh_float);
  else
    run_tiles(entries::eigh_batch<double>(A, lower, L, Q, info), isa.width_double, work, kJacobiChunkWork,
              isa.eigh_double);
}

// ------------------------------------------------------------ SoA backward

// Square n x n real (float32, float64) with n <= kSoaMaxDimCPU takes the SoA
// backward. Measured on 2 cores (bench/bench_soa_backward.py, docs/soa_backward.md).
constexpr int64_t kSoaMaxDimCPU = cpu::kSoaMaxDim;

// 1 on, 0 off, 2 the per-matrix kernels over the SoA's range (the `_cpu_soa_mode` operator).
std::atomic<int>& soa_mode() {
  static std::atomic<int> mode{[] {
    const char* env = std::getenv("SAFESVD_CPU_SOA");
    if (!env || !*env) return 1;
    TORCH_CHECK(std::strlen(env) == 1 && env[0] >= '0' && env[0] <= '2', "SAFESVD_CPU_SOA must be 0, 1 or 2, got '",
                env, "'");
    return env[0] - '0';
  }()};
  return mode;
}

// The variant of the forward engine's ISA (jacobi_isa(), SAFESVD_CPU_ISA included).
const cpu::SoaBackwardIsa& soa_isa() {
  static const cpu::SoaBackwardIsa isa = [] {
    const char* name = jacobi_isa().name;
    if (std::strcmp(name, "avx512") == 0) return cpu::soa_backward_isa_avx512();
    if (std::strcmp(name, "avx2") == 0) return cpu::soa_backward_isa_avx2();
    return cpu::soa_backward_isa_baseline();
  }();
  return isa;
}

bool soa_shape(const Tensor& like, int64_t m, int64_t n) {
  return m == n && n >= 1 && n <= kSoaMaxDimCPU &&
         (like.scalar_type() == at::kFloat || like.scalar_type() == at::kDouble);
}

bool backward_fused_cpu(const Tensor& like, int64_t m, int64_t n) {
  return std::max(m, n) <= kFusedMaxDimCPU || (soa_mode().load() != 0 && soa_shape(like, m, n));
}

template <typename T>
cpu::SoaMat<T> soa_mat(const Tensor& t) {
  if (!t.defined()) return {nullptr, 0, 0, 0};
  return {t.const_data_ptr<T>(), t.stride(0), t.stride(1), t.stride(2)};
}
template <typename T>
cpu::SoaVec<T> soa_vec(const Tensor& t) {
  if (!t.defined()) return {nullptr, 0, 0};
  return {t.const_data_ptr<T>(), t.stride(0), t.stride(1)};
}

void svd_backward_fused_cpu(const SvdBackwardArgs& a, Tensor& gA, Tensor& gauge) {
  const int64_t B = a.S.size(0);
  if (B == 0 || soa_mode().load() != 1 || !soa_shape(a.U, a.m, a.n))
    return entries::svd_backward_fused<CpuRunner>(a, gA, gauge);
  const cpu::SoaBackwardIsa& isa = soa_isa();
  const int64_t work = 6 * a.n * a.n * a.n;
  AT_DISPATCH_FLOATING_TYPES(a.U.scalar_type(), "safesvd_svd_backward_soa", [&] {
    using T = scalar_t;
    const cpu::SoaSvdBackward<T> batch{B, a.n, soa_mat<T>(a.U), soa_mat<T>(a.Vh), soa_mat<T>(a.gU),
                                       soa_mat<T>(a.gVh), soa_vec<T>(a.S), soa_vec<T>(a.gS), int(a.guard.guard),
                                       T(a.guard.rtol), T(a.guard.atol), T(a.guard.eps), gA.mutable_data_ptr<T>(),
                                       gauge.mutable_data_ptr<T>()};
    if constexpr (std::is_same_v<T, float>)
      run_tiles(batch, isa.width_float, work, kSoaChunkWork, isa.svd_float);
    else
      run_tiles(batch, isa.width_double, work, kSoaChunkWork, isa.svd_double);
  });
}

void eigh_backward_fused_cpu(const EighBackwardArgs& a, Tensor& gA, Tensor& gauge) {
  const int64_t B = a.L.size(0);
  if (B == 0 || soa_mode().load() != 1 || !soa_shape(a.Q, a.n, a.n))
    return entries::eigh_backward_fused<CpuRunner>(a, gA, gauge);
  const cpu::SoaBackwardIsa& isa = soa_isa();
  const int64_t work = 4 * a.n * a.n * a.n;
  AT_DISPATCH_FLOATING_TYPES(a.Q.scalar_type(), "safesvd_eigh_backward_soa", [&] {
    using T = scalar_t;
    const cpu::SoaEighBackward<T> batch{B, a.n, soa_mat<T>(a.Q), soa_mat<T>(a.gQ), soa_vec<T>(a.L),
                                        soa_vec<T>(a.gL), int(a.guard.guard), T(a.guard.rtol), T(a.guard.atol),
                                        T(a.guard.eps), gA.mutable_data_ptr<T>(), gauge.mutable_data_ptr<T>()};
    if constexpr (std::is_same_v<T, float>)
      run_tiles(batch, isa.width_float, work, kSoaChunkWork, isa.eigh_float);
    else
      run_tiles(batch, isa.width_double, work, kSoaChunkWork, isa.eigh_double);
  });
}

DeviceKernels cpu_kernels() {
  DeviceKernels k = make_device_kernels<CpuRunner>(kFusedMaxDimCPU);
  k.backward_fused = &backward_fused_cpu;
  k.svd_backward_fused = &svd_backward_fused_cpu;
  k.eigh_backward_fused = &eigh_backward_fused_cpu;
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
  m.impl("_cpu_soa_mode", [](int64_t mode) -> int64_t {
    TORCH_CHECK(mode >= -1 && mode <= 2, "_cpu_soa_mode: mode must be -1, 0, 1 or 2, got ", mode);
    return mode < 0 ? soa_mode().load() : soa_mode().exchange(int(mode));
  });
}

}  // namespace safesvd
