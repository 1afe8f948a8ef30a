// Clock::Real (base/clock.h): interruptible waits.
#include "base/clock.h"

#include <gtest/gtest.h>

#include <chrono>
#include <stop_token>
#include <thread>

namespace ccmon {
namespace {

using std::chrono::milliseconds;

TEST(RealClock, WaitForReturnsTrueAfterTheWait) {
  Clock* clock = Clock::Real();
  std::stop_source never;
  const auto start = clock->Now();
  EXPECT_TRUE(clock->WaitFor(milliseconds(30), never.get_token()));
  EXPECT_GE(clock->Now() - start, milliseconds(30));
  EXPECT_TRUE(clock->WaitFor(milliseconds(0), never.get_token()));
  EXPECT_TRUE(clock->WaitFor(milliseconds(-5), never.get_token()));
}

TEST(RealClock, WaitForReturnsFalseAtOnceWhenStopWasRequested) {
  std::stop_source stop;
  stop.request_stop();
  const auto start = Clock::Real()->Now();
  EXPECT_FALSE(Clock::Real()->WaitFor(std::chrono::hours(1), stop.get_token()));
  EXPECT_LT(Clock::Real()->Now() - start, std::chrono::seconds(30));
}

TEST(RealClock, WaitForReturnsFalsePromptlyWhenStoppedFromAnotherThread) {
  Clock* clock = Clock::Real();
  std::stop_source stop;
  bool result = true;
  std::chrono::steady_clock::duration waited{};
  std::thread waiter([&] {
    const auto start = clock->Now();
    result = clock->WaitFor(std::chrono::hours(1), stop.get_token());
    waited = clock->Now() - start;
  });
  stop.request_stop();  // before or during the wait: either way it must end now
  waiter.join();
  EXPECT_FALSE(result);
  EXPECT_LT(waited, std::chrono::seconds(30));  // an hour if the stop were missed
}

TEST(RealClock, WallAndMonotonicTime) {
  Clock* clock = Clock::Real();
  const int64_t now = clock->NowUnixMs();
  EXPECT_GT(now, 1735689600000);  // after 2025-01-01
  const auto a = clock->Now();
  EXPECT_LE(a, clock->Now());
}

}  // namespace
}  // namespace ccmon
