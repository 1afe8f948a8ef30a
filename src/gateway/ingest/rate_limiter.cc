#include "gateway/ingest/rate_limiter.h"

#include <algorithm>
#include <cmath>

namespace ccmon::gateway {

RateLimiter::RateLimiter(RateLimit limit, Clock* clock)
    : limit_(limit), clock_(clock != nullptr ? clock : Clock::Real()) {
  if (limit_.rate_per_second > 0 && limit_.burst <= 0) {
    limit_.burst = std::max(1.0, 2 * limit_.rate_per_second);
  }
  if (limit_.rate_per_second > 0) limit_.burst = std::max(1.0, limit_.burst);
}

void RateLimiter::Refill(Bucket* b, std::chrono::steady_clock::time_point now) const {
  if (now <= b->updated) return;  // a clock that does not move forward adds nothing
  const double elapsed_s = std::chrono::duration<double>(now - b->updated).count();
  b->tokens = std::min(limit_.burst, b->tokens + elapsed_s * limit_.rate_per_second);
  b->updated = now;
}

void RateLimiter::DropFullBucketsLocked(std::chrono::steady_clock::time_point now) {
  for (auto it = buckets_.begin(); it != buckets_.end();) {
    Refill(&it->second, now);
    if (it->second.tokens >= limit_.burst) {
      it = buckets_.erase(it);
    } else {
      ++it;
    }
  }
}

bool RateLimiter::Admit(std::string_view key, std::chrono::seconds* retry_after) {
  if (!enabled()) return true;
  const auto now = clock_->Now();
  std::lock_guard<std::mutex> lock(mu_);
  auto it = buckets_.find(std::string(key));
  if (it == buckets_.end()) {
    if (buckets_.size() >= kMaxTrackedKeys) DropFullBucketsLocked(now);
    it = buckets_.emplace(std::string(key), Bucket{limit_.burst, now}).first;
  }
  Bucket& b = it->second;
  Refill(&b, now);
  if (b.tokens >= 1 - 1e-9) {  // the epsilon: a sender that waited Retry-After gets in
    b.tokens = std::max(0.0, b.tokens - 1);
    return true;
  }
  if (retry_after != nullptr) {
    const double wait_s = (1 - b.tokens) / limit_.rate_per_second;
    *retry_after = std::chrono::seconds(std::max<int64_t>(1, int64_t(std::ceil(wait_s))));
  }
  return false;
}

size_t RateLimiter::tracked_keys() const {
  std::lock_guard<std::mutex> lock(mu_);
  return buckets_.size();
}

}  // namespace ccmon::gateway
