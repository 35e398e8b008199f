// The emulation inside a shared library (tests/test_cuda_emulation.py builds
// this with torch.utils.cpp_extension and with plain g++ -shared, loads both
// into one process and calls safesvd_emu_so_check in each).
//
// In a .so the linker's __start_/__stop_safesvd_emu_shared symbols must bracket
// this library's own __shared__ variables, so that every block sees them
// NaN-filled; the emulation's functions are hidden so that two libraries do not
// bind to each other's scheduler.
#include <cmath>
#include <vector>

#include "test_kernels.cuh"

// 0 when all is well, else a bit per failed check.
extern "C" __attribute__((visibility("default"))) int safesvd_emu_so_check() {
  int failures = 0;
  const int n = 200;
  std::vector<float> x(n), out(n);
  for (int i = 0; i < n; ++i) x[i] = static_cast<float>(i % 13);
  // A correct kernel with static shared memory gives exact results.
  emu_test::launch_stencil<64, false>(x.data(), n, out.data(), nullptr);
  for (int i = 0; i < n; ++i)
    if (out[i] != (i > 0 ? x[i - 1] : 0.f) + x[i] + (i + 1 < n ? x[i + 1] : 0.f)) failures |= 1;
  // The broken one reads a halo element nobody wrote: NaN in the last thread of each block.
  emu_test::launch_stencil<64, true>(x.data(), n, out.data(), nullptr);
  if (!std::isnan(out[63]) || !std::isnan(out[127])) failures |= 2;
  // Static and dynamic shared memory read 0xFF bytes in every block.
  std::vector<unsigned> probe(5, 0);
  emu_test::launch_poison_probe(probe.data(), 5, 64, 4096, nullptr);
  for (unsigned v : probe)
    if (v != 0xffffffffu) failures |= 4;
  // Launch errors still come out as exceptions.
  try {
    emu_test::launch_poison_probe(probe.data(), 1, 2048, 0, nullptr);
    failures |= 8;
  } catch (const std::runtime_error&) {
  }
  return failures;
}
