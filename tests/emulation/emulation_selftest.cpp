// Self-test of the CUDA emulation (csrc/emulation): compiled by g++, runs the
// kernels of test_kernels.cuh on the CPU and checks that
//   - correct kernels give exact results under every scheduling order,
//   - every BROKEN variant is detected (wrong result or NaN) under at least one order,
//   - launch limits, barrier and warp misuse, exceptions, assert and abort() throw.
// Prints a summary; exits non-zero on any failure.
//   g++ -std=c++17 -O1 -pthread -Icsrc tests/emulation/emulation_selftest.cpp -o selftest && ./selftest
#include "test_kernels.cuh"

#include <cstdio>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using safesvd_emu::Order;

namespace {

int g_checks = 0, g_failures = 0;

void check(bool ok, const std::string& what) {
  ++g_checks;
  if (!ok) {
    ++g_failures;
    std::printf("  FAIL: %s\n", what.c_str());
  }
}

// The message of the exception f throws, or "" when it throws nothing.
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

void expect_error(const std::string& what, const std::function<void()>& f, std::vector<std::string> needles) {
  const std::string msg = error_of(f);
  bool ok = !msg.empty();
  for (const auto& n : needles) ok = ok && msg.find(n) != std::string::npos;
  check(ok, what + " should throw mentioning '" + (needles.empty() ? "" : needles[0]) + "', got: '" + msg + "'");
  if (ok) std::printf("  ok   %-48s -> %s\n", what.c_str(), msg.c_str());
}

struct Schedule {
  const char* name;
  Order order;
  uint64_t seed;
};
const Schedule kSchedules[] = {{"forward", Order::Forward, 0},
                               {"reverse", Order::Reverse, 0},
                               {"shuffle:1", Order::Shuffle, 1},
                               {"shuffle:2", Order::Shuffle, 2},
                               {"shuffle:3", Order::Shuffle, 3}};

void use(const Schedule& s) {
  safesvd_emu::options().order = s.order;
  safesvd_emu::options().seed = s.seed;
}

// A test case: runs a kernel under the current schedule; true when the result
// is exactly right.
using Case = std::function<bool()>;

// Correct kernels must pass under every schedule.
void correct(const std::string& name, const Case& run) {
  std::string failed;
  for (const auto& s : kSchedules) {
    use(s);
    bool ok = false;
    const std::string err = error_of([&] { ok = run(); });
    if (!ok) failed += std::string(" ") + s.name + (err.empty() ? "" : " (" + err + ")");
  }
  use(kSchedules[0]);
  check(failed.empty(), name + " wrong under:" + failed);
  if (failed.empty()) std::printf("  ok   %-48s exact under all %zu schedules\n", name.c_str(), std::size(kSchedules));
}

// Broken kernels must give a wrong result (or NaN) under at least one
// schedule; the schedules that miss the bug are reported. These kernels are
// valid CUDA, so an exception would be a fault of the emulation.
void broken(const std::string& name, const Case& run) {
  std::string caught, missed;
  for (const auto& s : kSchedules) {
    use(s);
    bool ok = false;
    const std::string err = error_of([&] { ok = run(); });
    check(err.empty(), "BROKEN " + name + " threw under " + s.name + ": " + err);
    (ok ? missed : caught) += std::string(" ") + s.name;
  }
  use(kSchedules[0]);
  check(!caught.empty(), "BROKEN " + name + " not detected under any schedule");
  if (!caught.empty())
    std::printf("  ok   BROKEN %-41s detected:%s%s%s\n", name.c_str(), caught.c_str(),
                missed.empty() ? "" : "; missed:", missed.c_str());
}

const float kNaN = std::nanf("");

// ------------------------------------------------------------------ cases

template <bool kBroken>
bool block_sum_case() {
  const int n = 1000;  // 8 blocks of 128, the last one partial
  std::vector<float> x(n), out(8, kNaN);
  for (int i = 0; i < n; ++i) x[i] = static_cast<float>(i % 17);
  emu_test::launch_block_sum<128, kBroken>(x.data(), n, out.data(), nullptr);
  for (int b = 0; b < 8; ++b) {
    float want = 0;
    for (int i = 128 * b; i < std::min(n, 128 * (b + 1)); ++i) want += x[i];
    if (!(out[b] == want)) return false;
  }
  return true;
}

template <bool kSkipLast>
bool gram_case(bool floor_blocks) {
  const int64_t B = 100;
  std::vector<double> a(9 * B), out(9 * B, std::nan(""));
  for (int64_t i = 0; i < 9 * B; ++i) a[i] = static_cast<double>((i * 7) % 11) - 5;
  emu_test::launch_gram<kSkipLast>(a.data(), B, out.data(), 32, floor_blocks, nullptr);
  for (int64_t b = 0; b < B; ++b)
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 3; ++j) {
        double want = 0;
        for (int l = 0; l < 3; ++l) want += a[b * 9 + l * 3 + i] * a[b * 9 + l * 3 + j];
        if (!(out[b * 9 + i * 3 + j] == want)) return false;
      }
  return true;
}

