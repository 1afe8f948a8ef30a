// FakeClock: a ccmon::Clock that tests drive. WaitFor() does not block: it records the wait,
// advances both clocks by it and returns true, unless the stop token is (or, through the
// on_wait hook, becomes) requested, when it returns false without advancing. Thread-safe, so
// a test may read it while another thread waits on it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <stop_token>
#include <utility>
#include <vector>

#include "base/clock.h"

namespace ccmon {
namespace testing_util {

class FakeClock : public Clock {
 public:
  // Starts at 2026-01-01T00:00:00Z on the wall clock and at an arbitrary steady time.
  explicit FakeClock(int64_t unix_ms = 1767225600000) : unix_ms_(unix_ms) {}

  int64_t NowUnixMs() override {
    std::lock_guard<std::mutex> lock(mu_);
    return unix_ms_;
  }
  std::chrono::steady_clock::time_point Now() override {
    std::lock_guard<std::mutex> lock(mu_);
    return steady_;
  }
  bool WaitFor(std::chrono::milliseconds d, const std::stop_token& stop) override {
    std::function<void(std::chrono::milliseconds)> hook;
    {
      std::lock_guard<std::mutex> lock(mu_);
      hook = on_wait_;
    }
    if (hook) hook(d);  // outside the lock: the hook may read the clock or request a stop
    std::lock_guard<std::mutex> lock(mu_);
    if (stop.stop_requested()) {
      ++stopped_waits_;
      return false;
    }
    waits_.push_back(d);
    Advance(d);
    return true;
  }

  // Moves both clocks forward (time passing outside any wait).
  void AdvanceBy(std::chrono::milliseconds d) {
    std::lock_guard<std::mutex> lock(mu_);
    Advance(d);
  }
  // Called at the start of every WaitFor with its duration (e.g. to request a stop there).
  void set_on_wait(std::function<void(std::chrono::milliseconds)> hook) {
    std::lock_guard<std::mutex> lock(mu_);
    on_wait_ = std::move(hook);
  }
  // The completed waits, in order.
  std::vector<std::chrono::milliseconds> waits() const {
    std::lock_guard<std::mutex> lock(mu_);
    return waits_;
  }
  std::chrono::milliseconds total_waited() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::chrono::milliseconds sum{0};
    for (auto d : waits_) sum += d;
    return sum;
  }
  int stopped_waits() const {
    std::lock_guard<std::mutex> lock(mu_);
    return stopped_waits_;
  }

 private:
  void Advance(std::chrono::milliseconds d) {
    steady_ += d;
    unix_ms_ += d.count();
  }

  mutable std::mutex mu_;
  int64_t unix_ms_;
  std::chrono::steady_clock::time_point steady_{std::chrono::hours(1000)};
  std::vector<std::chrono::milliseconds> waits_;
  int stopped_waits_ = 0;
  std::function<void(std::chrono::milliseconds)> on_wait_;
};

}  // namespace testing_util
}  // namespace ccmon
