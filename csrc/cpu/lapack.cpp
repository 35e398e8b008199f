// LAPACK's gesdd / syevd called directly (csrc/cpu/lapack.h, docs/architecture.md,
// "LAPACK on the CPU"). Each step is the one torch's CPU linalg_svd / linalg_eigh takes
// (torch 2.x; tests/test_lapack_parallel.py holds us to it bit for bit): the same working copy
// of the input (matrices column-major, the batch contiguous, from the CPU allocator), the
// same workspace query and its rounding up, the same leading dimensions and one workspace
// for the whole batch, so that every matrix sees the same data at the same alignment
// (MKL's rounding depends on it: csrc/cpu/cpu.cpp, "LAPACK over a batch").
#include "lapack.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <vector>

#include "../testing.h"

// The Fortran symbols torch itself calls (exported by libtorch_cpu with its LAPACK). Weak:
// a torch without them (or with them hidden) leaves these null, and the operators keep
// calling torch's functions.
extern "C" {
void sgesdd_(const char* jobz, const int* m, const int* n, float* a, const int* lda, float* s, float* u,
             const int* ldu, float* vt, const int* ldvt, float* work, const int* lwork, int* iwork,
             int* info) __attribute__((weak));
void dgesdd_(const char* jobz, const int* m, const int* n, double* a, const int* lda, double* s, double* u,
             const int* ldu, double* vt, const int* ldvt, double* work, const int* lwork, int* iwork,
             int* info) __attribute__((weak));
void ssyevd_(const char* jobz, const char* uplo, const int* n, float* a, const int* lda, float* w, float* work,
             const int* lwork, int* iwork, const int* liwork, int* info) __attribute__((weak));
void dsyevd_(const char* jobz, const char* uplo, const int* n, double* a, const int* lda, double* w,
             double* work, const int* lwork, int* iwork, const int* liwork, int* info) __attribute__((weak));
}

