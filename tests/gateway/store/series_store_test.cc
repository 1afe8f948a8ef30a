#include "gateway/store/series_store.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <thread>

#include "gateway/store/exposition.h"
#include "store/mem_store.h"
#include "store/rocks_store.h"
#include "testing/fault_store.h"
#include "testing/temp_dir.h"

namespace ccmon::gateway {
namespace {

using testing_util::FaultStore;
using testing_util::TempDir;

IncomingSeries S(Labels labels, std::vector<rw::Sample> samples) {
  std::sort(labels.begin(), labels.end());
  return IncomingSeries{std::move(labels), std::move(samples)};
}

rw::Metadata Meta(std::string family, rw::MetricKind kind, std::string help = "h") {
  return rw::Metadata{kind, std::move(family), std::move(help), ""};
}

std::map<std::string, SeriesState> Snapshot(const SeriesStore& store) {
  std::map<std::string, SeriesState> out;
  store.Read([&](const SeriesTable& t) { out = t.series(); });
  return out;
}

std::string Exposed(const SeriesStore& store, ExpositionFormat f = ExpositionFormat::kText) {
  std::string out;
  store.Read([&](const SeriesTable& t) { WriteSeriesExposition(t, f, nullptr, &out); });
  return out;
}

TEST(SeriesKeyTest, RoundTripsAnyBytesAndPutsTheNameFirst) {
  Labels labels = {
      {"A", "upper sorts before __name__"}, {"__name__", "m"}, {"z", std::string("nul\0byte", 8)}};
  const std::string key = SeriesKey(labels);
  std::string name;
  ASSERT_TRUE(NameOfKey(key, &name).ok());
  EXPECT_EQ(name, "m");
  Labels back;
  ASSERT_TRUE(LabelsOfKey(key, &back).ok());
  EXPECT_EQ(back, labels);
  EXPECT_EQ(LabelsOfKey(key.substr(0, key.size() - 1), &back).code(), Status::Code::kCorruption);
  EXPECT_EQ(LabelsOfKey("\x05"
                        "ab",
                        &back)
                .code(),
            Status::Code::kCorruption);
}

TEST(SeriesTableTest, DuplicatesAreDroppedAndCountedResetsOnlyForCounters) {
  SeriesTable t;
  PlannedChanges c;
  ApplyResult r;
  t.Plan(
      {S({{"__name__", "x_total"}}, {{1000, 5}, {2000, 7}}), S({{"__name__", "g"}}, {{1000, 9}})},
      {}, &c, &r);
  EXPECT_EQ(r.accepted, 3u);
  EXPECT_EQ(r.new_series, 2u);
  t.Commit(c);
  // At or before the last timestamp: duplicates, whatever the value. Later and lower: a reset
  // for the counter (by its _total name, no metadata), not for the gauge-like name.
  t.Plan({S({{"__name__", "x_total"}}, {{2000, 99}, {1500, 1}, {3000, 2}}),
          S({{"__name__", "g"}}, {{1000, 1}, {4000, 3}})},
         {}, &c, &r);
  EXPECT_EQ(r.accepted, 2u);
  EXPECT_EQ(r.duplicates, 3u);
  EXPECT_EQ(r.counter_resets, 1u);
  EXPECT_EQ(r.new_series, 0u);
  t.Commit(c);
  EXPECT_EQ(t.series().at(SeriesKey({{"__name__", "x_total"}})).value, 2);
  EXPECT_EQ(t.series().at(SeriesKey({{"__name__", "g"}})).timestamp_ms, 4000);
}

TEST(SeriesTableTest, OneSeriesManyTimesInOneRequestIsMergedInOrder) {
  // Prometheus's own sender puts one TimeSeries per sample.
  SeriesTable t;
  PlannedChanges c;
  ApplyResult r;
  t.Plan({S({{"__name__", "up"}, {"job", "a"}}, {{1000, 1}}),
          S({{"__name__", "up"}, {"job", "a"}}, {{2000, 0}}),
          S({{"__name__", "up"}, {"job", "a"}}, {{2000, 1}})},
         {Meta("up", rw::MetricKind::kGauge)}, &c, &r);
  EXPECT_EQ(r.accepted, 2u);
  EXPECT_EQ(r.duplicates, 1u);
  EXPECT_EQ(r.new_series, 1u);
  EXPECT_EQ(r.counter_resets, 0u);  // a gauge going down
  ASSERT_EQ(c.series.size(), 1u);
  EXPECT_EQ(c.series[0].second.timestamp_ms, 2000);
  EXPECT_EQ(c.series[0].second.value, 0);
}

TEST(SeriesTableTest, FamiliesFromMetadata) {
  SeriesTable t;
  t.PutMetadata(Meta("c", rw::MetricKind::kCounter));
  t.PutMetadata(Meta("h", rw::MetricKind::kHistogram));
  t.PutMetadata(Meta("s", rw::MetricKind::kSummary));
  t.PutMetadata(Meta("g", rw::MetricKind::kGauge));
  t.PutMetadata(Meta("p_total", rw::MetricKind::kCounter));  // Prometheus names it so
  EXPECT_EQ(t.Family("c_total").family, "c");
  EXPECT_EQ(t.Family("h_bucket").family, "h");
  EXPECT_EQ(t.Family("h_count").kind, rw::MetricKind::kHistogram);
  EXPECT_EQ(t.Family("s_sum").family, "s");
  EXPECT_EQ(t.Family("s_bucket").family, "s_bucket");  // summaries have no buckets
  EXPECT_EQ(t.Family("g_total").kind, rw::MetricKind::kUnknown);
  EXPECT_EQ(t.Family("p_total").family, "p_total");
  EXPECT_TRUE(t.IsCounter("c_total"));
  EXPECT_TRUE(t.IsCounter("p_total"));
  EXPECT_TRUE(t.IsCounter("h_bucket"));
  EXPECT_FALSE(t.IsCounter("h_sum"));
  EXPECT_TRUE(t.IsCounter("s_count"));
  EXPECT_FALSE(t.IsCounter("g"));
  // g is a gauge, so g_total is not of its family; without metadata of its own, the _total
  // naming convention makes it a counter.
  EXPECT_TRUE(t.IsCounter("g_total"));
  EXPECT_TRUE(t.IsCounter("unknown_total"));
}

TEST(SeriesTableTest, MetadataIsPlannedOnlyWhenItChanges) {
  SeriesTable t;
  PlannedChanges c;
  ApplyResult r;
  t.Plan({}, {Meta("x", rw::MetricKind::kCounter)}, &c, &r);
  EXPECT_EQ(r.metadata_changed, 1u);
  t.Commit(c);
  t.Plan({}, {Meta("x", rw::MetricKind::kCounter)}, &c, &r);
  EXPECT_EQ(r.metadata_changed, 0u);
  t.Plan({}, {Meta("x", rw::MetricKind::kCounter, "new help")}, &c, &r);
  EXPECT_EQ(r.metadata_changed, 1u);
}

TEST(SeriesTableTest, ARequestsOwnMetadataDecidesWhatIsACounter) {
  SeriesTable t;
  PlannedChanges c;
  ApplyResult r;
  t.Plan({S({{"__name__", "q"}}, {{1000, 5}})}, {}, &c, &r);
  t.Commit(c);
  t.Plan({S({{"__name__", "q"}}, {{2000, 1}})}, {Meta("q", rw::MetricKind::kCounter)}, &c, &r);
  EXPECT_EQ(r.counter_resets, 1u);
}

class GatewayStoreTest : public ::testing::Test {
 protected:
  void Open() {
    store_.reset();
    kv_.reset();
    ASSERT_TRUE(OpenRocksStore(dir_.path() + "/db", {}, &kv_).ok());
    Status s = GatewayStore::Open(kv_.get(), &store_);
    ASSERT_TRUE(s.ok()) << s.message();
  }
  TempDir dir_;
  std::unique_ptr<KvStore> kv_;
  std::unique_ptr<GatewayStore> store_;
};

TEST_F(GatewayStoreTest, ARestartedStoreServesExactlyWhatItServedBefore) {
  Open();
  ApplyResult r;
  const double nan_payload = std::bit_cast<double>(uint64_t(0x7ff8000000000123ull));
  ASSERT_TRUE(
      store_
          ->Apply({S({{"__name__", "claude_cost_usd_total"}, {"device", "a"}}, {{1000, 0.1 + 0.2}}),
                   S({{"__name__", "weird"}, {"v", "quote\" back\\ nl\n"}}, {{1000, nan_payload}}),
                   S({{"__name__", "big"}}, {{-5, 1e300}})},
                  {Meta("claude_cost_usd", rw::MetricKind::kCounter, "Cost\nin USD")}, &r)
          .ok());
  const auto before = Snapshot(*store_);
  const std::string text = Exposed(*store_);
  const std::string om = Exposed(*store_, ExpositionFormat::kOpenMetrics);
  ASSERT_NE(text.find("claude_cost_usd_total{device=\"a\"} 0.30000000000000004\n"),
            std::string::npos)
      << text;
  Open();
  const auto after = Snapshot(*store_);
  ASSERT_EQ(after.size(), before.size());
  for (const auto& [k, st] : before) {
    EXPECT_EQ(after.at(k).timestamp_ms, st.timestamp_ms);
    EXPECT_EQ(std::bit_cast<uint64_t>(after.at(k).value), std::bit_cast<uint64_t>(st.value));
  }
  EXPECT_EQ(Exposed(*store_), text);
  EXPECT_EQ(Exposed(*store_, ExpositionFormat::kOpenMetrics), om);
  // And dedup continues from the stored state.
  ASSERT_TRUE(
      store_
          ->Apply({S({{"__name__", "claude_cost_usd_total"}, {"device", "a"}}, {{1000, 7}})}, {},
                  &r)
          .ok());
  EXPECT_EQ(r.duplicates, 1u);
  EXPECT_EQ(store_->Stats().series, 3u);
  EXPECT_EQ(store_->Stats().families, 1u);
}

TEST_F(GatewayStoreTest, RefusesAStoreThatIsNotAGateways) {
  {
    std::unique_ptr<KvStore> kv;
    ASSERT_TRUE(OpenRocksStore(dir_.path() + "/db", {}, &kv).ok());
    WriteBatch b;
    b.Put("mcaught_up", "1");  // an agent's state dir
    ASSERT_TRUE(kv->Write(b, true).ok());
  }
  ASSERT_TRUE(OpenRocksStore(dir_.path() + "/db", {}, &kv_).ok());
  Status s = GatewayStore::Open(kv_.get(), &store_);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("not a ccmon-gateway"), std::string::npos);
  WriteBatch b;
  b.Put(kFormatKey, "9");
  ASSERT_TRUE(kv_->Write(b, true).ok());
  s = GatewayStore::Open(kv_.get(), &store_);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("version 9"), std::string::npos);
}

