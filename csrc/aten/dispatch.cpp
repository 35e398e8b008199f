#include <torch/library.h>

#include "dispatch.h"

#include <array>

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

bool use_jacobi(const Tensor& A, const c10::optional<c10::string_view>& driver, bool shape_supported,
                const DeviceKernels& dev, bool has_engine, const char* op) {
  const bool ok = shape_supported && has_engine && !A.is_complex();
  if (!driver.has_value()) return ok && dev.jacobi_by_default && A.numel() > 0;
  if (*driver == "lapack") return false;
  TORCH_CHECK_VALUE(*driver == "jacobi", op, ": driver must be None, 'jacobi' or 'lapack', got '",
                    std::string(*driver), "'");
  TORCH_CHECK_VALUE(ok, op, ": driver='jacobi' takes real float32/float64 input, square n in 2..16 or (CPU) ",
                    "rectangular with both sides in 2..8, on a device with the engine; got ", A.scalar_type(),
                    " of shape ", A.sizes(), " on ", A.device());
  return true;
}

namespace {

// Testing hook: replace the CPU table by the one at `address` (a DeviceKernels
// built by a test library, e.g. the CUDA kernels compiled through the CUDA
// emulation, tests/emulation/emulated_cuda.cpp), or restore the original with 0.
// Returns 1 when a table was installed or restored.
int64_t testing_swap_cpu_kernels(int64_t address) {
  static DeviceKernels original;
  static bool swapped = false;
  DeviceKernels& slot = table()[static_cast<size_t>(c10::DeviceType::CPU)];
  if (address == 0) {
    if (!swapped) return 0;
    slot = original;
    swapped = false;
    return 1;
  }
  if (!swapped) original = slot;
  slot = *reinterpret_cast<const DeviceKernels*>(address);
  swapped = true;
  return 1;
}

}  // namespace

bool has_device_kernels(c10::string_view device) {
  const c10::DeviceType type = c10::Device(std::string(device)).type();
  return table()[static_cast<size_t>(type)].svd_backward_fused != nullptr;
}

TORCH_LIBRARY_IMPL(safesvd, CompositeImplicitAutograd, m) {
  m.impl("_testing_swap_cpu_kernels", &testing_swap_cpu_kernels);
  m.impl("_has_device_kernels", &has_device_kernels);
}

}  // namespace safesvd
