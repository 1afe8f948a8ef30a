#include "metrics/metrics.h"

#include <functional>
#include <span>
#include <string_view>
#include <unordered_map>

namespace ccmon {
namespace {

// Interns label tuples per family, so that CollectEvents allocates only for new series.
class SeriesIndex {
 public:
  explicit SeriesIndex(FamilyEvents* f) : f_(f) {}
  uint32_t Get(std::span<const std::string_view> labels) {
    // Length-prefixed values: distinct tuples give distinct keys whatever bytes they hold.
    key_.clear();
    for (std::string_view l : labels) {
      const uint32_t n = uint32_t(l.size());
      key_.append(reinterpret_cast<const char*>(&n), sizeof n);
      key_.append(l);
    }
    auto it = ids_.find(std::string_view(key_));
    if (it != ids_.end()) return it->second;
    const uint32_t id = uint32_t(f_->series_labels.size());
    f_->series_labels.emplace_back(labels.begin(), labels.end());
    ids_.emplace(key_, id);
    return id;
  }

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  FamilyEvents* f_;
  std::string key_;  // reused
  std::unordered_map<std::string, uint32_t, Hash, std::equal_to<>> ids_;
};

// The families being collected, with a series index each.
class Collector {
 public:
  explicit Collector(size_t family_count) : families_(family_count) {
    index_.reserve(family_count);
    for (size_t f = 0; f < family_count; ++f) {
      families_[f].desc = DescribeFamily(MetricFamily(f));
      index_.emplace_back(&families_[f]);
    }
  }
  FamilyEvents& family(MetricFamily f) { return families_[size_t(f)]; }
  uint32_t Series(const SeriesIncrement& i) { return index_[size_t(i.family)].Get(i.labels()); }
  void Add(const SeriesIncrement& i, int64_t timestamp_ms) {
    families_[size_t(i.family)].events.push_back({Series(i), timestamp_ms, i.delta});
  }
  std::vector<FamilyEvents> Take() { return std::move(families_); }

 private:
  std::vector<FamilyEvents> families_;
  std::vector<SeriesIndex> index_;
};

}  // namespace

std::vector<FamilyEvents> CollectEvents(const Accounting& a, const std::string& device) {
  using F = MetricFamily;
  Collector c(kClaudeFamilyCount);
  const size_t n = a.requests().size();
  c.family(F::kTokens).events.reserve(5 * n);
  for (F f : {F::kCostUsd, F::kRequests, F::kWebSearchRequests}) c.family(f).events.reserve(n);
  for (const PricedRequest& r : a.requests()) {
    const LabelledRequest labelled{device,   a.label(r.model),      a.label(r.project),
                                   r.tokens, r.web_search_requests, r.cost};
    for (const SeriesIncrement& i : RequestContributions(labelled)) c.Add(i, r.timestamp_ms);
  }
  for (const SessionStart& s : a.sessions()) {
    c.Add(SessionStartContribution(device, a.label(s.project)), s.timestamp_ms);
  }
  for (const ToolCall& t : a.tool_calls()) {
    c.Add(ToolCallContribution(device, a.label(t.tool)), t.timestamp_ms);
  }
  c.Series(ApiErrorContribution(device));  // a device with no errors still shows 0
  for (int64_t ts : a.api_errors()) c.Add(ApiErrorContribution(device), ts);
  for (const PromptEvent& p : a.prompts()) {
    c.Add(UserPromptContribution(device, a.label(p.project)), p.timestamp_ms);
  }
  return c.Take();
}

FamilyEvents SkippedLinesFamily(const SkipCounts& skipped) {
  FamilyEvents f;
  f.desc = DescribeFamily(MetricFamily::kSkippedLines);
  for (int r = 0; r < kSkipReasonCount; ++r) {
    f.series_labels.push_back({std::string(SkipReasonName(SkipReason(r)))});
    f.events.push_back({uint32_t(r), 0, skipped.by_reason[r]});
  }
  return f;
}

}  // namespace ccmon
