// RateLimiter: a token bucket per key (the gateway's device name), for the write path's 429s.
//
// Each key's bucket holds at most `burst` tokens and gains `rate_per_second` tokens per second of
// the injected Clock's monotonic time; a request takes one token. A key seen for the first time
// starts with a full bucket. When the bucket is empty the request is refused with the wait until
// one token is back, rounded UP to whole seconds and at least 1 s (Retry-After has a resolution
// of one second; a sender that waits that long is always admitted by a limiter with no other
// traffic on the key).
//
// Memory: one bucket per key. Keys are device names (bounded by the registry) and "" for
// anonymous writes; still, beyond kMaxTrackedKeys buckets the full ones (idle keys, which behave
// the same as a fresh bucket) are dropped, so hostile keys cannot grow the map without bound.
//
// Thread-safe: Admit may be called concurrently (one mutex; the critical section is a map lookup
// and a few floating-point operations).
#pragma once

#include <chrono>
#include <cstddef>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "base/clock.h"

namespace ccmon::gateway {

struct RateLimit {
  double rate_per_second = 0;  // > 0 to limit; 0 (or less): Admit always admits
  double burst = 0;            // bucket size, >= 1 when limiting; 0: 2 x rate_per_second (>= 1)
};

class RateLimiter {
 public:
  static constexpr size_t kMaxTrackedKeys = 100'000;

  // `clock` is borrowed (nullptr: Clock::Real()).
  RateLimiter(RateLimit limit, Clock* clock);

  bool enabled() const { return limit_.rate_per_second > 0; }
  double burst() const { return limit_.burst; }

  // Takes one token of `key`'s bucket: true when there was one. Otherwise false and
  // *retry_after (may be null) is the whole number of seconds (>= 1) until there is one again.
  bool Admit(std::string_view key, std::chrono::seconds* retry_after);

  size_t tracked_keys() const;

 private:
  struct Bucket {
    double tokens = 0;
    std::chrono::steady_clock::time_point updated;
  };
  // Refills `b` up to `now`.
  void Refill(Bucket* b, std::chrono::steady_clock::time_point now) const;
  void DropFullBucketsLocked(std::chrono::steady_clock::time_point now);

  RateLimit limit_;
  Clock* clock_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Bucket> buckets_;
};

}  // namespace ccmon::gateway
