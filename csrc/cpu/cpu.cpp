// The CPU's table (docs/architecture.md): a Runner that hands a per-matrix Op to its
// parallel loop over the batch (csrc/cpu/launch.h), the forward engine's SIMD tiles
// (one matrix per lane) by size band, with the instruction set chosen at run time,
// and the SoA backward of small real matrices in the same kind of tiles
// (docs/soa_backward.md). Host glue only: the kernels are compiled in the units of
// csrc/cpu/inst/ (csrc/manifest.txt). Everything else is shared with the other
// devices (csrc/aten/entries.h, csrc/kernels/).
#include <ATen/MemoryOverlap.h>
#include <ATen/Parallel.h>
#include <ATen/ThreadLocalState.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <numeric>
#include <type_traits>
#include <vector>

#include "../aten/entries.h"
#include "../testing.h"
#include "jacobi_cpu.h"
#include "lapack.h"
#include "launch.h"
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
    kernels::cpu::OpsLoop<Op>::run(op, count, work);
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

// The kernels of one instruction set: the engine's size bands and the SoA backward.
struct CpuIsa {
  const char* name;
  cpu::JacobiBand small, medium, mid, tall_small, tall_medium;
  cpu::SoaBackwardIsa soa;
};

// The SoA backward of one ISA from its band units (each sets its own functions).
cpu::SoaBackwardIsa merge_soa(const cpu::SoaBackwardIsa& square, const cpu::SoaBackwardIsa& rect,
                              const cpu::SoaBackwardIsa& rect16, const cpu::SoaBackwardIsa& builders) {
  cpu::SoaBackwardIsa isa = square;
  isa.svd_rect_float = rect.svd_rect_float;
  isa.svd_rect_double = rect.svd_rect_double;
  isa.svd_rect16_float = rect16.svd_rect16_float;
  isa.svd_rect16_double = rect16.svd_rect16_double;
  isa.svd_J_float = builders.svd_J_float;
  isa.svd_J_double = builders.svd_J_double;
  isa.eigh_J_float = builders.eigh_J_float;
  isa.eigh_J_double = builders.eigh_J_double;
  isa.gemm_float = builders.gemm_float;
  isa.gemm_double = builders.gemm_double;
  return isa;
}

