// SeriesTable: the gateway's per-series state in memory — every series' last (timestamp, value)
// and every family's metadata — and the rules that decide what a received sample does to it
// (docs/store-format.md, "Gateway"). Pure: no I/O, no locks; GatewayStore (gateway_store.h) keeps
// it in step with RocksDB, and tests use it directly.
//
// The rules, per sample of a series, in the order received:
//   - a sample at or before the series' last timestamp is a duplicate: dropped and counted (a
//     retried request, or one series sent twice), whatever its value;
//   - otherwise it becomes the last sample. If the series is a counter (IsCounter) and the value
//     is below the previous one, that is a counter reset: stored like any sample, and counted.
// A series is identified by its labels, sorted by name, "__name__" included (SeriesKey).
//
// Thread-compatibility: const methods may run concurrently; anything else needs exclusive access.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/status.h"
#include "remote_write/write_request.h"

namespace ccmon::gateway {

// Labels sorted by name, names unique, "__name__" among them.
using Labels = std::vector<std::pair<std::string, std::string>>;

struct SeriesState {
  int64_t timestamp_ms = 0;
  double value = 0;
  bool operator==(const SeriesState&) const = default;  // NaN values compare unequal
};

// One series of a SeriesTable: its key and state.
using SeriesEntry = std::pair<const std::string, SeriesState>;

// One series of a request, labels canonical (sorted, validated by the handler). The same series
// may come several times in one request (Prometheus sends one entry per sample).
// Exactly one of `entry`, `key` and `labels` says which series it is, the first one set:
//  - `entry`: the series is that entry of the store's table, whose generation (SeriesTable::
//    generation) was `generation` when the caller got it (the write handler's series cache,
//    gateway/ingest/series_cache.h: a series seen before skips its key). A store refuses a
//    request with an entry of another generation (SeriesStore::Apply) and never reads a stale
//    entry; while the generation holds, the entry and its key stay valid.
//  - a non-empty `key`: SeriesKey of the series' labels, and then `labels` may be left empty (the
//    write handler builds the key straight from the decoded body and never materialises the
//    labels; what needs them uses LabelsOf).
//  - else the series is `labels`.
struct IncomingSeries {
  IncomingSeries() = default;
  IncomingSeries(Labels labels_in, std::vector<rw::Sample> samples_in, std::string key_in = {})
      : labels(std::move(labels_in)), samples(std::move(samples_in)), key(std::move(key_in)) {}

  Labels labels;
  std::vector<rw::Sample> samples;
  std::string key;
  const SeriesEntry* entry = nullptr;
  uint64_t generation = 0;  // of `entry`'s table
};

// The key the series comes with, as a view: its entry's, or `key`; "" for a series given by
// its labels alone.
inline std::string_view GivenKeyOf(const IncomingSeries& in) {
  return in.entry != nullptr ? std::string_view(in.entry->first) : std::string_view(in.key);
}
// The series' key: GivenKeyOf(in) when not empty, or SeriesKey(in.labels) built into *scratch.
std::string_view KeyOf(const IncomingSeries& in, std::string* scratch);
// The series' labels: those of GivenKeyOf(in) (empty for a malformed key), or `in.labels`.
Labels LabelsOf(const IncomingSeries& in);
// The value of label `name` ("__name__" included) in a key made by SeriesKey: a view into
// `key`; "" when the key has no such label (or is malformed).
std::string_view LabelOfKey(std::string_view key, std::string_view name);
// The metric name (first value) of a key made by SeriesKey, as a view; "" when malformed.
std::string_view NameViewOfKey(std::string_view key);

// SeriesKey of labels given as views, sorted by name with unique names, "__name__" among them:
// written to *key (overwritten; its capacity is reused).
void SeriesKeyOf(std::span<const std::pair<std::string_view, std::string_view>> labels,
                 std::string* key);

// What one request did.
struct ApplyResult {
  uint64_t accepted = 0;        // samples stored
  uint64_t duplicates = 0;      // samples at or before their series' last timestamp (dropped)
  uint64_t counter_resets = 0;  // accepted counter samples below the previous value
  uint64_t new_series = 0;
  uint64_t metadata_changed = 0;  // families whose metadata was new or different
};

class SeriesTable;

// The changes one request makes, computed by Plan before anything is written.
struct PlannedChanges {
  // Key -> new state, each key once. Planning leaves the key empty for a series the table
  // planned against holds (its entry, below, has it: no copy of every changed key per group);
  // key(i) is the key either way.
  std::vector<std::pair<std::string, SeriesState>> series;
  std::vector<rw::Metadata> metadata;  // new or changed families
  // Parallel to `series` (or empty): the entry of the series in the table planned against
  // (null: the series was new), so that committing to that table needs no lookup. Valid while
  // that table lives.
  std::vector<SeriesEntry*> entries;
  const SeriesTable* planned_against = nullptr;

