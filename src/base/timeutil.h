// Time helpers: ISO-8601 parsing and civil dates (UTC epoch milliseconds throughout).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace ccmon {

// Parses "2025-09-28T06:17:23.678Z" (any number of fraction digits, 'Z' or ±hh:mm) into epoch ms.
bool ParseIso8601Ms(std::string_view s, int64_t* out_ms);
// Days since 1970-01-01 for a proleptic Gregorian date, and back.
int64_t DaysFromCivil(int y, unsigned m, unsigned d);
void CivilFromDays(int64_t z, int* y, unsigned* m, unsigned* d);
// "YYYY-MM-DD" of an epoch day (a year after 9999 with more digits, one before 1 BC as "-0001").
std::string FormatDay(int64_t epoch_day);
// "2026-11-26T21:30:46Z": RFC 3339 in UTC, whole seconds (the milliseconds truncated towards
// the past, also before 1970).
std::string FormatUtcSeconds(int64_t unix_ms);
// Parses "YYYY-MM-DD" or "YYYYMMDD" into an epoch day.
bool ParseDay(std::string_view s, int64_t* epoch_day);
// floor division for negative-safe bucketing
inline int64_t FloorDiv(int64_t a, int64_t b) {
  return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

}  // namespace ccmon
