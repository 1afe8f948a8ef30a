#include "gateway/ingest/series_cache.h"

#include <bit>
#include <cstring>
#include <functional>
#include <mutex>

namespace ccmon::gateway {

SeriesCache::SeriesCache(size_t max_entries)
    : sets_(std::bit_ceil(std::max<size_t>(max_entries, kWays)) / kWays) {}

uint64_t SeriesCache::DeviceHash(std::string_view device) {
  return std::hash<std::string_view>()(device) * 0x9E3779B97F4A7C15ull;
}

uint64_t SeriesCache::Hash(uint64_t device_hash, std::string_view label_bytes) {
  return std::hash<std::string_view>()(label_bytes) ^ device_hash;
}

bool SeriesCache::Matches(const Way& w, uint64_t hash, std::string_view device,
                          std::string_view label_bytes) {
  return w.entry != nullptr && w.hash == hash && w.device_size == device.size() &&
         w.label_size == label_bytes.size() &&
         std::memcmp(w.bytes.get(), device.data(), device.size()) == 0 &&
         std::memcmp(w.bytes.get() + device.size(), label_bytes.data(), label_bytes.size()) == 0;
}

SeriesCache::Reader::Reader(const SeriesCache* cache, std::string_view device,
                            uint64_t generation)
    : cache_(cache),
      lock_(cache->mu_),
      device_(device),
      device_hash_(DeviceHash(device)),
      generation_(generation) {}

const void* SeriesCache::Reader::Find(std::string_view label_bytes) {
  if (label_bytes.size() > kMaxLabelBytes) return nullptr;
  const uint64_t hash = Hash(device_hash_, label_bytes);
  const Set& set = cache_->sets_[size_t(hash) & (cache_->sets_.size() - 1)];
  for (const Way& w : set.ways) {
    if (w.hash == hash && w.generation == generation_ && Matches(w, hash, device_, label_bytes)) {
      return w.entry;
    }
  }
  return nullptr;
}

void SeriesCache::Insert(std::string_view device, uint64_t generation,
                         std::span<const Item> items) {
  const uint64_t device_hash = DeviceHash(device);
  std::unique_lock<std::shared_mutex> lock(mu_);
  for (const Item& item : items) {
    if (item.label_bytes.size() > kMaxLabelBytes || item.entry == nullptr) continue;
    const uint64_t hash = Hash(device_hash, item.label_bytes);
    Set& set = sets_[size_t(hash) & (sets_.size() - 1)];
    Way* target = nullptr;
    for (Way& w : set.ways) {
      if (Matches(w, hash, device, item.label_bytes)) {  // the same bytes: refreshed
        target = &w;
        break;
      }
    }
    if (target == nullptr) {
      for (Way& w : set.ways) {
        if (w.entry == nullptr) {
          target = &w;
          break;
        }
      }
    }
    if (target == nullptr) {
      target = &set.ways[(hash >> 32) % kWays];  // full: the way the hash selects
    }
    if (target->entry == nullptr) ++size_;
    if (target->entry == nullptr || target->device_size != device.size() ||
        target->label_size != item.label_bytes.size()) {
      target->bytes = std::make_unique<char[]>(device.size() + item.label_bytes.size());
      target->device_size = uint32_t(device.size());
      target->label_size = uint32_t(item.label_bytes.size());
    }
    std::memcpy(target->bytes.get(), device.data(), device.size());
    std::memcpy(target->bytes.get() + device.size(), item.label_bytes.data(),
                item.label_bytes.size());
    target->hash = hash;
    target->generation = generation;
    target->entry = item.entry;
  }
}

void SeriesCache::Clear() {
  std::unique_lock<std::shared_mutex> lock(mu_);
  for (Set& set : sets_) {
    for (Way& w : set.ways) w = Way{};
  }
  size_ = 0;
}

size_t SeriesCache::size() const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  return size_;
}

}  // namespace ccmon::gateway
