// CUDA emulation for host compilers: CUDA kernels compile as plain C++ (g++)
// and run on the CPU, so CI machines without a GPU still execute them.
// Kernel code includes cuda/compat.h, which includes this file only
// when the compiler is not nvcc. Design note: docs/cuda_emulation.md.
//
// THE ONE SOURCE DEVIATION FROM CUDA. Under emulation `__shared__` expands to
// `static` plus an ABI tag (below), and `extern static` is not C++, so
// dynamic shared memory is declared with
//     SAFESVD_DYNAMIC_SHARED(T, name);     // instead of extern __shared__ T name[];
// nvcc: `extern __shared__ __align__(16) T name[]`; emulation: `T* const name`
// bound to the current block's 16-byte aligned, NaN-filled arena.
//
// Execution model (why: to make missing barriers and unwritten shared memory
// show up as wrong results or NaN, and misuse as an exception, never a hang):
//  - Every thread of every block runs. Blocks run one after another; each
//    thread of a block is a fiber (ucontext) and fibers run round-robin, each
//    until it blocks in a barrier or warp collective or returns.
//  - Static __shared__ variables and the dynamic arena are filled with 0xFF
//    bytes (NaN for float/double, -1 for ints) before every block.
//  - __syncthreads waits for all live threads. Threads that returned do not
//    hold it up (sm_70+ hardware behaviour); Options::strict_barriers makes that
//    an error. Threads waiting at different __syncthreads call sites throw.
//  - Warp collectives (__syncwarp, shuffles, ballot/any/all) are lock-step among
//    the lanes of the mask: all named lanes deposit, the last to arrive
//    computes everyone's result. A named lane that exited, does not exist, or
//    waits elsewhere (deadlock) throws. Lanes are threads 32w..32w+31 by linear
//    index (x fastest, then y, then z).
//  - The fiber and block order is Options::order (forward, reverse, seeded
//    shuffle), so an order-dependent bug shows under at least one order.
//  - Launch limits of an H100 are enforced (check_launch). Exceptions, failed
//    asserts and abort() inside a kernel come out of the launch as
//    safesvd_emu::Error (the original exception nested, std::rethrow_if_nested).
//  - Scheduler state is thread_local. __shared__ variables are process-wide
//    statics, so launches from different OS threads are serialized by a mutex.
// Not defined: __CUDACC__, __CUDA_ARCH__ (code takes its host paths);
// SAFESVD_CUDA_EMULATION is defined to 1.
#pragma once

#if defined(__CUDACC__)
#error "cuda_emulation.h is for host compilers; include cuda/compat.h"
#endif

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <map>
#include <mutex>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#define SAFESVD_CUDA_EMULATION 1

// AddressSanitizer must be told about every switch between fiber stacks.
#if defined(__SANITIZE_ADDRESS__)
#define SAFESVD_EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SAFESVD_EMU_ASAN 1
#endif
#endif
#ifdef SAFESVD_EMU_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

// ------------------------------------------------------------ qualifiers
// Guarded so that headers defining them first (e.g. for clang) keep theirs.
#ifndef __global__
#define __global__
#endif
#ifndef __device__
#define __device__
#endif
#ifndef __host__
#define __host__
#endif
#ifndef __constant__
#define __constant__
#endif
#ifndef __forceinline__
#define __forceinline__ inline __attribute__((always_inline))
#endif
#ifndef __launch_bounds__
#define __launch_bounds__(...)
#endif
#ifndef __align__
#define __align__(n) __attribute__((aligned(n)))
#endif
// `static` makes one object shared by all fibers of the running block. The
// ABI tag puts "B18safesvd_emu_shared" into the variable's mangled name, even
// in templates, so the launcher finds every __shared__ variable in the symbol
// table and NaN-fills it before each block. (A section attribute would be
// simpler but GCC drops it in templates, bug 70435, and it clashes between
// inline and non-inline functions: "section type conflict".)
#define SAFESVD_EMU_SHARED_TAG "safesvd_emu_shared"
#ifndef __shared__
#define __shared__ static __attribute__((abi_tag(SAFESVD_EMU_SHARED_TAG)))
#endif

// Visibility: everything keeps the default on purpose. Thread-local and
// function-local statics of inline functions (the scheduler state, the
// built-in variables, the mutex) are then GNU_UNIQUE objects, one per process
// even across libraries loaded with RTLD_LOCAL, so kernels and helpers that
// the dynamic linker resolves to another library's copy still see the same
// state. All libraries in a process must use the same version of this header.

// ---------------------------------------------------------- runtime types
struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
  constexpr operator uint3() const { return {x, y, z}; }
};
inline uint3 make_uint3(unsigned x, unsigned y, unsigned z) { return {x, y, z}; }
typedef struct CUstream_st* cudaStream_t;
enum cudaError_t { cudaSuccess = 0 };
inline cudaError_t cudaGetLastError() { return cudaSuccess; }  // launch errors throw instead
inline cudaError_t cudaPeekAtLastError() { return cudaSuccess; }
inline cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }  // launches are synchronous
inline const char* cudaGetErrorString(cudaError_t) { return "no error"; }

namespace safesvd_emu {
namespace detail {
inline int runtime_warp_size() { return 32; }
}  // namespace detail
}  // namespace safesvd_emu

// Built-in variables, set by the scheduler before it resumes a fiber. Like
// CUDA's, warpSize is not a constant expression.
inline thread_local uint3 threadIdx;
inline thread_local uint3 blockIdx;
inline thread_local dim3 blockDim;
inline thread_local dim3 gridDim;
inline const int warpSize = safesvd_emu::detail::runtime_warp_size();

