// The CPU output cache: the memory of the operators' CPU outputs (and of their large
// temporaries) is kept for the next call of the same size instead of going back to the
// C library (docs/architecture.md, "CPU output memory").
//
// Why: glibc serves a block of more than its mmap threshold (128 KiB, rising to at most
// 32 MiB) with a fresh mmap, and returns a freed one (or the top of its heap above the
// trim threshold) to the kernel. The next call's first write to each 4 KiB page then
// faults, and the kernel zeroes the page: measured on the 2-core Intel Xeon of
// 2026-12-06, 20 000 faults (18 ms) for one 82 MB svd 256x8 float64 output, against 21 ms
// for the whole forward without them. The faults and the unmap also run partly serially
// (the unmap on one thread, the page tables under one lock), which is most of what kept
// the forward + backward of the tiny shapes from scaling with threads. A training loop
// calls an operator with the same sizes over and over: a block freed by one call is the
// right size for the next, with its pages already mapped.
//
// Policy: blocks of at least kMinBytes (smaller ones stay with malloc, whose bins serve
// them without faults), sizes rounded up to 4 KiB, a block reused only for a request of
// its exact rounded size; idle blocks are kept up to a byte limit (SAFESVD_CPU_CACHE_MB,
// default 256; 0 turns the cache off), the oldest freed first when a newly freed block
// would exceed it. Blocks in use are not counted: they belong to the tensors holding them.
// torch.ops.safesvd._cpu_output_cache reads the counters, sets the limit and empties the
// cache (safesvd.cpu_output_cache in Python). Under torch.use_deterministic_algorithms
// with its fill of uninitialized memory, the operators use at::empty (which fills).
// fork() takes the cache's lock first and releases it on both sides. Tests fill every
// block handed out with 0xff bytes (safesvd_testing_cpu_cache_poison, csrc/testing.h).
#include <ATen/ATen.h>
#include <ATen/EmptyTensor.h>
#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>
#include <c10/util/accumulate.h>
#include <ATen/Context.h>
#include <torch/library.h>

#include <pthread.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <mutex>
#include <string>
#include <vector>

#include "../testing.h"
#include "common.h"

namespace safesvd {
namespace {

constexpr size_t kMinBytes = size_t(64) << 10;
constexpr size_t kPage = 4096;
// The block's size lives in a header before its data; 64 bytes keep the data aligned
// as c10::alloc_cpu aligns the block (gAlignment, 64).
constexpr size_t kHeader = 64;
// At most this many idle blocks: a request scans them for its size.
constexpr size_t kMaxIdleBlocks = 64;

size_t limit_from_environment() {
  const char* v = std::getenv("SAFESVD_CPU_CACHE_MB");
  if (v == nullptr || *v == '\0') return size_t(256) << 20;
  char* end = nullptr;
  const double mb = std::strtod(v, &end);
  TORCH_CHECK(end != v && *end == '\0' && mb >= 0 && mb < 1e9,
              "SAFESVD_CPU_CACHE_MB must be a number of MiB >= 0 (0 turns the CPU output cache off), got '", v,
              "'");
  return size_t(mb * double(1 << 20));
}

class OutputCache final : public c10::Allocator {
 public:
  OutputCache() : limit_(limit_from_environment()) { idle_.reserve(kMaxIdleBlocks + 1); }

  static OutputCache& instance() {
    static OutputCache* cache = [] {
      auto* c = new OutputCache();  // never destroyed: tensors may outlive exit handlers
      // fork(): the lock is taken before and released after in both processes, so the
      // child (one thread) never inherits it held, nor the list half changed.
      forked_.store(c);
      pthread_atfork([] { forked_.load()->mutex_.lock(); }, [] { forked_.load()->mutex_.unlock(); },
                     [] { forked_.load()->mutex_.unlock(); });
      return c;
    }();
    return *cache;
  }

  // Tests: every block handed out (new or reused) filled with 0xff bytes first (NaN in
  // float32 / float64, -1 in int32), so that an entry an operator does not write shows.
  static std::atomic<bool>& poison() {
    static std::atomic<bool> on{false};
    return on;
  }

  bool enabled() const { return limit_.load(std::memory_order_relaxed) > 0; }

  c10::DataPtr allocate(size_t n) override {
    const size_t size = rounded(n);
    void* data = take(size);
    if (data == nullptr) {
      char* base = static_cast<char*>(c10::alloc_cpu(size + kHeader));
      *reinterpret_cast<size_t*>(base) = size;
      data = base + kHeader;
    }
    if (poison().load(std::memory_order_relaxed)) std::memset(data, 0xff, size);
    return {data, data, &release, c10::Device(c10::DeviceType::CPU)};
  }

  c10::DeleterFnPtr raw_deleter() const override { return &release; }

  void copy_data(void* dest, const void* src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }

  // [idle bytes, limit, idle blocks, reuses, new blocks]; a limit >= 0 is set first.
  std::vector<int64_t> control(int64_t new_limit, bool clear) {
    std::vector<void*> dropped;
    std::vector<int64_t> out;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (new_limit >= 0) limit_.store(size_t(new_limit));
      const size_t limit = limit_.load();
      if (clear || limit == 0) {
        dropped.swap(idle_);
        idle_.reserve(kMaxIdleBlocks + 1);
        idle_bytes_ = 0;
      }
      while (idle_bytes_ > limit) drop_oldest_locked(dropped);
      out = {int64_t(idle_bytes_), int64_t(limit), int64_t(idle_.size()), reuses_, new_blocks_};
    }
    for (void* d : dropped) free_block(d);
    return out;
  }

