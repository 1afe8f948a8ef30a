#include "gateway/ingest/batch_identity.h"

#include <gtest/gtest.h>

namespace ccmon::gateway {
namespace {

TEST(BatchIdentityTest, ParsesTheAgentsHeaders) {
  BatchIdentity id;
  ASSERT_TRUE(
      ParseBatchIdentity("0123456789abcdef", "fedcba9876543210/7/12-18446744073709551615", &id));
  EXPECT_EQ(id.stream, "0123456789abcdef");
  EXPECT_EQ(id.run, "fedcba9876543210");
  EXPECT_EQ(id.shard, 7u);
  EXPECT_EQ(id.first, 12u);
  EXPECT_EQ(id.last, 18446744073709551615ull);
  ASSERT_TRUE(ParseBatchIdentity("0123456789abcdef", "fedcba9876543210/0/0-0", &id));
  EXPECT_EQ(id.shard, 0u);
  EXPECT_EQ(id.last, 0u);
}

TEST(BatchIdentityTest, AnythingMalformedIsNoIdentity) {
  const std::string s = "0123456789abcdef", r = "fedcba9876543210";
  BatchIdentity id;
  for (const auto& [stream, batch] : std::vector<std::pair<std::string, std::string>>{
           {"", r + "/0/1-2"},
           {s, ""},
           {"0123456789ABCDEF", r + "/0/1-2"},  // uppercase
           {s.substr(1), r + "/0/1-2"},
           {s + "0", r + "/0/1-2"},
           {s, r.substr(1) + "/0/1-2"},
           {s, r + "/256/1-2"},  // shards are 0..255
           {s, r + "/-1/1-2"},
           {s, r + "/0/2-1"},  // first > last
           {s, r + "/0/01-2"},
           {s, r + "/0/1-18446744073709551616"},  // overflow
           {s, r + "/0/1-2/3"},
           {s, r + "/0/1"},
           {s, r + "/0/-2"},
           {s, r + "/0/1-"},
           {s, r + "/ 0/1-2"},
           {s, r + "/0/1-2 "},
           {s, r + "/x/1-2"},
           {s, r}}) {
    EXPECT_FALSE(ParseBatchIdentity(stream, batch, &id)) << stream << " " << batch;
  }
}

TEST(BatchHighWaterTest, MarksPerDeviceRunAndShard) {
  BatchHighWater hw;
  BatchIdentity a{"0000000000000001", "000000000000000a", 0, 1, 5};
  EXPECT_FALSE(hw.AlreadyApplied("d", a));
  hw.Applied("d", a);
  EXPECT_TRUE(hw.AlreadyApplied("d", a));
  EXPECT_FALSE(hw.AlreadyApplied("e", a));  // another device
  BatchIdentity later = a;
  later.first = 6;
  later.last = 6;
  EXPECT_FALSE(hw.AlreadyApplied("d", later));
  BatchIdentity older = a;
  older.last = 2;
  EXPECT_TRUE(hw.AlreadyApplied("d", older));
  BatchIdentity other_shard = a;
  other_shard.shard = 1;
  EXPECT_FALSE(hw.AlreadyApplied("d", other_shard));
  // A lower LAST never lowers the mark.
  hw.Applied("d", older);
  EXPECT_TRUE(hw.AlreadyApplied("d", a));
  // Another run or stream replaces the device's marks.
  BatchIdentity next_run = a;
  next_run.run = "000000000000000b";
  EXPECT_FALSE(hw.AlreadyApplied("d", next_run));
  hw.Applied("d", next_run);
  EXPECT_FALSE(hw.AlreadyApplied("d", a));
  BatchIdentity next_stream = next_run;
  next_stream.stream = "0000000000000002";
  EXPECT_FALSE(hw.AlreadyApplied("d", next_stream));
  EXPECT_EQ(hw.devices(), 1u);
}

}  // namespace
}  // namespace ccmon::gateway
