// The series cache under concurrent writes (a THREADS test: also run under TSan): io threads
// look series up while others insert and the store commits; every sample is stored exactly once
// and every series carries its own device.
#include <gtest/gtest.h>
#include <snappy.h>

#include <bit>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gateway/devices/device_registry.h"
#include "gateway/ingest/write_handler.h"
#include "gateway/store/series_store.h"
#include "store/mem_store.h"
#include "testing/fake_clock.h"
#include "testing/wire_encoder.h"

namespace ccmon::gateway {
namespace {

constexpr int64_t kNow = 1767225600000;

using testing_util::Bytes;

// Series "s<first>".."s<first + n - 1>" of metric `up`, one sample each at `ts`, value ts.
std::string Body(int first, int n, int64_t ts) {
  std::string req;
  for (int i = first; i < first + n; ++i) {
    std::string ts_msg, l1, l2;
    Bytes(1, "__name__", &l1);
    Bytes(2, "up", &l1);
    Bytes(1, "s", &l2);
    Bytes(2, std::to_string(i), &l2);
    Bytes(1, l1, &ts_msg);
    Bytes(1, l2, &ts_msg);
    Bytes(2, testing_util::SampleMessage(ts, double(ts)), &ts_msg);
    Bytes(1, ts_msg, &req);
  }
  std::string out;
  snappy::Compress(req.data(), req.size(), &out);
  return out;
}

TEST(SeriesCacheThreadsTest, ConcurrentWritersStoreEverySampleOnceUnderTheirDevice) {
  testing_util::FakeClock clock(kNow);
  auto kv = NewMemStore(), device_kv = NewMemStore();
  std::unique_ptr<DeviceRegistry> devices;
  ASSERT_TRUE(DeviceRegistry::Open(device_kv.get(), &clock, &devices).ok());
  std::unique_ptr<GatewayStore> store;
  ASSERT_TRUE(GatewayStore::Open(kv.get(), &store).ok());
  constexpr int kThreads = 4, kRounds = 40, kSeries = 50;
  std::vector<std::string> keys(kThreads);
  // Two threads per device: the same device's series are looked up and inserted at once.
  ASSERT_TRUE(devices->Add("d0", &keys[0]).ok());
  ASSERT_TRUE(devices->Add("d1", &keys[1]).ok());
  keys[2] = keys[0];
  keys[3] = keys[1];
  WriteHandlerOptions o;
  o.devices = devices.get();
  o.clock = &clock;
  o.limits.series_cache_entries = 64;  // smaller than the series: evictions while reading
  WriteHandler handler(store.get(), o);
  std::vector<std::thread> threads;
  std::vector<int> failures(kThreads, 0);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int r = 0; r < kRounds; ++r) {
        ServerRequest req;
        req.method = "POST";
        req.headers.emplace_back("Content-Type", "application/x-protobuf");
        req.headers.emplace_back("Authorization", "Bearer " + keys[t]);
        // Threads t and t + 2 share a device but not series: s0..49 and s50..99; both devices
        // send the same bytes.
        req.body = Body((t / 2) * kSeries, kSeries, kNow - 100'000 + r);
        if (handler.Handle(req).status != 204) ++failures[t];
      }
    });
  }
  for (std::thread& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(failures[t], 0) << t;
  const WriteStats st = handler.stats();
  EXPECT_EQ(st.samples_accepted, uint64_t(kThreads * kRounds * kSeries));
  EXPECT_GT(st.series_cache_hits, 0u);
  std::map<std::string, std::set<int>> series_by_device;
  store->Read([&](const SeriesTable& table) {
    for (const auto& [key, state] : table.series()) {
      series_by_device[std::string(LabelOfKey(key, "device"))].insert(
          std::stoi(std::string(LabelOfKey(key, "s"))));
      EXPECT_EQ(state.timestamp_ms, kNow - 100'000 + kRounds - 1);
    }
  });
  // Each device: its two threads' series, s0..s99, and nothing else (no series of one device's
  // bytes stored under the other).
  ASSERT_EQ(series_by_device.size(), 2u);
  for (const auto& [device, series] : series_by_device) {
    EXPECT_TRUE(device == "d0" || device == "d1") << device;
    EXPECT_EQ(series.size(), size_t(2 * kSeries)) << device;
  }
}

}  // namespace
}  // namespace ccmon::gateway
