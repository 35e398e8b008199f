// Structure-of-arrays SVD / eigh backward for tiles of W small real matrices,
// one matrix per SIMD lane on the CPU, one thread on CUDA (W = 1)
// (docs/soa_backward.md). Same semantics as svd_backward_matrix and
// eigh_backward_matrix (csrc/kernels/svd_backward.h, eigh_backward.h): every
// decision goes through matrix_guard / MatrixGuard / GaugeTracker of
// guards.h, called per lane, and every sum runs in the reference's order
// (products from p = 0 ascending, from a zero accumulator). Compiled without
// FMA contraction (as the CPU does, csrc/cpu/isa/soa_isa.inc), the results
// are the per-matrix kernels' bit for bit; with contraction they differ by
// rounding, amplified where the output is ill-conditioned (docs/soa_backward.md).
//
// Layout: element e (row-major index i * cols + j) of lane l is at
// p[e * ld + l], lanes l = 0 .. W-1, ld >= W (as in jacobi.h). Per-lane
// vectors (S, gS, L, gL) likewise: value i of lane l at p[i * ld + l]. The
// gauge output is three rows: gauge[c * ld + l], c = 0 (residual), 1 (i),
// 2 (j), the values of GaugeTracker::write. The scratch is private to the
// call, laid out with stride W (not ld).
//
// How it vectorizes (g++ 12; details and measurements in the doc):
//  * every loop over lanes carries `omp simd` (or `GCC ivdep` without
//    OpenMP) and has the small fixed-size loops fully unrolled inside it;
//  * the guard kind is uniform over a call: the J builder is instantiated per
//    Guard value (a switch outside the lane loop), and inside the lane loop a
//    MatrixGuard with that constant kind is assembled from per-lane arrays, so
//    the switch inside MatrixGuard::coefficient folds away;
//  * matrix_guard (SpectrumScale's exponent and powers of two from the bits,
//    sqrt) is called once per lane in a separate small loop; its fields go to
//    per-lane arrays;
//  * absent cotangents and the rectangular complement terms are uniform
//    branches outside the lane loops (absent U^H gU / gVh V are zero-filled,
//    which gives the reference's zero numerators exactly);
//  * build with -fno-math-errno (as jacobi.h) and -ffp-contract=off (the
//    reference's rounding; csrc/cpu/isa/soa_isa.inc does this by pragma).
//
// Host+device, header-only: no ATen, no exceptions, no heap.
#pragma once

#include "guards.h"

#if defined(__CUDACC__)
#define SAFESVD_SOA_SIMD
#define SAFESVD_SOA_UNROLL _Pragma("unroll")
#elif defined(_OPENMP)
#define SAFESVD_SOA_SIMD _Pragma("omp simd")
#define SAFESVD_SOA_UNROLL _Pragma("GCC unroll 16")
#elif defined(__clang__)
#define SAFESVD_SOA_SIMD _Pragma("clang loop vectorize(enable)")
#define SAFESVD_SOA_UNROLL _Pragma("unroll")
#elif defined(__GNUC__)
#define SAFESVD_SOA_SIMD _Pragma("GCC ivdep")
#define SAFESVD_SOA_UNROLL _Pragma("GCC unroll 16")
#else
#define SAFESVD_SOA_SIMD
#define SAFESVD_SOA_UNROLL
#endif

namespace safesvd {
namespace kernels {
namespace soa_detail {

// The per-lane fields of MatrixGuard (guards.h), as arrays over the lanes.
template <int W, typename T>
struct LaneGuards {
  T f1[W], f2[W], tol[W], floor[W], noise[W], cap[W];

  // One lane's MatrixGuard, from matrix_guard (called per lane, once per matrix).
  SAFESVD_HD_INLINE void set(int l, const MatrixGuard<T>& g) {
    f1[l] = g.scale.f1;
    f2[l] = g.scale.f2;
    tol[l] = g.tol;
    floor[l] = g.floor;
    noise[l] = g.noise;
    cap[l] = g.cap;
  }
  // Lane l's MatrixGuard with the guard kind G (uniform, a constant, so that
  // the switch of MatrixGuard::coefficient folds inside the lane loops).
  template <Guard G>
  SAFESVD_HD_INLINE MatrixGuard<T> get(int l) const {
    MatrixGuard<T> g;
    g.guard = G;
    g.scale.f1 = f1[l];
    g.scale.f2 = f2[l];
    g.tol = tol[l];
    g.floor = floor[l];
    g.noise = noise[l];
    g.cap = cap[l];
    return g;
  }
};

// The per-lane state of GaugeTracker (guards.h). Each lane loop that notes
// loads a GaugeTracker, calls its note() in the reference's order, and stores
// it back.
template <int W, typename T>
struct LaneGauges {
  T residual[W], scale[W];
  int64_t i[W], j[W];

