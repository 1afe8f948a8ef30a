// SpendWindows' UTC calendar buckets (the status page's today / this month; docs/store-format.md
// "Gateway", `U` records): attribution by the sample's UTC day across a month boundary,
// duplicates and resets, a failed write, retention (62 days; deleted at the device's next write
// and at Open), the key codec, and a restart on the real RocksDB store serving the same.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>

#include "gateway/computed/computed.h"
#include "gateway/store/series_store.h"
#include "store/mem_store.h"
#include "store/rocks_store.h"
#include "testing/fake_clock.h"
#include "testing/fault_store.h"
#include "testing/temp_dir.h"

namespace ccmon::gateway {
namespace {

using std::chrono::milliseconds;

constexpr int64_t kDay = 86'400'000;
// 2026-02-03T12:00:00Z; Feb 1 is 2 days 12 h before, Jan 31 23:59 just before that.
constexpr int64_t kNow = 1770120000000;
constexpr int64_t kFeb1 = kNow - 2 * kDay - 12 * 3'600'000;
constexpr PicoSum kUsd = kPicoPerUsd;

IncomingSeries Cost(std::string device, std::vector<rw::Sample> samples, std::string model = "m") {
  IncomingSeries s;
  s.labels = {{"__name__", "claude_cost_usd_total"}, {"device", device}, {"model", model}};
  s.samples = std::move(samples);
  return s;
}

struct Spend {
  PicoSum today = -1, month = -1;
};

class CalendarSpendTest : public ::testing::Test {
 protected:
  void Open(KvStore* kv) {
    store_.reset();
    computed_.reset();
    ComputedOptions o;
    o.clock = &clock_;
    ASSERT_TRUE(GatewayComputed::Open(kv, o, &computed_).ok());
    ASSERT_TRUE(GatewayStore::Open(kv, &store_).ok());
    store_->set_apply_listener(computed_->apply_listener());
  }
  Status Apply(std::vector<IncomingSeries> series) {
    ApplyResult r;
    return store_->Apply(series, {}, &r);
  }
  Spend Of(std::string_view device) {
    for (const DeviceCalendarSpend& s : computed_->spend().CalendarSpendAt(clock_.NowUnixMs())) {
      if (s.device == device) return {s.utc_today, s.utc_month};
    }
    return {};
  }
  size_t DayRecords(KvStore* kv) {
    size_t n = 0;
    auto it = kv->NewIterator();
    for (it->Seek(std::string(1, kDaySpendKeyPrefix));
         it->Valid() && it->key()[0] == kDaySpendKeyPrefix; it->Next()) {
      ++n;
    }
    return n;
  }

