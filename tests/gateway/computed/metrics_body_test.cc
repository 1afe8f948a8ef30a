// The gateway's /metrics body with the computed series (GatewayMetricsBody): a device cannot
// fake a computed family by pushing a series of its name, and each family appears once.
#include <gtest/gtest.h>

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

}  // namespace
}  // namespace ccmon::gateway