namespace safesvd_emu {

// Every error of the emulation: launch limits, barrier and warp misuse, and
// (with the original nested) exceptions thrown by kernel code.
struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

enum class Order { Forward, Reverse, Shuffle };

struct Options {
  Order order = Order::Forward;  // order of blocks and of fibers in a block
  uint64_t seed = 0;             // for Order::Shuffle
  size_t stack_bytes = 256 * 1024;
  bool strict_barriers = false;  // a __syncthreads that some exited thread never reaches throws
};

namespace detail {
// SAFESVD_EMU_ORDER=forward|reverse|shuffle|shuffle:SEED, SAFESVD_EMU_STACK_KB=n,
// SAFESVD_EMU_STRICT_BARRIERS=1.
inline Options options_from_env() {
  Options o;
  if (const char* e = std::getenv("SAFESVD_EMU_ORDER")) {
    const std::string v(e);
    if (v == "reverse") {
      o.order = Order::Reverse;
    } else if (v == "shuffle" || v.rfind("shuffle:", 0) == 0) {
      o.order = Order::Shuffle;
      if (v.size() > 8) o.seed = std::strtoull(v.c_str() + 8, nullptr, 10);
    } else if (!v.empty() && v != "forward") {
      throw Error("SAFESVD_EMU_ORDER must be forward, reverse, shuffle or shuffle:SEED, not '" + v + "'");
    }
  }
  if (const char* e = std::getenv("SAFESVD_EMU_STACK_KB")) o.stack_bytes = std::strtoull(e, nullptr, 10) * 1024;
  if (const char* e = std::getenv("SAFESVD_EMU_STRICT_BARRIERS")) o.strict_barriers = *e && std::strcmp(e, "0") != 0;
  return o;
}
}  // namespace detail

// The calling OS thread's options; change them freely between launches.
inline Options& options() {
  static thread_local Options o = detail::options_from_env();
  return o;
}

// H100 (sm_90) limits.
constexpr unsigned kMaxThreadsPerBlock = 1024, kMaxBlockX = 1024, kMaxBlockY = 1024, kMaxBlockZ = 64;
constexpr uint64_t kMaxGridX = 2147483647u, kMaxGridYZ = 65535;
constexpr size_t kDefaultMaxDynamicShared = 48 * 1024, kMaxSharedPerBlock = 227 * 1024;

namespace detail {

constexpr unsigned kWarp = 32;
enum class Wait : unsigned char { Runnable, Barrier, Warp, Done };
enum class Op : unsigned char { SyncWarp, Shfl, ShflUp, ShflDown, ShflXor, Ballot, Any, All };

// A call site of a barrier or warp collective, for matching and messages.
struct Site {
  const char* what;
  const char* file;
  int line;
};
inline bool same_site(const Site& a, const Site& b) {
  return a.line == b.line && std::strcmp(a.file, b.file) == 0 && std::strcmp(a.what, b.what) == 0;
}
inline std::string str(const Site& s) { return std::string(s.what) + " at " + s.file + ":" + std::to_string(s.line); }
inline std::string hex(unsigned v) {
  char b[16];
  std::snprintf(b, sizeof b, "0x%08x", v);
  return b;
}

struct Fiber {
  ucontext_t ctx;
  Wait wait = Wait::Done;
  Site site{"", "", 0};
  uint64_t value = 0, result = 0;  // deposited operand; result set by whoever completes the op
  int arg = 0, width = 32;         // shuffle lane/delta/xor mask and width; barrier: participants
  unsigned mask = 0;
  void* asan_fake_stack = nullptr;
};

// An open warp collective: the lanes of `mask` that have arrived so far.
struct Group {
  unsigned mask, arrived;
  Op op;
};

struct State {
  ucontext_t scheduler;
  std::vector<Fiber> fibers;             // by linear thread index; never resized while a block runs
  std::vector<void*> stacks;             // mmap'ed, reused across blocks and launches
  size_t stack_bytes = 0;
  std::vector<std::vector<Group>> open;  // per warp
  std::vector<unsigned> order;
  unsigned nthreads = 0, live = 0;
  int current = -1;  // running fiber, -1 in the scheduler or outside a launch
  bool launching = false, aborted = false;
  void (*body)(void*) = nullptr;
  void* body_arg = nullptr;
  std::exception_ptr error;
  std::vector<unsigned char> arena;
  unsigned char* dynamic = nullptr;
  size_t dynamic_bytes = 0;
  std::string kernel;
  const void* scheduler_stack = nullptr;  // for AddressSanitizer
  size_t scheduler_stack_size = 0;
  void* scheduler_fake_stack = nullptr;