TEST_F(GatewayStoreTest, CorruptRecordsAreReportedNotServed) {
  Open();
  ApplyResult r;
  ASSERT_TRUE(store_->Apply({S({{"__name__", "m"}}, {{1, 1}})}, {}, &r).ok());
  WriteBatch b;
  b.Put(std::string(1, kSeriesKeyPrefix) + SeriesKey({{"__name__", "m"}}), "short");
  ASSERT_TRUE(kv_->Write(b, true).ok());
  std::unique_ptr<GatewayStore> again;
  EXPECT_EQ(GatewayStore::Open(kv_.get(), &again).code(), Status::Code::kCorruption);
}

TEST(GatewayStoreFaultTest, AFailedWriteAppliesNothingAndTheRetryStartsOver) {
  auto mem = NewMemStore();
  FaultStore fault(mem.get());
  std::unique_ptr<GatewayStore> store;
  ASSERT_TRUE(GatewayStore::Open(&fault, &store).ok());
  ApplyResult r;
  ASSERT_TRUE(store->Apply({S({{"__name__", "a_total"}}, {{1000, 1}})}, {}, &r).ok());
  EXPECT_GE(fault.sync_writes(), 2);  // the format key, then the request: both synced
  fault.set_keep_failed_writes(true);
  fault.FailNthWrite(1);
  const std::vector<IncomingSeries> req = {S({{"__name__", "a_total"}}, {{2000, 2}}),
                                           S({{"__name__", "b_total"}}, {{2000, 5}})};
  Status s = store->Apply(req, {Meta("a", rw::MetricKind::kCounter)}, &r);
  EXPECT_EQ(s.code(), Status::Code::kIoError);
  auto snap = Snapshot(*store);
  EXPECT_EQ(snap.size(), 1u);
  EXPECT_EQ(snap.at(SeriesKey({{"__name__", "a_total"}})).timestamp_ms, 1000);
  EXPECT_EQ(store->Stats().families, 0u);
  // The retry applies the whole request.
  ASSERT_TRUE(store->Apply(req, {Meta("a", rw::MetricKind::kCounter)}, &r).ok());
  EXPECT_EQ(r.accepted, 2u);
  EXPECT_EQ(r.duplicates, 0u);
  // Had the failed batch reached the disk after all (seen after a restart), it is there whole,
  // and the same retry is all duplicates.
  auto mem2 = NewMemStore();
  FaultStore fault2(mem2.get());
  fault2.set_keep_failed_writes(true);
  std::unique_ptr<GatewayStore> s2;
  ASSERT_TRUE(GatewayStore::Open(&fault2, &s2).ok());
  fault2.FailNthWrite(1);
  EXPECT_FALSE(s2->Apply(req, {}, &r).ok());
  fault2.LandFailedWrites();
  ASSERT_TRUE(GatewayStore::Open(&fault2, &s2).ok());
  EXPECT_EQ(Snapshot(*s2).size(), 2u);
  ASSERT_TRUE(s2->Apply(req, {}, &r).ok());
  EXPECT_EQ(r.accepted, 0u);
  EXPECT_EQ(r.duplicates, 2u);
}

