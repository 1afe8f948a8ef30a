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

// One series of a request, labels canonical (sorted, validated by the handler). The same series
// may come several times in one request (Prometheus sends one entry per sample).
struct IncomingSeries {
  Labels labels;
  std::vector<rw::Sample> samples;
};

struct SeriesState {
  int64_t timestamp_ms = 0;
  double value = 0;
};

// What one request did.
struct ApplyResult {
  uint64_t accepted = 0;        // samples stored
  uint64_t duplicates = 0;      // samples at or before their series' last timestamp (dropped)
  uint64_t counter_resets = 0;  // accepted counter samples below the previous value
  uint64_t new_series = 0;
  uint64_t metadata_changed = 0;  // families whose metadata was new or different
};

// The changes one request makes, computed by Plan before anything is written.
struct PlannedChanges {
  std::vector<std::pair<std::string, SeriesState>> series;  // key -> new state, each key once
  std::vector<rw::Metadata> metadata;                       // new or changed families
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
  // Computes what `series` and `metadata` change, without changing anything: the new states
  // (one per key, the last of several), the families whose metadata is new or differs, and the
  // counts (*result is overwritten). `stored` (optional, overwritten): the samples that will be
  // stored, i.e. `series` without its duplicates and without series left empty, in request order
  // (what the gateway forwards, gateway/forward).
  void Plan(const std::vector<IncomingSeries>& series, const std::vector<rw::Metadata>& metadata,
            PlannedChanges* changes, ApplyResult* result,
            std::vector<IncomingSeries>* stored = nullptr) const;
  // Applies what Plan computed (after it was made durable).
  void Commit(const PlannedChanges& changes);

  // Loading from the store.
  void Put(std::string key, SeriesState state) { series_[std::move(key)] = state; }
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
  std::map<std::string, SeriesState> series_;
  std::map<std::string, rw::Metadata> metadata_;
};

}  // namespace ccmon::gateway