template <bool kBroken>
bool stencil_case() {
  const int n = 200;
  std::vector<float> x(n), out(n, kNaN);
  for (int i = 0; i < n; ++i) x[i] = static_cast<float>(i % 13);
  emu_test::launch_stencil<64, kBroken>(x.data(), n, out.data(), nullptr);
  for (int i = 0; i < n; ++i) {
    const float want = (i > 0 ? x[i - 1] : 0.f) + x[i] + (i + 1 < n ? x[i + 1] : 0.f);
    if (!(out[i] == want)) return false;
  }
  return true;
}

bool argmax_case() {
  const int n = 1000, blocks = 8;
  std::vector<float> x(n), val(blocks, kNaN);
  std::vector<int> idx(blocks, -7);
  for (int i = 0; i < n; ++i) x[i] = static_cast<float>((i * 37) % 101);  // 100 occurs repeatedly: ties
  emu_test::launch_argmax<128>(x.data(), n, val.data(), idx.data(), nullptr);
  for (int b = 0; b < blocks; ++b) {
    int best = 128 * b;
    for (int i = 128 * b; i < std::min(n, 128 * (b + 1)); ++i)
      if (x[i] > x[best]) best = i;
    if (!(val[b] == x[best] && idx[b] == best)) return false;
  }
  return true;
}

bool vote_case() {
  const int blocks = 3, threads = 96, n = blocks * threads;
  std::vector<int> x(n);
  for (int i = 0; i < n; ++i) x[i] = (i * 5) % 9 - (i % 64 == 3 ? 12 : 0);  // some negative, max 8
  std::vector<unsigned> out(n / 32 * emu_test::kVoteOut, 0xdeadbeef);
  emu_test::launch_vote(x.data(), out.data(), blocks, threads, nullptr);
  for (int w = 0; w < n / 32; ++w) {
    unsigned ballot = 0, any = 0, all = 1;
    for (int l = 0; l < 32; ++l) {
      const int v = x[32 * w + l];
      ballot |= unsigned(v > 0) << l;
      any |= v > 5;
      all &= v >= 0;
    }
    const int b = 32 * w / threads;
    unsigned count = 0, all_block = 1, any_block = 0;
    for (int t = 0; t < threads; ++t) {
      const int v = x[b * threads + t];
      count += v > 0;
      all_block &= v >= 0;
      any_block |= v > 8;
    }
    const unsigned want[emu_test::kVoteOut] = {ballot,
                                               unsigned(__builtin_popcount(ballot)),
                                               unsigned(__builtin_ffs(int(ballot))),
                                               ballot ? unsigned(__builtin_clz(ballot)) : 32u,
                                               any,
                                               all,
                                               0xffffffffu,
                                               count,
                                               all_block,
                                               any_block};
    for (int k = 0; k < emu_test::kVoteOut; ++k)
      if (out[w * emu_test::kVoteOut + k] != want[k]) return false;
  }
  return true;
}