  void release_stacks() {
    for (void* p : stacks) munmap(p, stack_bytes + page());
    stacks.clear();
  }
  static size_t page() { return static_cast<size_t>(sysconf(_SC_PAGESIZE)); }
  ~State() { release_stacks(); }
};
inline State& state() {
  static thread_local State s;
  return s;
}

inline std::string thread_name(unsigned tid) {
  const unsigned x = tid % blockDim.x, y = tid / blockDim.x % blockDim.y, z = tid / (blockDim.x * blockDim.y);
  return "thread (" + std::to_string(x) + "," + std::to_string(y) + "," + std::to_string(z) + ")";
}
inline Error fail(const State& s, const std::string& why) {
  return Error("safesvd emulation: kernel '" + s.kernel + "' block (" + std::to_string(blockIdx.x) + "," +
               std::to_string(blockIdx.y) + "," + std::to_string(blockIdx.z) + "): " + why);
}

inline State& kernel_state(const char* what) {
  State& s = state();
  if (s.current < 0) throw Error(std::string(what) + " called outside a kernel run by SAFESVD_LAUNCH");
  return s;
}

// Stack switches, annotated for AddressSanitizer (no-ops otherwise). A null
// fake-stack slot tells ASan that the stack being left is finished.
inline void asan_leave(void** fake_stack, const void* bottom, size_t size) {
#ifdef SAFESVD_EMU_ASAN
  __sanitizer_start_switch_fiber(fake_stack, bottom, size);
#else
  (void)fake_stack, (void)bottom, (void)size;
#endif
}
inline void asan_arrive(void* fake_stack, const void** bottom_old, size_t* size_old) {
#ifdef SAFESVD_EMU_ASAN
  __sanitizer_finish_switch_fiber(fake_stack, bottom_old, size_old);
#else
  (void)fake_stack, (void)bottom_old, (void)size_old;
#endif
}

// Back to the scheduler; returns when the scheduler resumes this fiber. The
// asm statements keep the compiler from caching shared memory across it.
inline void suspend(State& s) {
  asm volatile("" ::: "memory");
  Fiber& f = s.fibers[static_cast<size_t>(s.current)];
  asan_leave(&f.asan_fake_stack, s.scheduler_stack, s.scheduler_stack_size);
  swapcontext(&f.ctx, &s.scheduler);
  asan_arrive(f.asan_fake_stack, &s.scheduler_stack, &s.scheduler_stack_size);
  asm volatile("" ::: "memory");
}

struct BarrierResult {
  int count, participants;
};
inline BarrierResult block_barrier(int pred, Site site) {
  State& s = kernel_state(site.what);
  Fiber& f = s.fibers[static_cast<size_t>(s.current)];
  f.wait = Wait::Barrier;
  f.site = site;
  f.value = pred != 0;
  suspend(s);
  return {static_cast<int>(f.result), f.arg};
}

// All lanes of `mask` arrived: compute each lane's result, make them runnable.
inline void complete(State& s, unsigned warp, unsigned mask, Op op) {
  Fiber* lanes = &s.fibers[warp * kWarp];
  unsigned ballot = 0;
  for (unsigned l = 0; l < kWarp; ++l)
    if ((mask >> l & 1u) && lanes[l].value) ballot |= 1u << l;
  for (unsigned l = 0; l < kWarp; ++l) {
    if (!(mask >> l & 1u)) continue;
    Fiber& f = lanes[l];
    const unsigned w = static_cast<unsigned>(f.width), seg = l & ~(w - 1), in = l & (w - 1);
    const unsigned a = static_cast<unsigned>(f.arg);
    unsigned src = l;
    switch (op) {
      case Op::SyncWarp: f.result = 0; break;
      case Op::Ballot: f.result = ballot; break;
      case Op::Any: f.result = ballot != 0; break;
      case Op::All: f.result = ballot == mask; break;
      case Op::Shfl: src = seg + (a & (w - 1)); break;
      case Op::ShflUp: src = in >= a ? l - a : l; break;
      case Op::ShflDown: src = in + a < w ? l + a : l; break;
      case Op::ShflXor: src = l ^ (a & 31u); if (src >= seg + w) src = l; break;
    }
    // Reading a lane outside the mask is undefined in CUDA: poison it.
    if (op == Op::Shfl || op == Op::ShflUp || op == Op::ShflDown || op == Op::ShflXor)
      f.result = (mask >> src & 1u) ? lanes[src].value : ~uint64_t(0);
    f.wait = Wait::Runnable;
  }
}

inline uint64_t warp_op(Op op, unsigned mask, uint64_t value, int arg, int width, Site site) {
  State& s = kernel_state(site.what);
  const unsigned tid = static_cast<unsigned>(s.current), warp = tid / kWarp, lane = tid % kWarp;
  auto misuse = [&](const std::string& why) {
    return Error(thread_name(tid) + " (lane " + std::to_string(lane) + ") in " + str(site) + " with mask " + hex(mask) +
                 ": " + why);
  };
  if (!(mask >> lane & 1u)) throw misuse("the mask does not name the calling lane");
  if (width < 1 || width > 32 || (width & (width - 1)))
    throw misuse("width " + std::to_string(width) + " is not a power of 2 in [1, 32]");
  for (unsigned l = 0; l < kWarp; ++l) {
    if (!(mask >> l & 1u)) continue;
    if (warp * kWarp + l >= s.nthreads)
      throw misuse("lane " + std::to_string(l) + " does not exist (the block has " + std::to_string(s.nthreads) +
                   " threads)");
    if (s.fibers[warp * kWarp + l].wait == Wait::Done)
      throw misuse("lane " + std::to_string(l) + " has already exited");
  }
  Fiber& f = s.fibers[tid];
  f.value = value;
  f.arg = arg;
  f.width = width;
  f.mask = mask;
  f.site = site;
  std::vector<Group>& open = s.open[warp];
  size_t g = 0;
  while (g < open.size() && open[g].mask != mask) ++g;
  if (g == open.size()) {
    open.push_back({mask, 0u, op});
  } else if (open[g].op != op) {
    const unsigned other = warp * kWarp + static_cast<unsigned>(__builtin_ctz(open[g].arrived));
    throw misuse("lanes of the same mask execute different warp operations; " + thread_name(other) + " is in " +
                 str(s.fibers[other].site));
  }
  open[g].arrived |= 1u << lane;
  if (open[g].arrived == mask) {
    complete(s, warp, mask, op);
    open.erase(open.begin() + static_cast<std::ptrdiff_t>(g));
    asm volatile("" ::: "memory");
    return f.result;
  }
  f.wait = Wait::Warp;
  suspend(s);
  return f.result;
}

inline void* dynamic_shared() { return kernel_state("dynamic shared memory").dynamic; }

// Lanes of the caller's warp that exist and have not exited.
inline unsigned live_lanes() {
  State& s = kernel_state("__activemask");
  const unsigned first = static_cast<unsigned>(s.current) / kWarp * kWarp;
  unsigned m = 0;
  for (unsigned l = 0; l < kWarp && first + l < s.nthreads; ++l)
    if (s.fibers[first + l].wait != Wait::Done) m |= 1u << l;
  return m;
}

// ------------------------------------------------------------ scheduler

inline void trampoline() {
  State& s = state();
  asan_arrive(nullptr, &s.scheduler_stack, &s.scheduler_stack_size);
  try {
    s.body(s.body_arg);
  } catch (...) {
    s.error = std::current_exception();
  }
  s.fibers[static_cast<size_t>(s.current)].wait = Wait::Done;
  asan_leave(nullptr, s.scheduler_stack, s.scheduler_stack_size);
}  // returns to uc_link: the scheduler

inline void resume(State& s, unsigned tid) {
  threadIdx = {tid % blockDim.x, tid / blockDim.x % blockDim.y, tid / (blockDim.x * blockDim.y)};
  s.current = static_cast<int>(tid);
  const stack_t& stack = s.fibers[tid].ctx.uc_stack;
  asan_leave(&s.scheduler_fake_stack, stack.ss_sp, stack.ss_size);
  swapcontext(&s.scheduler, &s.fibers[tid].ctx);
  asan_arrive(s.scheduler_fake_stack, nullptr, nullptr);
  s.current = -1;
}

// A failing kernel thread: rethrow as Error with the block and thread, the
// original exception nested.
[[noreturn]] inline void throw_kernel_error(State& s, unsigned tid) {
  const std::string where = thread_name(tid) + ": ";
  std::exception_ptr e = s.error;
  s.error = nullptr;
  try {
    std::rethrow_exception(e);
  } catch (const Error& err) {
    throw fail(s, err.what());  // raised by the emulation inside the fiber; names the thread
  } catch (const std::exception& err) {
    std::throw_with_nested(fail(s, where + "exception: " + err.what()));
  } catch (...) {
    std::throw_with_nested(fail(s, where + "unknown exception"));
  }
}

inline void thread_exited(State& s, unsigned tid) {
  --s.live;
  const unsigned lane = tid % kWarp, first = tid - lane;
  for (const Group& g : s.open[tid / kWarp]) {
    if (!(g.mask >> lane & 1u)) continue;
    const unsigned waiter = first + static_cast<unsigned>(__builtin_ctz(g.arrived));
    throw fail(s, thread_name(tid) + " (lane " + std::to_string(lane) + ") exited, but " + thread_name(waiter) +
                      " waits for it in " + str(s.fibers[waiter].site) + " with mask " + hex(g.mask));
  }
}

// Nothing is runnable: release a __syncthreads that all live threads reached,
// or explain why the block would hang on hardware.
inline void release_barrier(State& s) {
  int first = -1;
  unsigned participants = 0, count = 0;
  for (unsigned t = 0; t < s.nthreads; ++t) {
    const Fiber& f = s.fibers[t];
    if (f.wait == Wait::Warp) {
      std::string why = thread_name(t) + " waits forever in " + str(f.site) + " with mask " + hex(f.mask);
      for (const Group& g : s.open[t / kWarp])
        if (g.mask == f.mask) {
          const unsigned m = g.mask & ~g.arrived, other = t - t % kWarp + static_cast<unsigned>(__builtin_ctz(m));
          why += "; lanes " + hex(m) + " never arrive, e.g. " + thread_name(other) +
                 (s.fibers[other].wait == Wait::Done ? " exited" : " waits in " + str(s.fibers[other].site));
        }
      throw fail(s, "deadlock: " + why);
    }
    if (f.wait != Wait::Barrier) continue;
    if (first < 0) {
      first = static_cast<int>(t);
    } else if (!same_site(f.site, s.fibers[static_cast<size_t>(first)].site)) {
      throw fail(s, "divergent barrier: " + thread_name(static_cast<unsigned>(first)) + " waits in " +
                        str(s.fibers[static_cast<size_t>(first)].site) + " but " + thread_name(t) + " in " +
                        str(f.site));
    }
    ++participants;
    count += f.value != 0;
  }
  if (first < 0) throw fail(s, "internal error: no runnable thread");
  const Site& site = s.fibers[static_cast<size_t>(first)].site;
  if (participants < s.nthreads && options().strict_barriers)
    throw fail(s, "divergent barrier: only " + std::to_string(participants) + " of " + std::to_string(s.nthreads) +
                      " threads reach " + str(site) + ", the others exited (strict_barriers)");
  for (Fiber& f : s.fibers)
    if (f.wait == Wait::Barrier) {
      f.result = count;
      f.arg = static_cast<int>(participants);
      f.wait = Wait::Runnable;
    }
}

inline void run_block(State& s, uint64_t seed) {
  s.order.resize(s.nthreads);
  for (unsigned t = 0; t < s.nthreads; ++t) s.order[t] = t;
  const Order order = options().order;
  if (order == Order::Reverse) std::reverse(s.order.begin(), s.order.end());
  std::mt19937_64 rng(seed);
  if (order == Order::Shuffle) std::shuffle(s.order.begin(), s.order.end(), rng);
  while (s.live > 0) {
    bool ran = false;
    for (size_t i = 0; i < s.order.size(); ++i) {
      const unsigned t = s.order[i];
      if (s.fibers[t].wait != Wait::Runnable) continue;
      ran = true;
      resume(s, t);
      if (s.aborted) {
        s.aborted = false;
        throw fail(s, thread_name(t) + ": abort() called (a failed assert compiled without the emulation's assert?)");
      }
      if (s.error) throw_kernel_error(s, t);
      if (s.fibers[t].wait == Wait::Done) thread_exited(s, t);
    }
    if (!ran) release_barrier(s);
    else if (order == Order::Shuffle) std::shuffle(s.order.begin(), s.order.end(), rng);
  }
}

// SIGABRT inside a fiber (abort(), glibc's assert) jumps back to the scheduler,
// which throws; elsewhere it goes to the previous handler.
inline struct sigaction& previous_abort_action() {
  static struct sigaction a;
  return a;
}
inline void on_abort(int sig, siginfo_t* info, void* uc) {
  State& s = state();
  if (s.current >= 0) {
    s.aborted = true;
    asan_leave(nullptr, s.scheduler_stack, s.scheduler_stack_size);
    setcontext(&s.scheduler);
  }
  const struct sigaction& prev = previous_abort_action();
  if (prev.sa_flags & SA_SIGINFO) {
    prev.sa_sigaction(sig, info, uc);
  } else if (prev.sa_handler == SIG_DFL) {
    signal(sig, SIG_DFL);
    raise(sig);
  } else if (prev.sa_handler != SIG_IGN) {
    prev.sa_handler(sig);
  }
}

inline std::mutex& launch_mutex() {
  static std::mutex m;
  return m;
}
inline std::mutex& optin_mutex() {
  static std::mutex m;
  return m;
}
inline std::map<const void*, size_t>& optins() {
  static std::map<const void*, size_t> m;
  return m;
}

// ------------------------------------------- static __shared__ discovery
// Per module (executable or .so) holding a launched kernel: its tagged
// objects from .symtab (.dynsym when stripped). GNU_UNIQUE ones (statics of
// templates and inline functions) are resolved with dlsym, because the
// dynamic linker makes every library use the first-loaded copy.
struct SharedVar {
  std::string name;
  uintptr_t addr;
  size_t size;
};
struct Module {
  std::string path;
  uintptr_t bias = 0;
  const Elf64_Sym* syms = nullptr;  // into the file, mapped for the life of the process
  size_t nsyms = 0;
  const char* strtab = nullptr;
  std::vector<SharedVar> vars;
};
struct KernelInfo {
  size_t static_bytes;  // the kernel's own __shared__ variables (not those of the functions it calls)
};
struct Registry {
  std::map<std::string, Module*> modules;  // never freed: kernels may run until exit
  std::map<const void*, KernelInfo> kernels;
  std::vector<std::pair<uintptr_t, size_t>> poison;  // every __shared__ variable known so far
};
inline Registry& registry() {  // guarded by launch_mutex(); never destroyed, kernels may run in atexit handlers
  static Registry& r = *new Registry;
  return r;
}

inline Module* load_module(const std::string& path, uintptr_t bias) {
  auto* m = new Module;
  m->path = path.empty() ? "/proc/self/exe" : path;
  m->bias = bias;
  const int fd = open(m->path.c_str(), O_RDONLY | O_CLOEXEC);
  struct stat st{};
  void* p = MAP_FAILED;
  if (fd >= 0) {
    if (fstat(fd, &st) == 0 && st.st_size > 0)
      p = mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
  }
  const char* base = static_cast<const char*>(p);
  const auto* eh = reinterpret_cast<const Elf64_Ehdr*>(base);
  const Elf64_Shdr* table = nullptr;
  if (p != MAP_FAILED && std::memcmp(eh->e_ident, ELFMAG, SELFMAG) == 0 && eh->e_ident[EI_CLASS] == ELFCLASS64) {
    const auto* sh = reinterpret_cast<const Elf64_Shdr*>(base + eh->e_shoff);
    for (unsigned i = 0; i < eh->e_shnum; ++i)
      if (sh[i].sh_type == SHT_SYMTAB || (sh[i].sh_type == SHT_DYNSYM && !table)) table = &sh[i];
    if (table && table->sh_type == SHT_DYNSYM)
      std::fprintf(stderr, "safesvd emulation: %s has no .symtab (stripped?): only its exported __shared__ "
                           "variables are NaN-filled and static shared sizes are unknown\n", m->path.c_str());
    if (table) {
      m->syms = reinterpret_cast<const Elf64_Sym*>(base + table->sh_offset);
      m->nsyms = table->sh_size / sizeof(Elf64_Sym);
      m->strtab = base + sh[table->sh_link].sh_offset;
    }
  }
  if (!table) {
    std::fprintf(stderr, "safesvd emulation: cannot read the symbols of %s: its __shared__ variables are not "
                         "NaN-filled\n", m->path.c_str());
    return m;
  }
  const std::string marker = "B" + std::to_string(std::strlen(SAFESVD_EMU_SHARED_TAG)) + SAFESVD_EMU_SHARED_TAG;
  void* handle = dlopen(path.empty() ? nullptr : path.c_str(), RTLD_LAZY | RTLD_NOLOAD);
  for (size_t i = 0; i < m->nsyms; ++i) {
    const Elf64_Sym& sym = m->syms[i];
    const char* name = m->strtab + sym.st_name;
    if (ELF64_ST_TYPE(sym.st_info) != STT_OBJECT || sym.st_shndx == SHN_UNDEF || !std::strstr(name, marker.c_str()))
      continue;
    uintptr_t addr = bias + sym.st_value;
    if (ELF64_ST_BIND(sym.st_info) == STB_GNU_UNIQUE && handle)
      if (void* used = dlsym(handle, name)) addr = reinterpret_cast<uintptr_t>(used);
    m->vars.push_back({name, addr, sym.st_size});
  }
  if (handle) dlclose(handle);
  return m;
}

// The module containing `kernel`, its __shared__ variables added to the
// poison list, and the kernel's static shared memory size.
inline const KernelInfo& kernel_info(const void* kernel) {
  Registry& r = registry();
  const auto known = r.kernels.find(kernel);
  if (known != r.kernels.end()) return known->second;
  struct Query {
    uintptr_t addr, bias;
    std::string path;
    bool found;
  } q{reinterpret_cast<uintptr_t>(kernel), 0, "", false};
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* data) -> int {
        auto* q = static_cast<Query*>(data);
        for (int i = 0; i < info->dlpi_phnum; ++i) {
          const ElfW(Phdr)& ph = info->dlpi_phdr[i];
          const uintptr_t lo = info->dlpi_addr + ph.p_vaddr;
          if (ph.p_type == PT_LOAD && q->addr >= lo && q->addr < lo + ph.p_memsz) {
            q->bias = info->dlpi_addr;
            q->path = info->dlpi_name ? info->dlpi_name : "";
            q->found = true;
            return 1;
          }
        }
        return 0;
      },
      &q);
  size_t static_bytes = 0;
  if (q.found) {
    Module*& m = r.modules[q.path];
    if (!m) {
      m = load_module(q.path, q.bias);
      for (const SharedVar& v : m->vars) r.poison.emplace_back(v.addr, v.size);
      std::sort(r.poison.begin(), r.poison.end());
      r.poison.erase(std::unique(r.poison.begin(), r.poison.end()), r.poison.end());
    }
    // The kernel's mangled name gives the names of its local statics:
    // _ZZ<encoding>E<name> (and _ZZZ<encoding>... inside its lambdas).
    for (size_t i = 0; i < m->nsyms; ++i) {
      const Elf64_Sym& sym = m->syms[i];
      if (ELF64_ST_TYPE(sym.st_info) != STT_FUNC || m->bias + sym.st_value != q.addr) continue;
      const std::string name = m->strtab + sym.st_name;
      const std::string encoding = name.rfind("_Z", 0) == 0 ? name.substr(2) : std::to_string(name.size()) + name;
      for (const SharedVar& v : m->vars)
        if (v.name.rfind("_ZZ" + encoding + "E", 0) == 0 || v.name.rfind("_ZZZ" + encoding, 0) == 0)
          static_bytes += v.size;
      break;
    }
  }
  return r.kernels[kernel] = KernelInfo{static_bytes};
}

