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
#include <vector>

#include "core/metrics.h"

namespace ccmon {

struct HistoryStats {
  uint64_t series = 0;
  uint64_t samples = 0;
  int64_t end_ms = 0;  // the common end time
};

// `step_ms` > 0 and a multiple of 1000. Writes "# EOF" at the end.
HistoryStats WriteOpenMetricsHistory(const std::vector<FamilyEvents>& families, int64_t step_ms,
                                     std::ostream& out);

}  // namespace ccmon
