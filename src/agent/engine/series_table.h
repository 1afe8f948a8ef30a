// SeriesTable: the current value of every claude_* series of one device, as the agent counts
// them, and the samples that carry them to a remote-write receiver (docs/agent-design.md,
// "Samples").
//
// A counter holds its cumulative value (a count, or pico-dollars for USD families); a histogram
// (claude_cost_per_request_usd, claude_session_duration_seconds) holds its bucket counts, count
// and sum. Counters and histograms only rise: Apply() takes non-negative increments (the caller,
// LiveAccounting, never lowers a counter). The one gauge, claude_active_sessions (A41), has its
// own path, Set(): its value may fall, and a fall is no conflict. Each series remembers the
// timestamp of the last sample it queued, so that its samples strictly ascend across commits and
// restarts, and the latest event time of the changes not yet queued.
//
// Sample timestamps (issue 7 §4): the event time of the latest change, clamped to at most `now`
// (a clock ahead of ours must not put samples in the future) and to at least the series'
// previous sample + 1 ms (strictly ascending: Prometheus refuses out-of-order and same-time
// samples with another value); a change whose event is older than max_sample_age is stamped
// `now` instead (Prometheus refuses samples before its head block without an out-of-order
// window) and counted.
//
// Not thread-safe: the engine's thread owns it.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/money.h"
#include "base/status.h"
#include "metrics/contributions.h"
#include "remote_write/write_request.h"

namespace ccmon::agent {

inline constexpr int64_t kNever = std::numeric_limits<int64_t>::min();

struct SeriesState {
  MetricFamily family = MetricFamily::kTokens;
  std::vector<std::string> labels;    // values, in the family's label_names order
  PicoSum value = 0;                  // counter value; histogram sum
  uint64_t count = 0;                 // histogram: observations
  std::vector<uint64_t> buckets;      // histogram: observations <= bound i (cumulative)
  int64_t last_sample_ms = kNever;    // timestamp of the last queued sample
  int64_t pending_event_ms = kNever;  // newest event among changes not yet queued
  int64_t last_queued_ms = kNever;    // when (wall clock) the last sample was queued
  bool unsent = false;                // changed since its last sample
  bool unsaved = false;               // changed since its record was last taken
};

struct SampleOptions {
  int64_t now_ms = 0;
  int64_t max_sample_age_ms = 3600000;
  uint32_t shards = 1;
  size_t max_samples_per_request = 2000;
  // Also every series whose last sample was queued resend_before_ms or earlier (a resend at
  // `now` of its current value), changed or not. kNever: only changed series.
  int64_t resend_before_ms = kNever;
  // Also every series, changed or not (first samples after a catch-up).
  bool all = false;
  // Every sample is stamped after this instant (the end of a history sent by --backfill, whose
  // samples the live ones must follow). kNever: no floor.
  int64_t after_ms = kNever;
};

struct SampleStats {
  uint64_t series = 0;       // series given a sample
  uint64_t samples = 0;      // remote-write samples (a histogram makes buckets + 3)
  uint64_t stamped_now = 0;  // changes older than max_sample_age, stamped now
  uint64_t resent = 0;       // unchanged series resent
};

class SeriesTable {
 public:
  // `static_labels` (--label k=v) are added to every sample; the device is a label of each
  // series already (the contributions carry it).
  explicit SeriesTable(std::vector<std::pair<std::string, std::string>> static_labels = {})
      : static_labels_(std::move(static_labels)) {}
  // Not copyable (index_ points into series_); a move keeps the map's nodes.
  SeriesTable(const SeriesTable&) = delete;
  SeriesTable& operator=(const SeriesTable&) = delete;
  SeriesTable(SeriesTable&&) = default;
  SeriesTable& operator=(SeriesTable&&) = default;

  // Adds `inc` (delta >= 0; for a histogram the observed value) at event time `event_ms`.
  // Creates the series at 0 first when new. Precondition: `inc` is not a gauge's (use Set).
  void Apply(const SeriesIncrement& inc, int64_t event_ms);
  // Apply in two halves, for a caller that keeps the series of a label set between increments
  // (LiveAccounting: a request's series by (model, project), without building and hashing the
  // key per increment). Find: the series of `inc`'s family and labels, created at 0 when new
  // (*created says so); the address stays valid for the table's life (series are never erased;
  // a move of the table keeps it). ApplyTo: Apply(inc, event_ms) on that series; `created`
  // exactly as Find gave it for the first ApplyTo after Find, false afterwards.
  SeriesState* Find(const SeriesIncrement& inc, bool* created) { return &Get(inc, created); }
  void ApplyTo(SeriesState* series, bool created, const SeriesIncrement& inc, int64_t event_ms);
  // A gauge's new value (inc.delta, any sign) at event time `event_ms`: a change (or a new
  // series) is sent like any other, with the same timestamp rule; an unchanged value is not.
  // Precondition: `inc` is a gauge's.
  void Set(const SeriesIncrement& inc, int64_t event_ms);
  // Creates the series at 0 when absent (it is then sent like any change).
  void Ensure(const SeriesIncrement& inc);