// The widest variant this CPU runs, or SAFESVD_CPU_ISA=baseline|avx2|avx512 (tests,
// benchmarks; an ISA the CPU lacks is an error, not an illegal instruction).
const CpuIsa& cpu_isa() {
  static const CpuIsa isa = [] {
    const char* wanted = std::getenv("SAFESVD_CPU_ISA");
    const std::vector<std::pair<const char*, CpuIsa (*)()>> variants = {
        {"avx512", [] { return CpuIsa{"avx512", cpu::jacobi_small_avx512(), cpu::jacobi_medium_avx512(),
                                      cpu::jacobi_mid_avx512(),
                                      cpu::jacobi_tall_small_avx512(), cpu::jacobi_tall_medium_avx512(),
                                      merge_soa(cpu::soa_square_avx512(), cpu::soa_rect_avx512(),
                                                cpu::soa_rect16_avx512(), cpu::soa_builders_avx512())}; }},
        {"avx2", [] { return CpuIsa{"avx2", cpu::jacobi_small_avx2(), cpu::jacobi_medium_avx2(), cpu::jacobi_mid_avx2(),
                                    cpu::jacobi_tall_small_avx2(), cpu::jacobi_tall_medium_avx2(),
                                    merge_soa(cpu::soa_square_avx2(), cpu::soa_rect_avx2(),
                                              cpu::soa_rect16_avx2(), cpu::soa_builders_avx2())}; }},
        {"baseline", [] { return CpuIsa{"baseline", cpu::jacobi_small_baseline(), cpu::jacobi_medium_baseline(),
                                        cpu::jacobi_mid_baseline(),
                                        cpu::jacobi_tall_small_baseline(), cpu::jacobi_tall_medium_baseline(),
                                        merge_soa(cpu::soa_square_baseline(), cpu::soa_rect_baseline(),
                                                  cpu::soa_rect16_baseline(), cpu::soa_builders_baseline())}; }}};
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

// The engine's kernels for an m x n matrix (kernels::jacobi_bands). float64 square input
// from n = kMidFromDouble takes the mid-size engine (kernels::mid_engine_square).
const cpu::JacobiBand& jacobi_band(int64_t m, int64_t n, bool is_double) {
  const CpuIsa& isa = cpu_isa();
  if (kernels::jacobi_svd_tall(m, n))
    return std::min(m, n) <= kernels::jacobi_bands::tall_small::hi ? isa.tall_small : isa.tall_medium;
  if (kernels::mid_engine_square(m, n, is_double)) return isa.mid;
  const int64_t hi = std::max(m, n);
  return hi <= kernels::jacobi_bands::small::hi ? isa.small : isa.medium;
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
  const cpu::JacobiBand& band = jacobi_band(A.size(1), A.size(2), A.scalar_type() == at::kDouble);
  const int64_t work = A.size(1) * A.size(2) * std::min(A.size(1), A.size(2)) * 16;
  if (A.scalar_type() == at::kFloat)
    run_tiles(entries::svd_batch<float>(A, full, U, S, Vh, info), band.width_float, work, kJacobiChunkWork,
              band.svd_float);
  else
    run_tiles(entries::svd_batch<double>(A, full, U, S, Vh, info), band.width_double, work, kJacobiChunkWork,
              band.svd_double);
}

// NaN or Inf anywhere in A gives info = 2 (aten/eigh.cpp): the mid-size band's load tests
// the triangle it does not read as well (cpu/isa/jacobi_band.inc, mid_eigh_tiles); the
// Jacobi bands see only the UPLO triangle mirrored, so A is tested before them.
void eigh_jacobi_cpu(const Tensor& A, bool lower, Tensor& L, Tensor& Q, Tensor& info) {
  if (A.size(0) == 0) return;
  const bool mid = kernels::mid_engine_square(A.size(1), A.size(1), A.scalar_type() == at::kDouble);
  if (!mid) check_finite_on_cpu(A, "safesvd.eigh");
  const cpu::JacobiBand& band = jacobi_band(A.size(1), A.size(1), A.scalar_type() == at::kDouble);
  const int64_t work = A.size(1) * A.size(1) * A.size(1) * 16;
  if (A.scalar_type() == at::kFloat)
    run_tiles(entries::eigh_batch<float>(A, lower, L, Q, info), band.width_float, work, kJacobiChunkWork,
              band.eigh_float);
  else
    run_tiles(entries::eigh_batch<double>(A, lower, L, Q, info), band.width_double, work, kJacobiChunkWork,
              band.eigh_double);
}

// ------------------------------------------------------------ LAPACK over a batch

// torch.linalg.svd / eigh with the matrices of a batch in parallel. torch's CPU loop over
// LAPACK is serial (32 x 32, B = 1000: the same time on 1 and 2 threads,
// bench/results/cpu_engine_*.md). Here each thread decomposes a slice of the batch as
// torch does, calling LAPACK directly (csrc/cpu/lapack.h; torch's own function for
// complex input or where LAPACK reports a failure): inside at::parallel_for, ATen and MKL
// run single-threaded, so every matrix gets the one LAPACK call it gets in torch's loop
// with one thread. A single thread, a batch of one, or a batch too small to split (run
// inline by at::parallel_for) takes one direct call on the whole batch: torch's call at the
// same setting, without its per-call extras (docs/architecture.md, "LAPACK on the CPU"). MKL's
// rounding depends on the alignment of a matrix in torch's (64-byte aligned) batched
// workspace, so the slices start at multiples of `lapack_period` matrices: each matrix
// keeps its alignment, and the results are torch's serial ones bit for bit
// (tests/test_lapack_parallel.py). The outputs have torch's layout (U, Vh, Q column-major,
// the batch contiguous).
// The number of matrices in a (..., r, c) tensor (0 when it is empty).
int64_t matrix_count(const Tensor& t) { return t.numel() ? t.numel() / (t.size(-1) * t.size(-2)) : 0; }

bool lapack_in_parallel(const Tensor& A) {
  return matrix_count(A) > 1 && at::get_num_threads() > 1 && !at::in_parallel_region();
}

// The number of matrices after which the offsets of a matrix in every contiguous batch
// torch's call uses (input, outputs: `sizes` elements per matrix each) are again
// multiples of 64 bytes.
int64_t lapack_period(std::initializer_list<int64_t> bytes) {
  int64_t period = 1;
  for (int64_t b : bytes) period = std::lcm(period, 64 / std::gcd<int64_t>(64, std::max<int64_t>(b, 1)));
  return period;
}

// Calls f(b0, b1) on slices of [0, B) in parallel: each slice starts at a multiple of
// `period` and holds about 64k multiply-adds or more (the per-call overhead is a few us).
// The workers run under the caller's thread-local state (grad mode, the dispatch keys
// excluded below autograd): without it a worker slices and writes the outputs with grad
// mode on, and autograd rejects the in-place write to a view made under no_grad.
template <typename F>
void lapack_slices(int64_t B, int64_t m, int64_t n, int64_t period, const F& f) {
  const int64_t blocks = (B + period - 1) / period;
  const int64_t grain = std::max<int64_t>(1, 65536 / std::max<int64_t>(1, m * n * std::min(m, n) * period));
  const at::ThreadLocalState caller;
  at::parallel_for(0, blocks, grain, [&](int64_t k0, int64_t k1) {
    at::ThreadLocalStateGuard guard(caller);
    f(k0 * period, std::min(B, k1 * period));
  });
}

std::tuple<Tensor, Tensor, Tensor> lapack_svd_cpu(const Tensor& A, bool full) {
  const bool parallel = lapack_in_parallel(A);
  if (!parallel && !cpu::direct_lapack_applies(A)) return at::linalg_svd(A, full);
  const int64_t m = A.size(-2), n = A.size(-1), k = std::min(m, n);
  const auto batch = batch_shape(A);
  const at::TensorOptions real = A.options().dtype(c10::toRealValueType(A.scalar_type()));
  Tensor U = empty_column_major(with_trailing(batch, {m, full ? m : k}), A.options()),
         S = empty_output(with_trailing(batch, {k}), real),
         Vh = empty_column_major(with_trailing(batch, {full ? n : k, n}), A.options());
  if (!parallel) {  // torch's own function where LAPACK reports a failure: it raises its error
    if (!cpu::direct_svd(A, full, U, S, Vh)) return at::linalg_svd(A, full);
    return {U, S, Vh};
  }
  const Tensor A3 = A.reshape({-1, m, n});
  Tensor U3 = as_matrix_batch(U), S3 = S.view({-1, k}), Vh3 = as_matrix_batch(Vh);
  const int64_t z = A.element_size(), r = S.element_size();
  const int64_t period = lapack_period({m * n * z, m * U.size(-1) * z, k * r, Vh.size(-2) * n * z});
  lapack_slices(A3.size(0), m, n, period, [&](int64_t b0, int64_t b1) {
    Tensor u = U3.slice(0, b0, b1), s = S3.slice(0, b0, b1), vh = Vh3.slice(0, b0, b1);
    const Tensor a = A3.slice(0, b0, b1);
    if (cpu::direct_svd(a, full, u, s, vh)) return;
    auto [u2, s2, vh2] = at::linalg_svd(a, full);  // complex input, or a failure (raises)
    u.copy_(u2);
    s.copy_(s2);
    vh.copy_(vh2);
  });
  return {U, S, Vh};
}

std::tuple<Tensor, Tensor> lapack_eigh_cpu(const Tensor& A, c10::string_view UPLO) {
  const bool parallel = lapack_in_parallel(A);
  if (!parallel && !cpu::direct_lapack_applies(A)) return at::linalg_eigh(A, UPLO);
  const int64_t n = A.size(-1);
  const bool upper = UPLO == "U";
  Tensor L = empty_output(with_trailing(batch_shape(A), {n}), A.options().dtype(c10::toRealValueType(A.scalar_type()))),
         Q = empty_column_major(A.sizes().vec(), A.options());
  if (!parallel) {
    if (!cpu::direct_eigh(A, upper, L, Q)) return at::linalg_eigh(A, UPLO);
    return {L, Q};
  }
  const Tensor A3 = A.reshape({-1, n, n});
  Tensor L3 = L.view({-1, n}), Q3 = as_matrix_batch(Q);
  const int64_t period = lapack_period({n * n * A.element_size(), n * L.element_size()});
  lapack_slices(A3.size(0), n, n, period, [&](int64_t b0, int64_t b1) {
    Tensor l = L3.slice(0, b0, b1), q = Q3.slice(0, b0, b1);
    const Tensor a = A3.slice(0, b0, b1);
    if (cpu::direct_eigh(a, upper, l, q)) return;
    auto [l2, q2] = at::linalg_eigh(a, UPLO);
    l.copy_(l2);
    q.copy_(q2);
  });
  return {L, Q};
}

// ------------------------------------------------------------ SoA backward

// Square n x n real (float32, float64) with n <= kSoaMaxDimCPU takes the SoA
// backward. Measured on 2 cores (bench/bench_soa_backward.py, docs/soa_backward.md).
constexpr int64_t kSoaMaxDimCPU = cpu::kSoaMaxDim;

// 1 on, 0 off, 2 the per-matrix kernels over the SoA's range (safesvd_testing_cpu_soa_mode,
// csrc/testing.h).
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

// The svd also takes tall / wide m x n with the short side <= kSoaMaxDimCPU and
// m n <= kSoaMaxRectElems (its tiles then hold W matrices of m n values each), or the
// short side cpu::kSoaRectWideDim (16) and m n <= kSoaRectWideMaxElems: measured here
// (bench/results/cpu_soa_backward_2026-12-04_intel_k16.md, batched / SoA) 20x16 1.5x,
// 64x16 1.3-1.65x, 16x64 1.2-1.7x, 128x16 1.03-1.07x, 16x1024 0.87x (float32).
constexpr int64_t kSoaMaxRectElems = 16384;
constexpr int64_t kSoaRectWideMaxElems = 2048;
// Calls that took the SoA tiles: [0] the fused backward, [1] the J builders of the
// batched path; [2] the batched path's products that took small_bmm_cpu
// (safesvd_testing_cpu_soa_calls, csrc/testing.h).
std::atomic<long long>& soa_calls(int which = 0) {
  static std::atomic<long long> calls[3] = {{0}, {0}, {0}};
  return calls[which];
}

bool soa_shape(const Tensor& like, int64_t m, int64_t n) {
  const int64_t k = std::min(m, n);
  return k >= 1 &&
         (k <= kSoaMaxDimCPU ? m == n || m * n <= kSoaMaxRectElems
                             : m != n && k == cpu::kSoaRectWideDim && m * n <= kSoaRectWideMaxElems) &&
         (like.scalar_type() == at::kFloat || like.scalar_type() == at::kDouble);
}

// 1: rectangular input in the SoA's range takes the SoA tiles, 0: every rectangular shape
// with a side above kFusedMaxDimCPU takes batched BLAS (the tests' reference;
// safesvd_testing_cpu_fused_rectangular, csrc/testing.h).
std::atomic<int>& fused_rectangular_mode() {
  static std::atomic<int> mode{1};
  return mode;
}

// A batch of real square matrices above the fixed sizes (n > 8) with B n^3 up to the
// limit of its dtype: the backward's per-matrix kernel at its runtime size beats the
// batched path there (tests/test_soa_backward.py compares the two).
bool small_square_batch(const Tensor& like, int64_t m, int64_t n, int64_t float_limit, int64_t double_limit,
                        int64_t min_n = kernels::kMaxFixedDim + 1) {
  if (m != n || n < min_n || like.is_complex() || like.numel() == 0) return false;
  return matrix_count(like) * n * n * n <= (like.scalar_type() == at::kFloat ? float_limit : double_limit);
}

// svd and eigh: below about B n^3 = 32768 (float32) or 16384 (float64) the batched path's
// ~25 ATen calls and BLAS set-ups cost more than the kernel's plain loops. Measured at B =
// 1, 2, 4, n = 9..64, one thread (Intel AVX-512, 2026-12-06, batched / per-matrix, svd and
// eigh backward): float32 n = 16 B = 1 2.0x / 1.9x, B = 4 1.33x / 1.30x, n = 24 B = 2 1.44x
// / 1.39x, B = 4 1.01x / 0.92x, n = 32 B = 1 1.13x / 1.00x, B = 2 1.13x / 0.99x, n = 48 B =
// 1 0.76x / 0.65x; float64 n = 16 B = 4 1.14x / 1.05x, n = 24 B = 1 1.26x / 1.20x, B = 2
// 1.02x / 0.97x, n = 32 B = 1 0.91x / 0.82x.
bool per_matrix_square(const Tensor& like, int64_t m, int64_t n) { return small_square_batch(like, m, n, 32768, 16384); }

// Fused (per_matrix_square above; the SoA tiles where soa_shape and the SoA mode is 1,
// else the per-matrix kernel) or batched BLAS. Tall / wide input outside the SoA's range
// (a short side 9..15 or above 16, or more than 16384 entries) takes batched BLAS with the
// SoA J builder
// (the short side 16 in the SoA up to 2048 entries: 1.03-1.7x the batched path on 2
// threads, 1.4-2.8x on one, 64x16 float64 B = 5000 88 -> 32 ms; soa_shape). Measured on
// 2 cores (bench/bench_soa_backward.py --rectangular, Intel AVX-512,
// bench/results/cpu_soa_backward_2026-12-04_intel.md) it beats the fused per-matrix kernel
// on every such shape (float64 64x16 1.2x, 128x16 1.8x, 40x12 1.5x, 20x16 1.9x, 1000x16
// 2.0x, 4x3000 1.5x; 32x9 0.93x, within the spread). An earlier rule sent float64 with a
// short side <= 16 and the short sides <= 4 to the per-matrix kernel (measured on AMD
// before the SoA builder, 1.1-1.45x there); the SoA tiles took the short sides <= 8, and
// the batched path got faster.
//
// A small batch of real rectangular matrices outside the SoA's range (B m n k <= 32768)
// takes the per-matrix kernel at its runtime size: measured (AMD EPYC Zen 5, 2026-12-07,
// one thread, svd backward operator, batched / per-matrix time, float32 / float64) 24x20
// B = 1 1.84x / 1.60x, B = 2 1.61x / 1.34x, B = 4 1.18x / 1.04x; 64x12 B = 1 1.81x /
// 1.60x, B = 4 1.21x / 1.03x; 32x24 B = 1 1.47x / 1.15x, B = 2 1.35x / 0.95x, B = 4 0.94x;
// 100x10 B = 1 1.81x, B = 4 1.34x / 1.40x, B = 16 1.07x / 1.20x; 12x10 B = 16 1.34x;
// 48x40 B = 1 0.93x / 0.72x.
bool backward_fused_cpu(const Tensor& like, int64_t m, int64_t n) {
  if (per_matrix_square(like, m, n)) return true;
  const bool small = std::max(m, n) <= kFusedMaxDimCPU;
  if (m != n && fused_rectangular_mode().load() == 0) return small;
  if (small || (soa_mode().load() != 0 && soa_shape(like, m, n))) return true;
  if (m == n || like.is_complex() || like.numel() == 0) return false;
  return matrix_count(like) * m * n * std::min(m, n) <= 32768;  // like: U (..., m, k)
}

// The SoA tiles compute W matrices however few are real: a batch of one (float32
// rectangular: two) takes the per-matrix kernel, whose results are the tiles' bit for bit
// (tests/test_soa_backward.py). B = 1, one thread, svd backward (Intel AVX-512, 2026-12-06,
// per-matrix / SoA us): float32 8x8 8.0 / 11.6, 64x16 19.5 / 53.6, 256x8 25.3 / 66.6,
// 16x64 19.3 / 59.5; float64 64x16 27.8 / 51.1, 8x8 8.9 / 9.8; B = 4: 64x16 float32
// 59.8 / 55.9.
bool soa_per_matrix(int64_t B, int64_t m, int64_t n, bool is_float) {
  return B <= (m != n && is_float ? 2 : 1);
}

void svd_backward_fused_cpu(const SvdBackwardArgs& a, Tensor& gA, Tensor& gauge) {
  const int64_t B = a.S.size(0);
  if (B == 0 || soa_mode().load() != 1 || !soa_shape(a.U, a.m, a.n) ||
      soa_per_matrix(B, a.m, a.n, a.U.scalar_type() == at::kFloat))
    return entries::svd_backward_fused<CpuRunner>(a, gA, gauge);
  const cpu::SoaBackwardIsa& isa = cpu_isa().soa;
  soa_calls().fetch_add(1, std::memory_order_relaxed);
  const int64_t work = 6 * a.m * a.n * std::min(a.m, a.n);
  AT_DISPATCH_FLOATING_TYPES(a.U.scalar_type(), "safesvd_svd_backward_soa", [&] {
    using T = scalar_t;
    using entries::strided;
    const cpu::SoaSvdBackward<T> batch{B, a.m, a.n, strided<T>(a.U), strided<T>(a.Vh), strided<T>(a.gU),
                                       strided<T>(a.gVh), strided<T>(a.S), strided<T>(a.gS), int(a.guard.guard),
                                       T(a.guard.rtol), T(a.guard.atol), T(a.guard.eps), gA.mutable_data_ptr<T>(),
                                       gauge.mutable_data_ptr<T>()};
    const bool rect = a.m != a.n, rect16 = rect && std::min(a.m, a.n) == cpu::kSoaRectWideDim;
    if constexpr (std::is_same_v<T, float>)
      run_tiles(batch, isa.width_float, work, kSoaChunkWork,
                rect16 ? isa.svd_rect16_float : rect ? isa.svd_rect_float : isa.svd_float);
    else
      run_tiles(batch, isa.width_double, work, kSoaChunkWork,
                rect16 ? isa.svd_rect16_double : rect ? isa.svd_rect_double : isa.svd_double);
  });
}

// The matrix functions' backward: fused up to kFusedMaxDimCPU, and a small batch of real
// square matrices above the fixed sizes at its runtime size, up to a quarter of svd's
// limits (per_matrix_square): their batched path is a few products and the X builder, ~10
// us at B = 1 where svd's takes 25-30. Measured at B = 1..8, n = 9..48, one thread (AMD
// EPYC Zen 5, AVX-512, 2026-12-06, batched / per-matrix, eigh_fn and svd_fn backward):
// float32 n = 9 B = 1 1.86x / 1.93x, B = 8 1.11x / 1.15x, n = 12 B = 4 1.16x / 1.18x, B = 8
// 0.86x / 0.89x, n = 16 B = 1 1.46x / 1.55x, B = 2 1.23x / 1.21x, B = 4 0.85x / 0.89x,
// n = 24 B = 1 1.04x / 1.11x, n = 32 B = 1 0.70x / 0.75x; float64 n = 9 B = 4 1.38x /
// 1.41x, B = 8 1.11x / 1.14x, n = 12 B = 4 1.12x / 1.15x, n = 16 B = 1 1.34x / 1.40x, B = 2
// 1.03x / 1.07x, n = 24 B = 1 0.86x / 0.91x.
// Real rectangular input above the fixed sizes: the per-matrix kernel (at its runtime size
// where a side is above 8) with a side of 8 at every batch size, with both sides <= 16 and
// m n k <= 256 or wide with m <= 3 at every batch size, else for B m n k <= 32768; square
// from 8 x 8 under the limits above. Measured (AMD EPYC Zen 5, 2026-12-07, batched /
// per-matrix time of the svd_fn backward operator, one thread unless said): 8x3, 3x8, 8x6,
// 8x7 B = 1 3.5x, B = 64 1.5-2.6x, B = 20000 1.1-2.4x (one and two threads, both dtypes);
// 12x3, 16x4, 4x16 B = 1 3.2-3.6x, B = 5000 1.2-3.4x (two threads 1.6-3.4x); 32x4 B = 16
// 1.27x, B = 256 0.80x; 16x12 B = 1 2.7x, B = 4 1.8x, B = 16 0.94x; 24x20 B = 1 2.0x, B =
// 16 0.68x; 64x16 B = 1 1.5x, B = 2 1.08x / 1.21x (float32 / float64), B = 16 0.50x /
// 0.79x; 256x8 B = 1 1.25x / 1.6x, B = 2 1.01x / 1.45x; 1000x3 B = 1 0.93x / 1.09x; tall
// and thin at large B worse (64x2, 128x2 B = 5000, two threads: 0.68-1.02x), but wide with
// a short side <= 3 better at every batch size (2x64, 3x32 B = 1000 3.0-3.6x, B = 5000 on
// two threads 3.1-4.0x; 2x300 1.2-1.3x), so those take it too (4x64, 4x128, 6x40 B = 1000:
// 0.73-1.2x, left to the B m n k rule). 8x8 B = 1 2.0x (eigh_fn 1.9x), B = 8 1.29x / 1.15x,
// B = 16 0.96x / 0.99x (eigh_fn 1.28x / 1.14x), B = 64 0.59x.
bool fn_backward_fused_cpu(const Tensor& like, int64_t m, int64_t n) {
  if (std::max(m, n) <= kFusedMaxDimCPU) return true;
  if (m != n && !like.is_complex()) {
    const int64_t work = m * n * std::min(m, n);
    return std::max(m, n) == kernels::kMaxFixedDim || (std::max(m, n) <= 16 && work <= 256) || (m < n && m <= 3) ||
           matrix_count(like) * work <= 32768;
  }
  return small_square_batch(like, m, n, 8192, 4096, kernels::kMaxFixedDim);
}

// The matrix functions' forward product Y = U diag(f) Vh (DeviceKernels::fn_forward), real:
// the per-matrix kernel (kernels::FnForwardOp, plain loops) where both sides are <= 7, or
// for a small batch (B m n k <= 8192); elsewhere batched BLAS (at::matmul of U diag(f) and
// Vh), which MKL runs faster from 8 x 8 at large batches. Measured (AMD EPYC Zen 5, 2
// threads, 2026-12-06, the svd_fn / eigh_fn operator, at::matmul / kernel): 3x3 B = 100000
// float32 3.46x / 3.65x (1.45 -> 0.42 ms), float64 3.38x / 3.69x; 5x5 B = 20000 2.29x /
// 2.29x; 7x7 1.85x / 1.40x, float64 2.57x / 1.42x; 3x8 2.12x, 8x3 1.26x (svd_fn); 8x8 B =
// 20000 float32 1.22x / 1.02x, float64 1.24x / 0.74x; 16x16 B = 5000 0.22x / 0.40x; small
// batches (the fixed cost of the multiply and its copies): 3x3 B = 1 1.33x / 1.38x, 8x8 B =
// 16 1.32x / 1.23x, 16x16 B = 2 1.10x / 1.25x, B = 4 0.89x / 1.16x, 32x32 B = 1 0.69x /
// 1.12x.
bool fn_forward_cpu(const Tensor& U, const Tensor& Vh, const Tensor& f, Tensor& Y) {
  const auto dtype = U.scalar_type();
  if ((dtype != at::kFloat && dtype != at::kDouble) || f.scalar_type() != dtype ||
      (Vh.defined() && Vh.scalar_type() != dtype) || !Y.is_contiguous() || U.is_neg() || (Vh.defined() && Vh.is_neg()))
    return false;
  const int64_t m = U.size(-2), k = U.size(-1), n = Vh.defined() ? Vh.size(-1) : m;
  if (k != std::min(m, n) || (Vh.defined() && Vh.size(-2) != k)) return false;
  const int64_t B = Y.numel() / std::max<int64_t>(1, m * n);
  if (std::max(m, n) > kFusedMaxDimCPU && B * m * n * k > 8192) return false;
  if (Y.numel() == 0) return true;
  const Tensor U3 = U.reshape({B, m, k}), V3 = Vh.defined() ? Vh.reshape({B, k, n}) : Tensor(),
               f2 = f.reshape({B, k});
  AT_DISPATCH_FLOATING_TYPES(dtype, "safesvd_fn_forward", [&] {
    using entries::strided;
    kernels::with_dims(m, n, [&](auto dims) {
      const kernels::FnForwardOp<scalar_t, decltype(dims)> op{dims, strided<scalar_t>(U3), strided<scalar_t>(V3),
                                                               strided<scalar_t>(f2), Y.mutable_data_ptr<scalar_t>()};
      CpuRunner::run(op, B, U.device(), 2 * m * n * k);
    });
  });
  return true;
}

void eigh_fn_backward_fused_cpu(const FnBackwardArgs& a, Tensor& gA, Tensor& gf) {
  if (a.k > kernels::kMaxFixedDim) return entries::eigh_fn_backward_runtime<CpuRunner>(a, gA, gf);
  entries::eigh_fn_backward_fused<CpuRunner>(a, gA, gf);
}

void eigh_backward_fused_cpu(const EighBackwardArgs& a, Tensor& gA, Tensor& gauge) {
  const int64_t B = a.L.size(0);
  if (a.n > kernels::kMaxFixedDim) return entries::eigh_backward_runtime<CpuRunner>(a, gA, gauge);
  if (B == 0 || soa_mode().load() != 1 || !soa_shape(a.Q, a.n, a.n) ||
      soa_per_matrix(B, a.n, a.n, a.Q.scalar_type() == at::kFloat))
    return entries::eigh_backward_fused<CpuRunner>(a, gA, gauge);
  const cpu::SoaBackwardIsa& isa = cpu_isa().soa;
  soa_calls().fetch_add(1, std::memory_order_relaxed);
  const int64_t work = 4 * a.n * a.n * a.n;
  AT_DISPATCH_FLOATING_TYPES(a.Q.scalar_type(), "safesvd_eigh_backward_soa", [&] {
    using T = scalar_t;
    using entries::strided;
    const cpu::SoaEighBackward<T> batch{B, a.n, strided<T>(a.Q), strided<T>(a.gQ), strided<T>(a.L),
                                        strided<T>(a.gL), int(a.guard.guard), T(a.guard.rtol), T(a.guard.atol),
                                        T(a.guard.eps), gA.mutable_data_ptr<T>(), gauge.mutable_data_ptr<T>()};
    if constexpr (std::is_same_v<T, float>)
      run_tiles(batch, isa.width_float, work, kSoaChunkWork, isa.eigh_float);
    else
      run_tiles(batch, isa.width_double, work, kSoaChunkWork, isa.eigh_double);
  });
}

// The J builders of the batched path (n > 8 and the rectangular shapes outside the
// fused range): real input in the SoA tiles, k at run time, the per-matrix builder's
// results bit for bit (tests/test_soa_backward.py); complex input and the SoA modes 0 / 2
// take the per-matrix builder (entries::svd_build_J).
template <typename T>
const T* data_or_null(const Tensor& t) {
  return t.defined() ? t.const_data_ptr<T>() : nullptr;
}
bool soa_builder(const Tensor& like, std::initializer_list<const Tensor*> all) {
  if (soa_mode().load() != 1 || !(like.scalar_type() == at::kFloat || like.scalar_type() == at::kDouble))
    return false;
  for (const Tensor* t : all)
    if (t->defined() && !t->is_contiguous()) return false;
  return true;
}

// A batch of one takes the per-matrix builder (the tiles' results bit for bit): a tile
// builds W matrices' J however few are real. B = 1, one thread, the whole svd / eigh
// backward (Intel AVX-512, 2026-12-06, per-matrix / tile us): 64x64 float32 77 / 150,
// 48 / 83; float64 92 / 149, 57 / 85; 32x32 float32 35 / 53, 21 / 32.
void svd_build_J_cpu(const SvdBuildJArgs& a, Tensor& J, Tensor& Dr, Tensor& factors, Tensor& gauge) {
  const int64_t B = a.S.size(0), k = a.S.size(1);
  if (B <= 1 || !soa_builder(J, {&a.UhgU, &a.gVhV, &a.S, &a.gS, &a.pmax, &a.cotangent_scale, &J, &Dr, &factors,
                                 &gauge}))
    return entries::svd_build_J<CpuRunner>(a, J, Dr, factors, gauge);
  const cpu::SoaBackwardIsa& isa = cpu_isa().soa;
  soa_calls(1).fetch_add(1, std::memory_order_relaxed);
  AT_DISPATCH_FLOATING_TYPES(J.scalar_type(), "safesvd_svd_build_J_soa", [&] {
    using T = scalar_t;
    const cpu::SoaSvdBuildJ<T> batch{B, k, a.m + a.n, data_or_null<T>(a.UhgU), data_or_null<T>(a.gVhV),
                                     a.S.const_data_ptr<T>(), data_or_null<T>(a.gS), data_or_null<T>(a.pmax),
                                     a.cotangent_scale.const_data_ptr<T>(), int(a.guard.guard), T(a.guard.rtol),
                                     T(a.guard.atol), T(a.guard.eps), J.mutable_data_ptr<T>(),
                                     Dr.defined() ? Dr.mutable_data_ptr<T>() : nullptr, factors.mutable_data_ptr<T>(),
                                     gauge.mutable_data_ptr<T>()};
    if constexpr (std::is_same_v<T, float>)
      run_tiles(batch, isa.width_float, 8 * k * k, kSoaChunkWork, isa.svd_J_float);
    else
      run_tiles(batch, isa.width_double, 8 * k * k, kSoaChunkWork, isa.svd_J_double);
  });
}

void eigh_build_J_cpu(const EighBuildJArgs& a, Tensor& J, Tensor& gauge) {
  const int64_t B = a.L.size(0), n = a.L.size(1);
  if (B <= 1 || !soa_builder(J, {&a.QhgQ, &a.L, &a.gL, &a.cotangent_scale, &J, &gauge}))
    return entries::eigh_build_J<CpuRunner>(a, J, gauge);
  const cpu::SoaBackwardIsa& isa = cpu_isa().soa;
  soa_calls(1).fetch_add(1, std::memory_order_relaxed);
  AT_DISPATCH_FLOATING_TYPES(J.scalar_type(), "safesvd_eigh_build_J_soa", [&] {
    using T = scalar_t;
    const cpu::SoaEighBuildJ<T> batch{B, n, data_or_null<T>(a.QhgQ), a.L.const_data_ptr<T>(), data_or_null<T>(a.gL),
                                      a.cotangent_scale.const_data_ptr<T>(), int(a.guard.guard), T(a.guard.rtol),
                                      T(a.guard.atol), T(a.guard.eps), J.mutable_data_ptr<T>(),
                                      gauge.mutable_data_ptr<T>()};
    if constexpr (std::is_same_v<T, float>)
      run_tiles(batch, isa.width_float, 4 * n * n, kSoaChunkWork, isa.eigh_J_float);
    else
      run_tiles(batch, isa.width_double, 4 * n * n, kSoaChunkWork, isa.eigh_J_double);
  });
}

// The batched backward's n x n products up to cpu::kSmallGemmMaxDim (soa_cpu.h) in float and double
// (kernels/small_gemm.h, measured at 64 x 64; above, batched BLAS, whose efficiency grows
// with n: docs/architecture.md, "Batched backward"). out is row-major, so the kernel
// forms out^T = b^T a^T column-major: X = b^T needs b's rows contiguous; a b without
// unit stride along its rows (the forward's Q^H and V are, its Vh and Q are not; a
// transposed cotangent) is copied row-major first, n^2 values a matrix beside the
// product's n^3 fmas. The copy is made here, where the kernel takes the product, and not
// by the callers, so that a device or dtype the kernel does not take (CUDA, complex) gets
// no copy.
//
// 1: small_bmm_cpu takes the shapes above (the default); 0: it takes none, every product
// batched BLAS (safesvd_testing_cpu_small_bmm, csrc/testing.h).
std::atomic<int>& small_bmm_mode() {
  static std::atomic<int> mode{1};
  return mode;
}
bool small_bmm_cpu(const Tensor& a, const Tensor& b, Tensor& out) {
  const auto dtype = a.scalar_type();
  if (small_bmm_mode().load() == 0 || (dtype != at::kFloat && dtype != at::kDouble) || b.scalar_type() != dtype ||
      out.scalar_type() != dtype || a.dim() != 3 || b.dim() != 3 || out.dim() != 3 || a.is_neg() || b.is_neg() ||
      !out.is_contiguous())
    return false;
  // The kernel writes out while it reads a and b (at::bmm_out refuses such overlap too).
  if (at::get_overlap_status(out, a) != at::MemOverlapStatus::No ||
      at::get_overlap_status(out, b) != at::MemOverlapStatus::No)
    return false;
  const int64_t B = a.size(0), n = a.size(1);
  if (n > cpu::kSmallGemmMaxDim || a.size(2) != n || b.size(0) != B || b.size(1) != n || b.size(2) != n ||
      out.size(0) != B || out.size(1) != n || out.size(2) != n)
    return false;
  soa_calls(2).fetch_add(1, std::memory_order_relaxed);
  if (B == 0 || n == 0) return true;
  const Tensor br = n > 1 && b.stride(2) != 1 ? b.contiguous() : b;
  const cpu::SoaBackwardIsa& isa = cpu_isa().soa;
  AT_DISPATCH_FLOATING_TYPES(dtype, "safesvd_small_bmm", [&] {
    using T = scalar_t;
    const cpu::SmallGemmBatch<T> batch{B,           n,           br.const_data_ptr<T>(), br.stride(0), br.stride(1),
                                       a.const_data_ptr<T>(),    a.stride(0), a.stride(2), a.stride(1),
                                       out.mutable_data_ptr<T>(), n * n,       n};
    if constexpr (std::is_same_v<T, float>)
      run_tiles(batch, 1, 2 * n * n * n, kSoaChunkWork, isa.gemm_float);
    else
      run_tiles(batch, 1, 2 * n * n * n, kSoaChunkWork, isa.gemm_double);
  });
  return true;
}

// driver=None: the small batches that LAPACK decomposes faster than the engine, whose tile
// of 8 to 32 matrices (docs/architecture.md) costs the same however few of them are real.
// Forward times against LAPACK at B = 1..14 on the 2-core Intel Xeon of 2026-12-06, its
// AVX-512 and AVX2 variants alike (both take two registers a tile row;
// bench/bench_small_batch.py): square and tall, LAPACK is faster for one matrix from 8 x 8
// (64 x 64 float32 svd: 0.33 against 1.23 ms), for two from 32 x 32 or 64 x 16, three
// from 48 x 48 or 256 x 8, and for tall matrices with many rows for a batch that grows
// with the rows (1024 x 16: about 10 float32, 5 float64). Wide matrices are slow in
// LAPACK (16 x 1024 float32: 0.34 ms, its transpose 0.10): one. With a short side below 8
// and fewer than 1000 (wide: 2000) entries the engine is faster at every batch size, but
// for one square matrix from 6 x 6: since LAPACK is called directly (csrc/cpu/lapack.h,
// ~2.5 us less a call), one thread, 2-core AMD EPYC Zen 5 of 2026-12-07, LAPACK / engine
// at B = 1: svd 6 x 6 0.88 / 0.91 (float32 / float64), 7 x 7 0.91 / 0.82; eigh 6 x 6
// 0.86 / 0.78, 7 x 7 0.76 / 0.77; 5 x 5 0.90-0.97, 3 x 3 and 4 x 4 0.91-1.02 (left to the
// engine); B = 2 1.0-1.4.
// Square 48 x 48, and 64 x 64 float64: two (AMD EPYC Zen 5, 2026-12-07, one thread, LAPACK
// / engine at B = 3: svd 48 x 48 1.18 / 0.92 (float32 / float64), eigh 1.08 / 1.28; 64 x 64
// float64 svd 1.28, eigh 1.18; float32 0.94 and 0.77, so three there; the Intel Xeon had
// three for both: the crossover lies between).
// On T threads LAPACK runs the matrices of a batch on their own threads once each is at
// least 64k multiply-adds (lapack_slices), while the engine runs a tile of 8 or more
// matrices on one thread: up to T times as many matrices, at most 8, go to LAPACK there.
// Measured on 2 threads (same machine, LAPACK / engine): 48 x 48 B = 4 svd 0.82 / 1.07
// (float32 / float64), eigh 0.81 / 0.92, B = 6 1.18 / 1.64, 1.17 / 1.35; 64 x 64 float32 B
// = 6 svd 0.97, eigh 0.93, B = 8 1.28, 1.24; float64 B = 4 0.92, 0.82, B = 6 1.36, 1.21.
// (32 x 32, whose slices hold two matrices, gains nothing: 1.02-1.33 at B = 2..4.)
int64_t lapack_batch_limit_cpu(int64_t m, int64_t n, bool is_double) {
  const int64_t cells = m * n;
  const bool short_side_small = std::min(m, n) < 8 && !(m == n && m >= 6);
  if (m < n) return short_side_small && cells < 2000 ? 0 : 1;
  if (short_side_small && cells < 1000) return 0;
  if (cells <= 576) return 1;
  if (cells <= 1600) return 2;
  int64_t limit = m == n && cells <= 4096 && (cells <= 2304 || is_double)
                      ? 2
                      : std::max<int64_t>(3, cells / (is_double ? 3200 : 1600));
  const int64_t threads = at::in_parallel_region() ? 1 : at::get_num_threads();
  if (threads > 1 && cells * std::min(m, n) >= 65536) limit = std::max(limit, std::min<int64_t>(limit * threads, 8));
  return limit;
}

DeviceKernels cpu_kernels() {
  DeviceKernels k = make_device_kernels<CpuRunner>(kFusedMaxDimCPU);
  k.backward_fused = &backward_fused_cpu;
  k.svd_backward_fused = &svd_backward_fused_cpu;
  k.eigh_backward_fused = &eigh_backward_fused_cpu;
  k.fn_backward_fused = &fn_backward_fused_cpu;
  k.fn_forward = &fn_forward_cpu;
  k.eigh_fn_backward_fused = &eigh_fn_backward_fused_cpu;
  k.svd_build_J = &svd_build_J_cpu;
  k.eigh_build_J = &eigh_build_J_cpu;
  k.small_bmm = &small_bmm_cpu;
  k.svd_jacobi = &svd_jacobi_cpu;
  k.eigh_jacobi = &eigh_jacobi_cpu;
  k.lapack_svd = &lapack_svd_cpu;
  k.lapack_eigh = &lapack_eigh_cpu;
  k.jacobi_fallback = true;
  k.jacobi_by_default = true;  // measured: bench/results/cpu_engine_*.md
  k.lapack_batch_limit = &lapack_batch_limit_cpu;
  k.jacobi_rectangular = true;
  k.jacobi_max_square_svd = k.jacobi_max_square_eigh = kernels::kMidMaxDim;  // the mid-size engine above 16
  return k;
}

const DeviceKernelsRegistration kRegistration(c10::DeviceType::CPU, cpu_kernels());

}  // namespace

TORCH_LIBRARY_IMPL(safesvd, CompositeImplicitAutograd, m) {
  m.impl("_cpu_isa", [] { return std::string(cpu_isa().name); });
}

}  // namespace safesvd

// Testing hook (csrc/testing.h): not an operator of the schema.
extern "C" SAFESVD_TESTING_API int safesvd_testing_cpu_soa_mode(int mode) {
  if (mode < -1 || mode > 2) return -2;
  return mode < 0 ? safesvd::soa_mode().load() : safesvd::soa_mode().exchange(mode);
}

extern "C" SAFESVD_TESTING_API long long safesvd_testing_cpu_soa_calls(int which) {
  return which >= 0 && which <= 2 ? safesvd::soa_calls(which).load() : -1;
}

extern "C" SAFESVD_TESTING_API int safesvd_testing_cpu_small_bmm(int mode) {
  if (mode < -1 || mode > 1) return -2;
  return mode < 0 ? safesvd::small_bmm_mode().load() : safesvd::small_bmm_mode().exchange(mode);
}

extern "C" SAFESVD_TESTING_API int safesvd_testing_cpu_fused_rectangular(int mode) {
  if (mode < -1 || mode > 1) return -2;
  return mode < 0 ? safesvd::fused_rectangular_mode().load() : safesvd::fused_rectangular_mode().exchange(mode);
}