inline std::string dims(dim3 d) {
  return "(" + std::to_string(d.x) + "," + std::to_string(d.y) + "," + std::to_string(d.z) + ")";
}

inline void check_launch(const void* kernel, const std::string& name, dim3 grid, dim3 block, size_t shared,
                         size_t static_shared) {
  const std::string what = "safesvd emulation: launch of '" + name + "' with grid " + dims(grid) + ", block " +
                           dims(block) + " and " + std::to_string(shared) + " bytes of dynamic shared memory: ";
  const uint64_t threads = uint64_t(block.x) * block.y * block.z;
  if (!grid.x || !grid.y || !grid.z || !block.x || !block.y || !block.z)
    throw Error(what + "a dimension is 0 (cudaErrorInvalidConfiguration)");
  if (threads > kMaxThreadsPerBlock)
    throw Error(what + std::to_string(threads) +
                " threads per block exceed the limit of 1024 (cudaErrorInvalidConfiguration)");
  if (block.x > kMaxBlockX || block.y > kMaxBlockY || block.z > kMaxBlockZ)
    throw Error(what + "blockDim exceeds (1024, 1024, 64) (cudaErrorInvalidConfiguration)");
  if (grid.x > kMaxGridX || grid.y > kMaxGridYZ || grid.z > kMaxGridYZ)
    throw Error(what + "gridDim exceeds (2^31-1, 65535, 65535) (cudaErrorInvalidConfiguration)");
  if (static_shared > kDefaultMaxDynamicShared)
    throw Error(what + "the kernel declares " + std::to_string(static_shared) +
                " bytes of static __shared__ memory, more than 49152 (48 KiB); nvcc rejects that");
  if (shared + static_shared > kMaxSharedPerBlock)
    throw Error(what + "with " + std::to_string(static_shared) +
                " bytes of static __shared__ memory this exceeds the limit of 232448 bytes (227 KiB) of shared memory "
                "per block (cudaErrorInvalidValue)");
  if (shared > kDefaultMaxDynamicShared) {
    std::lock_guard<std::mutex> lock(optin_mutex());
    const auto it = optins().find(kernel);
    const size_t allowed = it == optins().end() ? kDefaultMaxDynamicShared : it->second;
    if (shared > allowed)
      throw Error(what + "more than 49152 bytes (48 KiB) of dynamic shared memory need an opt-in: "
                         "safesvd_set_max_dynamic_shared(kernel, bytes) (this kernel allows " +
                  std::to_string(allowed) + ") (cudaErrorInvalidValue)");
  }
}

