// Metric families and their exposition (docs/accounting.md A11, A15, A17, A19, A24, A26, A32-A35).
#include "metrics/metrics.h"

#include <gtest/gtest.h>

#include <regex>
#include <set>
#include <string>
#include <vector>

#include "exposition/text_format.h"
#include "testing/test_util.h"

namespace ccmon {
namespace {

std::vector<FamilyEvents> WithSkipped(std::vector<FamilyEvents> families, const SkipCounts& s) {
  families.push_back(SkippedLinesFamily(s));
  return families;
}

using testing_util::Line;
using testing_util::Msg;

const FamilyEvents& Fam(const std::vector<FamilyEvents>& fams, const std::string& name) {
  for (const auto& f : fams)
    if (f.desc.name == name) return f;
  ADD_FAILURE() << "no family " << name;
  static const FamilyEvents none;
  return none;
}

// Sum of a family's events per label tuple, as "l1,l2,...=value".
std::set<std::string> Totals(const FamilyEvents& f) {
  std::vector<__int128> sums(f.series_labels.size(), 0);
  for (const auto& e : f.events) sums[e.series] += e.delta;
  std::set<std::string> out;
  for (size_t s = 0; s < sums.size(); ++s) {
    std::string k;
    for (size_t i = 0; i < f.series_labels[s].size(); ++i)
      k += (i ? "," : "") + f.series_labels[s][i];
    out.insert(k + "=" + FormatInt(sums[s]));
  }
  return out;
}

class MetricsTest : public ::testing::Test {
 protected:
  void Add(const Msg& m) {
    ASSERT_EQ(testing_util::AddLine(&ledger_, parser_, Line(m)), LineKind::kUsage);
  }
  std::vector<FamilyEvents> Collect(const PriceTable& prices = PriceTable::Embedded(),
                                    const std::string& device = "dev1",
                                    const LabelOptions& labels = {}) {
    Accounting a = Accounting::Build(ledger_, prices, AccountingOptions{labels, {}}, {});
    return CollectEvents(a, device);
  }
  Ledger ledger_;
  LineParser parser_;
};

Msg One() {
  Msg m;
  m.id = "msg_1";
  m.request_id = "req_1";
  m.model = "claude-sonnet-4-5-20250929";
  m.session = "ed8cd0a3-962b-4a71-aebd-73edfe16cdd3";
  m.cwd = "/w/p";
  m.timestamp = "2025-09-28T06:17:23.678Z";
  m.input = 4;
  m.output = 6;
  return m;
}

TEST_F(MetricsTest, A34_SnapshotTextOfOneRequestExactly) {
  Add(One());
  // cost = 4*3e6 + 6*15e6 pico = $0.000102
  const std::string want =
      "# HELP claude_tokens_total Tokens used by Claude Code requests, by billing type.\n"
      "# TYPE claude_tokens_total counter\n"
      "claude_tokens_total{device=\"dev1\",model=\"claude-sonnet-4-5-20250929\",project=\"p\",type="
      "\"cache_creation_1h\"} 0\n"
      "claude_tokens_total{device=\"dev1\",model=\"claude-sonnet-4-5-20250929\",project=\"p\",type="
      "\"cache_creation_5m\"} 0\n"
      "claude_tokens_total{device=\"dev1\",model=\"claude-sonnet-4-5-20250929\",project=\"p\",type="
      "\"cache_read\"} 0\n"
      "claude_tokens_total{device=\"dev1\",model=\"claude-sonnet-4-5-20250929\",project=\"p\",type="
      "\"input\"} 4\n"
      "claude_tokens_total{device=\"dev1\",model=\"claude-sonnet-4-5-20250929\",project=\"p\",type="
      "\"output\"} 6\n"
      "# HELP claude_cost_usd_total Cost of Claude Code requests in USD at list prices.\n"
      "# TYPE claude_cost_usd_total counter\n"
      "claude_cost_usd_total{device=\"dev1\",model=\"claude-sonnet-4-5-20250929\",project=\"p\"} "
      "0.000102\n"
      "# HELP claude_requests_total Deduplicated Claude API requests.\n"
      "# TYPE claude_requests_total counter\n"
      "claude_requests_total{device=\"dev1\",model=\"claude-sonnet-4-5-20250929\",project=\"p\"} "
      "1\n"
      "# HELP claude_cost_per_request_usd Cost of one priced request in USD.\n"
      "# TYPE claude_cost_per_request_usd histogram\n"
      "claude_cost_per_request_usd_bucket{device=\"dev1\",model=\"claude-sonnet-4-5-20250929\",le="
      "\"0.001\"} 1\n"
      "claude_cost_per_request_usd_bucket{device=\"dev1\",model=\"claude-sonnet-4-5-20250929\",le="
      "\"0.0025\"} 1\n"
      "claude_cost_per_request_usd_bucket{device=\"dev1\",model=\"claude-sonnet-4-5-20250929\",le="
      "\"0.005\"} 1\n"
      "claude_cost_per_request_usd_bucket{device=\"dev1\",model=\"claude-sonnet-4-5-20250929\",le="
      "\"0.01\"} 1\n"
      "claude_cost_per_request_usd_bucket{device=\"dev1\",model=\"claude-sonnet-4-5-20250929\",le="
      "\"0.025\"} 1\n"
      "claude_cost_per_request_usd_bucket{device=\"dev1\",model=\"claude-sonnet-4-5-20250929\",le="
      "\"0.05\"} 1\n"
      "claude_cost_per_request_usd_bucket{device=\"dev1\",model=\"claude-sonnet-4-5-20250929\",le="
      "\"0.1\"} 1\n"
      "claude_cost_per_request_usd_bucket{device=\"dev1\",model=\"claude-sonnet-4-5-20250929\",le="
      "\"0.25\"} 1\n"
      "claude_cost_per_request_usd_bucket{device=\"dev1\",model=\"claude-sonnet-4-5-20250929\",le="
      "\"0.5\"} 1\n"
      "claude_cost_per_request_usd_bucket{device=\"dev1\",model=\"claude-sonnet-4-5-20250929\",le="
      "\"1\"} 1\n"
      "claude_cost_per_request_usd_bucket{device=\"dev1\",model=\"claude-sonnet-4-5-20250929\",le="
      "\"2.5\"} 1\n"
      "claude_cost_per_request_usd_bucket{device=\"dev1\",model=\"claude-sonnet-4-5-20250929\",le="
      "\"5\"} 1\n"
      "claude_cost_per_request_usd_bucket{device=\"dev1\",model=\"claude-sonnet-4-5-20250929\",le="
      "\"10\"} 1\n"
      "claude_cost_per_request_usd_bucket{device=\"dev1\",model=\"claude-sonnet-4-5-20250929\",le="
      "\"+Inf\"} 1\n"
      "claude_cost_per_request_usd_count{device=\"dev1\",model=\"claude-sonnet-4-5-20250929\"} 1\n"
      "claude_cost_per_request_usd_sum{device=\"dev1\",model=\"claude-sonnet-4-5-20250929\"} "
      "0.000102\n"
      "# HELP claude_cache_savings_usd_total USD saved by cache reads compared with uncached "
      "input.\n"
      "# TYPE claude_cache_savings_usd_total counter\n"
      "claude_cache_savings_usd_total{device=\"dev1\",model=\"claude-sonnet-4-5-20250929\"} 0\n"
      "# HELP claude_sessions_total Claude Code sessions with at least one request, at their first "
      "request.\n"
      "# TYPE claude_sessions_total counter\n"
      "claude_sessions_total{device=\"dev1\",project=\"p\"} 1\n"
      "# HELP claude_tool_calls_total tool_use blocks in requests, by tool name.\n"
      "# TYPE claude_tool_calls_total counter\n"
      "# HELP claude_web_search_requests_total Server-side web searches.\n"
      "# TYPE claude_web_search_requests_total counter\n"
      "claude_web_search_requests_total{device=\"dev1\",model=\"claude-sonnet-4-5-20250929\"} 0\n"
      "# HELP claude_api_errors_total API error messages recorded in transcripts.\n"
      "# TYPE claude_api_errors_total counter\n"
      "claude_api_errors_total{device=\"dev1\"} 0\n"
      "# HELP claude_unpriced_tokens_total Tokens of requests whose model has no price (their cost "
      "is counted as 0).\n"
      "# TYPE claude_unpriced_tokens_total counter\n"
      "# HELP claude_user_prompts_total Prompts a person typed (user lines with text, not tool "
      "results, commands or subagent prompts), once per line uuid.\n"
      "# TYPE claude_user_prompts_total counter\n";
  EXPECT_EQ(SnapshotText(Collect()), want);
}

TEST_F(MetricsTest, A11_SnapshotOpenMetricsFormatAndSkippedLines) {
  Add(One());
  SkipCounts skipped;
  skipped.by_reason[int(SkipReason::kBadUsage)] = 3;
  skipped.by_reason[int(SkipReason::kIncomplete)] = 1;
  skipped.by_reason[int(SkipReason::kTooLong)] = 2;
  EXPECT_EQ(skipped.total(), 6u);
  std::string om = SnapshotOpenMetrics(WithSkipped(Collect(), skipped));
  // Metadata per family: TYPE, UNIT (when the family has one), HELP; samples carry _total.
  EXPECT_NE(om.find("# TYPE claude_tokens counter\n"
                    "# UNIT claude_tokens tokens\n"
                    "# HELP claude_tokens Tokens used by Claude Code requests, by billing type.\n"
                    "claude_tokens_total{device=\"dev1\",model=\"claude-sonnet-4-5-20250929\","
                    "project=\"p\",type=\"cache_creation_1h\"} 0\n"),
            std::string::npos)
      << om;
  EXPECT_NE(om.find("# TYPE claude_cost_usd counter\n# UNIT claude_cost_usd usd\n"),
            std::string::npos);
  EXPECT_NE(om.find("# TYPE claude_requests counter\n# HELP claude_requests "), std::string::npos);
  EXPECT_NE(
      om.find(
          "# TYPE claude_cost_per_request_usd histogram\n# UNIT claude_cost_per_request_usd usd\n"),
      std::string::npos);
  EXPECT_NE(om.find("claude_cost_per_request_usd_bucket{device=\"dev1\",model=\"claude-sonnet-4-5-"
                    "20250929\",le=\"+Inf\"} 1\n"),
            std::string::npos);
  EXPECT_NE(om.find("# TYPE ccmon_skipped_lines counter\n"
                    "# HELP ccmon_skipped_lines Transcript lines skipped as malformed, by reason.\n"
                    "ccmon_skipped_lines_total{reason=\"bad_timestamp\"} 0\n"
                    "ccmon_skipped_lines_total{reason=\"bad_usage\"} 3\n"
                    "ccmon_skipped_lines_total{reason=\"empty\"} 0\n"
                    "ccmon_skipped_lines_total{reason=\"id_too_long\"} 0\n"
                    "ccmon_skipped_lines_total{reason=\"incomplete\"} 1\n"
                    "ccmon_skipped_lines_total{reason=\"invalid_json\"} 0\n"
                    "ccmon_skipped_lines_total{reason=\"invalid_utf8\"} 0\n"
                    "ccmon_skipped_lines_total{reason=\"missing_id\"} 0\n"
                    "ccmon_skipped_lines_total{reason=\"not_object\"} 0\n"
                    "ccmon_skipped_lines_total{reason=\"too_long\"} 2\n"
                    "# EOF\n"),
            std::string::npos)
      << om;
  // "# EOF" once, at the very end; no "_total" in metadata lines.
  EXPECT_EQ(om.rfind("# EOF\n"), om.size() - 6);
  EXPECT_EQ(om.find("# EOF"), om.size() - 6);
  EXPECT_EQ(om.find("# TYPE claude_tokens_total"), std::string::npos);
  // The text format has no EOF and names the families with _total.
  std::string text = SnapshotText(WithSkipped(Collect(), skipped));
  EXPECT_EQ(text.find("# EOF"), std::string::npos);
  EXPECT_NE(
      text.find(
          "# HELP ccmon_skipped_lines_total Transcript lines skipped as malformed, by reason.\n"
          "# TYPE ccmon_skipped_lines_total counter\n"
          "ccmon_skipped_lines_total{reason=\"bad_timestamp\"} 0\n"),
      std::string::npos);
  EXPECT_EQ(text.find("# UNIT"), std::string::npos);
}

TEST(MetricsFormat, A35_LabelEscaping) {
  EXPECT_EQ(EscapeLabelValue("plain"), "plain");
  EXPECT_EQ(EscapeLabelValue("a\"b"), "a\\\"b");
  EXPECT_EQ(EscapeLabelValue("a\\b"), "a\\\\b");
  EXPECT_EQ(EscapeLabelValue("a\nb"), "a\\nb");
  EXPECT_EQ(EscapeLabelValue("\\\"\n"), "\\\\\\\"\\n");
  EXPECT_EQ(EscapeHelp("a\\b\nc\"d"), "a\\\\b\\nc\"d");
  EXPECT_EQ(LabelString({"a", "b"}, {"1", "x\"y"}), "{a=\"1\",b=\"x\\\"y\"}");
  std::string le = "0.5";
  EXPECT_EQ(LabelString({"a"}, {"1"}, "le", &le), "{a=\"1\",le=\"0.5\"}");
  EXPECT_EQ(LabelString({}, {}, "le", &le), "{le=\"0.5\"}");
  EXPECT_EQ(LabelString({}, {}), "{}");
  EXPECT_EQ(FormatValue(1500000000000, true), "1.5");
  EXPECT_EQ(FormatValue(1500000000000, false), "1500000000000");
}

TEST_F(MetricsTest, A35_EscapedLabelsInSnapshot) {
  Msg m = One();
  m.cwd = "/w/we\\\"ird";  // JSON \" : the cwd is /w/we"ird
  Add(m);
  Msg n = One();
  n.id = "msg_2";
  n.cwd = "/w/new\\nline";  // a real newline in the cwd
  Add(n);
  std::string text = SnapshotText(Collect(PriceTable::Embedded(), "dev\"1\\x"));
  EXPECT_NE(text.find("claude_requests_total{device=\"dev\\\"1\\\\x\",model=\"claude-sonnet-4-5-"
                      "20250929\",project=\"we\\\"ird\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("project=\"new\\nline\"} 1\n"), std::string::npos) << text;
}

TEST_F(MetricsTest, A34_HistogramBuckets) {
  const auto& b = CostPerRequestBuckets();
  ASSERT_EQ(b.size(), 13u);
  std::vector<std::string> les;
  for (Pico p : b) les.push_back(FormatUsd(p));
  EXPECT_EQ(les, (std::vector<std::string>{"0.001", "0.0025", "0.005", "0.01", "0.025", "0.05",
                                           "0.1", "0.25", "0.5", "1", "2.5", "5", "10"}));
  // A model priced at 1e6 pico per input token and 1 pico per output token: a cost of c pico is
  // c / 1e6 input tokens plus c % 1e6 output tokens (counts stay below 2^32, A9).
  PriceTable prices;
  ModelPrice unit;
  unit.base = Rates{1'000'000, 1, 0, 0};
  prices.Set("claude-unit", unit);
  const uint64_t costs[] = {1000000000 /* exactly 0.001: in le=0.001 */,
                            1000000001,
                            2500000000,
                            10000000000000 /* $10 */,
                            10000000000001,
                            0};
  int i = 0;
  for (uint64_t c : costs) {
    Msg m = One();
    m.id = "msg_h" + std::to_string(i++);
    m.model = "claude-unit";
    m.input = c / 1'000'000;
    m.output = c % 1'000'000;
    Add(m);
  }
  Msg unpriced = One();
  unpriced.id = "msg_unpriced";
  unpriced.model = "claude-unknown-9";
  Add(unpriced);
  std::string text = SnapshotText(Collect(prices));
  auto bucket = [&](const char* le) {
    std::string key =
        std::string(
            "claude_cost_per_request_usd_bucket{device=\"dev1\",model=\"claude-unit\",le=\"") +
        le + "\"} ";
    size_t at = text.find(key);
    if (at == std::string::npos) return std::string("missing");
    return text.substr(at + key.size(), text.find('\n', at) - at - key.size());
  };
  EXPECT_EQ(bucket("0.001"), "2");
  EXPECT_EQ(bucket("0.0025"), "4");
  EXPECT_EQ(bucket("0.005"), "4");
  EXPECT_EQ(bucket("5"), "4");
  EXPECT_EQ(bucket("10"), "5");
  EXPECT_EQ(bucket("+Inf"), "6");
  EXPECT_NE(
      text.find("claude_cost_per_request_usd_count{device=\"dev1\",model=\"claude-unit\"} 6\n"),
      std::string::npos);
  EXPECT_NE(text.find("claude_cost_per_request_usd_sum{device=\"dev1\",model=\"claude-unit\"} "
                      "20.004500000002\n"),
            std::string::npos)
      << text;
  // The unpriced request is not observed.
  EXPECT_EQ(
      text.find("claude_cost_per_request_usd_count{device=\"dev1\",model=\"claude-unknown-9\"}"),
      std::string::npos);
}

TEST_F(MetricsTest, A26_UnpricedTokensAndZeroCost) {
  Msg u = One();
  u.model = "claude-unknown-9";
  u.input = 100;
  u.output = 20;
  u.cache_read = 3;
  u.cache_creation = 7;
  Add(u);
  auto fams = Collect();
  EXPECT_EQ(Totals(Fam(fams, "claude_unpriced_tokens")),
            (std::set<std::string>{"dev1,claude-unknown-9=130"}));
  EXPECT_EQ(Totals(Fam(fams, "claude_cost_usd")),
            (std::set<std::string>{"dev1,claude-unknown-9,p=0"}));
  EXPECT_EQ(Totals(Fam(fams, "claude_requests")),
            (std::set<std::string>{"dev1,claude-unknown-9,p=1"}));
  EXPECT_TRUE(Fam(fams, "claude_cost_per_request_usd").events.empty());
  EXPECT_TRUE(Fam(fams, "claude_cache_savings_usd").events.empty());
}

TEST_F(MetricsTest, A19_TokensByTypeAndA24_WebSearch) {
  Msg m = One();
  m.input = 1;
  m.output = 2;
  m.cache_creation = 30;
  m.split = std::make_pair(uint64_t(10), uint64_t(20));
  m.cache_read = 40;
  m.web_search = 3;
  Add(m);
  Msg legacy = One();  // no split: all writes are 5m
  legacy.id = "msg_2";
  legacy.input = 0;
  legacy.output = 0;
  legacy.cache_creation = 500;
  Add(legacy);
  auto fams = Collect();
  const std::string p = "dev1,claude-sonnet-4-5-20250929,p,";
  EXPECT_EQ(Totals(Fam(fams, "claude_tokens")),
            (std::set<std::string>{p + "input=1", p + "output=2", p + "cache_creation_5m=510",
                                   p + "cache_creation_1h=20", p + "cache_read=40"}));
  EXPECT_EQ(Totals(Fam(fams, "claude_web_search_requests")),
            (std::set<std::string>{"dev1,claude-sonnet-4-5-20250929=3"}));
  // cost: 1*3e6 + 2*15e6 + 10*3.75e6 + 20*6e6 + 40*0.3e6 + 3*1e10, plus 500*3.75e6
  EXPECT_EQ(Totals(Fam(fams, "claude_cost_usd")),
            (std::set<std::string>{"dev1,claude-sonnet-4-5-20250929,p=" +
                                   FormatInt(3000000 + 30000000 + 37500000 + 120000000 + 12000000 +
                                             30000000000LL + 1875000000)}));
  EXPECT_EQ(Totals(Fam(fams, "claude_cache_savings_usd")),
            (std::set<std::string>{"dev1,claude-sonnet-4-5-20250929=108000000"}));
}

TEST_F(MetricsTest, A15_ApiErrorsA32_SessionsA33_ToolCalls) {
  Msg a = One();
  a.tools = {{"toolu_1", "Read"}, {"toolu_2", "Read"}, {"toolu_3", "Bash"}};
  Add(a);
  Msg copy = a;  // same key and tool ids in a resumed session
  copy.session = "resumed-session";
  copy.timestamp = "2025-09-29T06:17:23.678Z";
  Add(copy);
  Msg err = One();
  err.id = "msg_err";
  err.request_id.reset();
  err.model = "<synthetic>";
  err.api_error = true;
  Add(err);
  Add(err);
  Msg err2 = err;
  err2.id = "msg_err2";
  Add(err2);
  Msg other = One();
  other.id = "msg_3";
  other.session = "second-session";
  other.cwd = "/w/q";
  Add(other);
  auto fams = Collect();
  EXPECT_EQ(Totals(Fam(fams, "claude_api_errors")), (std::set<std::string>{"dev1=2"}));
  EXPECT_EQ(Totals(Fam(fams, "claude_tool_calls")),
            (std::set<std::string>{"dev1,Read=2", "dev1,Bash=1"}));
  // The resumed session only holds a copy of a request line; the ledger counts it as a session
  // (its sessionId has a request line), in the project of that line.
  EXPECT_EQ(Totals(Fam(fams, "claude_sessions")), (std::set<std::string>{"dev1,p=2", "dev1,q=1"}));
  EXPECT_EQ(Totals(Fam(fams, "claude_requests")),
            (std::set<std::string>{"dev1,claude-sonnet-4-5-20250929,p=1",
                                   "dev1,claude-sonnet-4-5-20250929,q=1"}));
}

TEST_F(MetricsTest, A35_NoSessionIdDateOrTimestampInLabels) {
  std::vector<std::string> sessions = {"ed8cd0a3-962b-4a71-aebd-73edfe16cdd3",
                                       "455218e7-aaaa-bbbb-cccc-000000000001",
                                       "f0de89b8-aaaa-bbbb-cccc-000000000002"};
  int i = 0;
  for (const auto& s : sessions) {
    Msg m = One();
    m.id = "msg_s" + std::to_string(i);
    m.session = s;
    m.timestamp = "2025-09-2" + std::to_string(i) + "T06:17:23.678Z";
    m.tools = {{"toolu_s" + std::to_string(i), "Read"}};
    m.model = i == 2 ? "claude-unknown-9" : "claude-opus-4-6";
    m.cwd = "/Users/USER/src/proj" + std::to_string(i);
    ++i;
    Add(m);
  }
  Msg err = One();
  err.model = "<synthetic>";
  err.api_error = true;
  err.session = sessions[0];
  Add(err);
  const std::regex date(R"(\d{4}-\d{2}-\d{2})");
  const std::regex long_number(R"(\d{9,})");
  size_t values = 0;
  for (const auto& f : Collect()) {
    for (const auto& n : f.desc.label_names) {
      EXPECT_EQ(n.find("session"), std::string::npos) << f.desc.name;
      EXPECT_NE(n, "timestamp");
      EXPECT_NE(n, "date");
    }
    for (const auto& labels : f.series_labels) {
      for (const auto& v : labels) {
        ++values;
        for (const auto& s : sessions)
          EXPECT_EQ(v.find(s), std::string::npos) << f.desc.name << ": " << v;
        EXPECT_FALSE(std::regex_search(v, date)) << f.desc.name << ": " << v;
        EXPECT_FALSE(std::regex_search(v, long_number)) << f.desc.name << ": " << v;
      }
    }
  }
  EXPECT_GT(values, 50u);
}

TEST_F(MetricsTest, A31_EveryLabelFromTranscriptsIsBoundedAndTotalsStayExact) {
  // 300 made-up models, 300 tools and 300 projects: each family has at most cap + 1 values of
  // each label ("other"), and the sums over series are those of the uncapped run.
  for (int i = 0; i < 300; ++i) {
    Msg m = One();
    m.id = "msg_" + std::to_string(i);
    m.request_id = "req_" + std::to_string(i);
    m.model = "claude-made-up-" + std::to_string(i % 150);
    m.cwd = "/w/p" + std::to_string(i);
    m.session = "s" + std::to_string(i);
    m.tools = {{"toolu_" + std::to_string(i), "mcp__tool_" + std::to_string(i)}};
    Add(m);
  }
  LabelOptions caps;
  caps.max_projects = 3;
  caps.max_models = 4;
  caps.max_tools = 5;
  const auto capped = Collect(PriceTable::Embedded(), "dev1", caps);
  LabelOptions no_caps;
  no_caps.max_projects = no_caps.max_models = no_caps.max_tools = 1000;
  const auto free = Collect(PriceTable::Embedded(), "dev1", no_caps);
  auto distinct = [](const FamilyEvents& f, const std::string& label) {
    size_t at = 0;
    while (f.desc.label_names[at] != label) ++at;
    std::set<std::string> values;
    for (const auto& l : f.series_labels) values.insert(l[at]);
    return values.size();
  };
  auto sum = [](const FamilyEvents& f) {
    __int128 total = 0;
    for (const auto& e : f.events) total += e.delta;
    return FormatInt(total);
  };
  EXPECT_EQ(distinct(Fam(capped, "claude_tokens"), "model"), 5u);
  EXPECT_EQ(distinct(Fam(capped, "claude_tokens"), "project"), 4u);
  EXPECT_EQ(distinct(Fam(capped, "claude_unpriced_tokens"), "model"), 5u);
  EXPECT_EQ(distinct(Fam(capped, "claude_tool_calls"), "tool"), 6u);
  EXPECT_EQ(distinct(Fam(free, "claude_tool_calls"), "tool"), 300u);
  EXPECT_EQ(distinct(Fam(Collect(), "claude_tool_calls"), "tool"), 201u);  // the default cap
  for (const char* family : {"claude_tokens", "claude_requests", "claude_unpriced_tokens",
                             "claude_tool_calls", "claude_sessions", "claude_cost_usd"}) {
    EXPECT_EQ(sum(Fam(capped, family)), sum(Fam(free, family))) << family;
  }
}

}  // namespace
}  // namespace ccmon
