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
// cache (safesvd.cpu_output_cache in Python).
#include <ATen/ATen.h>
#include <ATen/EmptyTensor.h>
#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>
#include <torch/library.h>

#include <pthread.h>

#include <atomic>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <new>
#include <string>

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
  OutputCache() : limit_(limit_from_environment()) {
    // A child of fork() has one thread: a lock another thread held at the fork is
    // never released there.
    pthread_atfork(nullptr, nullptr, [] { new (&instance().mutex_) std::mutex(); });
  }

  static OutputCache& instance() {
    static OutputCache* cache = new OutputCache();  // never destroyed: tensors may outlive exit handlers
    return *cache;
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
    return {data, data, &release, c10::Device(c10::DeviceType::CPU)};
  }

  c10::DeleterFnPtr raw_deleter() const override { return &release; }

  void copy_data(void* dest, const void* src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }

  // [idle bytes, limit, idle blocks, reuses, new blocks]; a limit >= 0 is set first.
  std::vector<int64_t> control(int64_t new_limit, bool clear) {
    std::deque<void*> dropped;
    std::vector<int64_t> out;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (new_limit >= 0) limit_.store(size_t(new_limit));
      const size_t limit = limit_.load();
      if (clear || limit == 0) {
        dropped.swap(idle_);
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
        idle_.erase(std::next(it).base());
        idle_bytes_ -= size;
        ++reuses_;
        return data;
      }
    }
    ++new_blocks_;
    return nullptr;
  }

  void drop_oldest_locked(std::deque<void*>& dropped) {
    idle_bytes_ -= size_of(idle_.front());
    dropped.push_back(idle_.front());
    idle_.pop_front();
  }

  static void release(void* data) {
    OutputCache& c = instance();
    std::deque<void*> dropped;
    {
      std::lock_guard<std::mutex> lock(c.mutex_);
      const size_t size = size_of(data), limit = c.limit_.load();
      if (size > limit) {
        dropped.push_back(data);
      } else {
        c.idle_.push_back(data);
        c.idle_bytes_ += size;
        while (c.idle_bytes_ > limit || c.idle_.size() > kMaxIdleBlocks) c.drop_oldest_locked(dropped);
      }
    }
    for (void* d : dropped) free_block(d);  // outside the lock
  }

  std::mutex mutex_;
  std::deque<void*> idle_;  // oldest first
  size_t idle_bytes_ = 0;
  std::atomic<size_t> limit_;  // written under mutex_, read without it by enabled()
  int64_t reuses_ = 0, new_blocks_ = 0;
};

bool cached(const at::TensorOptions& options, size_t nbytes) {
  return options.device().type() == c10::DeviceType::CPU && !options.pinned_memory() &&
         options.layout() == at::kStrided && nbytes >= kMinBytes && OutputCache::instance().enabled();
}

size_t nbytes_of(at::IntArrayRef shape, const at::TensorOptions& options) {
  size_t n = options.dtype().itemsize();
  for (int64_t s : shape) n *= size_t(s);
  return n;
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
