// The gateway's /metrics body with the computed series (GatewayMetricsBody): a device cannot
// fake a computed family by pushing a series of its name, and each family appears once; the
// write handler's counters appear as self-metrics.
#include <gtest/gtest.h>
#include <snappy.h>

#include <map>
#include <sstream>

#include "gateway/computed/computed.h"
#include "gateway/gateway.h"
#include "store/mem_store.h"
#include "testing/fake_clock.h"

namespace ccmon::gateway {
namespace {

TEST(GatewayMetricsBodyTest, G1_G2_StoredSeriesOfComputedNamesAreNotExposed) {
  testing_util::FakeClock clock(1767225600000 + 30 * 60'000);
  auto kv = NewMemStore();
  std::unique_ptr<GatewayStore> store;
  ASSERT_TRUE(GatewayStore::Open(kv.get(), &store).ok());
  ComputedOptions o;
  o.clock = &clock;
  std::unique_ptr<GatewayComputed> computed;
  ASSERT_TRUE(GatewayComputed::Open(kv.get(), o, &computed).ok());
  store->set_apply_listener(computed->apply_listener());
  WriteHandlerOptions wo;
  wo.clock = &clock;
  WriteHandler write(store.get(), wo);
  GatewaySelfMetrics self(&write, store.get());

  auto series = [](std::string name, std::string device, double v) {
    IncomingSeries s;
    s.labels = {{"__name__", name}, {"device", device}};
    s.samples = {{1767225600000, v}};
    return s;
  };
  ApplyResult r;
  ASSERT_TRUE(
      store
          ->Apply({series("claude_hourly_spend_usd", "victim", 1e6),
                   series("claude_device_online", "ghost", 1),
                   series("claude_cost_usd_total", "a", 2.5), series("other_metric", "a", 7)},
                  {}, &r)
          .ok());
  computed->RecordWrite("a", "ccmon-agent/0.1.0");
  for (ExpositionFormat f : {ExpositionFormat::kText, ExpositionFormat::kOpenMetrics}) {
    std::string body;
    ASSERT_TRUE(GatewayMetricsBody(*store, self, f, &body, computed.get()).ok());
    EXPECT_EQ(body.find("victim"), std::string::npos) << body;
    EXPECT_EQ(body.find("ghost"), std::string::npos) << body;
    EXPECT_NE(body.find("claude_hourly_spend_usd{device=\"a\"} 2.5\n"), std::string::npos);
    EXPECT_NE(body.find("claude_device_online{device=\"a\"} 1\n"), std::string::npos);
    EXPECT_NE(body.find("other_metric{device=\"a\"} 7\n"), std::string::npos);
    std::map<std::string, int> types;
    std::istringstream in(body);
    for (std::string line; std::getline(in, line);) {
      if (line.starts_with("# TYPE ")) ++types[line.substr(7, line.find(' ', 7) - 7)];
    }
    for (const auto& [name, n] : types) EXPECT_EQ(n, 1) << name;
    if (f == ExpositionFormat::kOpenMetrics) {
      EXPECT_TRUE(body.ends_with("# EOF\n"));
    }
  }
  // Without the computed series (nullptr), stored series of those names are served as stored.
  std::string plain;
  ASSERT_TRUE(GatewayMetricsBody(*store, self, ExpositionFormat::kText, &plain).ok());
  EXPECT_NE(plain.find("victim"), std::string::npos);
}

// A remote-write 1.0 body of one series {__name__="m", job="j"} with one sample, encoded by
// hand so that the series' label bytes are the same in every request.
std::string OneSeriesBody(int64_t ts) {
  auto bytes = [](char tag, std::string_view b) {
    std::string out(1, tag);
    out.push_back(char(b.size()));  // every length here is < 128
    out.append(b);
    return out;
  };
  std::string sample = "\x09";  // value: field 1, fixed64
  sample.append(8, '\0');
  sample.push_back('\x10');  // timestamp: field 2, varint
  for (uint64_t v = uint64_t(ts); v != 0; v >>= 7) {
    sample.push_back(char(v >= 0x80 ? (v & 0x7f) | 0x80 : v));
  }
  const std::string series = bytes('\x0a', bytes('\x0a', "__name__") + bytes('\x12', "m")) +
                             bytes('\x0a', bytes('\x0a', "job") + bytes('\x12', "j")) +
                             bytes('\x12', sample);
  const std::string request = bytes('\x0a', series);
  std::string out;
  snappy::Compress(request.data(), request.size(), &out);
  return out;
}

// The value of the self-metric sample line `name` in a text body; -1 when absent.
double SelfValue(const std::string& body, const std::string& name) {
  const size_t at = body.find("\n" + name + " ");
  if (at == std::string::npos) return -1;
  return std::stod(body.substr(at + name.size() + 2));
}

TEST(GatewayMetricsBodyTest, SeriesCacheHitsAndMissesAreSelfMetrics) {
  testing_util::FakeClock clock(1767225600000);
  auto kv = NewMemStore();
  std::unique_ptr<GatewayStore> store;
  ASSERT_TRUE(GatewayStore::Open(kv.get(), &store).ok());
  WriteHandlerOptions wo;
  wo.clock = &clock;
  wo.allow_anonymous = true;
  WriteHandler write(store.get(), wo);
  GatewaySelfMetrics self(&write, store.get());
  auto post = [&](int64_t ts) {
    ServerRequest r;
    r.method = "POST";
    r.target = "/api/v1/write";
    r.headers = {{"Content-Type", "application/x-protobuf"}, {"Content-Encoding", "snappy"}};
    r.body = OneSeriesBody(ts);
    return write.Handle(r).status;
  };
  auto scrape = [&] {
    std::string body;
    EXPECT_TRUE(GatewayMetricsBody(*store, self, ExpositionFormat::kText, &body).ok());
    return body;
  };
  std::string body = scrape();
  EXPECT_EQ(SelfValue(body, "ccmon_gateway_series_cache_hits_total"), 0) << body;
  EXPECT_EQ(SelfValue(body, "ccmon_gateway_series_cache_misses_total"), 0) << body;
  ASSERT_EQ(post(1767225600000), 204u);  // new: a miss, then remembered
  ASSERT_EQ(post(1767225601000), 204u);  // the same label bytes: a hit
  ASSERT_EQ(post(1767225602000), 204u);
  body = scrape();
  EXPECT_EQ(SelfValue(body, "ccmon_gateway_series_cache_hits_total"), 2) << body;
  EXPECT_EQ(SelfValue(body, "ccmon_gateway_series_cache_misses_total"), 1) << body;
  EXPECT_EQ(SelfValue(body, "ccmon_gateway_samples_accepted_total"), 3) << body;
}

}  // namespace
}  // namespace ccmon::gateway
