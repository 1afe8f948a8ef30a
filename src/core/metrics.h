// The public metric families (README "Metrics") and their exposition.
//
// Every family is derived from timestamped events (one per request, token type, session start,
// tool call, API error). The snapshot writers sum the events; the history writer
// (history.h) turns them into cumulative samples. Label values are never session ids or dates.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "core/accounting.h"
#include "core/money.h"
#include "core/usage.h"

namespace ccmon {

enum class MetricType { kCounter, kHistogram };

struct FamilyDesc {
  std::string name;  // OpenMetrics family name; counters get "_total" on their samples
  MetricType type = MetricType::kCounter;
  std::string help;
  std::string unit;  // OpenMetrics UNIT ("" for none); the name ends with it
  bool usd = false;  // values are pico-dollars, printed as USD
  std::vector<std::string> label_names;
};

struct MetricEvent {
  uint32_t series = 0;  // index into FamilyEvents::series_labels
  int64_t timestamp_ms = 0;
  __int128 delta = 0;   // counter increment; for histograms the observed value (pico-dollars)
};

struct FamilyEvents {
  FamilyDesc desc;
  std::vector<std::vector<std::string>> series_labels;
  std::vector<MetricEvent> events;
};

// Upper bounds of claude_cost_per_request_usd, in pico-dollars (+Inf is implicit).
const std::vector<Pico>& CostPerRequestBuckets();

// The claude_* families of one device.
std::vector<FamilyEvents> CollectEvents(const Accounting& accounting, const std::string& device);

struct SkipCounts {
  std::array<uint64_t, kSkipReasonCount> by_reason{};
  uint64_t total() const;
};

// Current totals as Prometheus text format 0.0.4 / OpenMetrics 1.0 (no timestamps).
// `skipped` (may be null) adds ccmon_skipped_lines_total{reason}.
std::string SnapshotText(const std::vector<FamilyEvents>& families, const SkipCounts* skipped);
std::string SnapshotOpenMetrics(const std::vector<FamilyEvents>& families,
                                const SkipCounts* skipped);

// Formatting shared with the history writer.
std::string FormatValue(__int128 v, bool usd);
std::string EscapeLabelValue(const std::string& v);
std::string EscapeHelp(const std::string& v);
std::string LabelString(const std::vector<std::string>& names, const std::vector<std::string>& values,
                        const char* extra_name = nullptr, const std::string* extra_value = nullptr);

}  // namespace ccmon
