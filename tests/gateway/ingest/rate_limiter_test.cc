#include "gateway/ingest/rate_limiter.h"

#include <gtest/gtest.h>

#include "testing/fake_clock.h"

namespace ccmon::gateway {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing_util::FakeClock;

TEST(RateLimiterTest, DisabledAdmitsEverything) {
  FakeClock clock;
  RateLimiter limiter(RateLimit{}, &clock);
  EXPECT_FALSE(limiter.enabled());
  for (int i = 0; i < 10'000; ++i) ASSERT_TRUE(limiter.Admit("a", nullptr));
  EXPECT_EQ(limiter.tracked_keys(), 0u);
}

TEST(RateLimiterTest, BurstThenTheRateAndRetryAfterIsWholeSecondsAtLeastOne) {
  FakeClock clock;
  RateLimiter limiter(RateLimit{2, 0}, &clock);  // burst defaults to 2 x 2 = 4
  EXPECT_EQ(limiter.burst(), 4);
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(limiter.Admit("a", nullptr)) << i;
  seconds wait{0};
  EXPECT_FALSE(limiter.Admit("a", &wait));
  EXPECT_EQ(wait, seconds(1));  // 0.5 s until a token, rounded up
  clock.AdvanceBy(milliseconds(499));
  EXPECT_FALSE(limiter.Admit("a", &wait));
  EXPECT_EQ(wait, seconds(1));
  clock.AdvanceBy(milliseconds(1));
  EXPECT_TRUE(limiter.Admit("a", nullptr));  // one token after 0.5 s
  EXPECT_FALSE(limiter.Admit("a", nullptr));
  // A long pause refills to the burst, not beyond it.
  clock.AdvanceBy(seconds(3600));
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(limiter.Admit("a", nullptr)) << i;
  EXPECT_FALSE(limiter.Admit("a", nullptr));
}

TEST(RateLimiterTest, KeysHaveTheirOwnBuckets) {
  FakeClock clock;
  RateLimiter limiter(RateLimit{1, 1}, &clock);
  EXPECT_TRUE(limiter.Admit("a", nullptr));
  EXPECT_FALSE(limiter.Admit("a", nullptr));
  EXPECT_TRUE(limiter.Admit("b", nullptr));  // a's flood does not touch b
  EXPECT_TRUE(limiter.Admit("", nullptr));   // anonymous writes: their own bucket
  EXPECT_FALSE(limiter.Admit("b", nullptr));
}

TEST(RateLimiterTest, SlowRatesGiveLongRetryAfterAndWaitingItIsEnough) {
  FakeClock clock;
  RateLimiter limiter(RateLimit{0.1, 1}, &clock);  // one request per 10 s
  EXPECT_TRUE(limiter.Admit("a", nullptr));
  seconds wait{0};
  EXPECT_FALSE(limiter.Admit("a", &wait));
  EXPECT_EQ(wait, seconds(10));
  clock.AdvanceBy(milliseconds(2500));
  EXPECT_FALSE(limiter.Admit("a", &wait));
  EXPECT_EQ(wait, seconds(8));  // 7.5 s left, rounded up
  clock.AdvanceBy(wait);
  EXPECT_TRUE(limiter.Admit("a", nullptr));  // a sender that obeys Retry-After gets in
}

TEST(RateLimiterTest, RefusedRequestsDoNotDeepenTheDebt) {
  FakeClock clock;
  RateLimiter limiter(RateLimit{1, 1}, &clock);
  EXPECT_TRUE(limiter.Admit("a", nullptr));
  for (int i = 0; i < 1000; ++i) EXPECT_FALSE(limiter.Admit("a", nullptr));
  clock.AdvanceBy(seconds(1));
  EXPECT_TRUE(limiter.Admit("a", nullptr));  // hammering while limited costs nothing later
}

TEST(RateLimiterTest, ManyKeysAreBoundedByDroppingIdleBuckets) {
  FakeClock clock;
  RateLimiter limiter(RateLimit{1, 2}, &clock);
  for (size_t i = 0; i < RateLimiter::kMaxTrackedKeys; ++i) {
    ASSERT_TRUE(limiter.Admit("k" + std::to_string(i), nullptr));
  }
  EXPECT_EQ(limiter.tracked_keys(), RateLimiter::kMaxTrackedKeys);
  clock.AdvanceBy(seconds(5));  // every bucket full again: idle
  EXPECT_TRUE(limiter.Admit("new", nullptr));
  EXPECT_EQ(limiter.tracked_keys(), 1u);
}

}  // namespace
}  // namespace ccmon::gateway