  std::string_view key(size_t i) const {
    return i < entries.size() && entries[i] != nullptr ? std::string_view(entries[i]->first)
                                                       : std::string_view(series[i].first);
  }
};

// How a series name relates to the families whose metadata is known.
struct FamilyOf {
  std::string family;  // the family the series belongs to (its own name when none is known)
  rw::MetricKind kind = rw::MetricKind::kUnknown;
  const rw::Metadata* metadata = nullptr;  // null when none is known
};

// The key of a series: the __name__ value, then every other label in name order, each name and
// value as a varint length and its bytes. Series of one name share a prefix. `labels` must be
// sorted with unique names.
std::string SeriesKey(const Labels& labels);
// The labels of a key made by SeriesKey, sorted by name. kCorruption for anything else.
Status LabelsOfKey(std::string_view key, Labels* labels);
// The metric name of a key (its first value). kCorruption for a malformed key.
Status NameOfKey(std::string_view key, std::string* name);

// The bit pattern Prometheus uses as a staleness marker (a NaN): a series whose last value is one
// is not exposed.
bool IsStaleMarker(double v);

class SeriesTable {
 public:
  SeriesTable() : generation_(NextGeneration()) {}
  SeriesTable(const SeriesTable& other);
  SeriesTable& operator=(const SeriesTable& other);
  // A moved-to table keeps the source's entries and generation; the source gets a new one.
  SeriesTable(SeriesTable&& other) noexcept;
  SeriesTable& operator=(SeriesTable&& other) noexcept;

  // Which set of entries an entry pointer (IncomingSeries::entry) may belong to: unique in the
  // process among tables, and changed whenever entries of this table stop being valid (an
  // assignment replaces them all; series are never removed otherwise). An entry that a caller
  // got with generation g is valid while generation() == g.
  uint64_t generation() const { return generation_; }
  // The entry of `key`, or null (for callers that keep entries: IncomingSeries::entry).
  const SeriesEntry* FindEntry(std::string_view key) const { return index_.Find(key); }

  // Computes what `series` and `metadata` change, without changing anything: the new states
  // (one per key, the last of several), the families whose metadata is new or differs, and the
  // counts (*result is overwritten). The same as a GroupPlan of one request. `stored`
  // (optional, overwritten): the samples that will be stored, i.e. `series` without its
  // duplicates and without series left empty, in request order (what the gateway forwards,
  // gateway/forward).
  void Plan(const std::vector<IncomingSeries>& series, const std::vector<rw::Metadata>& metadata,
            PlannedChanges* changes, ApplyResult* result,
            std::vector<IncomingSeries>* stored = nullptr) const;
  using Entry = SeriesEntry;

  // Applies what Plan computed (after it was made durable). With `touched`, appends the entries
  // it changed or added (they stay valid, as every entry does, until the table is destroyed:
  // series are never removed).
  void Commit(const PlannedChanges& changes, std::vector<const Entry*>* touched = nullptr);

  // Loading from the store: sets a series' state; returns its entry.
  const Entry* Put(std::string key, SeriesState state);
  // The same for an entry of this table (no lookup).
  void SetState(const Entry* entry, SeriesState state) {
    const_cast<Entry*>(entry)->second = state;
  }
  void PutMetadata(rw::Metadata m);