template <bool kBroken>
bool half_warp_case() {
  const int blocks = 2, n = 64 * blocks;
  std::vector<int> x(n), scan(n, -1), first(n, -1), neighbour(n, -1), want(n);
  for (int i = 0; i < n; ++i) x[i] = (i * 3) % 7 + 1;
  emu_test::launch_half_warp<kBroken>(x.data(), blocks, scan.data(), first.data(), neighbour.data(), nullptr);
  for (int i = 0; i < n; ++i) want[i] = x[i] + (i % 16 ? want[i - 1] : 0);
  for (int i = 0; i < n; ++i)
    if (scan[i] != want[i] || first[i] != x[i - i % 16] || neighbour[i] != want[i ^ 1]) return false;
  return true;
}

bool index_case(dim3 grid, dim3 block) {
  const unsigned blocks = grid.x * grid.y * grid.z, threads = block.x * block.y * block.z;
  std::vector<unsigned> out(4ull * blocks * threads, 0xdeadbeef);
  emu_test::launch_index(out.data(), grid, block, nullptr);
  for (unsigned b = 0; b < blocks; ++b)
    for (unsigned t = 0; t < threads; ++t) {
      const unsigned* o = &out[4ull * (b * threads + t)];
      if (o[0] != b || o[1] != t || o[2] != (t & ~31u) || o[3] != (t ^ 31u)) return false;
    }
  return true;
}

bool transpose_case() {
  const int rows = 70, cols = 45;
  std::vector<float> in(rows * cols), out(rows * cols, kNaN);
  for (int i = 0; i < rows * cols; ++i) in[i] = static_cast<float>(i);
  emu_test::launch_transpose(in.data(), rows, cols, out.data(), nullptr);
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c)
      if (!(out[c * rows + r] == in[r * cols + c])) return false;
  return true;
}

template <bool kLegacy>
bool warp_sync_sum_case() {
  const int blocks = 4;
  std::vector<float> x(64 * blocks), out(blocks, kNaN);
  for (int i = 0; i < 64 * blocks; ++i) x[i] = static_cast<float>(i % 9);
  emu_test::launch_warp_sync_sum<kLegacy>(x.data(), blocks, out.data(), nullptr);
  for (int b = 0; b < blocks; ++b) {
    float want = 0;
    for (int i = 0; i < 64; ++i) want += x[64 * b + i];
    if (!(out[b] == want)) return false;
  }
  return true;
}

bool poison_case(int blocks, int threads, size_t dyn_bytes) {
  std::vector<unsigned> out(blocks, 0);
  emu_test::launch_poison_probe(out.data(), blocks, threads, dyn_bytes, nullptr);
  for (unsigned v : out)
    if (v != 0xffffffffu) return false;
  return true;
}

// ----------------------------------------------- kernels only the emulation runs

__global__ void throwing_kernel(int* out) {
  if (blockIdx.x == 1 && threadIdx.x == 7) throw std::invalid_argument("bad input seen by thread 7");
  __syncthreads();
  out[blockIdx.x * blockDim.x + threadIdx.x] = 1;
}

__global__ void abort_kernel() {
  if (threadIdx.x == 3) std::abort();
}

__global__ void nested_launch_kernel(unsigned* out) {
  if (threadIdx.x == 0) SAFESVD_LAUNCH(emu_test::poison_probe_kernel, 1, 32, 0, nullptr)(out, 0);
}

__global__ void outside_mask_kernel(int* out) {
  // Lane 0 names only itself but reads lane 1: undefined in CUDA, poisoned here.
  if (threadIdx.x == 0) out[0] = __shfl_sync(0x1u, 42, 1);
}

// nvcc refuses more than 48 KiB of static shared memory; so does the launch here.
__global__ void big_static_kernel(int* out) {
  __shared__ char big[50 * 1024];
  big[threadIdx.x] = 1;
  out[0] = big[0];
}

