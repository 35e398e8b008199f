// Moving matrices between strided batched tensors and the structure-of-arrays
// tiles of jacobi.h (element e of lane l at tile[e * W + l]). Templates only:
// the CPU's ISA-specific translation units include this inside their own
// namespace (csrc/cpu/isa/jacobi_band.inc), so each ISA has its own instantiations;
// the batch types are therefore named with their full ::safesvd::kernels path.
#pragma once

#include "jacobi_batch.h"
#include "lane_tiles.h"

namespace safesvd {
namespace kernels {

// Load lanes [b0, b0 + W) (clamped to the last matrix) of an M x N tile: A
// itself, or A^T when the batch is wide (then A is N x M).
template <int M, int N, int W, typename T>
SAFESVD_HD void load_svd_tile(const ::safesvd::kernels::SvdBatch<T>& a, int64_t b0, T* tile) {
  const bool t = a.m < a.n;
  for (int l = 0; l < W; ++l) {
    const int64_t b = b0 + l < a.B ? b0 + l : a.B - 1;
    const T* src = a.A.p + b * a.A.sb;
    for (int i = 0; i < M; ++i)
      for (int j = 0; j < N; ++j)
        tile[(i * N + j) * W + l] = t ? src[j * a.A.rs + i * a.A.cs] : src[i * a.A.rs + j * a.A.cs];
  }
}

// Store lanes of the tile outputs Ut (M x UC), St (N), Vt (N x N) into U, S, Vh.
// Tall: U = Ut, Vh = Vt^T. Wide (A^T = Ut S Vt^T): U = Vt, Vh = Ut^T.
// U and Vh are written column-major, LAPACK's layout, so that the operator's output
// strides do not depend on the driver (its fake kernel promises them).
template <int M, int N, int UC, int W, typename T>
SAFESVD_HD void store_svd_tile(const ::safesvd::kernels::SvdBatch<T>& a, int64_t b0, const T* Ut, const T* St, const T* Vt,
                               const int* info) {
  const bool t = a.m < a.n;
  const int64_t ucols = t ? N : UC, vrows = t ? UC : N;  // columns of U, rows of Vh in the output
  for (int l = 0; l < W && b0 + l < a.B; ++l) {
    const int64_t b = b0 + l;
    T* u = a.U + b * a.m * ucols;
    T* vh = a.Vh + b * vrows * a.n;
    for (int j = 0; j < N; ++j) a.S[b * N + j] = St[j * W + l];
    // Element (i, j) of U (m x ucols) at u[j * m + i]; of Vh (vrows x n) at vh[j * vrows + i].
    if (!t) {
      for (int i = 0; i < M; ++i)
        for (int j = 0; j < UC; ++j) u[j * M + i] = Ut[(i * UC + j) * W + l];
      for (int i = 0; i < N; ++i)
        for (int j = 0; j < N; ++j) vh[j * N + i] = Vt[(j * N + i) * W + l];
    } else {
      for (int i = 0; i < N; ++i)
        for (int j = 0; j < N; ++j) u[j * N + i] = Vt[(i * N + j) * W + l];
      for (int i = 0; i < UC; ++i)
        for (int j = 0; j < M; ++j) vh[j * UC + i] = Ut[(j * UC + i) * W + l];
    }
    a.info[b] = info[l];
  }
}

// The tall path (tall_svd.h): lanes [b0, b0 + W) (clamped to the last matrix) of an
// M x N column-major tile, element (i, j) at tile[(j * M + i) * W + l], M = max(m, n),
// N = min(m, n): A itself, or A^T when the batch is wide.
template <int N, int W, typename T>
SAFESVD_HD void load_tall_tile(const ::safesvd::kernels::SvdBatch<T>& a, int64_t b0, T* tile) {
  const bool t = a.m < a.n;
  const int64_t M = t ? a.n : a.m;
  const int64_t si = t ? a.A.cs : a.A.rs, sj = t ? a.A.rs : a.A.cs;  // strides along i (long side), j
  load_lanes<W, T>(a.A.p, a.A.sb, si, sj, M, N, b0, a.B, 1, M, tile);
}

// Store the tall path's outputs Ut (M x N, column-major lanes), St (N), Vt (N x N,
// row-major lanes) into U, S, Vh (column-major, thin). Tall: U = Ut, Vh = Vt^T. Wide
// (A^T = Ut S Vt^T): U = Vt, Vh = Ut^T.
template <int N, int W, typename T>
SAFESVD_HD void store_tall_tile(const ::safesvd::kernels::SvdBatch<T>& a, int64_t b0, const T* Ut, const T* St,
                                const T* Vt, const int* info) {
  const bool t = a.m < a.n;
  const int64_t M = t ? a.n : a.m;
  // U (m x N) and Vh (N x n) column-major; Ut(i, j) at (j * M + i), Vt(i, j) at (i * N + j).
  if (!t) {
    store_lanes<W, T>(Ut, 1, M, M, N, a.U, a.m * N, 1, M, b0, a.B);  // U = Ut
    store_lanes<W, T>(Vt, N, 1, N, N, a.Vh, N * N, N, 1, b0, a.B);   // Vh(i, j) = Vt(j, i)
  } else {
    store_lanes<W, T>(Vt, N, 1, N, N, a.U, N * N, 1, N, b0, a.B);    // U = Vt
    store_lanes<W, T>(Ut, M, 1, N, M, a.Vh, N * a.n, 1, N, b0, a.B); // Vh(i, j) = Ut(j, i)
  }
  for (int l = 0; l < W && b0 + l < a.B; ++l) {
    const int64_t b = b0 + l;
    for (int j = 0; j < N; ++j) a.S[b * N + j] = St[j * W + l];
    a.info[b] = info[l];
  }
}

// Load the UPLO triangle of lanes of an N x N tile, mirrored into a full symmetric tile.
template <int N, int W, typename T>
SAFESVD_HD void load_eigh_tile(const ::safesvd::kernels::EighBatch<T>& a, int64_t b0, T* tile) {
  for (int l = 0; l < W; ++l) {
    const int64_t b = b0 + l < a.B ? b0 + l : a.B - 1;
    const T* src = a.A.p + b * a.A.sb;
    for (int i = 0; i < N; ++i)
      for (int j = 0; j <= i; ++j) {
        const T v = a.lower ? src[i * a.A.rs + j * a.A.cs] : src[j * a.A.rs + i * a.A.cs];
        tile[(i * N + j) * W + l] = v;
        tile[(j * N + i) * W + l] = v;
      }
  }
}

template <int N, int W, typename T>
SAFESVD_HD void store_eigh_tile(const ::safesvd::kernels::EighBatch<T>& a, int64_t b0, const T* Lt, const T* Qt, const int* info) {
  for (int l = 0; l < W && b0 + l < a.B; ++l) {
    const int64_t b = b0 + l;
    for (int j = 0; j < N; ++j) a.L[b * N + j] = Lt[j * W + l];
    T* q = a.Q + b * N * N;  // column-major, LAPACK's layout (see store_svd_tile)
    for (int i = 0; i < N; ++i)
      for (int j = 0; j < N; ++j) q[j * N + i] = Qt[(i * N + j) * W + l];
    a.info[b] = info[l];
  }
}

}  // namespace kernels
}  // namespace safesvd