inline void prepare_stacks(State& s, size_t bytes) {
  const size_t page = State::page();
  bytes = (std::max<size_t>(bytes, 16 * 1024) + page - 1) / page * page;
  if (bytes != s.stack_bytes) s.release_stacks();
  s.stack_bytes = bytes;
  while (s.stacks.size() < s.nthreads) {
    // A PROT_NONE page below each stack turns an overflow into a crash
    // instead of silently corrupting the neighbouring fiber.
    void* p = mmap(nullptr, bytes + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) throw Error("safesvd emulation: cannot allocate fiber stacks");
    mprotect(p, page, PROT_NONE);
    s.stacks.push_back(p);
  }
}

// getcontext is declared returns_twice, which makes GCC warn about every
// local of its caller; it never returns twice here (makecontext gives each
// context a fresh entry point before it is resumed), so keep it out of line.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wclobbered"
__attribute__((noinline)) inline void start_fiber(State& s, unsigned t) {
  Fiber& f = s.fibers[t];
  getcontext(&f.ctx);
  f.ctx.uc_stack.ss_sp = static_cast<char*>(s.stacks[t]) + State::page();
  f.ctx.uc_stack.ss_size = s.stack_bytes;
  f.ctx.uc_link = &s.scheduler;
  makecontext(&f.ctx, trampoline, 0);
  f.wait = Wait::Runnable;
}
#pragma GCC diagnostic pop