TEST(GatewayStoreFaultTest, OpenReportsStoreErrors) {
  auto mem = NewMemStore();
  FaultStore fault(mem.get());
  fault.FailGets(true);
  std::unique_ptr<GatewayStore> store;
  EXPECT_EQ(GatewayStore::Open(&fault, &store).code(), Status::Code::kIoError);
  fault.ClearFaults();
  ASSERT_TRUE(GatewayStore::Open(&fault, &store).ok());
  ApplyResult r;
  ASSERT_TRUE(store->Apply({S({{"__name__", "m"}}, {{1, 1}})}, {}, &r).ok());
  fault.FailIterators(true, 0);
  EXPECT_FALSE(GatewayStore::Open(&fault, &store).ok());
}

TEST_F(GatewayStoreTest, ConcurrentAppliesAndReadsCountEverySampleOnce) {
  Open();
  constexpr int kThreads = 4, kRequests = 50;
  std::vector<std::thread> threads;
  std::atomic<uint64_t> accepted{0}, duplicates{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRequests; ++i) {
        // Every thread writes the shared series at the same timestamps: exactly one wins each.
        ApplyResult r;
        Status s = store_->Apply({S({{"__name__", "shared"}}, {{int64_t(i + 1) * 1000, double(i)}}),
                                  S({{"__name__", "own"}, {"t", std::to_string(t)}},
                                    {{int64_t(i + 1) * 1000, double(i)}})},
                                 {}, &r);
        ASSERT_TRUE(s.ok()) << s.message();
        accepted += r.accepted;
        duplicates += r.duplicates;
        (void)Exposed(*store_);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(accepted + duplicates, uint64_t(2 * kThreads * kRequests));
  // "own" series: all accepted. "shared": at most one per timestamp.
  EXPECT_LE(accepted.load(), uint64_t(kThreads * kRequests + kRequests));
  EXPECT_GE(accepted.load(), uint64_t(kThreads * kRequests + 1));
  EXPECT_EQ(Snapshot(*store_).size(), size_t(kThreads + 1));
  EXPECT_EQ(Snapshot(*store_).at(SeriesKey({{"__name__", "shared"}})).timestamp_ms,
            kRequests * 1000);
}

}  // namespace
}  // namespace ccmon::gateway
