// Local calendar days in an IANA time zone (for reports).
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>

#include "base/status.h"

namespace ccmon {

// Maps instants to local epoch days in one zone. Uses the C library's zone database via the
// process-wide TZ variable, so Select() must be called before other threads use local time.
// DayOf() caches the UTC offset per 15-minute slot (every real zone transition falls on one).
// Not thread-safe.
class LocalDays {
 public:
  // "" means the process's zone (TZ or /etc/localtime); "UTC" is special-cased.
  static Status Select(const std::string& zone, LocalDays* out);
  int64_t DayOf(int64_t epoch_ms);
  // The instant at which a local day starts (for --since/--until).
  int64_t StartOfDay(int64_t epoch_day);
  const std::string& name() const { return name_; }

 private:
  int64_t OffsetSeconds(int64_t epoch_seconds);
  bool utc_ = true;
  std::string name_ = "UTC";
  std::unordered_map<int64_t, int32_t> offsets_;  // 15-minute slot -> UTC offset (s)
};

}  // namespace ccmon