  testing_util::FakeClock clock_{kNow};
  std::unique_ptr<GatewayComputed> computed_;
  std::unique_ptr<GatewayStore> store_;
};

TEST_F(CalendarSpendTest, KeyCodec) {
  const std::string k = SpendWindows::DayBucketKey("dev", 20487);
  EXPECT_EQ(k[0], 'U');
  std::string device;
  int64_t day = 0;
  ASSERT_TRUE(SpendWindows::DecodeDayBucketKey(k, &device, &day).ok());
  EXPECT_EQ(device, "dev");
  EXPECT_EQ(day, 20487);
  EXPECT_FALSE(SpendWindows::DecodeDayBucketKey(k.substr(0, k.size() - 1), &device, &day).ok());
  EXPECT_FALSE(SpendWindows::DecodeDayBucketKey(k + "x", &device, &day).ok());
  EXPECT_FALSE(SpendWindows::DecodeDayBucketKey("T" + k.substr(1), &device, &day).ok());
  // Keys of one device sort by day (big-endian), so a month is one range.
  EXPECT_LT(SpendWindows::DayBucketKey("dev", 255), SpendWindows::DayBucketKey("dev", 256));
}

TEST_F(CalendarSpendTest, TodayAndMonthByTheSamplesUtcDay) {
  auto kv = NewMemStore();
  Open(kv.get());
  // $1 on Jan 31 at 23:59:59.999 (last month), $2 more at Feb 1 00:00:00.000, $4 more on
  // Feb 2, $8 more today at 00:00, $16 more now.
  ASSERT_TRUE(Apply({Cost("a", {{kFeb1 - 1, 1.0},
                                {kFeb1, 3.0},
                                {kFeb1 + kDay, 7.0},
                                {kFeb1 + 2 * kDay, 15.0},
                                {kNow, 31.0}})})
                  .ok());
  Spend s = Of("a");
  EXPECT_TRUE(s.today == 24 * kUsd);
  EXPECT_TRUE(s.month == 30 * kUsd);
  // A retried request brings nothing; a reset brings its whole value; another series adds.
  ASSERT_TRUE(Apply({Cost("a", {{kFeb1, 3.0}, {kNow, 31.0}})}).ok());
  ASSERT_TRUE(Apply({Cost("a", {{kNow + 1, 0.5}}), Cost("a", {{kNow, 0.25}}, "n")}).ok());
  s = Of("a");
  EXPECT_TRUE(s.today == 24 * kUsd + kUsd * 3 / 4);
  EXPECT_TRUE(s.month == 30 * kUsd + kUsd * 3 / 4);
  // At midnight, today starts over; the month goes on.
  clock_.AdvanceBy(milliseconds(12 * 3'600'000));
  s = Of("a");
  EXPECT_TRUE(s.today == 0);
  EXPECT_TRUE(s.month == 30 * kUsd + kUsd * 3 / 4);
  // A device without a day bucket is not listed.
  EXPECT_TRUE(Of("b").month == -1);
}

TEST_F(CalendarSpendTest, MonthStartsOnTheFirstWhateverItsLength) {
  auto kv = NewMemStore();
  // 2024-03-01T00:00:00Z (after a leap day): Feb 29 is last month.
  const int64_t mar1 = 1709251200000;
  clock_.AdvanceBy(milliseconds(mar1 + 3'600'000 - kNow));
  Open(kv.get());
  ASSERT_TRUE(Apply({Cost("a", {{mar1 - 1, 1.0}, {mar1, 3.0}})}).ok());
  EXPECT_TRUE(Of("a").month == 2 * kUsd);
  EXPECT_TRUE(Of("a").today == 2 * kUsd);
}

TEST_F(CalendarSpendTest, AFailedWriteCountsNothing) {
  auto base = NewMemStore();
  testing_util::FaultStore kv(base.get());
  Open(&kv);
  ASSERT_TRUE(Apply({Cost("a", {{kNow - 10, 1.0}})}).ok());
  kv.FailNthWrite(1);
  EXPECT_FALSE(Apply({Cost("a", {{kNow, 5.0}})}).ok());
  EXPECT_TRUE(Of("a").today == kUsd);
  ASSERT_TRUE(Apply({Cost("a", {{kNow, 5.0}})}).ok());
  EXPECT_TRUE(Of("a").today == 5 * kUsd) << "the retry counts once";
}

TEST_F(CalendarSpendTest, RetentionDeletesOldDays) {
  auto kv = NewMemStore();
  Open(kv.get());
  // 61 days ago is kept, 62 days ago is not even written.
  ASSERT_TRUE(
      Apply({Cost("a", {{kNow - 62 * kDay - 1, 1.0}}), Cost("a", {{kNow - 61 * kDay, 1.0}}, "x")})
          .ok());
  EXPECT_EQ(DayRecords(kv.get()), 1u);
  // A day later that bucket left the retention: deleted with the device's next write.
  clock_.AdvanceBy(milliseconds(kDay));
  ASSERT_TRUE(Apply({Cost("a", {{kNow + kDay, 2.0}}, "x")}).ok());
  EXPECT_EQ(DayRecords(kv.get()), 1u);
  EXPECT_TRUE(Of("a").today == kUsd);
  // And at Open.
  clock_.AdvanceBy(milliseconds(62 * kDay));
  Open(kv.get());
  EXPECT_EQ(DayRecords(kv.get()), 0u);
  EXPECT_TRUE(Of("a").month == -1);
}

TEST_F(CalendarSpendTest, RestartOnRocksDbServesTheSame) {
  testing_util::TempDir dir;
  {
    std::unique_ptr<KvStore> kv;
    ASSERT_TRUE(OpenRocksStore(dir.path(), RocksStoreOptions{}, &kv).ok());
    Open(kv.get());
    ASSERT_TRUE(Apply({Cost("a", {{kFeb1 - 1, 0.5}, {kFeb1 + 1, 0.75}, {kNow, 1.125}}),
                       Cost("b<&>", {{kNow - 1, 1e-12}})})
                    .ok());
    EXPECT_TRUE(Of("a").month == kUsd * 5 / 8);
    store_.reset();
    computed_.reset();
  }
  std::unique_ptr<KvStore> kv;
  ASSERT_TRUE(OpenRocksStore(dir.path(), RocksStoreOptions{}, &kv).ok());
  Open(kv.get());
  EXPECT_TRUE(Of("a").today == kUsd * 3 / 8);
  EXPECT_TRUE(Of("a").month == kUsd * 5 / 8);
  EXPECT_TRUE(Of("b<&>").today == 1);
  store_.reset();
  computed_.reset();
}

}  // namespace
}  // namespace ccmon::gateway
