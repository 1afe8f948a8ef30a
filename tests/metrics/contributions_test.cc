// Per-event series contributions and the family catalogue (metrics/contributions.h;
// docs/accounting.md A15, A19, A23-A26, A28, A32-A34).
#include "metrics/contributions.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "ledger/ledger.h"
#include "metrics/accounting.h"
#include "metrics/metrics.h"
#include "pricing/pricing.h"
#include "testing/test_util.h"

namespace ccmon {
namespace {

using F = MetricFamily;

// "label,label=delta"
std::string Row(const SeriesIncrement& i) {
  std::string s;
  for (size_t k = 0; k < i.labels().size(); ++k) s += (k ? "," : "") + std::string(i.labels()[k]);
  return s + "=" + FormatInt(i.delta);
}

// A test price: $3/$15 per Mtok in/out, 5m writes 1.25x, reads 0.1x, fast 6x.
ModelPrice TestPrice() {
  ModelPrice p;
  p.base = Rates{3'000'000, 15'000'000, 3'750'000, 300'000};
  p.fast_multiplier_milli = 6000;
  return p;
}
constexpr Pico kWebSearchCost = 10'000'000'000;  // $0.01
const TokenCounts kTokens{10, 20, 100, 1000, 10000};
// 10*3e6 + 20*15e6 + 100*3.75e6 + 1000*(2*3e6) + 10000*0.3e6
constexpr Pico kTokenCost = 30'000'000 + 300'000'000 + 375'000'000 + 6'000'000'000 + 3'000'000'000;
constexpr Pico kSavings = Pico{10000} * (3'000'000 - 300'000);

enum Case { kPriced, kUnpriced, kCostUsd, kFast, kWebSearch };
const char* const kCaseNames[] = {"priced", "unpriced", "costUSD", "fast", "web-search"};

// The request of each case, priced by PriceRequest as the accounting does.
LabelledRequest RequestOf(Case c) {
  static const ModelPrice price = TestPrice();
  LabelledRequest r;
  r.device = "dev1";
  r.model = c == kUnpriced || c == kCostUsd ? "mystery-model" : "claude-test";
  r.project = "webapp";
  r.tokens = kTokens;
  r.web_search_requests = c == kWebSearch ? 2 : 0;
  const ModelPrice* p = c == kUnpriced || c == kCostUsd ? nullptr : &price;
  r.cost = PriceRequest(p, kWebSearchCost, r.tokens, r.web_search_requests, c == kFast,
                        /*us_inference=*/false, c == kCostUsd, c == kCostUsd ? 500'000'000'000 : 0);
  return r;
}

// The rows one case contributes to one family, in order.
std::vector<std::string> Rows(Case c, MetricFamily family) {
  std::vector<std::string> rows;
  for (const SeriesIncrement& i : RequestContributions(RequestOf(c)))
    if (i.family == family) rows.push_back(Row(i));
  return rows;
}

struct Expect {
  Case c;
  std::vector<std::string> rows;
};

void CheckFamily(MetricFamily family, const std::vector<Expect>& table) {
  std::set<Case> seen;
  for (const Expect& e : table) {
    EXPECT_EQ(Rows(e.c, family), e.rows) << DescribeFamily(family).name << ", " << kCaseNames[e.c];
    seen.insert(e.c);
  }
  EXPECT_EQ(seen.size(), 5u) << "every case has a row";
}

const std::string kMain = "dev1,claude-test";
const std::string kMystery = "dev1,mystery-model";

TEST(RequestContributions, A19_Tokens) {
  auto rows = [](const std::string& series) {
    return std::vector<std::string>{series + ",webapp,input=10", series + ",webapp,output=20",
                                    series + ",webapp,cache_creation_5m=100",
                                    series + ",webapp,cache_creation_1h=1000",
                                    series + ",webapp,cache_read=10000"};
  };
  // Tokens are counted whatever the price.
  CheckFamily(F::kTokens, {{kPriced, rows(kMain)},
                           {kUnpriced, rows(kMystery)},
                           {kCostUsd, rows(kMystery)},
                           {kFast, rows(kMain)},
                           {kWebSearch, rows(kMain)}});
}

TEST(RequestContributions, A21_A23_A24_A25_A26_Cost) {
  CheckFamily(F::kCostUsd,
              {{kPriced, {kMain + ",webapp=" + FormatInt(kTokenCost)}},
               {kUnpriced, {kMystery + ",webapp=0"}},
               {kCostUsd, {kMystery + ",webapp=500000000000"}},
               {kFast, {kMain + ",webapp=" + FormatInt(6 * kTokenCost)}},
               {kWebSearch, {kMain + ",webapp=" + FormatInt(kTokenCost + 2 * kWebSearchCost)}}});
}

TEST(RequestContributions, A26_RequestsCountEveryRequest) {
  CheckFamily(F::kRequests, {{kPriced, {kMain + ",webapp=1"}},
                             {kUnpriced, {kMystery + ",webapp=1"}},
                             {kCostUsd, {kMystery + ",webapp=1"}},
                             {kFast, {kMain + ",webapp=1"}},
                             {kWebSearch, {kMain + ",webapp=1"}}});
}

TEST(RequestContributions, A34_CostPerRequestObservesPricedRequestsOnly) {
  CheckFamily(F::kCostPerRequestUsd,
              {{kPriced, {kMain + "=" + FormatInt(kTokenCost)}},
               {kUnpriced, {}},
               {kCostUsd, {kMystery + "=500000000000"}},
               {kFast, {kMain + "=" + FormatInt(6 * kTokenCost)}},
               {kWebSearch, {kMain + "=" + FormatInt(kTokenCost + 2 * kWebSearchCost)}}});
}

TEST(RequestContributions, A28_CacheSavingsOfPricedRequests) {
  CheckFamily(F::kCacheSavingsUsd,
              {{kPriced, {kMain + "=" + FormatInt(kSavings)}},
               {kUnpriced, {}},
               {kCostUsd, {kMystery + "=0"}},  // priced by costUSD: no rates, no savings
               {kFast, {kMain + "=" + FormatInt(6 * kSavings)}},
               {kWebSearch, {kMain + "=" + FormatInt(kSavings)}}});
}

TEST(RequestContributions, A26_UnpricedTokensOfUnpricedRequestsOnly) {
  CheckFamily(F::kUnpricedTokens, {{kPriced, {}},
                                   {kUnpriced, {kMystery + "=11130"}},
                                   {kCostUsd, {}},
                                   {kFast, {}},
                                   {kWebSearch, {}}});
}

TEST(RequestContributions, A24_WebSearchSeriesExistsForEveryRequest) {
  CheckFamily(F::kWebSearchRequests, {{kPriced, {kMain + "=0"}},
                                      {kUnpriced, {kMystery + "=0"}},
                                      {kCostUsd, {kMystery + "=0"}},
                                      {kFast, {kMain + "=0"}},
                                      {kWebSearch, {kMain + "=2"}}});
}

TEST(RequestContributions, SessionsToolCallsAndErrorsAreNotPerRequest) {
  for (Case c : {kPriced, kUnpriced, kCostUsd, kFast, kWebSearch}) {
    for (F f : {F::kSessions, F::kToolCalls, F::kApiErrors, F::kUserPrompts, F::kSkippedLines})
      EXPECT_TRUE(Rows(c, f).empty()) << kCaseNames[c];
    // 5 token types, cost, requests, web searches, and histogram + savings or unpriced tokens.
    EXPECT_EQ(RequestContributions(RequestOf(c)).size(), c == kUnpriced ? 9u : 10u)
        << kCaseNames[c];
  }
}

TEST(EventContributions, A32_A33_A15_OnePerEvent) {
  SeriesIncrement s = SessionStartContribution("dev1", "webapp");
  EXPECT_EQ(s.family, F::kSessions);
  EXPECT_EQ(Row(s), "dev1,webapp=1");
  SeriesIncrement t = ToolCallContribution("dev1", "Read");
  EXPECT_EQ(t.family, F::kToolCalls);
  EXPECT_EQ(Row(t), "dev1,Read=1");
  SeriesIncrement e = ApiErrorContribution("dev1");
  EXPECT_EQ(e.family, F::kApiErrors);
  EXPECT_EQ(Row(e), "dev1=1");
}

TEST(EventContributions, A38_OnePerPrompt) {
  SeriesIncrement p = UserPromptContribution("dev1", "webapp");
  EXPECT_EQ(p.family, F::kUserPrompts);
  EXPECT_EQ(Row(p), "dev1,webapp=1");
  EXPECT_EQ(DescribeFamily(F::kUserPrompts).name, "claude_user_prompts");
  EXPECT_EQ(DescribeFamily(F::kUserPrompts).label_names,
            (std::vector<std::string>{"device", "project"}));
}

// Every increment has one value per label name of its family, in the catalogue.
TEST(FamilyCatalogue, IncrementsMatchTheirFamilysLabels) {
  const auto& catalogue = FamilyCatalogue();
  std::vector<SeriesIncrement> all = {SessionStartContribution("d", "p"),
                                      ToolCallContribution("d", "t"), ApiErrorContribution("d"),
                                      UserPromptContribution("d", "p")};
  for (Case c : {kPriced, kUnpriced, kCostUsd, kFast, kWebSearch})
    for (const SeriesIncrement& i : RequestContributions(RequestOf(c))) all.push_back(i);
  std::set<std::string> families;
  for (const SeriesIncrement& i : all) {
    const FamilyDesc& d = catalogue[size_t(i.family)];
    EXPECT_EQ(i.labels().size(), d.label_names.size()) << d.name;
    families.insert(d.name);
  }
  EXPECT_EQ(families.size(), kClaudeFamilyCount) << "every claude_* family has a contribution";
  // Names are unique, claude_* first, only the histogram has buckets (A34).
  std::set<std::string> names;
  for (size_t f = 0; f < kMetricFamilyCount; ++f) {
    names.insert(catalogue[f].name);
    EXPECT_EQ(catalogue[f].name.rfind("claude_", 0) == 0, f < kClaudeFamilyCount)
        << catalogue[f].name;
    EXPECT_EQ(catalogue[f].type == MetricType::kHistogram, !catalogue[f].buckets.empty());
  }
  EXPECT_EQ(names.size(), kMetricFamilyCount);
  EXPECT_EQ(DescribeFamily(F::kCostPerRequestUsd).buckets, CostPerRequestBuckets());
  EXPECT_EQ(DescribeFamily(F::kSkippedLines).name, "ccmon_skipped_lines");
}

// CollectEvents is the sum of the contributions: summing RequestContributions and the event
// contributions over an accounting gives CollectEvents' totals, series for series.
TEST(CollectEvents, TotalsAreTheSumOfContributions) {
  using testing_util::Line;
  using testing_util::Msg;
  Ledger ledger;
  LineParser parser;
  auto add = [&](const Msg& m) {
    ASSERT_EQ(testing_util::AddLine(&ledger, parser, Line(m)), LineKind::kUsage) << Line(m);
  };
  Msg m;
  m.id = "msg_1";
  m.model = "claude-sonnet-4-5-20250929";
  m.cwd = "/w/webapp";
  m.input = 10;
  m.output = 2;
  m.cache_read = 5000;
  m.split = std::make_pair(uint64_t(100), uint64_t(40));
  m.cache_creation = 140;
  m.tools = {{"toolu_1", "Read"}};
  add(m);
  Msg streamed = m;  // a later copy of the same request with more output
  streamed.output = 300;
  streamed.tools = {{"toolu_1", "Read"}, {"toolu_2", "Bash"}};
  add(streamed);
  Msg fast = m;
  fast.id = "msg_2";
  fast.model = "claude-opus-4-6";
  fast.speed = "fast";
  fast.web_search = 3;
  fast.session = "second-session";
  fast.cwd = "/w/api";
  fast.timestamp = "2025-09-28T07:00:00.000Z";
  add(fast);
  Msg legacy = m;
  legacy.id = "msg_3";
  legacy.model = "claude-unknown-9";
  legacy.cost_usd = "0.25";
  legacy.tools = {};
  add(legacy);
  Msg unknown = legacy;
  unknown.id = "msg_4";
  unknown.cost_usd = "";
  add(unknown);
  Msg err = m;
  err.id = "msg_err";
  err.model = "<synthetic>";
  err.api_error = true;
  err.tools = {};
  add(err);

  // Two prompts, one of them copied into a resumed session (one uuid: counted once).
  for (
      const char* line :
      {R"J({"type":"user","isSidechain":false,"cwd":"/w/webapp","sessionId":"s1","message":{"role":"user","content":"fix it"},"uuid":"18b7c636-19c0-4199-8f42-ee2f5e8d22a2","timestamp":"2025-09-28T06:00:00.000Z"})J",
       R"J({"type":"user","isSidechain":false,"cwd":"/w/webapp","sessionId":"s2","message":{"role":"user","content":"fix it"},"uuid":"18b7c636-19c0-4199-8f42-ee2f5e8d22a2","timestamp":"2025-09-28T06:00:00.000Z"})J",
       R"J({"type":"user","isSidechain":false,"cwd":"/w/api","sessionId":"s2","message":{"role":"user","content":"and this"},"uuid":"u-2","timestamp":"2025-09-28T08:00:00.000Z"})J"}) {
    ParsedLine out;
    parser.Parse(line, &out);
    ASSERT_EQ(out.kind, LineKind::kPrompt) << line;
    ledger.AddPrompt(out);
  }

  Accounting a = Accounting::Build(ledger, PriceTable::Embedded(), AccountingOptions{}, {});
  const std::string device = "dev1";
  std::map<std::string, PicoSum> want;  // "family|labels" -> sum
  auto sum = [&](const SeriesIncrement& i) {
    std::string key = DescribeFamily(i.family).name + "|";
    for (std::string_view l : i.labels()) key += std::string(l) + ",";
    want[key] += i.delta;
  };
  for (const PricedRequest& r : a.requests()) {
    for (const SeriesIncrement& i :
         RequestContributions({device, a.label(r.model), a.label(r.project), r.tokens,
                               r.web_search_requests, r.cost}))
      sum(i);
  }
  for (const SessionStart& s : a.sessions())
    sum(SessionStartContribution(device, a.label(s.project)));
  for (const ToolCall& t : a.tool_calls()) sum(ToolCallContribution(device, a.label(t.tool)));
  for (size_t i = 0; i < a.api_errors().size(); ++i) sum(ApiErrorContribution(device));
  for (const PromptEvent& p : a.prompts()) sum(UserPromptContribution(device, a.label(p.project)));

  std::map<std::string, PicoSum> got;
  for (const FamilyEvents& f : CollectEvents(a, device)) {
    std::vector<PicoSum> sums(f.series_labels.size(), 0);
    for (const MetricEvent& e : f.events) sums[e.series] += e.delta;
    for (size_t s = 0; s < sums.size(); ++s) {
      std::string key = f.desc.name + "|";
      for (const std::string& l : f.series_labels[s]) key += l + ",";
      got[key] = sums[s];
    }
  }
  EXPECT_EQ(got, want);
  // The fixture reaches every claude_* family.
  std::set<std::string> families;
  for (const auto& [key, v] : want) families.insert(key.substr(0, key.find('|')));
  EXPECT_EQ(families.size(), kClaudeFamilyCount);
  EXPECT_EQ(want.at("claude_tool_calls|dev1,Read,"), 1);
  EXPECT_EQ(want.at("claude_user_prompts|dev1,webapp,"), 1);
  EXPECT_EQ(want.at("claude_user_prompts|dev1,api,"), 1);
  EXPECT_EQ(want.at("claude_requests|dev1,claude-sonnet-4-5-20250929,webapp,"), 1);
}

// Distinct label tuples stay distinct series even when values contain NUL bytes (a model or cwd
// spelled with \u0000): joining values with a separator would merge ("m\0", "p") and ("m", "\0p").
TEST(CollectEvents, LabelTuplesWithNulBytesStayDistinct) {
  using testing_util::Line;
  using testing_util::Msg;
  Ledger ledger;
  LineParser parser;
  Msg a;
  a.id = "msg_a";
  a.model = "m\\u0000";
  a.cwd = "/w/p";
  Msg b = a;
  b.id = "msg_b";
  b.model = "m";
  b.cwd = "/w/\\u0000p";
  ASSERT_EQ(testing_util::AddLine(&ledger, parser, Line(a)), LineKind::kUsage);
  ASSERT_EQ(testing_util::AddLine(&ledger, parser, Line(b)), LineKind::kUsage);
  Accounting acc = Accounting::Build(ledger, PriceTable::Embedded(), AccountingOptions{}, {});
  for (const FamilyEvents& f : CollectEvents(acc, "dev1")) {
    if (f.desc.name == "claude_requests") {
      EXPECT_EQ(f.series_labels.size(), 2u);
    }
  }
}

}  // namespace
}  // namespace ccmon
