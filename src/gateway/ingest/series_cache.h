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
// 8 bytes per entry of the bound up front, per entry held one block of 40 bytes + the label
// bytes, and one copy of each device name that ever had an entry (until Clear: the names are
// the registry's devices, a few bytes each).
//
// Layout (a hit is memory-bound: a request touches ~1000 random series): a set is one cache
// line of 8 words, each a way's block pointer with 16 bits of the hash above it; a block holds
// the full hash, the generation, the table entry, its device and the label bytes, contiguous.
// A hit reads the set's line, then the block (its header and bytes prefetched together), then
// the entry; the bytes are compared only when the 16-bit tag and then the 64-bit hash matched.
// The device is compared as a pointer: each device name is held once (devices_), and a block
// points at its device's copy, which a Reader looks up once per request.
//
// Thread-safety: thread-safe. Readers (one per request) hold a shared lock while they live;
// Insert and Clear take it exclusively.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <set>
#include <shared_mutex>
#include <span>
#include <string>
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
  ~SeriesCache();

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
    const std::string* device_;  // the cache's copy of the device name; null: none has entries
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
  // A way: 0 when free, else (tag << 48) | the address of its Block (user-space addresses fit
  // in 48 bits; a block that would not is not cached). A set is one cache line.
  static constexpr int kTagShift = 48;
  static constexpr uint64_t kAddressMask = (uint64_t(1) << kTagShift) - 1;
  struct alignas(64) Set {
    uint64_t ways[kWays] = {};
  };
  struct Block {
    uint64_t hash;
    const SeriesEntry* entry;
    uint64_t generation;
    const std::string* device;  // in devices_
    uint32_t label_size;
    uint32_t capacity;  // bytes after the header
    char* bytes() { return reinterpret_cast<char*>(this + 1); }
    const char* bytes() const { return reinterpret_cast<const char*>(this + 1); }
  };
  static uint64_t DeviceHash(std::string_view device);
  static uint64_t Hash(uint64_t device_hash, std::string_view label_bytes);
  static uint64_t Tag(uint64_t hash) { return hash >> kTagShift; }
  static Block* BlockOf(uint64_t way) { return reinterpret_cast<Block*>(way & kAddressMask); }
  static bool SameBytes(const Block& b, const std::string* device, std::string_view label_bytes);
  static void FreeBlock(Block* b);
  void FreeAll();

  mutable std::shared_mutex mu_;
  std::vector<Set> sets_;  // guarded by mu_; each way's Block is owned here
  size_t size_ = 0;        // guarded by mu_
  // Guarded by mu_: every device name a block points at (set nodes do not move).
  std::set<std::string, std::less<>> devices_;
};

}  // namespace ccmon::gateway
