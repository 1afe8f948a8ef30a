#include "base/timeutil.h"

#include <cstdio>

namespace ccmon {
namespace {

bool Digits(std::string_view s, size_t pos, size_t n, int* out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

int DaysInMonth(int y, int m) {
  static const int kDays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : kDays[m - 1];
}

// The year as ISO 8601 writes it: four digits or more, a year before 1 BC with its sign before
// the four digits ("-0001", as "%04d" would give "-001").
void AppendYear(char* buf, size_t size, int y) {
  std::snprintf(buf, size, y < 0 ? "-%04d" : "%04d", y < 0 ? -y : y);
}

}  // namespace

int64_t DaysFromCivil(int y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = unsigned(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + int64_t(doe) - 719468;
}

void CivilFromDays(int64_t z, int* y, unsigned* m, unsigned* d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = unsigned(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t yy = int64_t(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = int(yy + (*m <= 2));
}

std::string FormatUtcSeconds(int64_t unix_ms) {
  const int64_t secs = FloorDiv(unix_ms, 1000);
  const int64_t day = FloorDiv(secs, 86400);
  const int64_t sod = secs - day * 86400;
  int y = 0;
  unsigned m = 0, d = 0;
  CivilFromDays(day, &y, &m, &d);
  char year[16], buf[64];
  AppendYear(year, sizeof year, y);
  std::snprintf(buf, sizeof buf, "%s-%02u-%02uT%02d:%02d:%02dZ", year, m, d, int(sod / 3600),
                int(sod / 60 % 60), int(sod % 60));
  return buf;
}

std::string FormatDay(int64_t epoch_day) {
  int y;
  unsigned m, d;
  CivilFromDays(epoch_day, &y, &m, &d);
  char year[16], buf[32];
  AppendYear(year, sizeof year, y);
  std::snprintf(buf, sizeof buf, "%s-%02u-%02u", year, m, d);
  return buf;
}

bool ParseDay(std::string_view s, int64_t* epoch_day) {
  int y, m, d;
  if (s.size() == 10 && s[4] == '-' && s[7] == '-') {
    if (!Digits(s, 0, 4, &y) || !Digits(s, 5, 2, &m) || !Digits(s, 8, 2, &d)) return false;
  } else if (s.size() == 8) {
    if (!Digits(s, 0, 4, &y) || !Digits(s, 4, 2, &m) || !Digits(s, 6, 2, &d)) return false;
  } else {
    return false;
  }
  if (m < 1 || m > 12 || d < 1 || d > DaysInMonth(y, m)) return false;
  *epoch_day = DaysFromCivil(y, unsigned(m), unsigned(d));
  return true;
}

bool ParseIso8601Ms(std::string_view s, int64_t* out_ms) {
  int y, mo, d, h, mi, sec;
  if (s.size() < 19 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != ' ') ||
      s[13] != ':' || s[16] != ':')
    return false;
  if (!Digits(s, 0, 4, &y) || !Digits(s, 5, 2, &mo) || !Digits(s, 8, 2, &d) ||
      !Digits(s, 11, 2, &h) || !Digits(s, 14, 2, &mi) || !Digits(s, 17, 2, &sec))
    return false;
  if (mo < 1 || mo > 12 || d < 1 || d > DaysInMonth(y, mo) || h > 23 || mi > 59 || sec > 60)
    return false;
  size_t i = 19;
  int ms = 0;
  if (i < s.size() && s[i] == '.') {
    ++i;
    int n = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      if (n < 3) ms = ms * 10 + (s[i] - '0');
      ++n;
      ++i;
    }
    if (n == 0) return false;
    for (int k = n; k < 3; ++k) ms *= 10;
  }
  int64_t offset_min = 0;
  if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) {
    ++i;
  } else if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    // RFC 3339 time-numoffset (hours 00-23, minutes 00-59), or ISO 8601's basic +hhmm.
    int oh, om;
    bool neg = s[i] == '-';
    if (!Digits(s, i + 1, 2, &oh)) return false;
    size_t j = i + 3;
    if (j < s.size() && s[j] == ':') ++j;
    if (!Digits(s, j, 2, &om)) return false;
    if (oh > 23 || om > 59) return false;
    i = j + 2;
    offset_min = (neg ? -1 : 1) * (oh * 60 + om);
  } else {
    return false;  // a timestamp without zone is ambiguous
  }
  if (i != s.size()) return false;
  int64_t days = DaysFromCivil(y, unsigned(mo), unsigned(d));
  *out_ms = ((days * 24 + h) * 60 + mi - offset_min) * 60000 + int64_t(sec) * 1000 + ms;
  return true;
}

}  // namespace ccmon
