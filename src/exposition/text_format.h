// Current totals of metric families as Prometheus text format 0.0.4 or OpenMetrics 1.0.
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "exposition/family.h"

namespace ccmon {

// Sums each series' events and writes the families in order, series sorted by label values,
// without timestamps. OpenMetrics output has TYPE/UNIT/HELP and ends with "# EOF".
std::string SnapshotText(const std::vector<FamilyEvents>& families);
std::string SnapshotOpenMetrics(const std::vector<FamilyEvents>& families);

// Families as current totals rather than events: what a process that keeps running counters
// (the agent, the gateway) has. Counters: `value`; histograms: `buckets` (observations <= each
// bound: cumulative, as exposed), `count` and `value` (the sum).
struct SeriesTotal {
  std::vector<std::string> labels;  // values, in FamilyDesc::label_names order
  __int128 value = 0;
  std::vector<uint64_t> buckets;
  uint64_t count = 0;
};
struct FamilyTotals {
  FamilyDesc desc;
  std::vector<SeriesTotal> series;
};
// The same text as SnapshotText/SnapshotOpenMetrics would write for events with these totals,
// without the final "# EOF" (the caller may append other families first).
std::string TotalsText(const std::vector<FamilyTotals>& families, bool openmetrics);

// A value as exposition text: an integer, or pico-dollars as exact USD decimal when `usd`.
std::string FormatValue(__int128 v, bool usd);
// Label value escaping (backslash, double quote, newline) and HELP escaping (backslash, newline).
std::string EscapeLabelValue(const std::string& v);
std::string EscapeHelp(const std::string& v);
// {name="value",…} with an optional extra label last (histograms' "le").
std::string LabelString(const std::vector<std::string>& names,
                        const std::vector<std::string>& values, const char* extra_name = nullptr,
                        const std::string* extra_value = nullptr);

}  // namespace ccmon
