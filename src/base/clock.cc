#include "base/clock.h"

#include <condition_variable>
#include <mutex>

namespace ccmon {
namespace {

class RealClock final : public Clock {
 public:
  int64_t NowUnixMs() override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  std::chrono::steady_clock::time_point Now() override { return std::chrono::steady_clock::now(); }
  bool WaitFor(std::chrono::milliseconds d, const std::stop_token& stop) override {
    if (stop.stop_requested()) return false;
    if (d.count() <= 0) return true;
    std::mutex mu;
    std::condition_variable_any cv;
    std::unique_lock<std::mutex> lock(mu);
    // wait_for returns the predicate, false here, both when the time is up and when a stop ends
    // the wait early: the token tells which.
    cv.wait_for(lock, stop, d, [] { return false; });
    return !stop.stop_requested();
  }
};

}  // namespace

Clock* Clock::Real() {
  static Clock* clock = new RealClock;
  return clock;
}

}  // namespace ccmon
