// Time zones and local calendar days (for reports), without the C library's process-wide TZ
// state: zone files (TZif, RFC 8536 versions 1 to 4) and POSIX TZ rule strings are read and
// evaluated here, through an Env.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/env.h"
#include "base/status.h"

namespace ccmon {

// A POSIX TZ rule ("EST5EDT,M3.2.0,M11.1.0", "<+0330>-3:30", "AEST-10AEDT,M10.1.0,M4.1.0/3"),
// as in $TZ and in the footer of a TZif file; offsets are seconds east of UTC.
struct PosixTzRule {
  // A day of the year: Jn (1..365, February 29 never counted), n (0..365, counted), or
  // Mm.w.d (day d (0 = Sunday) of week w (1..5, 5 = the last) of month m).
  struct Date {
    enum class Kind : uint8_t { kJulian1, kJulian0, kMonthWeekDay } kind = Kind::kMonthWeekDay;
    int day = 0, month = 0, week = 0;
  };
  std::string std_abbr, dst_abbr;
  int32_t std_offset = 0, dst_offset = 0;
  bool has_dst = false;
  Date start, end;  // DST starts and ends (local time of the rule then in force)
  int32_t start_time = 7200, end_time = 7200;  // seconds after local midnight; -167h..167h

  // Parses a whole rule. A DST name without dates takes the US rules (M3.2.0,M11.1.0), as glibc.
  static bool Parse(std::string_view text, PosixTzRule* out);
};

// One zone's UTC offsets over time. Immutable once loaded; const methods are thread-safe.
class TimeZone {
 public:
  // The offset in force over [begin, end) (Unix seconds; the limits of int64_t when unbounded).
  struct Period {
    int32_t utc_offset = 0;  // seconds east of UTC
    bool is_dst = false;
    int64_t begin = std::numeric_limits<int64_t>::min();
    int64_t end = std::numeric_limits<int64_t>::max();
  };

  // UTC.
  TimeZone() = default;

  // Finds and loads a zone:
  //  - "UTC", "Etc/UTC" and "Z": UTC.
  //  - "": the process's zone: $TZ if set (a leading ':' is dropped; empty means UTC), else
  //    /etc/localtime (UTC when absent).
  //  - a name: the file of that name below $TZDIR (default /usr/share/zoneinfo), or an absolute
  //    path to a TZif file; otherwise a POSIX TZ rule ("UTC0", "EST5EDT,M3.2.0,M11.1.0").
  // Unknown zones and unreadable or malformed zone files are kInvalidArgument errors that name
  // the zone. Variables and files are read through `env` (borrowed).
  static Status Load(Env* env, const std::string& zone, TimeZone* out);
  // Parses the content of a TZif file. Leap-second records are ignored (instants are POSIX time).
  static Status FromTzif(std::string_view data, TimeZone* out);
  static Status FromPosixRule(std::string_view rule, TimeZone* out);

  Period PeriodAt(int64_t unix_seconds) const;
  int32_t OffsetAt(int64_t unix_seconds) const { return PeriodAt(unix_seconds).utc_offset; }

 private:
  struct LocalType {
    int32_t utc_offset = 0;
    bool is_dst = false;
  };
  Period RulePeriodAt(int64_t t, int64_t not_before) const;

  std::vector<int64_t> transitions_;           // ascending
  std::vector<uint8_t> transition_types_;      // index into types_, one per transition
  std::vector<LocalType> types_{LocalType{}};  // types_[0]: before the first transition
  bool has_rule_ = false;                      // the footer rule (or the whole zone) applies
  PosixTzRule rule_;                           // after the last transition
};

// Maps instants to local epoch days in one zone. DayOf() caches the UTC offset per 15-minute
// slot, for slots that no transition cuts. Not thread-safe (the cache).
class LocalDays {
 public:
  // The zone as for TimeZone::Load; the name is "local" for "" (the process's zone).
  static Status Select(Env* env, const std::string& zone, LocalDays* out);
  static Status Select(const std::string& zone, LocalDays* out) {
    return Select(Env::Default(), zone, out);
  }
  int64_t DayOf(int64_t epoch_ms);
  // The first instant of a local day, in epoch ms (for --since/--until): the earliest instant
  // whose local day is `epoch_day` or later (a day that starts in a DST gap starts at the gap's
  // end).
  int64_t StartOfDay(int64_t epoch_day);
  const std::string& name() const { return name_; }
  const TimeZone& zone() const { return zone_; }

 private:
  int64_t OffsetSeconds(int64_t epoch_seconds);
  bool utc_ = true;
  std::string name_ = "UTC";
  TimeZone zone_;
  std::unordered_map<int64_t, int32_t> offsets_;  // 15-minute slot -> UTC offset (s)
};

}  // namespace ccmon
