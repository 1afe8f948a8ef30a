// SeriesCache: the write handler's map from a series' labels exactly as a device sent them (the
// bytes of its TimeSeries' Label fields, rw::WriteRequestView::label_bytes) to the store's table
// entry of the series they were stored as. Senders (ccmon-agent, Prometheus, rwload) send the
// same bytes for a series every time, so a series seen before costs one hash of its label bytes
// and one compare: no parse of its labels, no UTF-8 or name check, no sort, no key, no index
// lookup (write_handler.h, "Receive path").
//
// What makes a hit exact:
//   - An entry is keyed by the device name AND the label bytes: the handler sets the `device`
//     label from the key, so the same bytes from two devices are two series (two entries). An
//     anonymous write is the device "".
//   - Only label bytes that were decoded, validated and stored by the full path are inserted
//     (the handler inserts after a successful Apply, with the entries SeriesStore::Resolve gave
//     for their keys): a byte-identical run decodes to the same labels, which pass the same
//     checks (the limits are fixed per handler) and build the same key. Invalid labels are never
//     inserted, so they always take the full path and get the same 400.
//   - Each entry carries the store's table generation it was resolved at; a lookup under another
//     generation is a miss (SeriesStore::Resolve; the store refuses stale entries anyway).
//   - A revoked or rotated key never reaches the cache (401 first). A device re-added under the
//     same name writes the same series (the key holds only the name), so its entries stay right.
//
// Bounded memory: at most `max_entries` entries, in sets of kWays (the set chosen by the hash).
// Inserting into a full set replaces the way its hash selects (pseudo-random replacement): a
// working set larger than the cache still hits in proportion, and there is no global flush.
// Label runs over kMaxLabelBytes are not cached (they take the full path each time). Memory:
// 40 bytes per entry of the bound up front, and the device name + label bytes of each entry
// held.
//
// Thread-safety: thread-safe. Readers (one per request) hold a shared lock while they live;
// Insert and Clear take it exclusively.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "gateway/store/series_table.h"
#include "remote_write/write_request_view.h"

namespace ccmon::gateway {

class SeriesCache {
 public:
  static constexpr size_t kWays = 8;
  static constexpr size_t kMaxLabelBytes = 2048;

  // max_entries > 0 (rounded up to a power of two, at least kWays).
  explicit SeriesCache(size_t max_entries);
  SeriesCache(const SeriesCache&) = delete;
  SeriesCache& operator=(const SeriesCache&) = delete;

  // The lookups of one request of `device` against the table at `generation`: Find sets
  // found[i] to the cached `const SeriesEntry*` of label_bytes[i] (as the opaque value
  // rw::KnownLabels hands back) or null; the lookups of a request go stage by stage (hash and
  // set, way, bytes), each stage's loads started for every series before the next one reads
  // them. Holds the cache's shared lock until destroyed: destroy it before calling Insert on
  // this thread.
  class Reader final : public rw::KnownLabels {
   public:
    Reader(const SeriesCache* cache, std::string_view device, uint64_t generation);
    void Find(std::span<const std::string_view> label_bytes, std::span<const void*> found) override;

   private:
    const SeriesCache* cache_;
    std::shared_lock<std::shared_mutex> lock_;
    std::string_view device_;
    uint64_t device_hash_;
    uint64_t generation_;
  };

  struct Item {
    std::string_view label_bytes;
    const SeriesEntry* entry;  // not null
  };
  // Caches each item for `device` at `generation` (replacing an entry of the same bytes).
  // Items over kMaxLabelBytes are skipped.
  void Insert(std::string_view device, uint64_t generation, std::span<const Item> items);
  void Clear();
  size_t size() const;  // entries held
  size_t capacity() const { return sets_.size() * kWays; }

 private:
  // A set's hashes (0: a free way) fill one cache line, so a lookup reads one line to find its
  // way; the ways' details are apart.
  struct alignas(64) Set {
    uint64_t hashes[kWays] = {};
  };
  struct Way {
    const SeriesEntry* entry = nullptr;
    uint64_t generation = 0;
    uint32_t device_size = 0, label_size = 0;
    std::unique_ptr<char[]> bytes;  // the device name, then the label bytes
  };
  static uint64_t DeviceHash(std::string_view device);
  static uint64_t Hash(uint64_t device_hash, std::string_view label_bytes);
  static bool SameBytes(const Way& w, std::string_view device, std::string_view label_bytes);

  mutable std::shared_mutex mu_;
  std::vector<Set> sets_;  // guarded by mu_
  std::vector<Way> ways_;  // guarded by mu_; set s's ways are [s * kWays, (s + 1) * kWays)
  size_t size_ = 0;        // guarded by mu_
};

}  // namespace ccmon::gateway
