// Metric families as timestamped events: the model every writer (snapshot text, OpenMetrics
// history, remote-write) consumes. Knows nothing of transcripts or accounting: the gateway's
// /metrics uses it for series it only received.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/money.h"

namespace ccmon {

// A gauge is a current value that may fall (written without "_total"); only the agent has one
// (claude_active_sessions), and only as totals (text_format.h TotalsText).
enum class MetricType { kCounter, kHistogram, kGauge };

struct FamilyDesc {
  std::string name;  // OpenMetrics family name; counters get "_total" on their samples
  MetricType type = MetricType::kCounter;
  std::string help;
  std::string unit;  // OpenMetrics UNIT ("" for none); the name ends with it
  bool usd = false;  // values are pico-dollars, printed as USD
  std::vector<std::string> label_names;
  // Histograms: bucket upper bounds, ascending, in pico-dollars when `usd`, else plain units
  // (+Inf is implicit). Empty for counters.
  std::vector<Pico> buckets;
};

struct MetricEvent {
  uint32_t series = 0;  // index into FamilyEvents::series_labels
  int64_t timestamp_ms = 0;
  __int128 delta = 0;  // counter increment; for histograms the observed value
};

// One family with its series (label values in FamilyDesc::label_names order) and its events in
// any order. A series with no events still exists (it is written with value 0).
struct FamilyEvents {
  FamilyDesc desc;
  std::vector<std::vector<std::string>> series_labels;
  std::vector<MetricEvent> events;
};

}  // namespace ccmon
