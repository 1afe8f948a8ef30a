// SelfMetrics (src/selfmetrics/self_metrics.h): naming (_total exactly once), both formats
// byte for byte, validation, hostile label values and locales, the combined /metrics body with
// one "# EOF", concurrent updates while writing, and promtool / Prometheus's own OpenMetrics
// parser on the output.
#include "selfmetrics/self_metrics.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <locale>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "exposition/text_format.h"
#include "testing/temp_dir.h"

namespace ccmon {
namespace {

using testing_util::TempDir;

std::string Write(const SelfMetrics& m, ExpositionFormat f) {
  std::string out;
  m.WriteSelfMetrics(f, &out);
  return out;
}

size_t Count(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) ++n;
  return n;
}

TEST(SelfMetrics, CounterGetsTotalExactlyOnceWhicheverWayItIsNamed) {
  SelfMetrics m;
  SelfCounter a, b;
  ASSERT_TRUE(m.AddCounter({"ccmon_agent_lines_read", "Lines read."}, {}, &a).ok());
  ASSERT_TRUE(m.AddCounter({"ccmon_agent_lines_read_total", "Lines read."}, {}, &b).ok());
  a.Increment();
  b.Increment(2);
  EXPECT_EQ(a.Value(), 3);
  EXPECT_EQ(Write(m, ExpositionFormat::kText),
            "# HELP ccmon_agent_lines_read_total Lines read.\n"
            "# TYPE ccmon_agent_lines_read_total counter\n"
            "ccmon_agent_lines_read_total 3\n");
  EXPECT_EQ(Write(m, ExpositionFormat::kOpenMetrics),
            "# TYPE ccmon_agent_lines_read counter\n"
            "# HELP ccmon_agent_lines_read Lines read.\n"
            "ccmon_agent_lines_read_total 3\n");
}

TEST(SelfMetrics, CountersNeverGoDown) {
  SelfMetrics m;
  SelfCounter c;
  ASSERT_TRUE(m.AddCounter({"ccmon_c", "c"}, {}, &c).ok());
  c.Increment(-5);
  c.Increment(std::nan(""));
  c.Increment(std::numeric_limits<double>::infinity());
  c.Increment(0);
  EXPECT_EQ(c.Value(), 0);
  c.AdvanceTo(10);
  c.AdvanceTo(7);  // lower: no change
  c.AdvanceTo(std::nan(""));
  EXPECT_EQ(c.Value(), 10);
  c.Increment(0.5);
  EXPECT_EQ(c.Value(), 10.5);
}

TEST(SelfMetrics, AllTypesInBothFormats) {
  SelfMetrics m;
  SelfFamily skipped{"ccmon_agent_skipped_lines", "Malformed lines by reason.", {"reason"}};
  SelfCounter empty, invalid;
  ASSERT_TRUE(m.AddCounter(skipped, {"invalid_json"}, &invalid).ok());
  ASSERT_TRUE(m.AddCounter(skipped, {"empty"}, &empty).ok());
  empty.Increment(2);
  invalid.Increment(1);
  SelfGauge behind;
  ASSERT_TRUE(
      m.AddGauge({"ccmon_agent_behind_bytes", "Bytes not read yet.", {}, "bytes"}, {}, &behind)
          .ok());
  behind.Set(1234.5);
  behind.Add(-0.5);
  SelfHistogram lag;
  ASSERT_TRUE(m.AddHistogram({"ccmon_agent_send_lag_seconds",
                              "Append to send.",
                              {"target"},
                              "seconds",
                              {0.1, 1, 2.5}},
                             {"prom"}, &lag)
                  .ok());
  lag.Observe(0.05);
  lag.Observe(2);
  lag.Observe(100);
  lag.Observe(std::nan(""));  // ignored
  EXPECT_EQ(Write(m, ExpositionFormat::kOpenMetrics),
            "# TYPE ccmon_agent_behind_bytes gauge\n"
            "# UNIT ccmon_agent_behind_bytes bytes\n"
            "# HELP ccmon_agent_behind_bytes Bytes not read yet.\n"
            "ccmon_agent_behind_bytes 1234\n"
            "# TYPE ccmon_agent_send_lag_seconds histogram\n"
            "# UNIT ccmon_agent_send_lag_seconds seconds\n"
            "# HELP ccmon_agent_send_lag_seconds Append to send.\n"
            "ccmon_agent_send_lag_seconds_bucket{target=\"prom\",le=\"0.1\"} 1\n"
            "ccmon_agent_send_lag_seconds_bucket{target=\"prom\",le=\"1\"} 1\n"
            "ccmon_agent_send_lag_seconds_bucket{target=\"prom\",le=\"2.5\"} 2\n"
            "ccmon_agent_send_lag_seconds_bucket{target=\"prom\",le=\"+Inf\"} 3\n"
            "ccmon_agent_send_lag_seconds_count{target=\"prom\"} 3\n"
            "ccmon_agent_send_lag_seconds_sum{target=\"prom\"} 102.05\n"
            "# TYPE ccmon_agent_skipped_lines counter\n"
            "# HELP ccmon_agent_skipped_lines Malformed lines by reason.\n"
            "ccmon_agent_skipped_lines_total{reason=\"empty\"} 2\n"
            "ccmon_agent_skipped_lines_total{reason=\"invalid_json\"} 1\n");
  std::string text = Write(m, ExpositionFormat::kText);
  EXPECT_NE(text.find("# TYPE ccmon_agent_skipped_lines_total counter\n"
                      "ccmon_agent_skipped_lines_total{reason=\"empty\"} 2\n"
                      "ccmon_agent_skipped_lines_total{reason=\"invalid_json\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("ccmon_agent_send_lag_seconds_bucket{target=\"prom\",le=\"2.5\"} 2\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("ccmon_agent_behind_bytes 1234\n"), std::string::npos) << text;
  EXPECT_EQ(text.find("# UNIT"), std::string::npos);
  EXPECT_EQ(text.find("# EOF"), std::string::npos);
}

TEST(SelfMetrics, ValuesAreFormattedTheSameInBothFormats) {
  EXPECT_EQ(FormatSelfValue(0), "0");
  EXPECT_EQ(FormatSelfValue(3), "3");
  EXPECT_EQ(FormatSelfValue(0.1), "0.1");
  EXPECT_EQ(FormatSelfValue(-2.5), "-2.5");
  EXPECT_EQ(FormatSelfValue(1e20), "1e+20");
  EXPECT_EQ(FormatSelfValue(9007199254740992.0), "9007199254740992");  // 2^53
  EXPECT_EQ(FormatSelfValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatSelfValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatSelfValue(std::nan("")), "NaN");
  SelfMetrics m;
  SelfGauge g;
  ASSERT_TRUE(m.AddGauge({"ccmon_g", "g", {"k"}}, {"a"}, &g).ok());
  g.Set(0.30000000000000004);
  for (auto f : {ExpositionFormat::kText, ExpositionFormat::kOpenMetrics}) {
    EXPECT_NE(Write(m, f).find("ccmon_g{k=\"a\"} 0.3\n"), std::string::npos) << Write(m, f);
  }
}

// A numpunct that groups thousands with a comma: what a careless global locale does to
// streams that do not pin the classic one.
struct Grouping : std::numpunct<char> {
  char do_thousands_sep() const override { return ','; }
  std::string do_grouping() const override { return "\3"; }
  char do_decimal_point() const override { return '#'; }
};

TEST(SelfMetrics, GlobalLocaleDoesNotChangeTheOutput) {
  SelfMetrics m;
  SelfGauge g;
  ASSERT_TRUE(m.AddGauge({"ccmon_big", "big"}, {}, &g).ok());
  g.Set(1234567.25);
  std::locale old = std::locale::global(std::locale(std::locale::classic(), new Grouping));
  std::string text = Write(m, ExpositionFormat::kText);
  std::string om = Write(m, ExpositionFormat::kOpenMetrics);
  std::locale::global(old);
  EXPECT_NE(text.find("ccmon_big 1234567.25\n"), std::string::npos) << text;
  EXPECT_NE(om.find("ccmon_big 1234567.25\n"), std::string::npos) << om;
}

TEST(SelfMetrics, HostileLabelValuesAreEscaped) {
  SelfMetrics m;
  SelfCounter c;
  ASSERT_TRUE(m.AddCounter({"ccmon_files", "f", {"path"}}, {"a\"b\\c\nd"}, &c).ok());
  c.Increment();
  const std::string want = "ccmon_files_total{path=\"a\\\"b\\\\c\\nd\"} 1\n";
  EXPECT_NE(Write(m, ExpositionFormat::kText).find(want), std::string::npos);
  EXPECT_NE(Write(m, ExpositionFormat::kOpenMetrics).find(want), std::string::npos);
  SelfCounter bad;
  Status s = m.AddCounter({"ccmon_files", "f", {"path"}}, {std::string("\xff\xfe")}, &bad);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
}

TEST(SelfMetrics, RegistrationErrors) {
  SelfMetrics m;
  SelfCounter c;
  SelfGauge g;
  SelfHistogram h;
  auto counter = [&](const SelfFamily& f, std::vector<std::string> v = {}) {
    return m.AddCounter(f, v, &c).code();
  };
  constexpr auto kBad = Status::Code::kInvalidArgument;
  EXPECT_EQ(counter({"", "h"}), kBad);
  EXPECT_EQ(counter({"1abc", "h"}), kBad);
  EXPECT_EQ(counter({"a-b", "h"}), kBad);
  EXPECT_EQ(counter({"ccmon_x", "two\nlines"}), kBad);
  EXPECT_EQ(counter({"ccmon_x", "back\\slash"}), kBad);
  EXPECT_EQ(counter({"ccmon_x", "h", {"__reserved"}}, {"v"}), kBad);
  EXPECT_EQ(counter({"ccmon_x", "h", {"a", "a"}}, {"v", "w"}), kBad);
  EXPECT_EQ(counter({"ccmon_x", "h", {"a:b"}}, {"v"}), kBad);
  EXPECT_EQ(counter({"ccmon_x", "h", {"a"}}, {}), kBad);            // too few values
  EXPECT_EQ(counter({"ccmon_x", "h", {}}, {"extra"}), kBad);        // too many
  EXPECT_EQ(counter({"ccmon_x_seconds", "h", {}, "bytes"}), kBad);  // unit not the suffix
  EXPECT_EQ(counter({"ccmon_x", "h", {}, "", {1.0}}), kBad);        // buckets on a counter
  EXPECT_FALSE(m.AddCounter({"ccmon_x", "h"}, {"extra"}, &c).ok());
  EXPECT_EQ(m.AddHistogram({"ccmon_h", "h", {"le"}, "", {1}}, {"1"}, &h).code(), kBad);
  EXPECT_EQ(m.AddHistogram({"ccmon_h", "h", {}, "", {2, 1}}, {}, &h).code(), kBad);
  EXPECT_EQ(m.AddHistogram({"ccmon_h", "h", {}, "", {1, 1}}, {}, &h).code(), kBad);
  EXPECT_EQ(m.AddHistogram({"ccmon_h", "h", {}, "", {1, std::nan("")}}, {}, &h).code(), kBad);
  EXPECT_EQ(
      m.AddHistogram({"ccmon_h", "h", {}, "", {std::numeric_limits<double>::infinity()}}, {}, &h)
          .code(),
      kBad);
  // Nothing was registered by the failures.
  EXPECT_TRUE(m.SampleNames().empty());
  EXPECT_EQ(Write(m, ExpositionFormat::kOpenMetrics), "");
  // A failed call leaves an unbound handle behind, whose updates do nothing.
  c.Increment();
  EXPECT_EQ(c.Value(), 0);

  // Re-registration must describe the family identically; types and names must not collide.
  ASSERT_TRUE(m.AddCounter({"ccmon_x", "h", {"k"}}, {"1"}, &c).ok());
  EXPECT_TRUE(m.AddCounter({"ccmon_x_total", "h", {"k"}}, {"2"}, &c).ok());
  EXPECT_EQ(counter({"ccmon_x", "other help", {"k"}}, {"1"}), kBad);
  EXPECT_EQ(counter({"ccmon_x", "h", {"j"}}, {"1"}), kBad);
  EXPECT_EQ(m.AddGauge({"ccmon_x", "h", {"k"}}, {"1"}, &g).code(), kBad);
  EXPECT_EQ(m.AddGauge({"ccmon_x_total", "h"}, {}, &g).code(), kBad);
  ASSERT_TRUE(m.AddHistogram({"ccmon_lat", "h", {}, "", {1}}, {}, &h).ok());
  EXPECT_EQ(m.AddGauge({"ccmon_lat_count", "h"}, {}, &g).code(), kBad);
  EXPECT_EQ(m.AddCounter({"ccmon_lat_sum", "h"}, {}, &c).code(), kBad);
  EXPECT_EQ(m.AddHistogram({"ccmon_lat", "h", {}, "", {2}}, {}, &h).code(), kBad);
}

TEST(SelfMetrics, CollectHooksRunBeforeEveryWrite) {
  SelfMetrics m;
  SelfGauge files;
  ASSERT_TRUE(m.AddGauge({"ccmon_agent_files_tracked", "Files."}, {}, &files).ok());
  int state = 0;
  m.OnCollect([&] { files.Set(++state * 10); });
  EXPECT_NE(Write(m, ExpositionFormat::kText).find("ccmon_agent_files_tracked 10\n"),
            std::string::npos);
  EXPECT_NE(Write(m, ExpositionFormat::kOpenMetrics).find("ccmon_agent_files_tracked 20\n"),
            std::string::npos);
}

TEST(SelfMetrics, UpdatesWhileWritingFromManyThreads) {
  SelfMetrics m;
  SelfCounter c;
  SelfHistogram h;
  ASSERT_TRUE(m.AddCounter({"ccmon_n", "n"}, {}, &c).ok());
  ASSERT_TRUE(m.AddHistogram({"ccmon_v", "v", {}, "", {1, 10}}, {}, &h).ok());
  std::atomic<bool> done{false};
  std::thread writer([&] {
    while (!done) {
      std::string out;
      m.WriteSelfMetrics(ExpositionFormat::kOpenMetrics, &out);
      // And registration racing with the writes.
      SelfGauge g;
      EXPECT_TRUE(m.AddGauge({"ccmon_g", "g", {"i"}}, {std::to_string(out.size() % 7)}, &g).ok());
    }
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20000; ++i) {
        c.Increment();
        h.Observe(i % 20);
      }
    });
  }
  for (auto& t : threads) t.join();
  done = true;
  writer.join();
  EXPECT_EQ(c.Value(), 80000);
  std::string om = Write(m, ExpositionFormat::kOpenMetrics);
  EXPECT_NE(om.find("ccmon_v_count 80000\n"), std::string::npos) << om;
  EXPECT_NE(om.find("ccmon_v_bucket{le=\"1\"} 8000\n"), std::string::npos) << om;
}

// --- the combined /metrics body ------------------------------------------------------------

std::vector<FamilyEvents> ClaudeFamilies() {
  FamilyEvents cost;
  cost.desc.name = "claude_cost_usd";
  cost.desc.help = "Cost in USD at list prices.";
  cost.desc.unit = "usd";
  cost.desc.usd = true;
  cost.desc.label_names = {"device", "model"};
  cost.series_labels = {{"laptop", "anthropic/claude-sonnet-4-5"}};
  cost.events = {{0, 1000, 1234567890123}};  // pico-dollars: $1.234567890123
  FamilyEvents per_request;
  per_request.desc.name = "claude_cost_per_request_usd";
  per_request.desc.type = MetricType::kHistogram;
  per_request.desc.help = "Cost of each request.";
  per_request.desc.unit = "usd";
  per_request.desc.usd = true;
  per_request.desc.label_names = {"device"};
  per_request.desc.buckets = {1000000000, 1000000000000};  // $0.001, $1
  per_request.series_labels = {{"laptop"}};
  per_request.events = {{0, 1000, 500000000}, {0, 1000, 2000000000000}};
  return {cost, per_request};
}

void AddSelf(SelfMetrics* m) {
  SelfCounter c;
  ASSERT_TRUE(m->AddCounter({"ccmon_agent_lines_read", "Lines read."}, {}, &c).ok());
  c.Increment(42);
  SelfGauge g;
  ASSERT_TRUE(
      m->AddGauge({"ccmon_agent_last_push_timestamp_seconds", "Last 2xx push.", {}, "seconds"}, {},
                  &g)
          .ok());
  g.Set(1767225600.5);
  SelfHistogram h;
  ASSERT_TRUE(m->AddHistogram({"ccmon_agent_push_duration_seconds",
                               "Push time.",
                               {"result"},
                               "seconds",
                               {0.01, 0.1, 1}},
                              {"2xx"}, &h)
                  .ok());
  h.Observe(0.05);
}

TEST(ComposeMetricsBody, OneBodyOneEofAtTheEnd) {
  SelfMetrics m;
  AddSelf(&m);
  std::string om;
  ASSERT_TRUE(ComposeMetricsBody(ExpositionFormat::kOpenMetrics, ClaudeFamilies(), &m, &om).ok());
  EXPECT_EQ(Count(om, "# EOF"), 1u) << om;
  EXPECT_TRUE(om.ends_with("\n# EOF\n")) << om;
  EXPECT_LT(om.find("claude_cost_usd_total{device=\"laptop\",model=\"anthropic/claude-sonnet-4-5\"}"
                    " 1.234567890123\n"),
            om.find("ccmon_agent_lines_read_total 42\n"));
  EXPECT_EQ(Count(om, "_total_total"), 0u);
  std::string text;
  ASSERT_TRUE(ComposeMetricsBody(ExpositionFormat::kText, ClaudeFamilies(), &m, &text).ok());
  EXPECT_EQ(Count(text, "# EOF"), 0u);
  EXPECT_NE(
      text.find("claude_cost_usd_total{device=\"laptop\",model=\"anthropic/claude-sonnet-4-5\"}"
                " 1.234567890123\n"),
      std::string::npos);
  EXPECT_NE(text.find("ccmon_agent_lines_read_total 42\n"), std::string::npos);
  // Without self-metrics, and with nothing at all.
  std::string alone;
  ASSERT_TRUE(
      ComposeMetricsBody(ExpositionFormat::kOpenMetrics, ClaudeFamilies(), nullptr, &alone).ok());
  EXPECT_EQ(alone, SnapshotOpenMetrics(ClaudeFamilies()));
  std::string empty;
  ASSERT_TRUE(ComposeMetricsBody(ExpositionFormat::kOpenMetrics, {}, nullptr, &empty).ok());
  EXPECT_EQ(empty, "# EOF\n");
}

TEST(ComposeMetricsBody, PreRenderedBodiesWithOrWithoutEof) {
  SelfMetrics m;
  AddSelf(&m);
  for (std::string rendered : {"# TYPE up gauge\nup 1\n# EOF\n", "# TYPE up gauge\nup 1\n# EOF",
                               "# TYPE up gauge\nup 1\n"}) {
    std::string out;
    ComposeRenderedMetricsBody(ExpositionFormat::kOpenMetrics, rendered, &m, &out);
    EXPECT_EQ(Count(out, "# EOF"), 1u) << out;
    EXPECT_TRUE(out.starts_with("# TYPE up gauge\nup 1\n# TYPE ")) << out;
    EXPECT_TRUE(out.ends_with("\n# EOF\n")) << out;
  }
  // A help text that merely ends in "# EOF" is not the marker.
  std::string out;
  ComposeRenderedMetricsBody(ExpositionFormat::kOpenMetrics, "# HELP x says # EOF\n", nullptr,
                             &out);
  EXPECT_EQ(out, "# HELP x says # EOF\n# EOF\n");
}

TEST(ComposeMetricsBody, NamesThatCollideAreRefused) {
  SelfMetrics m;
  SelfGauge g;
  ASSERT_TRUE(m.AddGauge({"claude_cost_usd_total", "a gauge in the way"}, {}, &g).ok());
  std::string out;
  Status s = ComposeMetricsBody(ExpositionFormat::kText, ClaudeFamilies(), &m, &out);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  SelfMetrics m2;
  SelfCounter c;
  ASSERT_TRUE(m2.AddCounter({"claude_cost_per_request_usd_count", "x"}, {}, &c).ok());
  EXPECT_FALSE(ComposeMetricsBody(ExpositionFormat::kText, ClaudeFamilies(), &m2, &out).ok());
}

// --- promtool and Prometheus's OpenMetrics parser ------------------------------------------

// Runs `cmd`; returns its exit status, with its combined output in *output.
int RunCommand(const std::string& cmd, std::string* output) {
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) return -1;
  char buf[4096];
  size_t n;
  output->clear();
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) output->append(buf, n);
  int st = ::pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

std::string Promtool() {
  std::string p = CCMON_PROMTOOL;
  return p.empty() || p.ends_with("-NOTFOUND") ? "" : p;
}

TEST(SelfMetricsPromtool, TextBodyPassesCheckMetrics) {
  if (Promtool().empty()) GTEST_SKIP() << "promtool not installed (Debian package prometheus)";
  SelfMetrics m;
  AddSelf(&m);
  std::string text;
  ASSERT_TRUE(ComposeMetricsBody(ExpositionFormat::kText, ClaudeFamilies(), &m, &text).ok());
  TempDir dir;
  std::ofstream(dir / "m.txt") << text;
  std::string out;
  EXPECT_EQ(RunCommand(Promtool() + " check metrics < " + (dir / "m.txt"), &out), 0) << out << text;
  EXPECT_EQ(out, "") << text;
}

TEST(SelfMetricsPromtool, OpenMetricsBodyPassesPrometheusParser) {
  if (Promtool().empty()) GTEST_SKIP() << "promtool not installed (Debian package prometheus)";
  SelfMetrics m;
  AddSelf(&m);
  std::string om;
  ASSERT_TRUE(ComposeMetricsBody(ExpositionFormat::kOpenMetrics, ClaudeFamilies(), &m, &om).ok());
  // `promtool check metrics` reads only text 0.0.4; `tsdb create-blocks-from openmetrics` runs
  // Prometheus's OpenMetrics parser (strict about TYPE/UNIT/HELP order, _total, # EOF) but wants
  // a timestamp on every sample: add one.
  std::istringstream in(om);
  std::string line, stamped;
  while (std::getline(in, line)) {
    stamped += line;
    if (!line.starts_with("#")) stamped += " 1767225600";
    stamped += "\n";
  }
  TempDir dir;
  std::ofstream(dir / "m.om") << stamped;
  std::string out;
  EXPECT_EQ(RunCommand(Promtool() + " tsdb create-blocks-from openmetrics " + (dir / "m.om") + " " +
                           (dir / "blocks"),
                       &out),
            0)
      << out << stamped;
  // And a broken body is refused, so the check above can fail.
  std::ofstream(dir / "bad.om") << "# TYPE a counter\na_total 1 1767225600\n";  // no # EOF
  EXPECT_NE(RunCommand(Promtool() + " tsdb create-blocks-from openmetrics " + (dir / "bad.om") +
                           " " + (dir / "blocks2"),
                       &out),
            0);
}

}  // namespace
}  // namespace ccmon
