// The metric family catalogue and what one event contributes to it (docs/accounting.md A19,
// A24-A26, A28, A32-A35, A38; README "Metrics").
//
// Every claude_* series is a sum of contributions: one request adds to its tokens, cost, request,
// histogram, savings or unpriced, and web-search series; a session start, a tool call, an API
// error and a prompt add 1 to one series each. These functions say which series (family and label
// values) and by how much. CollectEvents (metrics/metrics.h) is a loop over the accounting's events
// calling them; the agent calls the same functions for each request it counts, so that live
// counters and replay agree by construction.
//
// Pure functions, thread-safe. Label values are string_views into the arguments (and into static
// storage for the `type` label): valid as long as the arguments' strings are.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "base/money.h"
#include "exposition/family.h"
#include "pricing/pricing.h"
#include "transcript/usage.h"

namespace ccmon {

// The families ccmon exposes, in output order. The claude_* ones come first.
enum class MetricFamily : uint8_t {
  kTokens,             // claude_tokens_total{device,model,project,type}
  kCostUsd,            // claude_cost_usd_total{device,model,project}
  kRequests,           // claude_requests_total{device,model,project}
  kCostPerRequestUsd,  // claude_cost_per_request_usd{device,model} (histogram)
  kCacheSavingsUsd,    // claude_cache_savings_usd_total{device,model}
  kSessions,           // claude_sessions_total{device,project}
  kToolCalls,          // claude_tool_calls_total{device,tool}
  kWebSearchRequests,  // claude_web_search_requests_total{device,model}
  kApiErrors,          // claude_api_errors_total{device}
  kUnpricedTokens,     // claude_unpriced_tokens_total{device,model}
  kUserPrompts,        // claude_user_prompts_total{device,project}
  kSkippedLines,       // ccmon_skipped_lines_total{reason}
  // The agent's own claude_* families (docs/accounting.md A41): live state that a history
  // cannot give, so replay never writes them. Their values follow the others so that the
  // replay families keep their numbers (the agent persists series keys by this byte).
  kActiveSessions,   // claude_active_sessions{device} (gauge)
  kSessionDuration,  // claude_session_duration_seconds{device} (histogram, seconds)
};
inline constexpr size_t kClaudeFamilyCount = 11;  // MetricFamily values before kSkippedLines
inline constexpr size_t kMetricFamilyCount = 12;  // the families of FamilyCatalogue()
inline constexpr size_t kAgentFamilyCount = 2;    // kActiveSessions, kSessionDuration

// Upper bounds of claude_cost_per_request_usd, in pico-dollars (+Inf is implicit; A34).
const std::vector<Pico>& CostPerRequestBuckets();

// Upper bounds of claude_session_duration_seconds, in whole seconds (+Inf is implicit; A41):
// 1, 5, 10 and 30 minutes, 1, 2, 4 and 8 hours, 1 day.
const std::vector<Pico>& SessionDurationBuckets();

// The descriptor (name, type, help, unit, label names, buckets) of every family, indexed by
// MetricFamily. Built once; the reference is valid for the life of the program.
const std::array<FamilyDesc, kMetricFamilyCount>& FamilyCatalogue();
// The agent-only families, indexed by MetricFamily minus kMetricFamilyCount.
const std::array<FamilyDesc, kAgentFamilyCount>& AgentFamilyCatalogue();
inline bool IsAgentFamily(MetricFamily f) { return size_t(f) >= kMetricFamilyCount; }
// Any family, agent-only ones included. Precondition: `f` is a MetricFamily value.
inline const FamilyDesc& DescribeFamily(MetricFamily f) {
  return IsAgentFamily(f) ? AgentFamilyCatalogue()[size_t(f) - kMetricFamilyCount]
                          : FamilyCatalogue()[size_t(f)];
}

// The most label values of any family (claude_tokens_total).
inline constexpr size_t kMaxLabelValues = 4;

// One series increment: `delta` added to the series of `family` with these label values (in the
// family's label_names order). For the histogram, `delta` is the observed value. A delta of 0
// still names a series that exists (it is written with value 0): a request's five token types
// and its web-search series exist even when their counts are 0.
struct SeriesIncrement {
  MetricFamily family = MetricFamily::kTokens;
  uint8_t label_count = 0;
  std::array<std::string_view, kMaxLabelValues> label_storage{};
  PicoSum delta = 0;  // tokens, requests, or pico-dollars when the family is in USD

  std::span<const std::string_view> labels() const { return {label_storage.data(), label_count}; }
};

// A short list of increments held inline (no allocation).
template <size_t N>
class IncrementList {
 public:
  void push_back(const SeriesIncrement& i) { items_[size_++] = i; }  // precondition: size() < N
  size_t size() const { return size_; }
  const SeriesIncrement& operator[](size_t i) const { return items_[i]; }
  const SeriesIncrement* begin() const { return items_.data(); }
  const SeriesIncrement* end() const { return items_.data() + size_; }

 private:
  std::array<SeriesIncrement, N> items_{};
  size_t size_ = 0;
};

// A deduplicated request, priced (pricing/pricing.h PriceRequest) and labelled (model canonical,
// project after its mode and the per-device cap, A27, A30, A31).
struct LabelledRequest {
  std::string_view device;
  std::string_view model;
  std::string_view project;
  TokenCounts tokens;
  uint64_t web_search_requests = 0;
  CostBreakdown cost;
};

// A request makes at most 10 increments: 5 token types, cost, requests, web searches, and either
// the histogram and savings (priced) or the unpriced tokens.
inline constexpr size_t kMaxRequestIncrements = 10;

// The increments of one request, in this order: claude_tokens_total for each type of
// kTokenTypes (A19), claude_cost_usd_total (its cost, 0 when unpriced), claude_requests_total (1);
// when priced, claude_cost_per_request_usd (observes the cost, A34) and
// claude_cache_savings_usd_total (A28); when unpriced, claude_unpriced_tokens_total (all its
// tokens, A26); then claude_web_search_requests_total.
IncrementList<kMaxRequestIncrements> RequestContributions(const LabelledRequest& request);

// claude_sessions_total{device,project} += 1, at the session's first request line (A32).
SeriesIncrement SessionStartContribution(std::string_view device, std::string_view project);
// claude_tool_calls_total{device,tool} += 1, per distinct tool_use id (A33).
SeriesIncrement ToolCallContribution(std::string_view device, std::string_view tool);
// claude_api_errors_total{device} += 1, per API-error dedup key (A15). The series exists, at 0,
// for every device (CollectEvents creates it with no error).
SeriesIncrement ApiErrorContribution(std::string_view device);
// claude_user_prompts_total{device,project} += 1, per prompt a person typed (distinct line uuid),
// at its line's time, in the project of its cwd (A38).
SeriesIncrement UserPromptContribution(std::string_view device, std::string_view project);

// The agent's session series (A41). claude_active_sessions{device} is a gauge: `delta` is its
// new value (sessions with a request in the last 5 minutes), not an increment.
SeriesIncrement ActiveSessionsValue(std::string_view device, uint64_t sessions);
// claude_session_duration_seconds{device} observes one session's duration, in whole seconds
// (its last line's time minus its first's, rounded down; negative counts as 0).
SeriesIncrement SessionDurationObservation(std::string_view device, int64_t seconds);

}  // namespace ccmon