 private:
  static size_t rounded(size_t n) { return (std::max<size_t>(n, 1) + kPage - 1) / kPage * kPage; }
  static size_t& size_of(void* data) { return *reinterpret_cast<size_t*>(static_cast<char*>(data) - kHeader); }
  static void free_block(void* data) { c10::free_cpu(static_cast<char*>(data) - kHeader); }

  void* take(size_t size) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = idle_.rbegin(); it != idle_.rend(); ++it) {  // the newest first: its pages are warmest
      if (size_of(*it) == size) {
        void* data = *it;
        idle_.erase(std::next(it).base());  // at most kMaxIdleBlocks moves
        idle_bytes_ -= size;
        ++reuses_;
        return data;
      }
    }
    ++new_blocks_;
    return nullptr;
  }

  // The oldest idle block out of the list, onto `dropped` (at most two per release:
  // `dropped` is a small fixed array there, nothing allocates inside a deleter).
  template <typename Dropped>
  void drop_oldest_locked(Dropped& dropped) {
    idle_bytes_ -= size_of(idle_.front());
    dropped.push_back(idle_.front());
    idle_.erase(idle_.begin());
  }

  // Up to kMaxIdleBlocks + 1 pointers without allocating (the deleter must not throw).
  struct Dropped {
    void* items[kMaxIdleBlocks + 1];
    size_t count = 0;
    void push_back(void* p) { items[count++] = p; }
  };

  static void release(void* data) {
    if (data == nullptr) return;
    OutputCache& c = instance();
    Dropped dropped;
    {
      std::lock_guard<std::mutex> lock(c.mutex_);
      const size_t size = size_of(data), limit = c.limit_.load();
      // A block under kMinBytes comes only from resize_ of a cached output: not kept, so
      // that small blocks do not take the places of large ones.
      if (size > limit || size < kMinBytes) {
        dropped.push_back(data);
      } else {
        c.idle_.push_back(data);  // never reallocates: reserved for kMaxIdleBlocks + 1
        c.idle_bytes_ += size;
        while (c.idle_bytes_ > limit || c.idle_.size() > kMaxIdleBlocks) c.drop_oldest_locked(dropped);
      }
    }
    for (size_t i = 0; i < dropped.count; ++i) free_block(dropped.items[i]);  // outside the lock
  }

  inline static std::atomic<OutputCache*> forked_{nullptr};  // for the fork handlers
  std::mutex mutex_;
  std::vector<void*> idle_;  // oldest first
  size_t idle_bytes_ = 0;
  std::atomic<size_t> limit_;  // written under mutex_, read without it by enabled()
  int64_t reuses_ = 0, new_blocks_ = 0;
};

// torch.use_deterministic_algorithms(True) fills new tensors (NaN, or the integer
// maximum) where its fill_uninitialized_memory is on: at::empty does that, so those calls
// take it.
bool cached(const at::TensorOptions& options, size_t nbytes) {
  const at::Context& ctx = at::globalContext();
  return options.device().type() == c10::DeviceType::CPU && !options.pinned_memory() &&
         options.layout() == at::kStrided && nbytes >= kMinBytes &&
         !(ctx.deterministicAlgorithms() && ctx.deterministicFillUninitializedMemory()) &&
         OutputCache::instance().enabled();
}

size_t nbytes_of(at::IntArrayRef shape, const at::TensorOptions& options) {
  return size_t(c10::multiply_integers(shape)) * options.dtype().itemsize();
}

}  // namespace

Tensor empty_output(at::IntArrayRef shape, const at::TensorOptions& options) {
  if (!cached(options, nbytes_of(shape, options))) return at::empty(shape, options);
  return at::detail::empty_generic(shape, &OutputCache::instance(), c10::DispatchKeySet(c10::DispatchKey::CPU),
                                   options.dtype().toScalarType(), c10::nullopt);
}

Tensor empty_strided_output(at::IntArrayRef shape, at::IntArrayRef strides, const at::TensorOptions& options) {
  if (!cached(options, nbytes_of(shape, options))) return at::empty_strided(shape, strides, options);
  return at::detail::empty_strided_generic(shape, strides, &OutputCache::instance(),
                                           c10::DispatchKeySet(c10::DispatchKey::CPU),
                                           options.dtype().toScalarType());
}

TORCH_LIBRARY_IMPL(safesvd, CompositeImplicitAutograd, m) {
  m.impl("_cpu_output_cache", [](c10::optional<int64_t> limit_bytes, bool clear) {
    TORCH_CHECK_VALUE(!limit_bytes || *limit_bytes >= 0, "safesvd: the CPU output cache limit must be >= 0 bytes, got ",
                      *limit_bytes);
    return OutputCache::instance().control(limit_bytes ? *limit_bytes : -1, clear);
  });
}

}  // namespace safesvd

// Testing hook (csrc/testing.h): not an operator of the schema.
extern "C" SAFESVD_TESTING_API int safesvd_testing_cpu_cache_poison(int mode) {
  if (mode < -1 || mode > 1) return -2;
  auto& on = safesvd::OutputCache::poison();
  return mode < 0 ? int(on.load()) : int(on.exchange(mode == 1));
}
