// The public metric families (README "Metrics"): the catalogue and the events of one device.
//
// Every family is derived from timestamped events (one per request, token type, session start,
// tool call, API error). The exposition writers (exposition/text_format.h, exposition/history.h)
// sum them or turn them into cumulative samples. Label values are never session ids or dates.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "base/money.h"
#include "exposition/family.h"
#include "metrics/accounting.h"
#include "transcript/usage.h"

namespace ccmon {

// Upper bounds of claude_cost_per_request_usd, in pico-dollars (+Inf is implicit).
const std::vector<Pico>& CostPerRequestBuckets();

// The claude_* families of one device.
std::vector<FamilyEvents> CollectEvents(const Accounting& accounting, const std::string& device);

// ccmon_skipped_lines_total{reason}: every reason, 0 included.
FamilyEvents SkippedLinesFamily(const SkipCounts& skipped);

}  // namespace ccmon
