// History as OpenMetrics with timestamps (docs/accounting.md A37).
#include "exposition/history.h"

#include <gtest/gtest.h>

#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace ccmon {
namespace {

FamilyEvents Counter(const std::string& name, const std::string& unit, bool usd,
                     std::vector<std::string> label_names,
                     std::vector<std::vector<std::string>> series,
                     std::vector<MetricEvent> events) {
  FamilyEvents f;
  f.desc.name = name;
  f.desc.type = MetricType::kCounter;
  f.desc.help = "help " + name;
  f.desc.unit = unit;
  f.desc.usd = usd;
  f.desc.label_names = std::move(label_names);
  f.series_labels = std::move(series);
  f.events = std::move(events);
  return f;
}

std::vector<FamilyEvents> Sample() {
  std::vector<FamilyEvents> fams;
  // Series are declared out of label order on purpose (b, a, c).
  fams.push_back(Counter("x_events", "", false, {"k"}, {{"b"}, {"a"}, {"c"}, {"f"}, {"e"}, {"d"}},
                         {{1, 20001, 4},
                          {1, 12000, 2},
                          {0, 45000, 1},
                          {1, 15000, 3},
                          {2, 25000, 0},
                          {1, 20000, 1},
                          {2, 5000, 1},
                          {5, 5000, 1},
                          {5, 45000, 2},
                          {4, 5000, 0},
                          {3, 35000, 2},
                          {3, 5000, 0}}));
  fams.push_back(Counter("y_usd", "usd", true, {"m"}, {{"m1"}}, {{0, 31000, 1500000000000}}));
  FamilyEvents h =
      Counter("z_hist", "usd", true, {"m"}, {{"m1"}},
              {{0, 35000, 20000000000 /* $0.02 */}, {0, 12000, 2000000000 /* $0.002 */}});
  h.desc.type = MetricType::kHistogram;
  for (Pico micro : {1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000,
                     2500000, 5000000, 10000000})
    h.desc.buckets.push_back(micro * 1'000'000);  // $0.001 … $10
  fams.push_back(h);
  fams.push_back(Counter("w_unused", "", false, {"k"}, {{"never"}}, {}));
  return fams;
}

std::vector<std::string> SplitLines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

TEST(History, A37_CounterSamplesExactly) {
  std::ostringstream out;
  HistoryStats st = WriteOpenMetricsHistory(Sample(), /*step_ms=*/10000, out);
  const std::string text = out.str();
  const std::string counters =
      "# TYPE x_events counter\n"
      "# HELP x_events help x_events\n"
      // a: 0 one step before; 2+3+1 (the event at 20.000 s belongs to the step ending at 20);
      // +4 in the next step; the final value again at the common end (50).
      "x_events_total{k=\"a\"} 0 10\n"
      "x_events_total{k=\"a\"} 6 20\n"
      "x_events_total{k=\"a\"} 10 30\n"
      "x_events_total{k=\"a\"} 10 50\n"
      // b: its last sample is already at the end time.
      "x_events_total{k=\"b\"} 0 40\n"
      "x_events_total{k=\"b\"} 1 50\n"
      // c: the step with a +0 event did not change the value: no sample there.
      "x_events_total{k=\"c\"} 0 0\n"
      "x_events_total{k=\"c\"} 1 10\n"
      "x_events_total{k=\"c\"} 1 50\n"
      // d: a change after a gap of more than one step: the old value is restated one step before.
      "x_events_total{k=\"d\"} 0 0\n"
      "x_events_total{k=\"d\"} 1 10\n"
      "x_events_total{k=\"d\"} 1 40\n"
      "x_events_total{k=\"d\"} 3 50\n"
      // e: only a +0 event: the series is written (0 before its first event, 0 at the end).
      "x_events_total{k=\"e\"} 0 0\n"
      "x_events_total{k=\"e\"} 0 50\n"
      // f: stays 0 after its first event, then changes: 0 restated one step before the change.
      "x_events_total{k=\"f\"} 0 0\n"
      "x_events_total{k=\"f\"} 0 30\n"
      "x_events_total{k=\"f\"} 2 40\n"
      "x_events_total{k=\"f\"} 2 50\n"
      "# TYPE y_usd counter\n"
      "# UNIT y_usd usd\n"
      "# HELP y_usd help y_usd\n"
      "y_usd_total{m=\"m1\"} 0 30\n"
      "y_usd_total{m=\"m1\"} 1.5 40\n"
      "y_usd_total{m=\"m1\"} 1.5 50\n"
      "# TYPE z_hist histogram\n"
      "# UNIT z_hist usd\n"
      "# HELP z_hist help z_hist\n";
  ASSERT_EQ(text.substr(0, counters.size()), counters) << text;
  EXPECT_EQ(text.find("w_unused"), std::string::npos);  // no events, no samples, no metadata
  EXPECT_EQ(st.end_ms, 50000);
  EXPECT_EQ(st.series, 8u);
  EXPECT_EQ(st.samples, 19u + 3u + 5u * 16u);
  ASSERT_GE(text.size(), 6u);
  EXPECT_EQ(text.substr(text.size() - 6), "# EOF\n");
  EXPECT_EQ(text.find("# EOF"), text.size() - 6);
}

TEST(History, A37_HistogramPointsPerStep) {
  std::ostringstream out;
  WriteOpenMetricsHistory(Sample(), 10000, out);
  std::map<std::string, std::vector<std::string>> by_ts;  // timestamp -> lines of z_hist
  for (const auto& l : SplitLines(out.str())) {
    if (l.rfind("z_hist_", 0) != 0) continue;
    by_ts[l.substr(l.rfind(' ') + 1)].push_back(l);
  }
  // 0 point one step before the first event (10), the steps with events (20, 40), the totals
  // restated one step before the change that follows a gap (30), the end (50).
  ASSERT_EQ(by_ts.size(), 5u) << out.str();
  for (const char* ts : {"10", "20", "30", "40", "50"}) EXPECT_EQ(by_ts[ts].size(), 16u) << ts;
  const auto& at10 = by_ts["10"];
  EXPECT_EQ(at10.front(), "z_hist_bucket{m=\"m1\",le=\"0.001\"} 0 10");
  EXPECT_EQ(at10[13], "z_hist_bucket{m=\"m1\",le=\"+Inf\"} 0 10");
  EXPECT_EQ(at10[14], "z_hist_count{m=\"m1\"} 0 10");
  EXPECT_EQ(at10[15], "z_hist_sum{m=\"m1\"} 0 10");
  const auto& at20 = by_ts["20"];
  EXPECT_EQ(at20[0], "z_hist_bucket{m=\"m1\",le=\"0.001\"} 0 20");
  EXPECT_EQ(at20[1], "z_hist_bucket{m=\"m1\",le=\"0.0025\"} 1 20");
  EXPECT_EQ(at20[4], "z_hist_bucket{m=\"m1\",le=\"0.025\"} 1 20");
  EXPECT_EQ(at20[14], "z_hist_count{m=\"m1\"} 1 20");
  EXPECT_EQ(at20[15], "z_hist_sum{m=\"m1\"} 0.002 20");
  const auto& at40 = by_ts["40"];
  EXPECT_EQ(at40[3], "z_hist_bucket{m=\"m1\",le=\"0.01\"} 1 40");
  EXPECT_EQ(at40[4], "z_hist_bucket{m=\"m1\",le=\"0.025\"} 2 40");
  EXPECT_EQ(at40[13], "z_hist_bucket{m=\"m1\",le=\"+Inf\"} 2 40");
  EXPECT_EQ(at40[15], "z_hist_sum{m=\"m1\"} 0.022 40");
  // The restated point equals the one before; the end repeats the final point.
  for (size_t i = 0; i < 16; ++i) {
    EXPECT_EQ(by_ts["30"][i].substr(0, by_ts["30"][i].rfind(' ')),
              at20[i].substr(0, at20[i].rfind(' ')));
    EXPECT_EQ(by_ts["50"][i].substr(0, by_ts["50"][i].rfind(' ')),
              at40[i].substr(0, at40[i].rfind(' ')));
  }
}

TEST(History, A37_SeriesContiguousAndAscending) {
  std::ostringstream out;
  WriteOpenMetricsHistory(Sample(), 10000, out);
  std::map<std::string, long> last_ts;
  std::string current;
  std::map<std::string, bool> closed;
  for (const auto& l : SplitLines(out.str())) {
    if (l.empty() || l[0] == '#') continue;
    std::string series = l.substr(0, l.find(' '));
    long ts = std::stol(l.substr(l.rfind(' ') + 1));
    if (series.rfind("z_hist", 0) == 0) series = "z_hist";  // one histogram series
    if (series != current) {
      EXPECT_FALSE(closed[series]) << series << " appears twice";
      if (!current.empty()) closed[current] = true;
      current = series;
      last_ts[series] = ts;
      continue;
    }
    EXPECT_GE(ts, last_ts[series]) << l;
    last_ts[series] = ts;
  }
  for (const auto& [series, ts] : last_ts)
    EXPECT_EQ(ts, 50) << series << " must end at the common end";
}

TEST(History, A37_GapRestatementOnlyForGapsOverOneStep) {
  // Changes in consecutive steps: no restatement. A gap of exactly one empty step: restated.
  std::vector<FamilyEvents> f = {Counter("g", "", false, {"k"}, {{"x"}},
                                         {{0, 1000, 1}, {0, 2000, 1}, {0, 4000, 1}, {0, 9000, 1}})};
  std::ostringstream out;
  HistoryStats st = WriteOpenMetricsHistory(f, 1000, out);
  EXPECT_EQ(out.str(),
            "# TYPE g counter\n# HELP g help g\n"
            "g_total{k=\"x\"} 0 0\n"
            "g_total{k=\"x\"} 1 1\n"
            "g_total{k=\"x\"} 2 2\n"
            "g_total{k=\"x\"} 2 3\n"
            "g_total{k=\"x\"} 3 4\n"
            "g_total{k=\"x\"} 3 8\n"
            "g_total{k=\"x\"} 4 9\n"
            "# EOF\n");
  EXPECT_EQ(st.samples, 7u);
  EXPECT_EQ(st.end_ms, 9000);
}

TEST(History, A37_EmptyInputIsJustEof) {
  std::ostringstream out;
  HistoryStats st = WriteOpenMetricsHistory({}, 60000, out);
  EXPECT_EQ(out.str(), "# EOF\n");
  EXPECT_EQ(st.series, 0u);
  EXPECT_EQ(st.samples, 0u);
  std::vector<FamilyEvents> no_events = {Counter("a", "", false, {"k"}, {{"v"}}, {})};
  std::ostringstream out2;
  WriteOpenMetricsHistory(no_events, 60000, out2);
  EXPECT_EQ(out2.str(), "# EOF\n");
}

TEST(History, A37_StepBoundaries) {
  // Events exactly on a boundary belong to the step ending there; one ms later to the next.
  std::vector<FamilyEvents> f = {
      Counter("s", "", false, {}, {{}}, {{0, 60000, 1}, {0, 60001, 1}, {0, 180000, 5}})};
  std::ostringstream out;
  HistoryStats st = WriteOpenMetricsHistory(f, 60000, out);
  EXPECT_EQ(out.str(),
            "# TYPE s counter\n# HELP s help s\n"
            "s_total{} 0 0\n"
            "s_total{} 1 60\n"
            "s_total{} 2 120\n"
            "s_total{} 7 180\n"
            "# EOF\n");
  EXPECT_EQ(st.end_ms, 180000);
  EXPECT_EQ(st.samples, 4u);
}

// A remote-write backfill first stamps events dated after its start at the start (a clock ahead
// of ours): the history ends at the start's step, its totals unchanged.
TEST(History, A37_FutureEventsAreStampedAtTheStartOfARemoteWriteBackfill) {
  std::vector<FamilyEvents> f = {
      Counter("s", "", false, {}, {{}}, {{0, 60000, 1}, {0, 600000, 2}, {0, 36000000, 4}}),
      Counter("t", "", false, {}, {{}}, {{0, 120000, 1}})};
  EXPECT_EQ(ClampEventTimes(&f, 120000), 2u);
  EXPECT_EQ(f[0].events[0].timestamp_ms, 60000);
  EXPECT_EQ(f[0].events[1].timestamp_ms, 120000);
  EXPECT_EQ(f[0].events[2].timestamp_ms, 120000);
  EXPECT_EQ(f[1].events[0].timestamp_ms, 120000) << "at the start exactly: unchanged";
  std::ostringstream out;
  HistoryStats st = WriteOpenMetricsHistory(f, 60000, out);
  EXPECT_EQ(st.end_ms, 120000) << "not ten hours ahead";
  EXPECT_NE(out.str().find("s_total{} 7 120\n"), std::string::npos) << out.str();
  EXPECT_EQ(ClampEventTimes(&f, 120000), 0u) << "nothing left to clamp";
}

}  // namespace
}  // namespace ccmon
