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

}  // namespace safesvd