  // Samples per shard (shard = ShardOf(series key)), each shard's series cut into requests of at
  // most max_samples_per_request samples (a histogram's samples stay together), each request a
  // serialized remote-write WriteRequest (rw::Serialize's bytes, series in key order) handed to
  // `sink` with its sample count as soon as it is complete (the last one of each shard at the
  // end): only one request per shard is held at a time (the first samples after a catch-up hold
  // every series). Each shard's requests come in order. Marks the series sent. An error (from
  // `sink`, or a label the wire format refuses) is returned at once; the series taken until
  // then stay marked sent (the caller abandons its commit and rebuilds, see Engine).
  using RequestSink = std::function<Status(uint32_t shard, std::string&& proto, uint32_t samples)>;
  Status TakeSamples(const SampleOptions& options, const RequestSink& sink, SampleStats* stats);

  // (store key, record) of every series changed since the last call.
  void TakeRecords(std::vector<std::pair<std::string, std::string>>* out);
  // Loads one record written by TakeRecords (key with its prefix). kCorruption when malformed.
  Status Load(std::string_view key, std::string_view record);

  // Text exposition 0.0.4 (or OpenMetrics without the final "# EOF") of every claude_* family,
  // in catalogue order, series in label order: first replay's families, the text replay's
  // `metrics` writes for the same totals (exposition/text_format.h TotalsText), then, with
  // `agent_families`, the agent-only ones (A41) that have a series, with HELP and TYPE lines.
  std::string Exposition(bool openmetrics, bool agent_families = true) const;
  // Changes whenever Exposition's text would: a new series, or a value, count or bucket that
  // changed (Apply, ApplyTo, Set, Ensure, Load); not for what only samples carry (TakeSamples
  // marks series sent, timestamps move). A caller that renders only when it moved (the agent's
  // pull mode, every few seconds while idle) serves the same text as rendering every time.
  uint64_t version() const { return version_; }

  const std::map<std::string, SeriesState>& series() const { return series_; }
  // The value of one counter series (tests, status); 0 when absent.
  PicoSum Value(MetricFamily family, const std::vector<std::string>& labels) const;

  // The series' key: family byte + label values (length-prefixed). Store keys add a prefix.
  static std::string Key(MetricFamily family, std::span<const std::string_view> labels);
  // The shard of a series key: a stable hash, so a series keeps its shard across restarts.
  static uint32_t ShardOf(std::string_view series_key, uint32_t shards);
  static constexpr char kRecordPrefix = 'c';

 private:
  SeriesState& Get(const SeriesIncrement& inc, bool* created);
  std::vector<std::pair<std::string, std::string>> static_labels_;
  std::map<std::string, SeriesState> series_;  // by Key()
  // The same series by hash (Get's lookup for every increment of every line: the ordered map's
  // string compares were 4 % of the first start's counting). Views of series_'s keys, whose
  // nodes keep their address; series are never erased.
  std::unordered_map<std::string_view, SeriesState*> index_;
  std::string key_scratch_;  // Get()'s key buffer
  // Per family (by MetricFamily value), the sample names and histogram `le` values TakeSamples
  // writes, built at a family's first sample: resends put every series in a request every 15 s.
  struct SampleNames {
    std::string plain;               // a counter's name_total, the gauge's name
    std::string bucket, count, sum;  // a histogram's
    std::vector<std::string> le;     // a histogram's finite bounds, as text
  };
  const SampleNames& NamesOf(MetricFamily family);
  std::vector<std::unique_ptr<SampleNames>> sample_names_;
  uint64_t version_ = 0;  // see version()
  // False only when no series is unsent (unsaved): set with any series' flag, cleared by a
  // complete TakeSamples (TakeRecords), so that those skip their walk over every series.
  bool maybe_unsent_ = false;
  bool maybe_unsaved_ = false;
};

}  // namespace ccmon::agent