namespace safesvd::cpu {
namespace {

std::atomic<int>& mode_flag() {
  static std::atomic<int> mode{1};
  return mode;
}

template <typename T>
struct Routines;
template <>
struct Routines<float> {
  static constexpr auto gesdd = &sgesdd_;
  static constexpr auto syevd = &ssyevd_;
};
template <>
struct Routines<double> {
  static constexpr auto gesdd = &dgesdd_;
  static constexpr auto syevd = &dsyevd_;
};

// A workspace size LAPACK returned as a floating-point value, rounded up past it as torch
// does (a large size need not be representable: one ulp up, then the ceiling).
template <typename T>
int work_size(T value) {
  return std::max<int>(1, static_cast<int>(std::ceil(std::nextafter(value, std::numeric_limits<T>::infinity()))));
}

// Matrices column-major, the batch contiguous (empty_column_major): what the outputs must
// be, as torch allocates them.
bool column_major_batch(const Tensor& X) {
  const int64_t r = X.size(-2), c = X.size(-1);
  if (X.stride(-2) != 1 || X.stride(-1) != std::max<int64_t>(r, 1)) return false;
  int64_t step = r * c;
  for (int64_t d = X.dim() - 3; d >= 0; --d) {
    if (X.size(d) != 1 && X.stride(d) != step) return false;
    step *= X.size(d);
  }
  return true;
}

// Copies the B matrices of X (..., r, c), any strides, into `to`, each column-major, the
// batch contiguous: torch's working copy (cloneBatchedColumnMajor), without the dispatcher.
template <typename T>
void copy_column_major(const Tensor& X, T* to) {
  const int64_t r = X.size(-2), c = X.size(-1), sr = X.stride(-2), sc = X.stride(-1), B = X.numel() / (r * c);
  const T* const from = X.const_data_ptr<T>();
  for (int64_t b = 0; b < B; ++b) {
    int64_t offset = 0;  // of matrix b: its index over the batch dimensions, row-major
    for (int64_t d = X.dim() - 3, rest = b; d >= 0 && rest; --d) {
      offset += (rest % X.size(d)) * X.stride(d);
      rest /= X.size(d);
    }
    const T* const x = from + offset;
    T* const y = to + b * r * c;
    for (int64_t j = 0; j < c; ++j)
      for (int64_t i = 0; i < r; ++i) y[j * r + i] = x[i * sr + j * sc];
  }
}

template <typename T>
bool svd_batch(const Tensor& A, bool full, Tensor& U, Tensor& S, Tensor& Vh) {
  const int m = static_cast<int>(A.size(-2)), n = static_cast<int>(A.size(-1)), k = std::min(m, n);
  const int64_t B = A.numel() / (int64_t(m) * n);
  Tensor a = at::empty({A.numel()}, A.options());  // from the CPU allocator, as torch's clone
  T* const a_data = a.mutable_data_ptr<T>();
  copy_column_major(A, a_data);
  const char jobz = full ? 'A' : 'S';
  const int lda = m, ldu = m, ldvt = static_cast<int>(Vh.size(-2));
  T* const u_data = U.mutable_data_ptr<T>();
  T* const s_data = S.mutable_data_ptr<T>();
  T* const vt_data = Vh.mutable_data_ptr<T>();
  std::vector<int> iwork(8 * static_cast<size_t>(k));
  int lwork = -1, info = 0;
  T query{};
  Routines<T>::gesdd(&jobz, &m, &n, a_data, &lda, s_data, u_data, &ldu, vt_data, &ldvt, &query, &lwork, iwork.data(),
                     &info);
  if (info != 0) return false;
  lwork = work_size(query);
  std::vector<T> work(static_cast<size_t>(lwork));  // torch's is a std::vector too
  const int64_t a_step = int64_t(m) * n, u_step = int64_t(m) * U.size(-1), vt_step = Vh.size(-2) * int64_t(n);
  for (int64_t b = 0; b < B; ++b) {
    Routines<T>::gesdd(&jobz, &m, &n, a_data + b * a_step, &lda, s_data + b * k, u_data + b * u_step, &ldu,
                       vt_data + b * vt_step, &ldvt, work.data(), &lwork, iwork.data(), &info);
    if (info != 0) return false;
  }
  return true;
}

template <typename T>
bool eigh_batch(const Tensor& A, bool upper, Tensor& L, Tensor& Q) {
  const int n = static_cast<int>(A.size(-1)), lda = n;
  const int64_t B = A.numel() / (int64_t(n) * n);
  T* const q_data = Q.mutable_data_ptr<T>();
  T* const l_data = L.mutable_data_ptr<T>();
  copy_column_major(A, q_data);  // the working copy is the output, as in torch
  const char jobz = 'V', uplo = upper ? 'U' : 'L';
  int lwork = -1, liwork = -1, info = 0, iwork_query = 0;
  T work_query{};
  Routines<T>::syevd(&jobz, &uplo, &n, q_data, &lda, l_data, &work_query, &lwork, &iwork_query, &liwork, &info);
  if (info != 0) return false;
  lwork = work_size(work_query);
  liwork = std::max(1, iwork_query);
  // Tensors from the CPU allocator, as torch's.
  Tensor work = at::empty({lwork}, Q.options()), iwork = at::empty({liwork}, Q.options().dtype(at::kInt));
  T* const work_data = work.mutable_data_ptr<T>();
  int* const iwork_data = iwork.mutable_data_ptr<int>();
  for (int64_t b = 0; b < B; ++b) {
    Routines<T>::syevd(&jobz, &uplo, &n, q_data + b * int64_t(n) * n, &lda, l_data + b * n, work_data, &lwork,
                       iwork_data, &liwork, &info);
    if (info != 0) return false;
  }
  return true;
}

}  // namespace

bool direct_lapack_applies(const Tensor& A) {
  const auto dtype = A.scalar_type();
  // (8 k int of workspace, and the leading dimensions, must fit LAPACK's int)
  return mode_flag().load() == 1 && direct_lapack_available() && (dtype == at::kFloat || dtype == at::kDouble) &&
         !A.is_neg() && A.dim() >= 2 && A.numel() > 0 &&
         std::max(A.size(-1), A.size(-2)) <= std::numeric_limits<int>::max() / 8;
}

bool direct_lapack_available() {
  return sgesdd_ != nullptr && dgesdd_ != nullptr && ssyevd_ != nullptr && dsyevd_ != nullptr;
}

int direct_lapack_mode(int mode) {
  return mode < 0 ? mode_flag().load() : mode_flag().exchange(mode);
}

bool direct_svd(const Tensor& A, bool full_matrices, Tensor& U, Tensor& S, Tensor& Vh) {
  if (!direct_lapack_applies(A) || !column_major_batch(U) || !column_major_batch(Vh) || !S.is_contiguous())
    return false;
  return A.scalar_type() == at::kFloat ? svd_batch<float>(A, full_matrices, U, S, Vh)
                                       : svd_batch<double>(A, full_matrices, U, S, Vh);
}

bool direct_eigh(const Tensor& A, bool upper, Tensor& L, Tensor& Q) {
  if (!direct_lapack_applies(A) || !column_major_batch(Q) || !L.is_contiguous()) return false;
  return A.scalar_type() == at::kFloat ? eigh_batch<float>(A, upper, L, Q) : eigh_batch<double>(A, upper, L, Q);
}

}  // namespace safesvd::cpu

extern "C" SAFESVD_TESTING_API int safesvd_testing_cpu_direct_lapack(int mode) {
  if (mode < -1 || mode > 1) return -2;
  const int previous = safesvd::cpu::direct_lapack_mode(mode);
  return previous == 1 && safesvd::cpu::direct_lapack_available() ? 1 : 0;
}