  SAFESVD_HD void init(const T* cotangent_scale) {
    SAFESVD_SOA_SIMD
    for (int l = 0; l < W; ++l) {
      const GaugeTracker<T> g;
      residual[l] = g.residual;
      scale[l] = cotangent_scale[l];
      i[l] = g.i;
      j[l] = g.j;
    }
  }
  SAFESVD_HD_INLINE GaugeTracker<T> get(int l) const {
    GaugeTracker<T> g;
    g.residual = residual[l];
    g.scale = scale[l];
    g.i = i[l];
    g.j = j[l];
    return g;
  }
  SAFESVD_HD_INLINE void put(int l, const GaugeTracker<T>& g) {
    residual[l] = g.residual;
    i[l] = g.i;
    j[l] = g.j;
  }
  // GaugeTracker::write per lane, to the three rows gauge[c * ld + l].
  SAFESVD_HD void write(T* gauge, int64_t ld) const {
    for (int l = 0; l < W; ++l) {
      T w[3];
      get(l).write(w);
      gauge[l] = w[0];
      gauge[ld + l] = w[1];
      gauge[2 * ld + l] = w[2];
    }
  }
};

// matmul with the rows R given at run time (rows), the inner dimension P and
// the columns C fixed: the row loop is the outer one, so nothing else changes.
// One lane loop per entry (i, j), its sum over p in a scalar: with the C sums of a
// row in a local array inside one lane loop, g++ 12 left some instances scalar in
// their units (matmul_rows<2, 2, 1, 2, 2, 1, 8, double>, U^T gU of the 2x2 float64
// backward: a third of that tile's time) though a copy of them alone vectorizes.
template <int P, int C, int ARS, int ACS, int BRS, int BCS, int W, typename T>
SAFESVD_HD void matmul_rows(int64_t rows, const T* __restrict__ A, int64_t ald, const T* __restrict__ B, int64_t bld,
                            T* __restrict__ Cm, int64_t cld) {
  for (int64_t i = 0; i < rows; ++i) {
    SAFESVD_SOA_UNROLL
    for (int j = 0; j < C; ++j) {
      SAFESVD_SOA_SIMD
      for (int l = 0; l < W; ++l) {
        T acc = T(0);
        SAFESVD_SOA_UNROLL
        for (int p = 0; p < P; ++p) acc += A[(i * ARS + p * ACS) * ald + l] * B[(p * BRS + j * BCS) * bld + l];
        Cm[(i * C + j) * cld + l] = acc;
      }
    }
  }
}

// C (R x C) = A (R x P) * B (P x C) per lane. Element (i, p) of A is at
// A[(i * ARS + p * ACS) * ALD + l] (ARS, ACS compile-time, so transposed
// operands are read in place), likewise B; C is row-major with stride CLD.
// The sum over p runs in ascending order from 0, as matmul_rows.
template <int R, int P, int C, int ARS, int ACS, int BRS, int BCS, int W, typename T>
SAFESVD_HD void matmul(const T* __restrict__ A, int64_t ald, const T* __restrict__ B, int64_t bld,
                       T* __restrict__ Cm, int64_t cld) {
  matmul_rows<P, C, ARS, ACS, BRS, BCS, W, T>(R, A, ald, B, bld, Cm, cld);
}

// matmul with every dimension given at run time and the strides (in elements,
// before the lane stride) too: the rectangular tiles' products over the long side
// (the inner dimension P) or into it (the columns C). The lane loop is the inner one
// and the sum over p runs in ascending order from 0, as matmul.
template <int W, typename T>
SAFESVD_HD void matmul_dyn(int64_t R, int64_t P, int64_t C, const T* __restrict__ A, int64_t ars, int64_t acs,
                           int64_t ald, const T* __restrict__ B, int64_t brs, int64_t bcs, int64_t bld,
                           T* __restrict__ Cm, int64_t cld) {
  for (int64_t i = 0; i < R; ++i)
    for (int64_t j = 0; j < C; ++j) {
      T acc[W];
      SAFESVD_SOA_SIMD
      for (int l = 0; l < W; ++l) acc[l] = T(0);
      for (int64_t p = 0; p < P; ++p) {
        const T* a = A + (i * ars + p * acs) * ald;
        const T* b = B + (p * brs + j * bcs) * bld;
        SAFESVD_SOA_SIMD
        for (int l = 0; l < W; ++l) acc[l] += a[l] * b[l];
      }
      SAFESVD_SOA_SIMD
      for (int l = 0; l < W; ++l) Cm[(i * C + j) * cld + l] = acc[l];
    }
}

// C (K x K) = A (K x P) * B (P x K) per lane with the inner dimension P (the long side
// of a rectangular tile) given at run time: the K x K products over the long side. The
// K sums of a row of C run together, each p ascending from 0 as matmul_dyn (the same
// value bit for bit), so a row of C is one pass over the long side with the K partial
// sums in registers (matmul_dyn reads A's row and a column of B once per entry of C).
template <int K, int W, typename T>
SAFESVD_HD void matmul_long_inner(int64_t P, const T* __restrict__ A, int64_t ars, int64_t acs, int64_t ald,
                                  const T* __restrict__ B, int64_t brs, int64_t bcs, int64_t bld,
                                  T* __restrict__ Cm) {
  for (int i = 0; i < K; ++i) {
    T acc[K][W];
    SAFESVD_SOA_UNROLL
    for (int j = 0; j < K; ++j) {
      SAFESVD_SOA_SIMD
      for (int l = 0; l < W; ++l) acc[j][l] = T(0);
    }
    for (int64_t p = 0; p < P; ++p) {
      const T* a = A + (i * ars + p * acs) * ald;
      SAFESVD_SOA_UNROLL
      for (int j = 0; j < K; ++j) {
        const T* b = B + (p * brs + j * bcs) * bld;
        SAFESVD_SOA_SIMD
        for (int l = 0; l < W; ++l) acc[j][l] += a[l] * b[l];
      }
    }
    SAFESVD_SOA_UNROLL
    for (int j = 0; j < K; ++j) {
      SAFESVD_SOA_SIMD
      for (int l = 0; l < W; ++l) Cm[(i * K + j) * W + l] = acc[j][l];
    }
  }
}

// out[l] = max_e |x[e * ld + l]| in the order of max_abs_entry / max_abs
// (max_of(running, |x|), e ascending), over E entries (E at run time).
template <int W, typename T>
SAFESVD_HD void lane_max_abs(int64_t E, const T* x, int64_t ld, T* out) {
  SAFESVD_SOA_SIMD
  for (int l = 0; l < W; ++l) out[l] = T(0);
  for (int64_t e = 0; e < E; ++e) {
    SAFESVD_SOA_SIMD
    for (int l = 0; l < W; ++l) out[l] = max_of(out[l], abs_of(x[e * ld + l]));
  }
}

template <int E, int W, typename T>
SAFESVD_HD void lane_zero(T* x) {
  for (int e = 0; e < E; ++e) {
    SAFESVD_SOA_SIMD
    for (int l = 0; l < W; ++l) x[e * W + l] = T(0);
  }
}

// The start of every tile backward and builder: per lane, matrix_guard of the spectrum's
// largest |value| (the k values at spectrum[i * ld + l]) and the cotangent scale cs (a
// loop over the lanes), into lane arrays, and the gauge trackers with scale cs.
template <int W, typename T>
SAFESVD_HD void lane_guards(const GuardParams<T>& params, int64_t k, const T* spectrum, int64_t ld, const T* cs,
                            int64_t dims, LaneGuards<W, T>& lg, LaneGauges<W, T>& lt) {
  T smax[W];
  lane_max_abs<W, T>(k, spectrum, ld, smax);
  for (int l = 0; l < W; ++l) lg.set(l, matrix_guard(params, smax[l], cs[l], dims));
  lt.init(cs);
}

// Entry (i, j), i != j, of the svd J of lane l (svd_build_J, real input), its
// gauge notes into `gauge`; UhgU, gVhV K x K with stride W, si = mg.scale(S_i). The
// reference's decision (guards.h); the CPU compiles this header without FMA
// contraction (csrc/cpu/isa/soa_isa.inc), so the value is the reference's bit for bit.
template <int W, typename T>
SAFESVD_HD_INLINE T svd_J_at(int l, int64_t i, int64_t j, int64_t K, const T* __restrict__ UhgU,
                             const T* __restrict__ gVhV, const T* S, int64_t ld, const MatrixGuard<T>& mg, T si,
                             GaugeTracker<T>& gauge) {
  const T a = UhgU[(i * K + j) * W + l] - UhgU[(j * K + i) * W + l];
  const T b = gVhV[(j * K + i) * W + l] - gVhV[(i * K + j) * W + l];
  return svd_J_entry(mg, a, b, si, mg.scale(S[j * ld + l]), gauge, i, j);
}
// Dr_i of lane l (the rectangular coefficient of svd_build_J) and its gauge note.
template <int W, typename T>
SAFESVD_HD_INLINE void svd_Dr_at(int l, int64_t i, const T* __restrict__ pmax, const MatrixGuard<T>& mg, T si,
                                 GaugeTracker<T>& gauge, T* __restrict__ Dr) {
  const T p = pmax[i * W + l];
  Dr[i * W + l] = mg.coefficient(si, p);
  if (mg.inside(si)) gauge.note(p, i, i);
}
// Entry (i, j), i != j, of the eigh J of lane l (eigh_build_J, real input); QhgQ N x N
// with stride W.
template <int W, typename T>
SAFESVD_HD_INLINE T eigh_J_at(int l, int64_t i, int64_t j, int64_t N, const T* __restrict__ QhgQ, const T* L,
                              int64_t ld, const MatrixGuard<T>& mg, GaugeTracker<T>& gauge) {
  const T a = T(0.5) * (QhgQ[(i * N + j) * W + l] - QhgQ[(j * N + i) * W + l]);
  return eigh_J_entry(mg, a, mg.scale(L[j * ld + l]) - mg.scale(L[i * ld + l]), gauge, i, j);
}

// Row i of the off-diagonal of J and, for RECT, Dr_i (svd_build_J of
// svd_backward.h, real input) of lane l, for guard G, with the gauge notes in
// svd_build_J's order: for each row i, the pairs (i, j), j ascending
// (|a + b| then |a - b|), then the zero singular value note of the row.
// UhgU, gVhV: K x K, stride W (zero-filled when absent); pmax, Dr: K per
// lane, stride W.
//
// A separate function, called from the lane loop: its MatrixGuard and
// GaugeTracker are ordinary locals after inlining (scalarized, then
// vectorized), whereas locals of an `omp simd` body whose address is taken
// (member calls) become arrays of structs, and the tracker's stores to them
// are scatters that stop the vectorization of the loop (g++ 12).
template <Guard G, bool RECT, int K, int W, typename T, int i>
SAFESVD_HD_INLINE void svd_J_row(int l, const T* __restrict__ UhgU, const T* __restrict__ gVhV, const T* S,
                          int64_t ld, const T* __restrict__ pmax, const LaneGuards<W, T>& lg, LaneGauges<W, T>& lt,
                          T* __restrict__ J, T* __restrict__ Dr) {
  const MatrixGuard<T> mg = lg.template get<G>(l);
  GaugeTracker<T> gauge = lt.get(l);
  const T si = mg.scale(S[i * ld + l]);
  SAFESVD_SOA_UNROLL
  for (int j = 0; j < K; ++j) {
    if (i == j) continue;
    J[(i * K + j) * W + l] = svd_J_at<W, T>(l, i, j, K, UhgU, gVhV, S, ld, mg, si, gauge);
  }
  if (RECT) svd_Dr_at<W, T>(l, i, pmax, mg, si, gauge, Dr);
  lt.put(l, gauge);
}

// Rows in order (the notes' order), each its own lane loop with the row index
// a constant (so that the diagonal skip folds; a runtime row index would be
// control flow inside the lane loop): the code grows with the K^2 pairs, not
// more. A recursive template instead of a loop: C++14, no lambdas (nvcc).
template <Guard G, bool RECT, int K, int W, typename T, int I>
struct SvdJRows {
  SAFESVD_HD static void run(const T* UhgU, const T* gVhV, const T* S, int64_t ld, const T* pmax,
                             const LaneGuards<W, T>& lg, LaneGauges<W, T>& lt, T* J, T* Dr) {
    SAFESVD_SOA_SIMD
    for (int l = 0; l < W; ++l) svd_J_row<G, RECT, K, W, T, I>(l, UhgU, gVhV, S, ld, pmax, lg, lt, J, Dr);
    SvdJRows<G, RECT, K, W, T, I + 1>::run(UhgU, gVhV, S, ld, pmax, lg, lt, J, Dr);
  }
};
template <Guard G, bool RECT, int K, int W, typename T>
struct SvdJRows<G, RECT, K, W, T, K> {
  SAFESVD_HD static void run(const T*, const T*, const T*, int64_t, const T*, const LaneGuards<W, T>&,
                             LaneGauges<W, T>&, T*, T*) {}
};

template <Guard G, bool RECT, int K, int W, typename T>
SAFESVD_HD void svd_J_offdiag(const T* UhgU, const T* gVhV, const T* S, int64_t ld, const T* pmax,
                              const LaneGuards<W, T>& lg, LaneGauges<W, T>& lt, T* J, T* Dr) {
  SvdJRows<G, RECT, K, W, T, 0>::run(UhgU, gVhV, S, ld, pmax, lg, lt, J, Dr);
}

template <bool RECT, int K, int W, typename T>
SAFESVD_HD void svd_J_offdiag_dispatch(Guard guard, const T* UhgU, const T* gVhV, const T* S, int64_t ld,
                                       const T* pmax, const LaneGuards<W, T>& lg, LaneGauges<W, T>& lt, T* J,
                                       T* Dr) {
  switch (guard) {
    case Guard::None:
      return svd_J_offdiag<Guard::None, RECT, K, W, T>(UhgU, gVhV, S, ld, pmax, lg, lt, J, Dr);
    case Guard::Lorentz:
      return svd_J_offdiag<Guard::Lorentz, RECT, K, W, T>(UhgU, gVhV, S, ld, pmax, lg, lt, J, Dr);
    case Guard::Clamp:
      return svd_J_offdiag<Guard::Clamp, RECT, K, W, T>(UhgU, gVhV, S, ld, pmax, lg, lt, J, Dr);
    case Guard::Pinv:
    default:
      return svd_J_offdiag<Guard::Pinv, RECT, K, W, T>(UhgU, gVhV, S, ld, pmax, lg, lt, J, Dr);
  }
}

// Row i of the off-diagonal of the eigh J (eigh_build_J, real input) of lane
// l for guard G, notes in its order (row-major pairs). QhgQ: N x N, stride W
// (zero-filled when absent). A separate function for the reason given at
// svd_J_row.
template <Guard G, int N, int W, typename T, int i>
SAFESVD_HD_INLINE void eigh_J_row(int l, const T* __restrict__ QhgQ, const T* L, int64_t ld,
                           const LaneGuards<W, T>& lg, LaneGauges<W, T>& lt, T* __restrict__ J) {
  const MatrixGuard<T> mg = lg.template get<G>(l);
  GaugeTracker<T> gauge = lt.get(l);
  SAFESVD_SOA_UNROLL
  for (int j = 0; j < N; ++j) {
    if (i == j) continue;
    J[(i * N + j) * W + l] = eigh_J_at<W, T>(l, i, j, N, QhgQ, L, ld, mg, gauge);
  }
  lt.put(l, gauge);
}

template <Guard G, int N, int W, typename T, int I>
struct EighJRows {
  SAFESVD_HD static void run(const T* QhgQ, const T* L, int64_t ld, const LaneGuards<W, T>& lg,
                             LaneGauges<W, T>& lt, T* J) {
    SAFESVD_SOA_SIMD
    for (int l = 0; l < W; ++l) eigh_J_row<G, N, W, T, I>(l, QhgQ, L, ld, lg, lt, J);
    EighJRows<G, N, W, T, I + 1>::run(QhgQ, L, ld, lg, lt, J);
  }
};
template <Guard G, int N, int W, typename T>
struct EighJRows<G, N, W, T, N> {
  SAFESVD_HD static void run(const T*, const T*, int64_t, const LaneGuards<W, T>&, LaneGauges<W, T>&, T*) {}
};

template <Guard G, int N, int W, typename T>
SAFESVD_HD void eigh_J_offdiag(const T* QhgQ, const T* L, int64_t ld, const LaneGuards<W, T>& lg,
                               LaneGauges<W, T>& lt, T* J) {
  EighJRows<G, N, W, T, 0>::run(QhgQ, L, ld, lg, lt, J);
}

template <int N, int W, typename T>
SAFESVD_HD void eigh_J_offdiag_dispatch(Guard guard, const T* QhgQ, const T* L, int64_t ld,
                                        const LaneGuards<W, T>& lg, LaneGauges<W, T>& lt, T* J) {
  switch (guard) {
    case Guard::None: return eigh_J_offdiag<Guard::None, N, W, T>(QhgQ, L, ld, lg, lt, J);
    case Guard::Lorentz: return eigh_J_offdiag<Guard::Lorentz, N, W, T>(QhgQ, L, ld, lg, lt, J);
    case Guard::Clamp: return eigh_J_offdiag<Guard::Clamp, N, W, T>(QhgQ, L, ld, lg, lt, J);
    case Guard::Pinv:
    default: return eigh_J_offdiag<Guard::Pinv, N, W, T>(QhgQ, L, ld, lg, lt, J);
  }
}

// J's diagonal: gS (or 0 when absent).
template <int K, int W, typename T>
SAFESVD_HD void set_J_diagonal(const T* gS, int64_t ld, T* J) {
  for (int i = 0; i < K; ++i) {
    if (gS) {
      SAFESVD_SOA_SIMD
      for (int l = 0; l < W; ++l) J[(i * K + i) * W + l] = gS[i * ld + l];
    } else {
      SAFESVD_SOA_SIMD
      for (int l = 0; l < W; ++l) J[(i * K + i) * W + l] = T(0);
    }
  }
}

// One lane's svd J entry (i, j) / Dr_i of the run-time builder below, its guard and
// tracker ordinary locals (see svd_J_row).
template <Guard G, int W, typename T>
SAFESVD_HD_INLINE void svd_J_cell(int l, int64_t i, int64_t j, int64_t k, const T* UhgU, const T* gVhV,
                                  const T* S, const LaneGuards<W, T>& lg, LaneGauges<W, T>& lt, T* J) {
  const MatrixGuard<T> mg = lg.template get<G>(l);
  GaugeTracker<T> gauge = lt.get(l);
  J[(i * k + j) * W + l] = svd_J_at<W, T>(l, i, j, k, UhgU, gVhV, S, W, mg, mg.scale(S[i * W + l]), gauge);
  lt.put(l, gauge);
}
template <Guard G, int W, typename T>
SAFESVD_HD_INLINE void svd_Dr_cell(int l, int64_t i, const T* S, const T* pmax, const LaneGuards<W, T>& lg,
                                   LaneGauges<W, T>& lt, T* Dr) {
  const MatrixGuard<T> mg = lg.template get<G>(l);
  GaugeTracker<T> gauge = lt.get(l);
  svd_Dr_at<W, T>(l, i, pmax, mg, mg.scale(S[i * W + l]), gauge, Dr);
  lt.put(l, gauge);
}
template <Guard G, int W, typename T>
SAFESVD_HD_INLINE void eigh_J_cell(int l, int64_t i, int64_t j, int64_t n, const T* QhgQ, const T* L,
                                   const LaneGuards<W, T>& lg, LaneGauges<W, T>& lt, T* J) {
  const MatrixGuard<T> mg = lg.template get<G>(l);
  GaugeTracker<T> gauge = lt.get(l);
  J[(i * n + j) * W + l] = eigh_J_at<W, T>(l, i, j, n, QhgQ, L, W, mg, gauge);
  lt.put(l, gauge);
}

// J_ii = g_i (gS or gL, stride W), or 0 when absent.
template <int W, typename T>
SAFESVD_HD_INLINE void diagonal_entry(int64_t k, int64_t i, const T* g, T* J) {
  SAFESVD_SOA_SIMD
  for (int l = 0; l < W; ++l) J[(i * k + i) * W + l] = g ? g[i * W + l] : T(0);
}

// J (and Dr) of the svd for guard G, k at run time: the entries (i, j) in row-major
// order, each a lane loop, then Dr_i at the end of row i: svd_build_J's notes' order.
template <Guard G, int W, typename T>
SAFESVD_HD void svd_build_J_rows(int64_t k, const T* UhgU, const T* gVhV, const T* S, const T* gS,
                                 const T* pmax, const LaneGuards<W, T>& lg, LaneGauges<W, T>& lt, T* J, T* Dr) {
  for (int64_t i = 0; i < k; ++i) {
    for (int64_t j = 0; j < k; ++j) {
      if (i == j) {
        diagonal_entry<W, T>(k, i, gS, J);
        continue;
      }
      SAFESVD_SOA_SIMD
      for (int l = 0; l < W; ++l) svd_J_cell<G, W, T>(l, i, j, k, UhgU, gVhV, S, lg, lt, J);
    }
    if (pmax) {
      SAFESVD_SOA_SIMD
      for (int l = 0; l < W; ++l) svd_Dr_cell<G, W, T>(l, i, S, pmax, lg, lt, Dr);
    }
  }
}
template <Guard G, int W, typename T>
SAFESVD_HD void eigh_build_J_rows(int64_t n, const T* QhgQ, const T* L, const T* gL, const LaneGuards<W, T>& lg,
                                  LaneGauges<W, T>& lt, T* J) {
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      if (i == j) {
        diagonal_entry<W, T>(n, i, gL, J);
        continue;
      }
      SAFESVD_SOA_SIMD
      for (int l = 0; l < W; ++l) eigh_J_cell<G, W, T>(l, i, j, n, QhgQ, L, lg, lt, J);
    }
}

}  // namespace soa_detail

// The long side of svd_backward_tile given at run time: M = kLongSide (tall, K = N)
// or N = kLongSide (wide, K = M), its length the argument long_side (> K).
constexpr int kLongSide = 0;

// Scratch (in T) of svd_backward_tile for an m x n tile of W lanes: U^H gU, gVh V,
// J (K x K each) and the product buffer (max(m, n) x K), each with stride W.
SAFESVD_HD constexpr int64_t svd_backward_tile_scratch_size(int64_t m, int64_t n, int64_t W) {
  return (3 * (m < n ? m : n) * (m < n ? m : n) + (m > n ? m : n) * (m < n ? m : n)) * W;
}
template <int M, int N, int W>
SAFESVD_HD constexpr int64_t svd_backward_tile_scratch() {
  return svd_backward_tile_scratch_size(M, N, W);
}
// Scratch of eigh_backward_tile<N, W, T>: Q^H gQ and J (N x N each), stride W.
template <int N, int W>
SAFESVD_HD constexpr int64_t eigh_backward_tile_scratch() {
  return int64_t(2 * N * N) * W;
}

// gA (M x N per lane) and the gauge rows for W matrices A = U diag(S) Vh,
// K = min(M, N): U M x K, Vh K x N, gU like U, gVh like Vh (null when absent),
// S and gS K per lane (gS null when absent). svd_backward_matrix's formula:
//   gA = [U (J - UhgU D) + gU D] Vh (M > N),  U [(J - D gVhV) Vh + D gVh] (M <= N),
// the D terms only when that cotangent is present (docs/math.md, "SVD backward").
// One of M, N may be kLongSide: that side's length is long_side (> the other), so one
// instance serves every tall (or wide) shape with that short side; the products over
// the long side then loop at run time, in the same order.
template <int M, int N, int W, typename T>
SAFESVD_HD void svd_backward_tile(const T* U, const T* Vh, const T* gU, const T* gVh, const T* S, const T* gS,
                                  const GuardParams<T>& params, T* gA, T* gauge, int64_t ld, T* scratch,
                                  int64_t long_side = 0) {
  static_assert(M >= 0 && N >= 0 && (M > 0 || N > 0) && W >= 1, "M, N >= 1 (one may be kLongSide), W >= 1");
  using namespace soa_detail;
  constexpr bool dyn_m = M == kLongSide, dyn_n = N == kLongSide;
  constexpr int K = dyn_m ? N : dyn_n ? M : (M < N ? M : N);
  constexpr bool tall = dyn_m || (!dyn_n && M > K), wide = dyn_n || (!dyn_m && N > K);
  const int64_t m = dyn_m ? long_side : M, n = dyn_n ? long_side : N;
  T* UhgU = scratch;
  T* gVhV = UhgU + K * K * W;
  T* J = gVhV + K * K * W;
  T* X = J + K * K * W;  // m x K (tall) or K x n

  // U^H gU (K x K) = U^T gU; gVh V = gVh Vh^T. Zero when absent: the numerators
  // a, b are then exactly the reference's scalar_t(0).
  if (!gU)
    lane_zero<K * K, W, T>(UhgU);
  else if constexpr (dyn_m)
    matmul_long_inner<K, W, T>(m, U, 1, K, ld, gU, K, 1, ld, UhgU);
  else
    matmul<K, M, K, 1, K, K, 1, W, T>(U, ld, gU, ld, UhgU, W);
  if (!gVh)
    lane_zero<K * K, W, T>(gVhV);
  else if constexpr (dyn_n)
    matmul_long_inner<K, W, T>(n, gVh, n, 1, ld, Vh, 1, n, ld, gVhV);
  else
    matmul<K, N, K, N, 1, 1, N, W, T>(gVh, ld, Vh, ld, gVhV, W);

  // Cotangent scale max|gU| + max|gVh|, per-lane guards.
  T cu[W], cv[W], cs[W];
  SAFESVD_SOA_SIMD
  for (int l = 0; l < W; ++l) cu[l] = cv[l] = T(0);
  if (gU) lane_max_abs<W, T>(m * K, gU, ld, cu);
  if (gVh) lane_max_abs<W, T>(K * n, gVh, ld, cv);
  SAFESVD_SOA_SIMD
  for (int l = 0; l < W; ++l) cs[l] = cu[l] + cv[l];
  LaneGuards<W, T> lg;
  LaneGauges<W, T> lt;
  lane_guards<W, T>(params, K, S, ld, cs, m + n, lg, lt);

  // pmax_j: the largest entry of the complement part of the cotangent of
  // vector j, where S_j is inside the tolerance (else 0, as the reference).
  const bool rect_u = tall && gU, rect_v = wide && gVh;
  T pmax[K * W], Dr[K * W];
  if (rect_u || rect_v) {
    for (int j = 0; j < K; ++j) {
      int any = 0;
      for (int l = 0; l < W; ++l) {
        const MatrixGuard<T> mg = lg.template get<Guard::Pinv>(l);
        pmax[j * W + l] = T(0);
        any |= int(mg.inside(mg.scale(S[j * ld + l])));
      }
      if (!any) continue;  // uniform: no lane needs column j
      T mx[W];
      SAFESVD_SOA_SIMD
      for (int l = 0; l < W; ++l) mx[l] = T(0);
      if constexpr (tall) {  // then rect_u (tall and wide exclude each other)
        for (int64_t r = 0; r < m; ++r) {
          SAFESVD_SOA_SIMD
          for (int l = 0; l < W; ++l) {
            T proj = gU[(r * K + j) * ld + l];
            SAFESVD_SOA_UNROLL
            for (int p = 0; p < K; ++p) proj -= U[(r * K + p) * ld + l] * UhgU[(p * K + j) * W + l];
            mx[l] = max_of(mx[l], abs_of(proj));
          }
        }
      } else {
        for (int64_t c = 0; c < n; ++c) {
          SAFESVD_SOA_SIMD
          for (int l = 0; l < W; ++l) {
            T proj = gVh[(j * n + c) * ld + l];
            SAFESVD_SOA_UNROLL
            for (int p = 0; p < K; ++p) proj -= gVhV[(j * K + p) * W + l] * Vh[(p * n + c) * ld + l];
            mx[l] = max_of(mx[l], abs_of(proj));
          }
        }
      }
      SAFESVD_SOA_SIMD
      for (int l = 0; l < W; ++l) {
        const MatrixGuard<T> mg = lg.template get<Guard::Pinv>(l);
        pmax[j * W + l] = mg.inside(mg.scale(S[j * ld + l])) ? mx[l] : T(0);
      }
    }
  }

  set_J_diagonal<K, W, T>(gS, ld, J);
  if (rect_u || rect_v)
    svd_J_offdiag_dispatch<true, K, W, T>(params.guard, UhgU, gVhV, S, ld, pmax, lg, lt, J, Dr);
  else
    svd_J_offdiag_dispatch<false, K, W, T>(params.guard, UhgU, gVhV, S, ld, pmax, lg, lt, J, Dr);

  if constexpr (tall) {
    if (rect_u) {
      for (int i = 0; i < K; ++i) {
        SAFESVD_SOA_SIMD
        for (int l = 0; l < W; ++l)
          SAFESVD_SOA_UNROLL
          for (int j = 0; j < K; ++j)
            J[(i * K + j) * W + l] -= lg.template get<Guard::Pinv>(l).scale(UhgU[(i * K + j) * W + l]) * Dr[j * W + l];
      }
    }
    matmul_rows<K, K, K, 1, K, 1, W, T>(m, U, ld, J, W, X, W);  // X = U J'
    if (rect_u) {
      for (int64_t r = 0; r < m; ++r) {
        SAFESVD_SOA_SIMD
        for (int l = 0; l < W; ++l)
          SAFESVD_SOA_UNROLL
          for (int j = 0; j < K; ++j)
            X[(r * K + j) * W + l] += lg.template get<Guard::Pinv>(l).scale(gU[(r * K + j) * ld + l]) * Dr[j * W + l];
      }
    }
    matmul_rows<K, K, K, 1, K, 1, W, T>(m, X, W, Vh, ld, gA, ld);  // gA = X Vh (N = K)
  } else {
    if (rect_v) {
      for (int i = 0; i < K; ++i) {
        SAFESVD_SOA_SIMD
        for (int l = 0; l < W; ++l)
          SAFESVD_SOA_UNROLL
          for (int j = 0; j < K; ++j)
            J[(i * K + j) * W + l] -= Dr[i * W + l] * lg.template get<Guard::Pinv>(l).scale(gVhV[(i * K + j) * W + l]);
      }
    }
    if constexpr (dyn_n)  // Y = J' Vh
      matmul_dyn<W, T>(K, K, n, J, K, 1, W, Vh, n, 1, ld, X, W);
    else
      matmul<K, K, N, K, 1, N, 1, W, T>(J, W, Vh, ld, X, W);
    if (rect_v) {
      for (int i = 0; i < K; ++i)
        for (int64_t c = 0; c < n; ++c) {
          SAFESVD_SOA_SIMD
          for (int l = 0; l < W; ++l)
            X[(i * n + c) * W + l] += Dr[i * W + l] * lg.template get<Guard::Pinv>(l).scale(gVh[(i * n + c) * ld + l]);
        }
    }
    if constexpr (dyn_n)  // gA = U Y (M = K)
      matmul_dyn<W, T>(K, K, n, U, K, 1, ld, X, n, 1, W, gA, ld);
    else
      matmul<K, K, N, K, 1, N, 1, W, T>(U, ld, X, W, gA, ld);
  }
  lt.write(gauge, ld);
}

// gA = Q J Q^H (N x N per lane) and the gauge rows for W matrices
// A = Q diag(L) Q^H; gL, gQ null when absent (eigh_backward_matrix).
template <int N, int W, typename T>
SAFESVD_HD void eigh_backward_tile(const T* Q, const T* gQ, const T* L, const T* gL, const GuardParams<T>& params,
                                   T* gA, T* gauge, int64_t ld, T* scratch) {
  static_assert(N >= 1 && W >= 1, "N, W >= 1");
  using namespace soa_detail;
  T* QhgQ = scratch;
  T* J = QhgQ + N * N * W;
  if (gQ)
    matmul<N, N, N, 1, N, N, 1, W, T>(Q, ld, gQ, ld, QhgQ, W);
  else
    lane_zero<N * N, W, T>(QhgQ);
  T cs[W];
  SAFESVD_SOA_SIMD
  for (int l = 0; l < W; ++l) cs[l] = T(0);
  if (gQ) lane_max_abs<W, T>(N * N, gQ, ld, cs);
  LaneGuards<W, T> lg;
  LaneGauges<W, T> lt;
  lane_guards<W, T>(params, N, L, ld, cs, 2 * N, lg, lt);
  set_J_diagonal<N, W, T>(gL, ld, J);
  eigh_J_offdiag_dispatch<N, W, T>(params.guard, QhgQ, L, ld, lg, lt, J);
  // gA = Q (J Q^H); J Q^H into the Q^H gQ buffer.
  matmul<N, N, N, N, 1, 1, N, W, T>(J, W, Q, ld, QhgQ, W);
  matmul<N, N, N, N, 1, N, 1, W, T>(Q, ld, QhgQ, W, gA, ld);
  lt.write(gauge, ld);
}

// The builders of the batched path (SvdBuildJOp / EighBuildJOp of batch_ops.h, real
// input) over a tile of W matrices, the size k (n) at run time: the same decisions in
// the same order, so the same J, Dr, scale factors and gauge rows bit for bit. Inputs
// and outputs with stride W: UhgU, gVhV (QhgQ) k x k, zero-filled when absent; S, gS,
// pmax, Dr k per lane (gS, pmax null when absent; Dr written when pmax is given); cs
// the cotangent scale (one per lane); factors two rows (f1, f2 of the spectrum scale);
// gauge three rows. dims as matrix_guard's (m + n for the svd).
template <int W, typename T>
SAFESVD_HD void svd_build_J_tile(int64_t k, int64_t dims, const T* UhgU, const T* gVhV, const T* S, const T* gS,
                                 const T* pmax, const T* cs, const GuardParams<T>& params, T* J, T* Dr, T* factors,
                                 T* gauge) {
  using namespace soa_detail;
  LaneGuards<W, T> lg;
  LaneGauges<W, T> lt;
  lane_guards<W, T>(params, k, S, W, cs, dims, lg, lt);
  switch (params.guard) {
    case Guard::None: svd_build_J_rows<Guard::None, W, T>(k, UhgU, gVhV, S, gS, pmax, lg, lt, J, Dr); break;
    case Guard::Lorentz: svd_build_J_rows<Guard::Lorentz, W, T>(k, UhgU, gVhV, S, gS, pmax, lg, lt, J, Dr); break;
    case Guard::Clamp: svd_build_J_rows<Guard::Clamp, W, T>(k, UhgU, gVhV, S, gS, pmax, lg, lt, J, Dr); break;
    case Guard::Pinv:
    default: svd_build_J_rows<Guard::Pinv, W, T>(k, UhgU, gVhV, S, gS, pmax, lg, lt, J, Dr); break;
  }
  SAFESVD_SOA_SIMD
  for (int l = 0; l < W; ++l) {
    factors[l] = lg.f1[l];
    factors[W + l] = lg.f2[l];
  }
  lt.write(gauge, W);
}
template <int W, typename T>
SAFESVD_HD void eigh_build_J_tile(int64_t n, const T* QhgQ, const T* L, const T* gL, const T* cs,
                                  const GuardParams<T>& params, T* J, T* gauge) {
  using namespace soa_detail;
  LaneGuards<W, T> lg;
  LaneGauges<W, T> lt;
  lane_guards<W, T>(params, n, L, W, cs, 2 * n, lg, lt);
  switch (params.guard) {
    case Guard::None: eigh_build_J_rows<Guard::None, W, T>(n, QhgQ, L, gL, lg, lt, J); break;
    case Guard::Lorentz: eigh_build_J_rows<Guard::Lorentz, W, T>(n, QhgQ, L, gL, lg, lt, J); break;
    case Guard::Clamp: eigh_build_J_rows<Guard::Clamp, W, T>(n, QhgQ, L, gL, lg, lt, J); break;
    case Guard::Pinv:
    default: eigh_build_J_rows<Guard::Pinv, W, T>(n, QhgQ, L, gL, lg, lt, J); break;
  }
  lt.write(gauge, W);
}

}  // namespace kernels
}  // namespace safesvd

#undef SAFESVD_SOA_SIMD
#undef SAFESVD_SOA_UNROLL
