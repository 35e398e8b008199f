#include <torch/library.h>

#include "dispatch.h"

#include "../kernels/jacobi_batch.h"

#include <array>
#include <mutex>

#include "../testing.h"

namespace safesvd {
namespace {

std::array<DeviceKernels, static_cast<size_t>(c10::DeviceType::COMPILE_TIME_MAX_DEVICE_TYPES)>& table() {
  static std::array<DeviceKernels, static_cast<size_t>(c10::DeviceType::COMPILE_TIME_MAX_DEVICE_TYPES)> t;
  return t;
}

}  // namespace

void register_device_kernels(c10::DeviceType type, const DeviceKernels& kernels) {
  table()[static_cast<size_t>(type)] = kernels;
}

const DeviceKernels& device_kernels(const c10::Device& device, const char* op) {
  const DeviceKernels& k = table()[static_cast<size_t>(device.type())];
  TORCH_CHECK(k.svd_backward_fused != nullptr, op, ": safesvd has no kernels for device ", device,
              " (this build has: CPU",
              table()[static_cast<size_t>(c10::DeviceType::CUDA)].svd_backward_fused ? ", CUDA" : "", ")");
  return k;
}

std::tuple<Tensor, Tensor, Tensor> lapack_svd(const DeviceKernels& dev, const Tensor& A, bool full_matrices) {
  return dev.lapack_svd ? dev.lapack_svd(A, full_matrices) : at::linalg_svd(A, full_matrices);
}
std::tuple<Tensor, Tensor> lapack_eigh(const DeviceKernels& dev, const Tensor& A, c10::string_view UPLO) {
  return dev.lapack_eigh ? dev.lapack_eigh(A, UPLO) : at::linalg_eigh(A, UPLO);
}

bool use_jacobi(const Tensor& A, const c10::optional<c10::string_view>& driver, bool shape_supported,
                const DeviceKernels& dev, bool has_engine, const char* op) {
  const bool ok = shape_supported && has_engine && !A.is_complex();
  if (!driver.has_value()) {
    if (!ok || !dev.jacobi_by_default || A.numel() == 0) return false;
    const int64_t m = A.size(-2), n = A.size(-1);
    return !dev.lapack_batch_limit || A.numel() / (m * n) > dev.lapack_batch_limit(m, n, A.scalar_type() == at::kDouble);
  }
  if (*driver == "lapack") return false;
  TORCH_CHECK_VALUE(*driver == "jacobi", op, ": driver must be None, 'jacobi' or 'lapack', got '",
                    std::string(*driver), "'");
  TORCH_CHECK_VALUE(ok, op, ": driver='jacobi' takes real float32/float64 input, square n in 2..",
                    std::string(op) == "safesvd.eigh" ? dev.jacobi_max_square_eigh : dev.jacobi_max_square_svd,
                    " or (CPU) rectangular with both sides in 2..8, or with the short side in 2..16 and m * n <= ",
                    kernels::kTallMaxElements, " (thin U, Vh only), on a device with the engine; got ",
                    A.scalar_type(), " of shape ", A.sizes(), " on ", A.device());
  return true;
}

bool has_device_kernels(c10::string_view device) {
  const c10::DeviceType type = c10::Device(std::string(device)).type();
  return table()[static_cast<size_t>(type)].svd_backward_fused != nullptr;
}

TORCH_LIBRARY_IMPL(safesvd, CompositeImplicitAutograd, m) {
  m.impl("_has_device_kernels", &has_device_kernels);
}

}  // namespace safesvd

extern "C" SAFESVD_TESTING_API int safesvd_testing_install_cpu_kernels(const void* table) {
  static std::mutex mutex;
  static safesvd::DeviceKernels original;
  static bool installed = false;
  const std::lock_guard<std::mutex> lock(mutex);
  safesvd::DeviceKernels& slot = safesvd::table()[static_cast<size_t>(c10::DeviceType::CPU)];
  if (table == nullptr) {
    if (!installed) return 0;
    slot = original;
    installed = false;
    return 1;
  }
  if (!installed) original = slot;
  slot = *static_cast<const safesvd::DeviceKernels*>(table);
  installed = true;
  return 1;
}