template <int KB>
__global__ void static_and_dynamic_kernel(int* out) {
  __shared__ char st[KB * 1024];
  SAFESVD_DYNAMIC_SHARED(char, dyn);
  st[threadIdx.x] = 1;
  dyn[threadIdx.x] = 2;
  __syncthreads();
  out[threadIdx.x] = st[0] + dyn[0];
}

__global__ void deep_stack_kernel(int* out) {
  volatile char big[96 * 1024];  // fits the default 256 KiB fiber stack
  big[threadIdx.x] = static_cast<char>(threadIdx.x);
  __syncthreads();
  out[threadIdx.x] = big[threadIdx.x];
}

}  // namespace

// glibc's assert (re-included after the emulation redefined it) aborts: the
// SIGABRT handler turns that into an exception too.
#include <cassert>
namespace {
__global__ void glibc_assert_kernel(int x) { assert(x > 0); }
}  // namespace

int main() {
  std::printf("correct kernels\n");
  correct("block tree reduction (static shared)", block_sum_case<false>);
  correct("one thread per matrix (dynamic shared)", [] { return gram_case<false>(false); });
  correct("stencil with shared halo", stencil_case<false>);
  correct("warp shuffle max + argmax", argmax_case);
  correct("ballot/any/all/activemask/syncthreads_count", vote_case);
  correct("half-warp masks, shfl_up scan, __syncwarp", half_warp_case<false>);
  correct("3-D grid (3,2,2) x 3-D block (8,4,2)", [] { return index_case(dim3(3, 2, 2), dim3(8, 4, 2)); });
  correct("2-D grid, block (1024,1,1) lanes", [] { return index_case(dim3(1, 2), dim3(1024)); });
  correct("2-D tiled transpose 70x45", transpose_case);
  correct("warp reduction with __syncwarp", warp_sync_sum_case<false>);
  correct("shared memory NaN-filled before every block", [] { return poison_case(4, 64, 1024); });
  correct("unwritten __shared__ of a template kernel reads NaN", [] {
    std::vector<float> x(128, 1.f), out(128, 0.f);
    emu_test::launch_stencil<64, true>(x.data(), 128, out.data(), nullptr);
    return std::isnan(out[63]) && std::isnan(out[127]) && out[62] == 3.f;
  });

  std::printf("broken kernels\n");
  broken("missing __syncthreads before tree reduction", block_sum_case<true>);
  broken("kernel skips the last matrix (off by one)", [] { return gram_case<true>(false); });
  broken("host launches too few blocks (floor)", [] { return gram_case<false>(true); });
  broken("reads shared halo nobody wrote", stencil_case<true>);
  broken("half-warp exchange without __syncwarp", half_warp_case<true>);
  broken("legacy warp-synchronous reduction", warp_sync_sum_case<true>);

  std::printf("misuse and limits\n");
  std::vector<unsigned> probe(64);
  std::vector<int> iout(1024, -1);
  expect_error("1025 threads per block",
               [&] { emu_test::launch_poison_probe_config(probe.data(), 1, 1025, 0, nullptr); },
               {"1025 threads per block exceed the limit of 1024"});
  expect_error("blockDim.z = 65",
               [&] { emu_test::launch_poison_probe_config(probe.data(), 1, dim3(1, 1, 65), 0, nullptr); },
               {"blockDim exceeds"});
  expect_error("gridDim.y = 65536",
               [&] { emu_test::launch_poison_probe_config(probe.data(), dim3(1, 65536), 32, 0, nullptr); },
               {"gridDim exceeds"});
  expect_error("zero-sized grid", [&] { emu_test::launch_poison_probe_config(probe.data(), 0, 32, 0, nullptr); },
               {"a dimension is 0"});
  expect_error("49 KiB dynamic shared without opt-in", [&] { poison_case(1, 64, 49 * 1024); },
               {"need an opt-in", "poison_probe_kernel"});
  emu_test::allow_large_poison_probe(49 * 1024);
  correct("49 KiB dynamic shared after opt-in", [] { return poison_case(2, 64, 49 * 1024); });
  expect_error("opt-in to 240 KiB", [] { emu_test::allow_large_poison_probe(240 * 1024); }, {"cannot opt in"});
  // poison_probe_kernel has 128 bytes of static shared memory: 227 KiB - 128 is its maximum.
  expect_error("opt-in to 227 KiB with 128 bytes static", [] { emu_test::allow_large_poison_probe(227 * 1024); },
               {"with 128 bytes of static __shared__ memory the limit is 232448 bytes"});
  emu_test::allow_large_poison_probe(227 * 1024 - 128);
  correct("227 KiB - 128 dynamic shared after opt-in", [] { return poison_case(1, 64, 227 * 1024 - 128); });
  expect_error("240 KiB dynamic shared with opt-in", [&] { poison_case(1, 64, 240 * 1024); },
               {"232448 bytes (227 KiB)"});
  expect_error("50 KiB of static __shared__",
               [&] { SAFESVD_LAUNCH(big_static_kernel, 1, 32, 0, nullptr)(iout.data()); },
               {"51200 bytes of static __shared__ memory"});
  // With 40 KiB of static shared memory at most 187 KiB of dynamic can be opted in to.
  expect_error("opt-in to 200 KiB with 40 KiB static",
               [] { safesvd_set_max_dynamic_shared(static_and_dynamic_kernel<40>, 200 * 1024); },
               {"with 40960 bytes of static __shared__ memory the limit is 232448 bytes"});
  safesvd_set_max_dynamic_shared(static_and_dynamic_kernel<40>, 187 * 1024);
  correct("40 KiB static + 187 KiB dynamic", [&] {
    SAFESVD_LAUNCH(static_and_dynamic_kernel<40>, 1, 32, 187 * 1024, nullptr)(iout.data());
    return iout[0] == 3;
  });
  expect_error("40 KiB static + 200 KiB dynamic",
               [&] { SAFESVD_LAUNCH(static_and_dynamic_kernel<40>, 1, 32, 200 * 1024, nullptr)(iout.data()); },
               {"40960 bytes of static __shared__ memory this exceeds the limit of 232448 bytes"});
  expect_error("warp collective naming a lane that does not exist",
               [&] { emu_test::launch_vote(std::vector<int>(48, 1).data(), probe.data(), 1, 48, nullptr); },
               {"does not exist"});
  expect_error("threads at different __syncthreads", [&] { emu_test::launch_split_barrier(iout.data(), nullptr); },
               {"divergent barrier"});
  expect_error("shuffle naming an exited lane", [&] { emu_test::launch_exited_lane_shuffle(iout.data(), nullptr); },
               {"lane 5"});
  expect_error("__syncwarp vs __syncthreads deadlock",
               [&] { emu_test::launch_warp_barrier_deadlock(iout.data(), nullptr); },
               {"deadlock"});
  // Exited threads do not hold up __syncthreads (hardware behaviour) ...
  correct("early return before __syncthreads (default)", [&] {
    std::fill(iout.begin(), iout.end(), -1);
    emu_test::launch_early_exit_barrier(128, 100, iout.data(), nullptr);
    for (int t = 0; t < 100; ++t)
      if (iout[t] != 10 * ((t + 1) % 100)) return false;
    return iout[100] == -1;
  });
  // ... unless strict barriers are asked for.
  safesvd_emu::options().strict_barriers = true;
  expect_error("early return before __syncthreads (strict)",
               [&] { emu_test::launch_early_exit_barrier(128, 100, iout.data(), nullptr); },
               {"divergent barrier: only 100 of 128 threads"});
  safesvd_emu::options().strict_barriers = false;
  expect_error("exception in a kernel", [&] { SAFESVD_LAUNCH(throwing_kernel, 2, 32, 0, nullptr)(iout.data()); },
               {"block (1,0,0)", "thread (7,0,0)", "bad input seen by thread 7"});
  {
    bool nested = false;
    try {
      SAFESVD_LAUNCH(throwing_kernel, 2, 32, 0, nullptr)(iout.data());
    } catch (const safesvd_emu::Error& e) {
      try {
        std::rethrow_if_nested(e);
      } catch (const std::invalid_argument&) {
        nested = true;
      }
    }
    check(nested, "the kernel's std::invalid_argument is nested in the launch error");
  }
  std::vector<float> xs(100, 1.f);
  xs[77] = -1.f;
  expect_error("failed assert in a kernel", [&] { emu_test::launch_assert_positive(xs.data(), 100, nullptr); },
               {"assertion failed: x[i] > 0.f", "thread (13,0,0)", "block (1,0,0)"});
  expect_error("abort() in a kernel", [&] { SAFESVD_LAUNCH(abort_kernel, 1, 8, 0, nullptr)(); }, {"abort() called"});
  std::printf("  (glibc prints an assertion message next; it is expected)\n");
  std::fflush(stdout);
  expect_error("glibc assert in a kernel", [&] { SAFESVD_LAUNCH(glibc_assert_kernel, 1, 4, 0, nullptr)(0); },
               {"abort() called"});
  expect_error("launch inside a kernel", [&] { SAFESVD_LAUNCH(nested_launch_kernel, 1, 1, 0, nullptr)(probe.data()); },
               {"from inside a kernel"});
  expect_error("__syncthreads outside a kernel", [] { __syncthreads(); }, {"outside a kernel"});
  {
    iout[0] = 0;
    SAFESVD_LAUNCH(outside_mask_kernel, 1, 32, 0, nullptr)(iout.data());
    check(iout[0] == -1, "shuffle from a lane outside the mask reads poison (-1), got " + std::to_string(iout[0]));
  }
  correct("kernels still run after all these errors", block_sum_case<false>);
  correct("96 KiB local array on a fiber stack", [&] {
    SAFESVD_LAUNCH(deep_stack_kernel, 1, 64, 0, nullptr)(iout.data());
    for (int t = 0; t < 64; ++t)
      if (iout[t] != t) return false;
    return true;
  });

  {
    // Options come from the environment for each new OS thread.
    Order seen = Order::Forward;
    std::string bad;
    setenv("SAFESVD_EMU_ORDER", "reverse", 1);
    std::thread([&] { seen = safesvd_emu::options().order; }).join();
    setenv("SAFESVD_EMU_ORDER", "backwards", 1);
    std::thread([&] { bad = error_of([] { safesvd_emu::options(); }); }).join();
    unsetenv("SAFESVD_EMU_ORDER");
    check(seen == Order::Reverse, "SAFESVD_EMU_ORDER=reverse selects Order::Reverse");
    check(bad.find("SAFESVD_EMU_ORDER must be") != std::string::npos, "a bad SAFESVD_EMU_ORDER throws, got: " + bad);
    if (seen == Order::Reverse && !bad.empty()) std::printf("  ok   %-48s\n", "SAFESVD_EMU_ORDER from the environment");
  }

  std::printf("threads\n");
  {
    // Two OS threads launching at once, each with its own schedule.
    bool ok[2] = {true, true};
    auto work = [&ok](int k) {
      use(kSchedules[k == 0 ? 1 : 2]);
      const std::string err = error_of([&] {
        for (int r = 0; r < 20; ++r) ok[k] = ok[k] && argmax_case() && stencil_case<false>() && half_warp_case<false>();
      });
      if (!err.empty()) ok[k] = false;
    };
    std::thread a(work, 0), b(work, 1);
    a.join();
    b.join();
    check(ok[0] && ok[1], "concurrent launches from two OS threads");
    if (ok[0] && ok[1]) std::printf("  ok   %-48s\n", "concurrent launches from two OS threads");
  }

  std::printf("%d checks, %d failures\n", g_checks, g_failures);
  return g_failures == 0 ? 0 : 1;
}
