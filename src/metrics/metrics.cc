#include "metrics/metrics.h"

#include <algorithm>
#include <map>
#include <unordered_map>

namespace ccmon {
namespace {

// Interns label tuples per family.
class SeriesIndex {
 public:
  explicit SeriesIndex(FamilyEvents* f) : f_(f) {}
  uint32_t Get(std::vector<std::string> labels) {
    std::string key;
    for (const auto& l : labels) {
      key += l;
      key.push_back('\0');
    }
    auto [it, inserted] = ids_.try_emplace(key, uint32_t(f_->series_labels.size()));
    if (inserted) f_->series_labels.push_back(std::move(labels));
    return it->second;
  }

 private:
  FamilyEvents* f_;
  std::unordered_map<std::string, uint32_t> ids_;
};

FamilyEvents Family(std::string name, MetricType type, std::string help, std::string unit,
                    bool usd, std::vector<std::string> labels) {
  FamilyEvents f;
  f.desc = FamilyDesc{std::move(name), type, std::move(help), std::move(unit), usd,
                      std::move(labels), {}};
  if (type == MetricType::kHistogram) f.desc.buckets = CostPerRequestBuckets();
  return f;
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

std::vector<FamilyEvents> CollectEvents(const Accounting& a, const std::string& device) {
  std::vector<FamilyEvents> fams;
  fams.push_back(Family("claude_tokens", MetricType::kCounter,
                        "Tokens used by Claude Code requests, by billing type.", "tokens", false,
                        {"device", "model", "project", "type"}));
  fams.push_back(Family("claude_cost_usd", MetricType::kCounter,
                        "Cost of Claude Code requests in USD at list prices.", "usd", true,
                        {"device", "model", "project"}));
  fams.push_back(Family("claude_requests", MetricType::kCounter,
                        "Deduplicated Claude API requests.", "", false,
                        {"device", "model", "project"}));
  fams.push_back(Family("claude_cost_per_request_usd", MetricType::kHistogram,
                        "Cost of one priced request in USD.", "usd", true, {"device", "model"}));
  fams.push_back(Family("claude_cache_savings_usd", MetricType::kCounter,
                        "USD saved by cache reads compared with uncached input.", "usd", true,
                        {"device", "model"}));
  fams.push_back(Family("claude_sessions", MetricType::kCounter,
                        "Claude Code sessions with at least one request, at their first request.",
                        "", false, {"device", "project"}));
  fams.push_back(Family("claude_tool_calls", MetricType::kCounter,
                        "tool_use blocks in requests, by tool name.", "", false,
                        {"device", "tool"}));
  fams.push_back(Family("claude_web_search_requests", MetricType::kCounter,
                        "Server-side web searches.", "", false, {"device", "model"}));
  fams.push_back(Family("claude_api_errors", MetricType::kCounter,
                        "API error messages recorded in transcripts.", "", false, {"device"}));
  fams.push_back(Family("claude_unpriced_tokens", MetricType::kCounter,
                        "Tokens of requests whose model has no price (their cost is counted as 0).",
                        "tokens", false, {"device", "model"}));
  enum { kTokens, kCost, kRequests, kHist, kSavings, kSessions, kTools, kSearch, kErrors, kUnpriced };
  std::vector<SeriesIndex> idx;
  for (auto& f : fams) idx.emplace_back(&f);

  for (const PricedRequest& r : a.requests()) {
    const std::string& model = a.label(r.model);
    const std::string& project = a.label(r.project);
    int64_t ts = r.timestamp_ms;
    for (int t = 0; t < 5; ++t) {
      uint32_t s = idx[kTokens].Get({device, model, project, std::string(kTokenTypes[t])});
      fams[kTokens].events.push_back({s, ts, TokenOfType(r.tokens, t)});
    }
    fams[kCost].events.push_back({idx[kCost].Get({device, model, project}), ts, r.cost.cost});
    fams[kRequests].events.push_back({idx[kRequests].Get({device, model, project}), ts, 1});
    if (r.cost.priced) {
      fams[kHist].events.push_back({idx[kHist].Get({device, model}), ts, r.cost.cost});
      fams[kSavings].events.push_back({idx[kSavings].Get({device, model}), ts, r.cost.cache_savings});
    } else {
      fams[kUnpriced].events.push_back({idx[kUnpriced].Get({device, model}), ts, r.tokens.Total()});
    }
    fams[kSearch].events.push_back({idx[kSearch].Get({device, model}), ts, r.web_search_requests});
  }
  for (const SessionStart& s : a.sessions()) {
    fams[kSessions].events.push_back(
        {idx[kSessions].Get({device, a.label(s.project)}), s.timestamp_ms, 1});
  }
  for (const ToolCall& t : a.tool_calls()) {
    fams[kTools].events.push_back({idx[kTools].Get({device, a.label(t.tool)}), t.timestamp_ms, 1});
  }
  idx[kErrors].Get({device});  // a device with no errors still shows 0
  for (int64_t ts : a.api_errors()) {
    fams[kErrors].events.push_back({idx[kErrors].Get({device}), ts, 1});
  }
  return fams;
}

FamilyEvents SkippedLinesFamily(const SkipCounts& skipped) {
  FamilyEvents f = Family("ccmon_skipped_lines", MetricType::kCounter,
                          "Transcript lines skipped as malformed, by reason.", "", false,
                          {"reason"});
  SeriesIndex idx(&f);
  for (int r = 0; r < kSkipReasonCount; ++r) {
    uint32_t s = idx.Get({std::string(SkipReasonName(SkipReason(r)))});
    f.events.push_back({s, 0, skipped.by_reason[r]});
  }
  return f;
}

}  // namespace ccmon
