#include "gateway/ingest/series_cache.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <mutex>
#include <new>

namespace ccmon::gateway {
namespace {

constexpr uint64_t kMul1 = 0x9E3779B97F4A7C15ull;
constexpr uint64_t kMul2 = 0xC2B2AE3D27D4EB4Full;
constexpr uint64_t kMul3 = 0xD6E8FEB86659FD93ull;

uint64_t Word(const char* p) {
  uint64_t w;
  std::memcpy(&w, p, 8);
  return w;
}

uint64_t Finish(uint64_t h) {
  h ^= h >> 32;
  h *= kMul3;
  h ^= h >> 29;
  return h;
}

// The cache's hash of `n` bytes: two independent multiply-rotate lanes over 16 bytes a step, so
// that a ~200-byte label run costs about half the dependent multiplies of a one-lane hash
// (std::hash's was 3.5 % of the gateway's CPU). Its quality only matters for spreading series
// over sets: a hit is decided by comparing the bytes.
uint64_t HashBytesPortable(const char* p, size_t n, uint64_t seed) {
  uint64_t a = seed ^ (uint64_t(n) * kMul1), b = ~seed;
  while (n >= 16) {
    a = std::rotl((a ^ Word(p)) * kMul1, 31);
    b = std::rotl((b ^ Word(p + 8)) * kMul2, 29);
    p += 16;
    n -= 16;
  }
  if (n >= 8) {
    a = std::rotl((a ^ Word(p)) * kMul1, 31);
    p += 8;
    n -= 8;
  }
  uint64_t tail = 0;
  std::memcpy(&tail, p, n);
  b = std::rotl((b ^ tail) * kMul2, 29);
  return Finish(a * kMul3 ^ b);
}

#if defined(__x86_64__)
// The same job with SSE 4.2's CRC-32C instruction: one instruction per 8 bytes (its load
// folded in) where the multiply-rotate lane takes four, in two independent chains of 32-bit
// state, mixed into 64 bits at the end (~1/3 of the instructions per label run). Not the same
// values as HashBytesPortable: a process uses one or the other throughout (the cache lives in
// memory only).
[[gnu::target("sse4.2")]] uint64_t HashBytesCrc(const char* p, size_t n, uint64_t seed) {
  uint64_t a = uint32_t(seed) ^ uint32_t(n), b = seed >> 32;
  while (n >= 32) {
    a = __builtin_ia32_crc32di(a, Word(p));
    b = __builtin_ia32_crc32di(b, Word(p + 8));
    a = __builtin_ia32_crc32di(a, Word(p + 16));
    b = __builtin_ia32_crc32di(b, Word(p + 24));
    p += 32;
    n -= 32;
  }
  if (n >= 16) {
    a = __builtin_ia32_crc32di(a, Word(p));
    b = __builtin_ia32_crc32di(b, Word(p + 8));
    p += 16;
    n -= 16;
  }
  // The last 0-15 bytes in at most two loads, overlapping when they are fewer than 16 (`n` is
  // in the hash's seed, so the overlap adds no collision a compare would not catch anyway): no
  // variable-length copy.
  if (n >= 8) {
    a = __builtin_ia32_crc32di(a, Word(p));
    b = __builtin_ia32_crc32di(b, Word(p + n - 8));
  } else if (n >= 4) {
    uint32_t head, last;
    std::memcpy(&head, p, 4);
    std::memcpy(&last, p + n - 4, 4);
    b = __builtin_ia32_crc32di(b, uint64_t(head) | uint64_t(last) << 32);
  } else if (n > 0) {
    const auto byte = [&](size_t i) { return uint64_t(uint8_t(p[i])); };
    b = __builtin_ia32_crc32di(b, byte(0) | byte(n / 2) << 8 | byte(n - 1) << 16);
  }
  return Finish(((a << 32) | b) * kMul1 ^ seed);
}

// Decided once, before main: a plain load per hash, not a guarded static's check and a call.
const bool kHasCrc32 = [] {
  __builtin_cpu_init();
  return __builtin_cpu_supports("sse4.2") != 0;
}();
#endif

[[gnu::always_inline]] inline uint64_t HashBytes(const char* p, size_t n, uint64_t seed) {
#if defined(__x86_64__)
  if (kHasCrc32) return HashBytesCrc(p, n, seed);
#endif
  return HashBytesPortable(p, n, seed);
}

// A block's bytes are read from its start, and a label run is ~100-250 bytes: the lines of a
// block prefetched with its header, at most this many.
constexpr size_t kPrefetchLines = 5;

}  // namespace

SeriesCache::SeriesCache(size_t max_entries)
    : sets_(std::bit_ceil(std::max<size_t>(max_entries, kWays)) / kWays) {}

SeriesCache::~SeriesCache() { FreeAll(); }

uint64_t SeriesCache::DeviceHash(std::string_view device) {
  return HashBytes(device.data(), device.size(), kMul2) * kMul1;
}

uint64_t SeriesCache::Hash(uint64_t device_hash, std::string_view label_bytes) {
  return HashBytes(label_bytes.data(), label_bytes.size(), device_hash);
}

bool SeriesCache::SameBytes(const Block& b, const std::string* device,
                            std::string_view label_bytes) {
  return b.device == device && b.label_size == label_bytes.size() &&
         std::memcmp(b.bytes(), label_bytes.data(), label_bytes.size()) == 0;
}

void SeriesCache::FreeBlock(Block* b) {
  b->~Block();
  ::operator delete(static_cast<void*>(b), std::align_val_t(64));
}

void SeriesCache::FreeAll() {
  for (Set& set : sets_) {
    for (uint64_t& way : set.ways) {
      if (way != 0) FreeBlock(BlockOf(way));
      way = 0;
    }
  }
  size_ = 0;
  devices_.clear();
}

SeriesCache::Reader::Reader(const SeriesCache* cache, std::string_view device, uint64_t generation)
    : cache_(cache),
      lock_(cache->mu_),
      device_(nullptr),
      device_hash_(DeviceHash(device)),
      generation_(generation) {
  if (auto it = cache->devices_.find(device); it != cache->devices_.end()) device_ = &*it;
}

void SeriesCache::Reader::Find(std::span<const std::string_view> label_bytes,
                               std::span<const void*> found) {
  const size_t n = label_bytes.size();
  const size_t mask = cache_->sets_.size() - 1;
  const Set* sets = cache_->sets_.data();
  // Per series: its hash, then the block of the first way whose tag matched (or null).
  thread_local std::vector<uint64_t> hashes;
  thread_local std::vector<const Block*> candidates;
  if (device_ == nullptr) {  // the device has never had an entry: nothing to find
    std::fill(found.begin(), found.begin() + n, nullptr);
    return;
  }
  thread_local std::vector<uint8_t> lookup;  // whether series i's bytes are cacheable
  // Sized, not zeroed: stage 1 writes every element it reads later (hashes[i] only where
  // lookup[i]).
  hashes.resize(n);
  candidates.resize(n);
  lookup.resize(n);
  // Stage 1: the hashes; each set's line starts loading.
  for (size_t i = 0; i < n; ++i) {
    found[i] = nullptr;
    candidates[i] = nullptr;
    lookup[i] = 0;
    if (label_bytes[i].empty() || label_bytes[i].size() > kMaxLabelBytes) continue;
    lookup[i] = 1;
    hashes[i] = Hash(device_hash_, label_bytes[i]);
    __builtin_prefetch(&sets[hashes[i] & mask]);
  }
  // Stage 2, the set's tags (the matching way's block, header and bytes, starts loading), runs
  // kAhead series ahead of stage 3, which compares: all blocks at once (~5 lines each) would
  // overflow the L1 and the miss buffers before the first was compared.
  constexpr size_t kAhead = 8;
  const size_t block_bytes = sizeof(Block);
  const auto probe = [&](size_t i) {
    if (!lookup[i]) return;
    const Set& set = sets[hashes[i] & mask];
    const uint64_t tag = Tag(hashes[i]);
    for (uint64_t way : set.ways) {
      if (way != 0 && way >> kTagShift == tag) {
        const Block* b = BlockOf(way);
        candidates[i] = b;
        const size_t lines =
            std::min(kPrefetchLines, (block_bytes + label_bytes[i].size() + 63) / 64);
        for (size_t l = 0; l < lines; ++l) {
          __builtin_prefetch(reinterpret_cast<const char*>(b) + 64 * l);
        }
        return;
      }
    }
  };
  // Stage 3: the full hash, the generation, the bytes.
  const auto compare = [&](size_t i) {
    const Block* b = candidates[i];
    if (b == nullptr) return;
    if (b->hash == hashes[i] && SameBytes(*b, device_, label_bytes[i])) {
      if (b->generation == generation_) found[i] = b->entry;
      return;
    }
    // Another way of the set with the same 16-bit tag (rare): compared without prefetching.
    const Set& set = sets[hashes[i] & mask];
    const uint64_t tag = Tag(hashes[i]);
    for (uint64_t way : set.ways) {
      if (way == 0 || way >> kTagShift != tag || BlockOf(way) == b) continue;
      const Block* other = BlockOf(way);
      if (other->hash == hashes[i] && SameBytes(*other, device_, label_bytes[i])) {
        if (other->generation == generation_) found[i] = other->entry;
        return;
      }
    }
  };
  for (size_t i = 0; i < n + kAhead; ++i) {
    if (i < n) probe(i);
    if (i >= kAhead) compare(i - kAhead);
  }
}

void SeriesCache::Insert(std::string_view device, uint64_t generation,
                         std::span<const Item> items) {
  const uint64_t device_hash = DeviceHash(device);
  std::unique_lock<std::shared_mutex> lock(mu_);
  const size_t mask = sets_.size() - 1;
  const std::string* device_copy = nullptr;  // made on the first item cached
  for (const Item& item : items) {
    if (item.label_bytes.empty() || item.label_bytes.size() > kMaxLabelBytes ||
        item.entry == nullptr) {
      continue;
    }
    const uint64_t hash = Hash(device_hash, item.label_bytes);
    if (device_copy == nullptr) {
      auto it = devices_.find(device);
      if (it == devices_.end()) it = devices_.emplace(device).first;
      device_copy = &*it;
    }
    Set& set = sets_[hash & mask];
    size_t target = kWays;
    for (size_t w = 0; w < kWays && target == kWays; ++w) {  // the same bytes: refreshed
      const uint64_t way = set.ways[w];
      if (way != 0 && way >> kTagShift == Tag(hash) && BlockOf(way)->hash == hash &&
          SameBytes(*BlockOf(way), device_copy, item.label_bytes)) {
        target = w;
      }
    }
    for (size_t w = 0; w < kWays && target == kWays; ++w) {
      if (set.ways[w] == 0) target = w;
    }
    if (target == kWays) target = (hash >> 24) % kWays;  // full: the way the hash selects
    uint64_t& way = set.ways[target];
    Block* b = way != 0 ? BlockOf(way) : nullptr;
    const size_t need = item.label_bytes.size();
    if (b != nullptr && b->capacity < need) {
      FreeBlock(b);
      b = nullptr;
      way = 0;
      --size_;
    }
    if (b == nullptr) {
      void* memory = ::operator new(sizeof(Block) + need, std::align_val_t(64));
      if ((reinterpret_cast<uintptr_t>(memory) & ~kAddressMask) != 0) {  // not on x86-64 Linux
        ::operator delete(memory, std::align_val_t(64));
        continue;
      }
      b = new (memory) Block{0, nullptr, 0, nullptr, 0, uint32_t(need)};
      ++size_;
    }
    b->hash = hash;
    b->entry = item.entry;
    b->generation = generation;
    b->device = device_copy;
    b->label_size = uint32_t(item.label_bytes.size());
    std::memcpy(b->bytes(), item.label_bytes.data(), item.label_bytes.size());
    way = (Tag(hash) << kTagShift) | reinterpret_cast<uintptr_t>(b);
  }
}

void SeriesCache::Clear() {
  std::unique_lock<std::shared_mutex> lock(mu_);
  FreeAll();
}

size_t SeriesCache::size() const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  return size_;
}

}  // namespace ccmon::gateway
