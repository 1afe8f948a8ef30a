// Clock: wall time, monotonic time and interruptible waits, injected wherever ccmon waits or
// stamps (senders' backoff, the agent's timers), so that tests drive time instead of sleeping
// (tests/testing/fake_clock.h). Clock::Real() is process-wide and thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <stop_token>

namespace ccmon {

class Clock {
 public:
  virtual ~Clock() = default;
  static Clock* Real();

  // Milliseconds since the Unix epoch (may jump: event stamps only).
  virtual int64_t NowUnixMs() = 0;
  // Monotonic time (timeouts, backoff, deadlines).
  virtual std::chrono::steady_clock::time_point Now() = 0;
  // Waits `d`, or less when `stop` is requested: returns false in that case, at once if it was
  // already requested.
  virtual bool WaitFor(std::chrono::milliseconds d, const std::stop_token& stop) = 0;
};

}  // namespace ccmon
