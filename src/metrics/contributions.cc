#include "metrics/contributions.h"

#include <initializer_list>
#include <string>

namespace ccmon {
namespace {

FamilyDesc Desc(std::string name, MetricType type, std::string help, std::string unit, bool usd,
                std::vector<std::string> labels) {
  FamilyDesc d{std::move(name), type, std::move(help), std::move(unit), usd, std::move(labels), {}};
  if (type == MetricType::kHistogram) d.buckets = CostPerRequestBuckets();
  return d;
}

SeriesIncrement Increment(MetricFamily family, std::initializer_list<std::string_view> labels,
                          PicoSum delta) {
  SeriesIncrement i;
  i.family = family;
  for (std::string_view l : labels) i.label_storage[i.label_count++] = l;
  i.delta = delta;
  return i;
}

}  // namespace

const std::vector<Pico>& CostPerRequestBuckets() {
  static const std::vector<Pico> b = [] {
    std::vector<Pico> v;
    // $0.001 … $10
    for (Pico micro : {1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000,
                       2500000, 5000000, 10000000})
      v.push_back(micro * 1'000'000);
    return v;
  }();
  return b;
}

const std::vector<Pico>& SessionDurationBuckets() {
  static const std::vector<Pico> b = {60, 300, 600, 1800, 3600, 7200, 14400, 28800, 86400};
  return b;
}

const std::array<FamilyDesc, kMetricFamilyCount>& FamilyCatalogue() {
  using T = MetricType;
  static const std::array<FamilyDesc, kMetricFamilyCount> catalogue = {
      Desc("claude_tokens", T::kCounter, "Tokens used by Claude Code requests, by billing type.",
           "tokens", false, {"device", "model", "project", "type"}),
      Desc("claude_cost_usd", T::kCounter, "Cost of Claude Code requests in USD at list prices.",
           "usd", true, {"device", "model", "project"}),
      Desc("claude_requests", T::kCounter, "Deduplicated Claude API requests.", "", false,
           {"device", "model", "project"}),
      Desc("claude_cost_per_request_usd", T::kHistogram, "Cost of one priced request in USD.",
           "usd", true, {"device", "model"}),
      Desc("claude_cache_savings_usd", T::kCounter,
           "USD saved by cache reads compared with uncached input.", "usd", true,
           {"device", "model"}),
      Desc("claude_sessions", T::kCounter,
           "Claude Code sessions with at least one request, at their first request.", "", false,
           {"device", "project"}),
      Desc("claude_tool_calls", T::kCounter, "tool_use blocks in requests, by tool name.", "",
           false, {"device", "tool"}),
      Desc("claude_web_search_requests", T::kCounter, "Server-side web searches.", "", false,
           {"device", "model"}),
      Desc("claude_api_errors", T::kCounter, "API error messages recorded in transcripts.", "",
           false, {"device"}),
      Desc("claude_unpriced_tokens", T::kCounter,
           "Tokens of requests whose model has no price (their cost is counted as 0).", "tokens",
           false, {"device", "model"}),
      Desc("claude_user_prompts", T::kCounter,
           "Prompts a person typed (user lines with text, not tool results, commands or subagent "
           "prompts), once per line uuid.",
           "", false, {"device", "project"}),
      Desc("ccmon_skipped_lines", T::kCounter, "Transcript lines skipped as malformed, by reason.",
           "", false, {"reason"}),
  };
  return catalogue;
}

const std::array<FamilyDesc, kAgentFamilyCount>& AgentFamilyCatalogue() {
  static const std::array<FamilyDesc, kAgentFamilyCount> catalogue = {
      FamilyDesc{"claude_active_sessions",
                 MetricType::kGauge,
                 "Claude Code sessions with a request in the last 5 minutes (ccmon-agent only).",
                 "",
                 false,
                 {"device"},
                 {}},
      FamilyDesc{"claude_session_duration_seconds",
                 MetricType::kHistogram,
                 "Claude Code session durations (first to last line), observed once a session has "
                 "been idle for 30 minutes (ccmon-agent only).",
                 "seconds",
                 false,
                 {"device"},
                 SessionDurationBuckets()},
  };
  return catalogue;
}

IncrementList<kMaxRequestIncrements> RequestContributions(const LabelledRequest& r) {
  using F = MetricFamily;
  IncrementList<kMaxRequestIncrements> out;
  for (int t = 0; t < 5; ++t) {
    out.push_back(Increment(F::kTokens, {r.device, r.model, r.project, kTokenTypes[t]},
                            TokenOfType(r.tokens, t)));
  }
  out.push_back(Increment(F::kCostUsd, {r.device, r.model, r.project}, r.cost.cost));
  out.push_back(Increment(F::kRequests, {r.device, r.model, r.project}, 1));
  if (r.cost.priced) {
    out.push_back(Increment(F::kCostPerRequestUsd, {r.device, r.model}, r.cost.cost));
    out.push_back(Increment(F::kCacheSavingsUsd, {r.device, r.model}, r.cost.cache_savings));
  } else {
    out.push_back(Increment(F::kUnpricedTokens, {r.device, r.model}, r.tokens.Total()));
  }
  out.push_back(Increment(F::kWebSearchRequests, {r.device, r.model}, r.web_search_requests));
  return out;
}

SeriesIncrement SessionStartContribution(std::string_view device, std::string_view project) {
  return Increment(MetricFamily::kSessions, {device, project}, 1);
}

SeriesIncrement ToolCallContribution(std::string_view device, std::string_view tool) {
  return Increment(MetricFamily::kToolCalls, {device, tool}, 1);
}

SeriesIncrement ApiErrorContribution(std::string_view device) {
  return Increment(MetricFamily::kApiErrors, {device}, 1);
}

SeriesIncrement UserPromptContribution(std::string_view device, std::string_view project) {
  return Increment(MetricFamily::kUserPrompts, {device, project}, 1);
}

SeriesIncrement ActiveSessionsValue(std::string_view device, uint64_t sessions) {
  return Increment(MetricFamily::kActiveSessions, {device}, PicoSum(sessions));
}

SeriesIncrement SessionDurationObservation(std::string_view device, int64_t seconds) {
  return Increment(MetricFamily::kSessionDuration, {device}, seconds < 0 ? 0 : seconds);
}

}  // namespace ccmon