// Runs the whole grid on the calling OS thread before returning.
inline void run_grid(const void* kernel, const std::string& name, dim3 grid, dim3 block, size_t shared,
                     void (*body)(void*), void* body_arg) {
  State& s = state();
  if (s.launching) throw Error("safesvd emulation: launch of '" + name + "' from inside a kernel is not emulated");
  std::lock_guard<std::mutex> lock(launch_mutex());  // __shared__ variables are process-wide
  check_launch(kernel, name, grid, block, shared, kernel_info(kernel).static_bytes);
  const std::vector<std::pair<uintptr_t, size_t>>& poison = registry().poison;
  struct sigaction action{};
  action.sa_sigaction = on_abort;
  action.sa_flags = SA_SIGINFO;
  sigemptyset(&action.sa_mask);
  sigaction(SIGABRT, &action, &previous_abort_action());
  struct Reset {
    State& s;
    ~Reset() {
      sigaction(SIGABRT, &previous_abort_action(), nullptr);
      s.launching = false;
      s.current = -1;
      s.error = nullptr;
      for (auto& g : s.open) g.clear();
    }
  } reset{s};
  s.launching = true;
  s.kernel = name;
  s.body = body;
  s.body_arg = body_arg;
  const Options opts = options();
  gridDim = grid;
  blockDim = block;
  s.nthreads = block.x * block.y * block.z;
  prepare_stacks(s, opts.stack_bytes);
  if (s.fibers.size() < s.nthreads) s.fibers.resize(s.nthreads);
  s.open.assign((s.nthreads + kWarp - 1) / kWarp, {});
  s.arena.resize(std::max<size_t>(shared, 16) + 16);
  s.dynamic = reinterpret_cast<unsigned char*>((reinterpret_cast<uintptr_t>(s.arena.data()) + 15) & ~uintptr_t(15));
  s.dynamic_bytes = shared;

  const uint64_t nblocks = uint64_t(grid.x) * grid.y * grid.z;
  // Shuffled block order: i -> (a*i + c) mod nblocks with gcd(a, nblocks) = 1
  // is a permutation that needs no table, whatever the grid size.
  std::mt19937_64 rng(opts.seed);
  uint64_t a = 1, c = 0;
  if (opts.order == Order::Shuffle && nblocks > 1) {
    do a = rng() % nblocks; while (a == 0 || std::gcd(a, nblocks) != 1);
    c = rng() % nblocks;
  }
  for (uint64_t i = 0; i < nblocks; ++i) {
    uint64_t b = opts.order == Order::Reverse ? nblocks - 1 - i : i;
    if (opts.order == Order::Shuffle) b = static_cast<uint64_t>((static_cast<unsigned __int128>(a) * i + c) % nblocks);
    blockIdx = {static_cast<unsigned>(b % grid.x), static_cast<unsigned>(b / grid.x % grid.y),
                static_cast<unsigned>(b / (uint64_t(grid.x) * grid.y))};
    for (const auto& v : poison) std::memset(reinterpret_cast<void*>(v.first), 0xFF, v.second);
    std::memset(s.dynamic, 0xFF, std::max<size_t>(shared, 16));
    for (unsigned t = 0; t < s.nthreads; ++t) start_fiber(s, t);
    s.live = s.nthreads;
    run_block(s, opts.seed * 0x9E3779B97F4A7C15ull + b);
  }
}

