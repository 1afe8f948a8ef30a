// SeriesTable (src/agent/engine/series_table.h): the samples it writes are rw::Serialize's
// bytes, and its exposition version moves exactly when the exposition's text does.
#include "agent/engine/series_table.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "exposition/text_format.h"
#include "remote_write/write_request.h"

namespace ccmon::agent {
namespace {

SeriesIncrement Inc(MetricFamily family, std::vector<std::string_view> labels, PicoSum delta) {
  SeriesIncrement inc;
  inc.family = family;
  inc.label_count = uint8_t(labels.size());
  std::copy(labels.begin(), labels.end(), inc.label_storage.begin());
  inc.delta = delta;
  return inc;
}

// What TakeSamples wrote before it encoded series itself: each series as an rw::Series (labels
// copied, __name__ and le added), the request serialized by rw::Serialize. The reference.
std::string ReferenceRequest(const std::vector<const SeriesState*>& series, int64_t ts,
                             const std::vector<std::pair<std::string, std::string>>& statics) {
  rw::WriteRequest req;
  for (const SeriesState* s : series) {
    const FamilyDesc& d = DescribeFamily(s->family);
    std::vector<std::pair<std::string, std::string>> base;
    for (size_t i = 0; i < d.label_names.size(); ++i)
      if (!s->labels[i].empty()) base.emplace_back(d.label_names[i], s->labels[i]);
    for (const auto& l : statics) base.push_back(l);
    auto add = [&](const std::string& name, const char* le, const std::string& le_value, double v) {
      rw::Series out;
      out.labels = base;
      out.labels.emplace_back("__name__", name);
      if (le) out.labels.emplace_back(le, le_value);
      out.samples.push_back({ts, v});
      req.series.push_back(std::move(out));
    };
    auto as_double = [&](PicoSum v) { return std::strtod(FormatValue(v, d.usd).c_str(), nullptr); };
    if (d.type == MetricType::kHistogram) {
      for (size_t b = 0; b < d.buckets.size(); ++b)
        add(d.name + "_bucket", "le", FormatValue(d.buckets[b], d.usd), double(s->buckets[b]));
      add(d.name + "_bucket", "le", "+Inf", double(s->count));
      add(d.name + "_count", nullptr, "", double(s->count));
      add(d.name + "_sum", nullptr, "", as_double(s->value));
    } else {
      add(d.type == MetricType::kGauge ? d.name : d.name + "_total", nullptr, "",
          as_double(s->value));
    }
  }
  std::string proto;
  EXPECT_TRUE(rw::Serialize(req, &proto).ok());
  return proto;
}

// Every family, empty labels (left out), non-ASCII values, zero and huge values, USD amounts
// that are not exact doubles, and static labels that sort before and after __name__ and le.
TEST(SeriesTable, SamplesAreTheRemoteWriteSerializersBytes) {
  const std::vector<std::pair<std::string, std::string>> statics = {
      {"Zone", "eu"}, {"lab", "x"}, {"team", "é"}};
  SeriesTable table(statics);
  std::mt19937_64 rng(7);
  const std::vector<std::string_view> models = {"claude-opus-4", "claude-sonnet-4-5", "", "mödel"};
  const std::vector<std::string_view> projects = {"/home/a/p", "", "/tmp/ü x"};
  for (int i = 0; i < 400; ++i) {
    const std::string_view m = models[rng() % models.size()];
    const std::string_view p = projects[rng() % projects.size()];
    const PicoSum big = PicoSum(1) << (rng() % 70);
    switch (rng() % 7) {
      case 0:
        table.Apply(Inc(MetricFamily::kTokens, {"dev", m, p, "input"}, big), 1000);
        break;
      case 1:
        table.Apply(Inc(MetricFamily::kCostUsd, {"dev", m, p}, PicoSum(rng() % 1000000007)), 1000);
        break;
      case 2:
        table.Apply(Inc(MetricFamily::kCostPerRequestUsd, {"dev", m}, PicoSum(rng() % 10000000000)),
                    1000);
        break;
      case 3:
        table.Apply(Inc(MetricFamily::kRequests, {"dev", m, p}, 0), 1000);  // a series at 0
        break;
      case 4:
        table.Set(Inc(MetricFamily::kActiveSessions, {"dev"}, PicoSum(rng() % 5)), 1000);
        break;
      case 5:
        table.Apply(Inc(MetricFamily::kSessionDuration, {"dev"}, PicoSum(rng() % 100000)), 1000);
        break;
      default:
        table.Apply(Inc(MetricFamily::kToolCalls, {"dev", m.empty() ? "Bash" : m}, 3), 1000);
        break;
    }
  }
  SampleOptions o;
  o.now_ms = 5000;
  o.shards = 3;
  o.max_samples_per_request = 12;
  o.all = true;
  // The reference: the same cut into requests, per shard in key order.
  std::vector<std::vector<std::vector<const SeriesState*>>> expected(3);
  std::vector<size_t> in_last(3, 0);
  for (const auto& [key, s] : table.series()) {
    const FamilyDesc& d = DescribeFamily(s.family);
    const size_t n = d.type == MetricType::kHistogram ? d.buckets.size() + 3 : 1;
    const uint32_t shard = SeriesTable::ShardOf(key, 3);
    if (expected[shard].empty() || (in_last[shard] > 0 && in_last[shard] + n > 12)) {
      expected[shard].emplace_back();
      in_last[shard] = 0;
    }
    expected[shard].back().push_back(&s);
    in_last[shard] += n;
  }
  std::vector<std::vector<std::string>> want(3);
  for (uint32_t shard = 0; shard < 3; ++shard)
    for (const auto& request : expected[shard])
      want[shard].push_back(ReferenceRequest(request, 1000, statics));  // the event time

  std::vector<std::vector<std::string>> got(3);
  std::vector<std::vector<uint32_t>> counts(3);
  SampleStats stats;
  ASSERT_TRUE(table
                  .TakeSamples(
                      o,
                      [&](uint32_t shard, std::string&& proto, uint32_t samples) {
                        got[shard].push_back(std::move(proto));
                        counts[shard].push_back(samples);
                        return Status::Ok();
                      },
                      &stats)
                  .ok());
  size_t requests = 0;
  for (uint32_t shard = 0; shard < 3; ++shard) {
    ASSERT_EQ(got[shard].size(), want[shard].size()) << shard;
    for (size_t r = 0; r < got[shard].size(); ++r) {
      EXPECT_EQ(got[shard][r], want[shard][r]) << shard << " " << r;
      rw::WriteRequest decoded;
      std::string body;
      rw::Compress(got[shard][r], &body);
      ASSERT_TRUE(rw::Decode(body, 1 << 24, &decoded).ok());
      EXPECT_EQ(decoded.sample_count(), counts[shard][r]);
      ++requests;
    }
  }
  EXPECT_GT(requests, 10u);
  EXPECT_EQ(stats.series, table.series().size());
}

TEST(SeriesTable, ALabelTheWireFormatRefusesFailsTheTake) {
  SeriesTable table;
  table.Apply(Inc(MetricFamily::kTokens, {"dev", "m", "p", "bad\xff"}, 1), 1000);
  SampleOptions o;
  o.now_ms = 5000;
  o.all = true;
  SampleStats stats;
  int sunk = 0;
  const Status s = table.TakeSamples(
      o,
      [&](uint32_t, std::string&&, uint32_t) {
        ++sunk;
        return Status::Ok();
      },
      &stats);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << s.message();
  EXPECT_NE(s.message().find("not UTF-8"), std::string::npos) << s.message();
  EXPECT_EQ(sunk, 0);
}

// TakeSamples and TakeRecords skip their walk when nothing can be due (an idle step): what
// they give must be what a full walk would.
TEST(SeriesTable, OnlyTheSeriesChangedSinceTheLastTakeAreTakenEvenAfterALoad) {
  SeriesTable table;
  auto samples = [&](SampleOptions o) {
    size_t n = 0;
    SampleStats stats;
    EXPECT_TRUE(table
                    .TakeSamples(
                        o,
                        [&](uint32_t, std::string&&, uint32_t k) {
                          n += k;
                          return Status::Ok();
                        },
                        &stats)
                    .ok());
    return n;
  };
  auto records = [&] {
    std::vector<std::pair<std::string, std::string>> r;
    table.TakeRecords(&r);
    return r;
  };
  SampleOptions step;
  step.now_ms = 10000;
  EXPECT_EQ(samples(step), 0u);
  EXPECT_TRUE(records().empty());
  table.Apply(Inc(MetricFamily::kRequests, {"d", "m", "p"}, 1), 9000);
  table.Apply(Inc(MetricFamily::kRequests, {"d", "m", "q"}, 1), 9000);
  EXPECT_EQ(samples(step), 2u);
  EXPECT_EQ(samples(step), 0u);  // nothing new
  auto saved = records();
  EXPECT_EQ(saved.size(), 2u);
  EXPECT_TRUE(records().empty());
  table.Apply(Inc(MetricFamily::kRequests, {"d", "m", "p"}, 1), 9500);
  EXPECT_EQ(records().size(), 1u);  // records before samples: the sample is still due
  step.now_ms = 11000;
  EXPECT_EQ(samples(step), 1u);
  EXPECT_EQ(records().size(), 1u);  // its sample's timestamp is state too
  // A resend takes every series, changed or not.
  SampleOptions resend = step;
  resend.now_ms = 30000;
  resend.resend_before_ms = 15000;
  EXPECT_EQ(samples(resend), 2u);
  EXPECT_EQ(records().size(), 2u);
  // A table loaded from records taken while a series was unsent sends it.
  table.Apply(Inc(MetricFamily::kRequests, {"d", "m", "q"}, 5), 29000);
  auto unsent = records();
  ASSERT_EQ(unsent.size(), 1u);
  SeriesTable loaded;
  ASSERT_TRUE(loaded.Load(unsent[0].first, unsent[0].second).ok());
  size_t n = 0;
  SampleStats stats;
  ASSERT_TRUE(loaded
                  .TakeSamples(
                      step,
                      [&](uint32_t, std::string&&, uint32_t k) {
                        n += k;
                        return Status::Ok();
                      },
                      &stats)
                  .ok());
  EXPECT_EQ(n, 1u);
}

TEST(SeriesTable, TheExpositionVersionMovesExactlyWhenItsTextDoes) {
  SeriesTable table;
  std::string text = table.Exposition(false);
  uint64_t version = table.version();
  // Each step: does it change the text? The version must say the same.
  auto step = [&](const char* what, auto&& change) {
    change();
    const std::string now = table.Exposition(false);
    EXPECT_EQ(now != text, table.version() != version) << what;
    text = now;
    version = table.version();
  };
  step("a new series", [&] { table.Apply(Inc(MetricFamily::kRequests, {"d", "m", "p"}, 1), 1); });
  step("a rise", [&] { table.Apply(Inc(MetricFamily::kRequests, {"d", "m", "p"}, 2), 2); });
  step("a zero increment", [&] {
    table.Apply(Inc(MetricFamily::kRequests, {"d", "m", "p"}, 0), 3);
  });
  step("a new series at 0", [&] { table.Ensure(Inc(MetricFamily::kApiErrors, {"d"}, 0)); });
  step("Ensure again", [&] { table.Ensure(Inc(MetricFamily::kApiErrors, {"d"}, 0)); });
  step("a gauge set", [&] { table.Set(Inc(MetricFamily::kActiveSessions, {"d"}, 3), 4); });
  step("the same gauge value", [&] { table.Set(Inc(MetricFamily::kActiveSessions, {"d"}, 3), 5); });
  step("a gauge fall", [&] { table.Set(Inc(MetricFamily::kActiveSessions, {"d"}, 1), 6); });
  step("a histogram observation",
       [&] { table.Apply(Inc(MetricFamily::kSessionDuration, {"d"}, 0), 7); });
  step("samples taken", [&] {
    SampleOptions o;
    o.now_ms = 100;
    o.all = true;
    SampleStats stats;
    ASSERT_TRUE(table
                    .TakeSamples(
                        o, [](uint32_t, std::string&&, uint32_t) { return Status::Ok(); }, &stats)
                    .ok());
  });
  std::vector<std::pair<std::string, std::string>> records;
  step("records taken", [&] { table.TakeRecords(&records); });
  // A record loaded into another table changes that one.
  SeriesTable other;
  const uint64_t before = other.version();
  ASSERT_FALSE(records.empty());
  ASSERT_TRUE(other.Load(records[0].first, records[0].second).ok());
  EXPECT_NE(other.version(), before);
}

}  // namespace
}  // namespace ccmon::agent
