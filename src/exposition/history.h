// History: the events of metrics.h as OpenMetrics 1.0 with timestamps, for
// `promtool tsdb create-blocks-from openmetrics` (README, "Backfill Prometheus").
//
// Per series: a 0 sample one step before its first event, then one sample per step in which it
// changed, stamped at the step's end (the value includes every event at or before that instant);
// when a change follows a gap, the unchanged value is restated one step before it, so increase()
// and rate() over short windows see the change; finally every series repeats its last value at
// the common end time (the end of the step of the newest event), so an instant query at that time
// sees every series' total. Series are contiguous and their samples ascend; timestamps are in
// seconds. See docs/accounting.md A37.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "exposition/family.h"
#include "exposition/text_format.h"

namespace ccmon {

struct HistoryStats {
  uint64_t series = 0;
  uint64_t samples = 0;
  int64_t end_ms = 0;  // the common end time
};

// One sample stream of a history: a counter's <name>_total, or one histogram _bucket (with its
// "le" label), _count or _sum. Built once per stream, so that sinks format or look up its labels
// once (by `id`), not once per sample.
struct HistorySeries {
  uint32_t id = 0;   // dense, unique within one Emit call
  std::string name;  // sample name
  const std::vector<std::string>* label_names = nullptr;
  const std::vector<std::string>* label_values = nullptr;
  const char* extra_name = nullptr;  // "le" for buckets, else null
  std::string extra_value;
  bool usd = false;  // values are pico-dollars
};

// Receives the history's samples: per family, BeginFamily, then its series one after the other,
// each series' samples in ascending time (counters as <name>_total; histograms as _bucket with an
// "le" extra label, _count and _sum, all at one timestamp).
class HistorySink {
 public:
  virtual ~HistorySink() = default;
  virtual void BeginFamily(const FamilyDesc& desc) = 0;
  // `value` is a count, or pico-dollars when `series.usd`.
  virtual void Sample(const HistorySeries& series, __int128 value, int64_t timestamp_ms) = 0;
  // EmitHistoryInTimeOrder stops early once this is true (e.g. a send failed).
  virtual bool Stopped() const { return false; }
};

// Emits the history of `families` into `sink`. `step_ms` > 0 and a multiple of 1000.
HistoryStats EmitHistory(const std::vector<FamilyEvents>& families, int64_t step_ms,
                         HistorySink* sink);

// The same samples in ascending time across all series (ties: family, then label order), each
// series' own samples still ascending; BeginFamily is called for every family first. Memory is
// O(series), not O(samples): the per-series histories are merged lazily.
HistoryStats EmitHistoryInTimeOrder(const std::vector<FamilyEvents>& families, int64_t step_ms,
                                    HistorySink* sink);

// Stamps every event later than `not_after_ms` at `not_after_ms` (the order of events is
// otherwise unchanged); returns how many were. Before a history is sent with its timestamps
// (remote-write backfills): a transcript line from a clock ahead of ours must not put samples
// in the receiver's future, where they would be refused (ccmon-gateway's --max-future) or,
// accepted, make every later real sample of the series out of order. The live counting clamps
// the same way (docs/accounting.md, sample timestamps).
uint64_t ClampEventTimes(std::vector<FamilyEvents>* families, int64_t not_after_ms);

// The history as OpenMetrics text, ending in "# EOF".
HistoryStats WriteOpenMetricsHistory(const std::vector<FamilyEvents>& families, int64_t step_ms,
                                     std::ostream& out);

}  // namespace ccmon