template <typename... P>
struct Launch {
  void (*kernel)(P...);
  dim3 grid, block;
  size_t shared;
  const char* name;

  // Arguments are converted to the parameter types once, as by cudaLaunchKernel;
  // every thread then gets its own copy.
  template <typename... A>
  void operator()(A&&... args) const {
    static_assert(sizeof...(A) == sizeof...(P), "wrong number of kernel arguments");
    struct Call {
      void (*kernel)(P...);
      std::tuple<std::decay_t<P>...> params;
      static void run(void* self) {
        auto* c = static_cast<Call*>(self);
        std::apply(c->kernel, c->params);
      }
    } call{kernel, std::tuple<std::decay_t<P>...>(std::forward<A>(args)...)};
    std::string n(name);  // SAFESVD_LAUNCH stringizes the kernel in parentheses
    if (n.size() > 1 && n.front() == '(' && n.back() == ')') n = n.substr(1, n.size() - 2);
    run_grid(reinterpret_cast<const void*>(kernel), n, grid, block, shared, &Call::run, &call);
  }
};

}  // namespace detail

// The emulation side of SAFESVD_LAUNCH: launch(kernel, grid, block, shared, stream, name)(args...).
template <typename... P, typename Stream>
detail::Launch<P...> launch(void (*kernel)(P...), dim3 grid, dim3 block, size_t shared, Stream&&, const char* name) {
  return {kernel, grid, block, shared, name};
}

// cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
// bytes): like the driver, refuses more than 227 KiB minus the kernel's static
// shared memory.
inline void set_max_dynamic_shared(const void* kernel, int bytes) {
  size_t static_bytes;
  {
    std::lock_guard<std::mutex> lock(detail::launch_mutex());
    static_bytes = detail::kernel_info(kernel).static_bytes;
  }
  if (bytes < 0 || static_cast<size_t>(bytes) + static_bytes > kMaxSharedPerBlock)
    throw Error("safesvd emulation: cannot opt in to " + std::to_string(bytes) +
                " bytes of dynamic shared memory: with " +
                std::to_string(static_bytes) + " bytes of static __shared__ memory the limit is 232448 bytes (227 KiB) "
                "per block (cudaErrorInvalidValue)");
  std::lock_guard<std::mutex> lock(detail::optin_mutex());
  detail::optins()[kernel] = static_cast<size_t>(bytes);
}

namespace detail {
template <typename T>
uint64_t to_bits(T v) {
  static_assert(std::is_arithmetic<T>::value && sizeof(T) <= 8,
                "warp shuffles take arithmetic types of at most 8 bytes");
  uint64_t b = 0;
  std::memcpy(&b, &v, sizeof(T));
  return b;
}
template <typename T>
T from_bits(uint64_t b) {
  T v;
  std::memcpy(&v, &b, sizeof(T));
  return v;
}
[[noreturn]] inline void assert_fail(const char* expr, const char* file, int line, const char* func) {
  if (state().current >= 0)
    throw Error(thread_name(static_cast<unsigned>(state().current)) + ": assertion failed: " + expr + " at " + file +
                ":" + std::to_string(line) + " in " + func);
  __assert_fail(expr, file, static_cast<unsigned>(line), func);
}
}  // namespace detail
}  // namespace safesvd_emu

// --------------------------------------------------------- device functions
// The call site (for messages and barrier matching) comes from GCC's
// __builtin_FILE/__builtin_LINE default arguments, evaluated at the caller.
#define SAFESVD_EMU_SITE_PARAMS const char *file_ = __builtin_FILE(), int line_ = __builtin_LINE()
#define SAFESVD_EMU_SITE(what) ::safesvd_emu::detail::Site{what, file_, line_}

