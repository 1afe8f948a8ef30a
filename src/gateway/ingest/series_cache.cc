#include "gateway/ingest/series_cache.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <functional>
#include <mutex>

namespace ccmon::gateway {

SeriesCache::SeriesCache(size_t max_entries)
    : sets_(std::bit_ceil(std::max<size_t>(max_entries, kWays)) / kWays),
      ways_(sets_.size() * kWays) {}

uint64_t SeriesCache::DeviceHash(std::string_view device) {
  return std::hash<std::string_view>()(device) * 0x9E3779B97F4A7C15ull;
}

uint64_t SeriesCache::Hash(uint64_t device_hash, std::string_view label_bytes) {
  return (std::hash<std::string_view>()(label_bytes) ^ device_hash) | 1;  // never 0 (free)
}

bool SeriesCache::SameBytes(const Way& w, std::string_view device, std::string_view label_bytes) {
  return w.device_size == device.size() && w.label_size == label_bytes.size() &&
         std::memcmp(w.bytes.get(), device.data(), device.size()) == 0 &&
         std::memcmp(w.bytes.get() + device.size(), label_bytes.data(), label_bytes.size()) == 0;
}

SeriesCache::Reader::Reader(const SeriesCache* cache, std::string_view device, uint64_t generation)
    : cache_(cache),
      lock_(cache->mu_),
      device_(device),
      device_hash_(DeviceHash(device)),
      generation_(generation) {}

void SeriesCache::Reader::Find(std::span<const std::string_view> label_bytes,
                               std::span<const void*> found) {
  const size_t n = label_bytes.size();
  const size_t mask = cache_->sets_.size() - 1;
  // Per series: its hash, then the index of the way whose hash matched (or none).
  thread_local std::vector<uint64_t> hashes;
  thread_local std::vector<size_t> ways;
  hashes.assign(n, 0);
  ways.assign(n, SIZE_MAX);
  for (size_t i = 0; i < n; ++i) {
    found[i] = nullptr;
    if (label_bytes[i].empty() || label_bytes[i].size() > kMaxLabelBytes) continue;
    hashes[i] = Hash(device_hash_, label_bytes[i]);
    __builtin_prefetch(&cache_->sets_[size_t(hashes[i] >> 1) & mask]);  // bit 0 is always 1
  }
  for (size_t i = 0; i < n; ++i) {
    if (hashes[i] == 0) continue;
    const size_t s = size_t(hashes[i] >> 1) & mask;
    const Set& set = cache_->sets_[s];
    for (size_t w = 0; w < kWays; ++w) {
      if (set.hashes[w] == hashes[i]) {
        ways[i] = s * kWays + w;
        __builtin_prefetch(&cache_->ways_[ways[i]]);
        break;
      }
    }
  }
  for (size_t i = 0; i < n; ++i) {
    if (ways[i] == SIZE_MAX) continue;
    const Way& w = cache_->ways_[ways[i]];
    if (w.generation != generation_) {
      ways[i] = SIZE_MAX;
      continue;
    }
    __builtin_prefetch(w.bytes.get());
    __builtin_prefetch(w.entry);  // the store reads its state next
  }
  for (size_t i = 0; i < n; ++i) {
    if (ways[i] == SIZE_MAX) continue;
    const Way& w = cache_->ways_[ways[i]];
    if (SameBytes(w, device_, label_bytes[i])) found[i] = w.entry;
  }
}

void SeriesCache::Insert(std::string_view device, uint64_t generation,
                         std::span<const Item> items) {
  const uint64_t device_hash = DeviceHash(device);
  std::unique_lock<std::shared_mutex> lock(mu_);
  for (const Item& item : items) {
    if (item.label_bytes.empty() || item.label_bytes.size() > kMaxLabelBytes ||
        item.entry == nullptr) {
      continue;
    }
    const uint64_t hash = Hash(device_hash, item.label_bytes);
    const size_t s = size_t(hash >> 1) & (sets_.size() - 1);
    Set& set = sets_[s];
    size_t target = kWays;
    for (size_t w = 0; w < kWays && target == kWays; ++w) {  // the same bytes: refreshed
      if (set.hashes[w] == hash && SameBytes(ways_[s * kWays + w], device, item.label_bytes)) {
        target = w;
      }
    }
    for (size_t w = 0; w < kWays && target == kWays; ++w) {
      if (set.hashes[w] == 0) target = w;
    }
    if (target == kWays) target = (hash >> 40) % kWays;  // full: the way the hash selects
    Way& way = ways_[s * kWays + target];
    if (set.hashes[target] == 0) ++size_;
    if (way.bytes == nullptr || way.device_size != device.size() ||
        way.label_size != item.label_bytes.size()) {
      way.bytes = std::make_unique<char[]>(device.size() + item.label_bytes.size());
      way.device_size = uint32_t(device.size());
      way.label_size = uint32_t(item.label_bytes.size());
    }
    std::memcpy(way.bytes.get(), device.data(), device.size());
    std::memcpy(way.bytes.get() + device.size(), item.label_bytes.data(), item.label_bytes.size());
    set.hashes[target] = hash;
    way.generation = generation;
    way.entry = item.entry;
  }
}

void SeriesCache::Clear() {
  std::unique_lock<std::shared_mutex> lock(mu_);
  for (Set& set : sets_) set = Set{};
  for (Way& w : ways_) w = Way{};
  size_ = 0;
}

size_t SeriesCache::size() const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  return size_;
}

}  // namespace ccmon::gateway