  // Series ordered by key (so grouped by metric name).
  const std::map<std::string, SeriesState>& series() const { return series_; }
  const std::map<std::string, rw::Metadata>& metadata() const { return metadata_; }
  size_t size() const { return series_.size(); }

  // The family a series named `name` belongs to: the metadata of `name` itself; else of the
  // name without "_total" when that is a counter; without "_bucket", "_count" or "_sum" when
  // that is a histogram (or, for "_count" and "_sum", a summary). Unknown otherwise.
  FamilyOf Family(std::string_view name) const;
  // Counters, for reset counting: a counter family's samples, a histogram's _bucket and _count,
  // a summary's _count; without any metadata, a name ending in "_total".
  bool IsCounter(std::string_view name) const;

 private:
  friend class GroupPlan;

  // Every entry of a table by its key: open addressing over (hash, entry) slots, linear
  // probing, at most half full. A lookup touches one slot run and compares keys only on a
  // full 64-bit hash match (std::unordered_map walked a chain of separately allocated nodes:
  // 15 % of the gateway's CPU, BENCHMARKS.md "Gateway"). Entries are never removed.
  class KeyIndex {
   public:
    static uint64_t Hash(std::string_view key);
    Entry* Find(std::string_view key) const { return Find(key, Hash(key)); }
    Entry* Find(std::string_view key, uint64_t hash) const;
    // Lookups of many keys are memory-bound (a random slot, the entry's node, its key's
    // bytes: three dependent cache misses each); these start the loads of one key's first
    // probe ahead, stage by stage (each stage after the previous one's loads had time to land).
    void PrefetchSlot(uint64_t hash) const;
    void PrefetchEntry(uint64_t hash) const;
    void PrefetchKey(uint64_t hash) const;
    // `e`'s key must not be in the index yet; e->first must not move (map nodes never do).
    void Insert(Entry* e);
    void Reserve(size_t n);

   private:
    struct Slot {
      uint64_t hash = 0;
      Entry* entry = nullptr;  // null: free
    };
    void Grow(size_t slots);
    std::vector<Slot> slots_;
    size_t size_ = 0;
  };

  // The entry of `key`, or null: a hash lookup (the ordered map's would compare long keys that
  // share their metric-name prefix all the way down).
  Entry* Find(std::string_view key) const { return index_.Find(key); }
  Entry* Insert(std::string key, SeriesState state);
  static uint64_t NextGeneration();

  std::map<std::string, SeriesState> series_;
  // Every entry of series_, by its key (the map's own keys: nodes never move).
  KeyIndex index_;
  std::map<std::string, rw::Metadata> metadata_;
  uint64_t generation_;
};

// A map from entries of one table to 32-bit ids (GatewayStore's log ids of the series changed
// since the last checkpoint): open addressing over (entry, id) slots, at most half full, so a
// lookup is one slot run and no node per entry (std::unordered_map's bucket and node were two
// cache misses per changed series per group). Entries are never removed one by one; Clear
// empties it (keeping its slots). Thread-compatible.
class EntryIdMap {
 public:
  // Whether `e` is present; then *id is its id.
  bool Find(const SeriesEntry* e, uint32_t* id) const;
  // Starts loading the slot Find(e) reads first.
  void Prefetch(const SeriesEntry* e) const;
  // Sets the id of `e`, adding it when absent.
  void Set(const SeriesEntry* e, uint32_t id);
  // Adds `e` with `id` when absent; a present id is left as it is.
  void SetIfAbsent(const SeriesEntry* e, uint32_t id);
  void Clear();
  size_t size() const { return size_; }
  // Calls fn(entry, id) for every entry, in no particular order.
  template <typename Fn>
  void ForEach(Fn&& fn) const {
    for (const Slot& slot : slots_) {
      if (slot.entry != nullptr) fn(slot.entry, slot.id);
    }
  }

