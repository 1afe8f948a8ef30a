// The public metric families (README "Metrics"): the catalogue and the events of one device.
//
// Every family is derived from timestamped events (one per request, token type, session start,
// tool call, API error, prompt): the contributions of metrics/contributions.h, stamped with the
// time of the request, session start, tool call or error. The exposition writers
// (exposition/text_format.h, exposition/history.h) sum them or turn them into cumulative samples.
// Label values are never session ids or dates.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "base/money.h"
#include "exposition/family.h"
#include "metrics/accounting.h"
#include "metrics/contributions.h"
#include "transcript/usage.h"

namespace ccmon {

// The claude_* families of one device, in MetricFamily order (FamilyCatalogue()), each request,
// session start, tool call, API error and prompt of `accounting` adding its contributions as
// events.
std::vector<FamilyEvents> CollectEvents(const Accounting& accounting, const std::string& device);

// ccmon_skipped_lines_total{reason}: every reason, 0 included.
FamilyEvents SkippedLinesFamily(const SkipCounts& skipped);

}  // namespace ccmon
