// Loading strided batched matrices into the lane tiles of the SIMD kernels (element e of
// lane l at tile[e * W + l]; jacobi.h, soa_backward.h, tall_svd.h, mid_svd.h). Host+device
// template, no ATen. The CPU's instruction-set units include it inside a namespace of their
// own (through jacobi_tiles.h, or csrc/cpu/isa/soa_isa.inc), so each ISA has its own copy.
#pragma once

#include <cstdint>

#include "strided.h"

// A function whose lane loops must stay scalar: the CPU's store loops, where g++ would
// vectorize the stores to W matrices into a scatter.
#if defined(__GNUC__) && !defined(__clang__) && !defined(__CUDACC__)
#define SAFESVD_SCALAR_LANES __attribute__((optimize("no-tree-vectorize")))
#else
#define SAFESVD_SCALAR_LANES
#endif

// Always inlined on the host: g++ 12 takes a function whose only effect is
// __builtin_prefetch for one without side effects and deletes a call to it that it
// did not inline first (a prefetch helper called from a template compiled to nothing).
#if defined(__GNUC__) && !defined(__CUDACC__)
#define SAFESVD_PREFETCH_INLINE __attribute__((always_inline)) inline
#else
#define SAFESVD_PREFETCH_INLINE SAFESVD_HD
#endif

namespace safesvd {
namespace kernels {

// Ask the CPU for the cache lines of [p, p + bytes) ahead of their use (Write: for
// writing), where the span is at most kPrefetchBytes; nothing otherwise, and nothing on
// the GPU. The SoA backward asks for the next tile's gA this way, and its tall / wide tile
// loop for the next tile's inputs (prefetch_next_tile; csrc/cpu/isa/soa_isa.inc,
// docs/soa_backward.md "Prefetching").
constexpr int64_t kPrefetchBytes = 4096;
constexpr int64_t kCacheLineBytes = 64;
template <bool Write>
SAFESVD_PREFETCH_INLINE void prefetch_span(const void* p, int64_t bytes) {
#if !defined(__CUDA_ARCH__) && defined(__GNUC__)
  if (bytes <= 0 || bytes > kPrefetchBytes) return;
  const char* c = static_cast<const char*>(p);
  for (int64_t o = 0; o < bytes; o += kCacheLineBytes) __builtin_prefetch(c + o, Write ? 1 : 0);
#else
  (void)p;
  (void)bytes;
#endif
}

// The inputs of the next tile of a batch (matrices b0 + W .. b0 + 2W - 1, when they are
// all inside the batch), asked for before the loads of tile b0: each input a span of W
// matrix strides, which holds the tile exactly where the batch is dense and is skipped
// (prefetch_span) where it is over kPrefetchBytes, zero (a broadcast input) or negative.
template <int W, typename T, typename... Refs>
SAFESVD_PREFETCH_INLINE void prefetch_next_tile(int64_t b0, int64_t B, const Refs&... refs) {
  if (b0 + 2 * W > B) return;
  // refs: ::safesvd::kernels::BatchedRef<T>; an absent one (null) gives a zero span.
  (prefetch_span<false>(refs.p ? refs.p + (b0 + W) * refs.sb : refs.p,
                        refs.p ? W * refs.sb * int64_t(sizeof(T)) : 0),
   ...);
}

// Matrices b0 .. b0 + W - 1 of a batch at p (matrix stride sb; lanes past the end, b >= B,
// repeat its last matrix: their results are computed and dropped), R x C with element
// (i, j) at i * rs + j * cs, into the tile: element (i, j) of lane l at
// dst[(i * drs + j * dcs) * W + l]. Entry by entry in the order of the source's smaller
// stride, the lanes innermost: every tile line is written whole at once and every source
// read in order (W streams). Lane by lane instead, each entry missed its tile line: the
// transposes were most of the time of the 256x8 backward (docs/soa_backward.md).
template <int W, typename T>
SAFESVD_HD void load_lanes(const T* p, int64_t sb, int64_t rs, int64_t cs, int64_t R, int64_t C, int64_t b0,
                           int64_t B, int64_t drs, int64_t dcs, T* __restrict__ dst) {
  const T* src[W];
  for (int l = 0; l < W; ++l) src[l] = p + (b0 + l < B ? b0 + l : B - 1) * sb;
  const bool rows_inner = rs <= cs;  // column-major source: down the columns
  const int64_t outer = rows_inner ? C : R, inner = rows_inner ? R : C;
  for (int64_t x = 0; x < outer; ++x)
    for (int64_t y = 0; y < inner; ++y) {
      const int64_t i = rows_inner ? y : x, j = rows_inner ? x : y;
      T* d = dst + (i * drs + j * dcs) * W;
      const int64_t o = i * rs + j * cs;
      for (int l = 0; l < W; ++l) d[l] = src[l][o];
    }
}

// The reverse of load_lanes: element (i, j) of lane l of the tile (at
// src[(i * srs + j * scs) * W + l]) to matrix b0 + l of the batch at p (matrix stride sb,
// element (i, j) at i * rs + j * cs), for the lanes inside the batch (b0 + l < B). In the
// order of the destination's smaller stride, the lanes innermost: each tile line is read
// once and each destination written in order (W streams). Lane by lane, a tile larger
// than the L1 cache was read W times over from L2 (the tall svd's U, the rectangular
// backward's gA).
//
// At most kStoreStreams destinations at a time (a tile of 16 float lanes goes in two
// passes): matrices of a batch often lie a multiple of 4 KiB apart, and 16 streams at such
// a stride compete for one L1 set of 12 ways, evicting each other's lines. Not
// vectorized (SAFESVD_SCALAR_LANES): over the lanes, g++ 12 made the stores a scatter
// (vscatterqps). The 256x8 float32 svd forward (B = 5000, 2 threads): 31 ms with 16
// vectorized streams, 19.6 with eight, 17.9 with eight scalar ones.
constexpr int kStoreStreams = 8;
template <int W, typename T>
SAFESVD_HD SAFESVD_SCALAR_LANES void store_lanes(const T* __restrict__ src, int64_t srs, int64_t scs, int64_t R,
                                                 int64_t C, T* p, int64_t sb, int64_t rs, int64_t cs, int64_t b0,
                                                 int64_t B) {
  const int lanes = B - b0 < W ? int(B - b0) : W;
  const bool rows_inner = rs <= cs;
  const int64_t outer = rows_inner ? C : R, inner = rows_inner ? R : C;
  for (int l0 = 0; l0 < lanes; l0 += kStoreStreams) {
    const int l1 = lanes - l0 < kStoreStreams ? lanes : l0 + kStoreStreams;
    T* dst[W];
    for (int l = l0; l < l1; ++l) dst[l] = p + (b0 + l) * sb;
    for (int64_t x = 0; x < outer; ++x)
      for (int64_t y = 0; y < inner; ++y) {
        const int64_t i = rows_inner ? y : x, j = rows_inner ? x : y;
        const T* s = src + (i * srs + j * scs) * W;
        const int64_t o = i * rs + j * cs;
        for (int l = l0; l < l1; ++l) dst[l][o] = s[l];
      }
  }
}

}  // namespace kernels
}  // namespace safesvd
