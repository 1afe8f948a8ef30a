// Clock::Real (base/clock.h): interruptible waits.
#include "base/clock.h"

#include <gtest/gtest.h>
#include <sys/types.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <iterator>
#include <stop_token>
#include <string>
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

// Whether thread `tid` of this process is asleep (state S in /proc/self/task/TID/stat), polled
// until `deadline`.
bool ThreadSleepsBy(pid_t tid, std::chrono::steady_clock::time_point deadline) {
  const std::string path = "/proc/self/task/" + std::to_string(tid) + "/stat";
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream in(path);
    const std::string stat{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    const size_t name_end = stat.rfind(')');  // "pid (name) S ..."
    if (name_end != std::string::npos && stat.size() > name_end + 2 && stat[name_end + 2] == 'S') {
      return true;
    }
    std::this_thread::yield();
  }
  return false;
}

// The stop comes while the waiter is blocked in the wait (its thread is seen asleep), not before
// the wait as it mostly does above: the wait must still say it was stopped.
TEST(RealClock, WaitForReturnsFalseWhenStoppedDuringTheWait) {
  Clock* clock = Clock::Real();
  std::stop_source stop;
  std::atomic<pid_t> tid{0};
  bool result = true;
  std::thread waiter([&] {
    tid = ::gettid();
    result = clock->WaitFor(std::chrono::hours(1), stop.get_token());
  });
  while (tid == 0) std::this_thread::yield();
  const bool asleep =
      ThreadSleepsBy(tid, std::chrono::steady_clock::now() + std::chrono::seconds(30));
  stop.request_stop();
  waiter.join();
  ASSERT_TRUE(asleep) << "the waiting thread never slept";
  EXPECT_FALSE(result);
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