inline void __syncthreads(SAFESVD_EMU_SITE_PARAMS) {
  safesvd_emu::detail::block_barrier(0, SAFESVD_EMU_SITE("__syncthreads"));
}
inline int __syncthreads_count(int pred, SAFESVD_EMU_SITE_PARAMS) {
  return safesvd_emu::detail::block_barrier(pred, SAFESVD_EMU_SITE("__syncthreads_count")).count;
}
inline int __syncthreads_and(int pred, SAFESVD_EMU_SITE_PARAMS) {
  const auto r = safesvd_emu::detail::block_barrier(pred, SAFESVD_EMU_SITE("__syncthreads_and"));
  return r.count == r.participants;
}
inline int __syncthreads_or(int pred, SAFESVD_EMU_SITE_PARAMS) {
  return safesvd_emu::detail::block_barrier(pred, SAFESVD_EMU_SITE("__syncthreads_or")).count > 0;
}
inline void __syncwarp(unsigned mask = 0xffffffffu, SAFESVD_EMU_SITE_PARAMS) {
  using safesvd_emu::detail::Op;
  safesvd_emu::detail::warp_op(Op::SyncWarp, mask, 0, 0, 32, SAFESVD_EMU_SITE("__syncwarp"));
}
template <typename T>
T __shfl_sync(unsigned mask, T var, int src_lane, int width = 32, SAFESVD_EMU_SITE_PARAMS) {
  using namespace safesvd_emu::detail;
  return from_bits<T>(warp_op(Op::Shfl, mask, to_bits(var), src_lane, width, SAFESVD_EMU_SITE("__shfl_sync")));
}
template <typename T>
T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = 32, SAFESVD_EMU_SITE_PARAMS) {
  using namespace safesvd_emu::detail;
  return from_bits<T>(
      warp_op(Op::ShflUp, mask, to_bits(var), static_cast<int>(delta), width, SAFESVD_EMU_SITE("__shfl_up_sync")));
}
template <typename T>
T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = 32, SAFESVD_EMU_SITE_PARAMS) {
  using namespace safesvd_emu::detail;
  return from_bits<T>(
      warp_op(Op::ShflDown, mask, to_bits(var), static_cast<int>(delta), width, SAFESVD_EMU_SITE("__shfl_down_sync")));
}
template <typename T>
T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = 32, SAFESVD_EMU_SITE_PARAMS) {
  using namespace safesvd_emu::detail;
  return from_bits<T>(warp_op(Op::ShflXor, mask, to_bits(var), lane_mask, width, SAFESVD_EMU_SITE("__shfl_xor_sync")));
}
inline unsigned __ballot_sync(unsigned mask, int pred, SAFESVD_EMU_SITE_PARAMS) {
  using namespace safesvd_emu::detail;
  return static_cast<unsigned>(warp_op(Op::Ballot, mask, pred != 0, 0, 32, SAFESVD_EMU_SITE("__ballot_sync")));
}
inline int __any_sync(unsigned mask, int pred, SAFESVD_EMU_SITE_PARAMS) {
  using namespace safesvd_emu::detail;
  return static_cast<int>(warp_op(Op::Any, mask, pred != 0, 0, 32, SAFESVD_EMU_SITE("__any_sync")));
}
inline int __all_sync(unsigned mask, int pred, SAFESVD_EMU_SITE_PARAMS) {
  using namespace safesvd_emu::detail;
  return static_cast<int>(warp_op(Op::All, mask, pred != 0, 0, 32, SAFESVD_EMU_SITE("__all_sync")));
}
// Hardware returns the lanes converged at this instruction; without a model
// of convergence the emulation returns every live lane of the warp.
inline unsigned __activemask() { return safesvd_emu::detail::live_lanes(); }
inline void __threadfence() { asm volatile("" ::: "memory"); }
inline void __threadfence_block() { asm volatile("" ::: "memory"); }

// Atomics: fibers switch only inside barriers and warp collectives, so plain
// read-modify-write is atomic here.
namespace safesvd_emu {
namespace detail {
template <typename T> struct same { using type = T; };  // keeps the value argument from deducing T
}  // namespace detail
}  // namespace safesvd_emu
#define SAFESVD_EMU_ATOMIC(name, expr)                                                             \
  template <typename T>                                                                            \
  T name(T* p, typename safesvd_emu::detail::same<T>::type v) {                                    \
    const T old = *p;                                                                              \
    *p = (expr);                                                                                   \
    return old;                                                                                    \
  }
SAFESVD_EMU_ATOMIC(atomicAdd, old + v)
SAFESVD_EMU_ATOMIC(atomicSub, old - v)
SAFESVD_EMU_ATOMIC(atomicMax, old < v ? v : old)
SAFESVD_EMU_ATOMIC(atomicMin, v < old ? v : old)
SAFESVD_EMU_ATOMIC(atomicExch, v)
SAFESVD_EMU_ATOMIC(atomicAnd, old & v)
SAFESVD_EMU_ATOMIC(atomicOr, old | v)
SAFESVD_EMU_ATOMIC(atomicXor, old ^ v)
#undef SAFESVD_EMU_ATOMIC
template <typename T>
T atomicCAS(T* p, typename safesvd_emu::detail::same<T>::type cmp, typename safesvd_emu::detail::same<T>::type v) {
  const T old = *p;
  if (old == cmp) *p = v;
  return old;
}

// Math and bit intrinsics that <cmath> lacks (glibc already declares
// __expf, __logf, __sinf, __cosf, __powf). rsqrt/rsqrtf are templates so that a
// C library that declares C23 rsqrt wins overload resolution without a clash.
template <int = 0> double rsqrt(double x) { return 1.0 / std::sqrt(x); }
template <int = 0> float rsqrt(float x) { return 1.0f / std::sqrt(x); }
template <int = 0> float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline float __fdividef(float a, float b) { return a / b; }
template <typename T> T __ldg(const T* p) { return *p; }
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __ffsll(long long x) { return __builtin_ffsll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz(static_cast<unsigned>(x)); }
inline int __clzll(long long x) { return x == 0 ? 64 : __builtin_clzll(static_cast<unsigned long long>(x)); }
inline float __int_as_float(int x) { return safesvd_emu::detail::from_bits<float>(static_cast<uint32_t>(x)); }
inline int __float_as_int(float x) { return static_cast<int>(safesvd_emu::detail::to_bits(x)); }
inline float __uint_as_float(unsigned x) { return safesvd_emu::detail::from_bits<float>(x); }
inline unsigned __float_as_uint(float x) { return static_cast<unsigned>(safesvd_emu::detail::to_bits(x)); }
inline double __longlong_as_double(long long x) {
  return safesvd_emu::detail::from_bits<double>(static_cast<uint64_t>(x));
}
inline long long __double_as_longlong(double x) { return static_cast<long long>(safesvd_emu::detail::to_bits(x)); }

// assert() in a kernel throws (CUDA: the launch fails with cudaErrorAssert)
// instead of aborting the process; outside a kernel it aborts as usual. A
// header that re-includes <cassert> afterwards gets glibc's assert back; its
// abort() is then caught by the SIGABRT handler, with a vaguer message.
#ifndef SAFESVD_EMU_KEEP_ASSERT
#undef assert
#ifdef NDEBUG
#define assert(e) (static_cast<void>(0))
#else
#define assert(e) \
  (static_cast<bool>(e) ? static_cast<void>(0) : ::safesvd_emu::detail::assert_fail(#e, __FILE__, __LINE__, __func__))
#endif
#endif
