#include "base/timezone.h"

#include <sys/stat.h>

#include <cstdlib>
#include <ctime>

#include "base/timeutil.h"

namespace ccmon {

Status LocalDays::Select(const std::string& zone, LocalDays* out) {
  LocalDays d;
  if (zone == "UTC" || zone == "Etc/UTC" || zone == "Z") {
    *out = d;
    return Status::Ok();
  }
  if (!zone.empty()) {
    struct stat st;
    std::string path = "/usr/share/zoneinfo/" + zone;
    if (zone.find("..") != std::string::npos || ::stat(path.c_str(), &st) != 0 ||
        !S_ISREG(st.st_mode)) {
      return Status::InvalidArgument("unknown time zone '" + zone +
                                     "' (expected an IANA name such as Europe/Helsinki)");
    }
    ::setenv("TZ", zone.c_str(), 1);
  }
  ::tzset();
  d.utc_ = false;
  d.name_ = zone.empty() ? "local" : zone;
  *out = std::move(d);
  return Status::Ok();
}

int64_t LocalDays::OffsetSeconds(int64_t t) {
  int64_t slot = FloorDiv(t, 900);
  auto it = offsets_.find(slot);
  if (it != offsets_.end()) return it->second;
  time_t tt = time_t(slot * 900);
  struct tm tm;
  ::localtime_r(&tt, &tm);
  int32_t off = int32_t(tm.tm_gmtoff);
  offsets_.emplace(slot, off);
  return off;
}

int64_t LocalDays::DayOf(int64_t ms) {
  int64_t s = FloorDiv(ms, 1000);
  if (utc_) return FloorDiv(s, 86400);
  return FloorDiv(s + OffsetSeconds(s), 86400);
}

int64_t LocalDays::StartOfDay(int64_t epoch_day) {
  int64_t local_midnight = epoch_day * 86400;
  if (utc_) return local_midnight * 1000;
  // Offset at (midnight - offset): iterate once for DST correctness.
  int64_t guess = local_midnight - OffsetSeconds(local_midnight);
  guess = local_midnight - OffsetSeconds(guess);
  return guess * 1000;
}

}  // namespace ccmon