 private:
  struct Slot {
    const SeriesEntry* entry = nullptr;  // null: free
    uint32_t id = 0;
  };
  static size_t Hash(const SeriesEntry* e) {
    return size_t((uintptr_t(e) >> 4) * 0x9E3779B97F4A7C15ull >> 16);
  }
  Slot* SlotOf(const SeriesEntry* e);  // e's slot, claimed (id unset) when absent
  std::vector<Slot> slots_;
  size_t size_ = 0;
};

// The changes of several requests, planned in order as if each had been committed before the
// next was planned: request i sees the table plus everything requests 0..i-1 changed (a sample
// of a series that an earlier request of the group advanced is a duplicate when at or before
// it; an earlier request's metadata decides what a later one's counters are). Each Add gives
// that request's own counts, exactly what it would get applied alone after its predecessors.
// changes() merges the group: each series key once with its final state, each family once with
// its final metadata, so committing it equals committing the requests one by one.
//
// Borrows `table`, which must not change while the plan lives. Thread-compatible.
class GroupPlan {
 public:
  explicit GroupPlan(const SeriesTable* table);
  GroupPlan(const GroupPlan&) = delete;
  GroupPlan& operator=(const GroupPlan&) = delete;

  // Plans one more request after those already added; *result is overwritten; `stored` as in
  // SeriesTable::Plan. A series with an `entry` must have the planned table's generation (the
  // caller checks: GatewayStore refuses the request otherwise).
  void Add(const std::vector<IncomingSeries>& series, const std::vector<rw::Metadata>& metadata,
           ApplyResult* result, std::vector<IncomingSeries>* stored = nullptr);
  const PlannedChanges& changes() const { return changes_; }
  PlannedChanges TakeChanges() { return std::move(changes_); }
  // Starts a new group against the same table (as it is now), as a new GroupPlan would, but
  // keeps the buffers: the changes' vectors and the entry -> position table are neither
  // allocated, regrown nor zeroed again (GatewayStore plans every group with one plan: sizing
  // them per group was ~2 % of the gateway's instructions per sample).
  void Reset();

 private:
  const SeriesTable* table_;
  PlannedChanges changes_;
  // changes_.series position: of a series the table holds, by its entry (a pointer hash, no
  // second hash of a long key); of a new one, by its key.
  // An open-addressing map entry -> position (no node allocation per series, as
  // std::unordered_map had: a group plans ~1000s of series).
  class EntryPositions {
   public:
    // The position of `e`, or kNone.
    size_t Find(const SeriesEntry* e) const;
    // The same with one probe for a later InsertAt: on kNone, *free_slot is where `e` goes.
    // Needs room for one more position (Reserve), and no other insert before that InsertAt.
    size_t FindOrSlot(const SeriesEntry* e, size_t* free_slot) const;
    void InsertAt(size_t free_slot, const SeriesEntry* e, size_t position);
    // `e` not present yet; `position` below 2^32 (a group's series: the first request's count
    // fits the decoder's 32-bit indexes, the rest are capped by max_group_series).
    void Insert(const SeriesEntry* e, size_t position);
    void Reserve(size_t n);  // room for n positions without growing
    // Empties it without touching the slots: a slot is in use only when it holds the current
    // epoch, and Clear starts the next one (every slot is zeroed once per 2^32 - 1 Clears).
    void Clear();

   private:
    struct Slot {
      const SeriesEntry* entry = nullptr;
      uint32_t position = 0;
      uint32_t epoch = 0;  // in use when epoch_
    };
    static size_t Hash(const SeriesEntry* e) {
      return size_t((uintptr_t(e) >> 4) * 0x9E3779B97F4A7C15ull);
    }
    std::vector<Slot> slots_;
    size_t size_ = 0;
    uint32_t epoch_ = 1;  // never 0, the epoch of a fresh slot
  };
  static constexpr size_t kNone = ~size_t(0);
  EntryPositions existing_index_;
  std::unordered_map<std::string, size_t> new_index_;
  std::unordered_map<std::string, size_t> metadata_index_;  // family -> changes_.metadata
  std::vector<uint64_t> hashes_;  // Add's: the index hash of each series' key (0: none)
  // The table's metadata with the group's changes, for the counter rules; made on the first
  // metadata change (rare: senders repeat unchanged metadata).
  std::unique_ptr<SeriesTable> rules_;
};

}  // namespace ccmon::gateway
