#include "gateway/store/exposition.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdlib>
#include <limits>

namespace ccmon::gateway {
namespace {

void Add(SeriesTable* t, Labels labels, double value, int64_t ts = 1000) {
  std::sort(labels.begin(), labels.end());
  t->Put(SeriesKey(labels), SeriesState{ts, value});
}

std::string Render(const SeriesTable& t, ExpositionFormat f,
                   std::function<bool(std::string_view)> hidden = nullptr) {
  std::string out;
  WriteSeriesExposition(t, f, hidden, &out);
  return out;
}

TEST(FormatSampleValueTest, ShortestRoundTrip) {
  EXPECT_EQ(FormatSampleValue(0), "0");
  EXPECT_EQ(FormatSampleValue(42), "42");
  EXPECT_EQ(FormatSampleValue(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(FormatSampleValue(-2.5), "-2.5");
  EXPECT_EQ(FormatSampleValue(1e300), "1e+300");
  EXPECT_EQ(FormatSampleValue(INFINITY), "+Inf");
  EXPECT_EQ(FormatSampleValue(-INFINITY), "-Inf");
  EXPECT_EQ(FormatSampleValue(NAN), "NaN");
  const double tiny = std::numeric_limits<double>::denorm_min();
  EXPECT_EQ(std::strtod(FormatSampleValue(tiny).c_str(), nullptr), tiny);
  EXPECT_EQ(std::strtod(FormatSampleValue(123456.78901234567).c_str(), nullptr),
            123456.78901234567);
}

TEST(SeriesExpositionTest, TextWithTypesFromMetadata) {
  SeriesTable t;
  t.PutMetadata({rw::MetricKind::kCounter, "claude_tokens", "Tokens by type", ""});
  t.PutMetadata({rw::MetricKind::kHistogram, "lat_seconds", "Latency", "seconds"});
  t.PutMetadata({rw::MetricKind::kGauge, "temp", "", ""});
  Add(&t, {{"__name__", "claude_tokens_total"}, {"type", "output"}}, 7);
  Add(&t, {{"__name__", "claude_tokens_total"}, {"type", "input"}}, 5);
  Add(&t, {{"__name__", "lat_seconds_bucket"}, {"le", "10"}}, 3);
  Add(&t, {{"__name__", "lat_seconds_bucket"}, {"le", "+Inf"}}, 4);
  Add(&t, {{"__name__", "lat_seconds_bucket"}, {"le", "0.5"}}, 1);
  Add(&t, {{"__name__", "lat_seconds_sum"}}, 12.5);
  Add(&t, {{"__name__", "lat_seconds_count"}}, 4);
  Add(&t, {{"__name__", "temp"}}, -3);
  Add(&t, {{"__name__", "plain"}, {"v", "a\"b\\c\nd"}}, 1);
  EXPECT_EQ(Render(t, ExpositionFormat::kText),
            "# HELP claude_tokens_total Tokens by type\n"
            "# TYPE claude_tokens_total counter\n"
            "claude_tokens_total{type=\"input\"} 5\n"
            "claude_tokens_total{type=\"output\"} 7\n"
            "# HELP lat_seconds Latency\n"
            "# TYPE lat_seconds histogram\n"
            "lat_seconds_bucket{le=\"0.5\"} 1\n"
            "lat_seconds_bucket{le=\"10\"} 3\n"
            "lat_seconds_bucket{le=\"+Inf\"} 4\n"
            "lat_seconds_count 4\n"
            "lat_seconds_sum 12.5\n"
            "plain{v=\"a\\\"b\\\\c\\nd\"} 1\n"
            "# TYPE temp gauge\n"
            "temp -3\n");
  EXPECT_EQ(Render(t, ExpositionFormat::kOpenMetrics),
            "# HELP claude_tokens Tokens by type\n"
            "# TYPE claude_tokens counter\n"
            "claude_tokens_total{type=\"input\"} 5\n"
            "claude_tokens_total{type=\"output\"} 7\n"
            "# HELP lat_seconds Latency\n"
            "# TYPE lat_seconds histogram\n"
            "# UNIT lat_seconds seconds\n"
            "lat_seconds_bucket{le=\"0.5\"} 1\n"
            "lat_seconds_bucket{le=\"10\"} 3\n"
            "lat_seconds_bucket{le=\"+Inf\"} 4\n"
            "lat_seconds_count 4\n"
            "lat_seconds_sum 12.5\n"
            "# TYPE plain unknown\n"
            "plain{v=\"a\\\"b\\\\c\\nd\"} 1\n"
            "# TYPE temp gauge\n"
            "temp -3\n");
}

TEST(SeriesExpositionTest, CountersNamedWithoutTotalAreUnknownInOpenMetrics) {
  SeriesTable t;
  t.PutMetadata({rw::MetricKind::kCounter, "legacy", "", ""});
  t.PutMetadata({rw::MetricKind::kCounter, "prom_http_requests_total", "Reqs \"x\"", ""});
  Add(&t, {{"__name__", "legacy"}}, 1);
  Add(&t, {{"__name__", "prom_http_requests_total"}, {"code", "200"}}, 2);
  EXPECT_EQ(Render(t, ExpositionFormat::kText),
            "# TYPE legacy counter\n"
            "legacy 1\n"
            "# HELP prom_http_requests_total Reqs \"x\"\n"
            "# TYPE prom_http_requests_total counter\n"
            "prom_http_requests_total{code=\"200\"} 2\n");
  EXPECT_EQ(Render(t, ExpositionFormat::kOpenMetrics),
            "# TYPE legacy unknown\n"
            "legacy 1\n"
            "# HELP prom_http_requests Reqs \\\"x\\\"\n"
            "# TYPE prom_http_requests counter\n"
            "prom_http_requests_total{code=\"200\"} 2\n");
}

TEST(SeriesExpositionTest, StaleAndHiddenSeriesAreLeftOut) {
  SeriesTable t;
  Add(&t, {{"__name__", "gone"}}, std::bit_cast<double>(uint64_t(0x7ff0000000000002ull)));
  Add(&t, {{"__name__", "nan"}}, NAN);
  Add(&t, {{"__name__", "ccmon_gateway_series"}}, 5);
  Add(&t, {{"__name__", "kept"}}, 1);
  EXPECT_EQ(Render(t, ExpositionFormat::kText,
                   [](std::string_view n) { return n.starts_with("ccmon_gateway_"); }),
            "kept 1\nnan NaN\n");
}

TEST(SeriesExpositionTest, BucketsStayWithTheirSeriesAndAscend) {
  SeriesTable t;
  t.PutMetadata({rw::MetricKind::kHistogram, "h", "", ""});
  for (const char* dev : {"b", "a"}) {
    for (const char* le : {"+Inf", "10", "2", "0.5"}) {
      Add(&t, {{"__name__", "h_bucket"}, {"device", dev}, {"le", le}}, 1);
    }
  }
  Add(&t, {{"__name__", "h_bucket"}, {"le", "1"}}, 1);  // fewer labels: first
  EXPECT_EQ(Render(t, ExpositionFormat::kText),
            "# TYPE h histogram\n"
            "h_bucket{le=\"1\"} 1\n"
            "h_bucket{device=\"a\",le=\"0.5\"} 1\n"
            "h_bucket{device=\"a\",le=\"2\"} 1\n"
            "h_bucket{device=\"a\",le=\"10\"} 1\n"
            "h_bucket{device=\"a\",le=\"+Inf\"} 1\n"
            "h_bucket{device=\"b\",le=\"0.5\"} 1\n"
            "h_bucket{device=\"b\",le=\"2\"} 1\n"
            "h_bucket{device=\"b\",le=\"10\"} 1\n"
            "h_bucket{device=\"b\",le=\"+Inf\"} 1\n");
}

// The store orders keys by length-prefixed labels ("a9" before "a10"); the exposition orders
// series by their label text, name by name and value by value, a shorter prefix first.
TEST(SeriesExpositionTest, SeriesAreInLabelTextOrderNotKeyOrder) {
  SeriesTable t;
  for (const char* dev : {"a9", "a10", "a", "b", "a1"}) {
    Add(&t, {{"__name__", "m"}, {"device", dev}, {"model", "x"}}, 1);
  }
  Add(&t, {{"__name__", "m"}, {"device", "a1"}}, 2);                 // a prefix of a label list
  Add(&t, {{"__name__", "m"}, {"device", "a1"}, {"mode", "z"}}, 3);  // "mode" < "model"
  Add(&t, {{"__name__", "m"}, {"dev", "zz"}}, 4);                    // "dev" < "device"
  EXPECT_EQ(Render(t, ExpositionFormat::kText),
            "m{dev=\"zz\"} 4\n"
            "m{device=\"a\",model=\"x\"} 1\n"
            "m{device=\"a1\"} 2\n"
            "m{device=\"a1\",mode=\"z\"} 3\n"
            "m{device=\"a1\",model=\"x\"} 1\n"
            "m{device=\"a10\",model=\"x\"} 1\n"
            "m{device=\"a9\",model=\"x\"} 1\n"
            "m{device=\"b\",model=\"x\"} 1\n");
}

TEST(SeriesExpositionTest, EveryCharacterToEscapeIsEscapedWhereverItIs) {
  SeriesTable t;
  Add(&t, {{"__name__", "m"}, {"v", "\\"}}, 1);
  Add(&t, {{"__name__", "m"}, {"w", "\"\n\\x\"\"y\n"}}, 2);
  EXPECT_EQ(Render(t, ExpositionFormat::kText),
            "m{v=\"\\\\\"} 1\n"
            "m{w=\"\\\"\\n\\\\x\\\"\\\"y\\n\"} 2\n");
}

TEST(SeriesExpositionTest, EmptyTableIsEmpty) {
  SeriesTable t;
  EXPECT_EQ(Render(t, ExpositionFormat::kText), "");
  EXPECT_EQ(Render(t, ExpositionFormat::kOpenMetrics), "");
}

}  // namespace
}  // namespace ccmon::gateway
