#include "http/retry_after.h"

#include <string>

#include "base/timeutil.h"

namespace ccmon {
namespace {

constexpr std::string_view kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
constexpr std::string_view kShortDays[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
constexpr std::string_view kLongDays[] = {"Monday", "Tuesday",  "Wednesday", "Thursday",
                                          "Friday", "Saturday", "Sunday"};

// A cursor over the text: each step consumes what it matches or fails.
class Cursor {
 public:
  explicit Cursor(std::string_view s) : s_(s) {}
  bool Literal(std::string_view lit) {
    if (s_.substr(0, lit.size()) != lit) return false;
    s_.remove_prefix(lit.size());
    return true;
  }
  // Exactly `n` digits.
  bool Digits(int n, int* out) {
    if (s_.size() < size_t(n)) return false;
    int v = 0;
    for (int i = 0; i < n; ++i) {
      if (s_[i] < '0' || s_[i] > '9') return false;
      v = v * 10 + (s_[i] - '0');
    }
    s_.remove_prefix(n);
    *out = v;
    return true;
  }
  template <size_t N>
  bool OneOf(const std::string_view (&names)[N], int* index) {
    for (size_t i = 0; i < N; ++i) {
      if (Literal(names[i])) {
        *index = int(i);
        return true;
      }
    }
    return false;
  }
  bool Done() const { return s_.empty(); }

 private:
  std::string_view s_;
};

bool TimeOfDay(Cursor& c, int* h, int* m, int* s) {
  return c.Digits(2, h) && c.Literal(":") && c.Digits(2, m) && c.Literal(":") && c.Digits(2, s) &&
         *h <= 23 && *m <= 59 && *s <= 60;  // 60: a leap second, as IMF allows
}

bool ValidDate(int year, int month, int day) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month < 1 || month > 12 || day < 1) return false;
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return day <= kDays[month - 1] + (month == 2 && leap ? 1 : 0);
}

int64_t ToUnixSeconds(int year, int month, int day, int h, int m, int s) {
  return DaysFromCivil(year, unsigned(month), unsigned(day)) * 86400 + h * 3600 + m * 60 + s;
}

std::string_view TrimOws(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

}  // namespace

bool ParseHttpDate(std::string_view text, int64_t now_unix_ms, int64_t* unix_seconds) {
  int wday, day, month, year, h, m, s;
  {  // IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
    Cursor c(text);
    if (c.OneOf(kShortDays, &wday) && c.Literal(", ") && c.Digits(2, &day) && c.Literal(" ") &&
        c.OneOf(kMonths, &month) && c.Literal(" ") && c.Digits(4, &year) && c.Literal(" ") &&
        TimeOfDay(c, &h, &m, &s) && c.Literal(" GMT") && c.Done() &&
        ValidDate(year, month + 1, day)) {
      *unix_seconds = ToUnixSeconds(year, month + 1, day, h, m, s);
      return true;
    }
  }
  {  // RFC 850: Sunday, 06-Nov-94 08:49:37 GMT
    Cursor c(text);
    int yy;
    if (c.OneOf(kLongDays, &wday) && c.Literal(", ") && c.Digits(2, &day) && c.Literal("-") &&
        c.OneOf(kMonths, &month) && c.Literal("-") && c.Digits(2, &yy) && c.Literal(" ") &&
        TimeOfDay(c, &h, &m, &s) && c.Literal(" GMT") && c.Done()) {
      // RFC 9110: a two-digit year more than 50 years in the future is in the past century.
      int now_year;
      unsigned now_month, now_day;
      CivilFromDays(FloorDiv(now_unix_ms, 86400000), &now_year, &now_month, &now_day);
      year = now_year - now_year % 100 + yy;
      if (year > now_year + 50) year -= 100;
      if (ValidDate(year, month + 1, day)) {
        *unix_seconds = ToUnixSeconds(year, month + 1, day, h, m, s);
        return true;
      }
    }
  }
  {  // asctime: Sun Nov  6 08:49:37 1994 (the day is space-padded to two characters)
    Cursor c(text);
    int d1;
    if (c.OneOf(kShortDays, &wday) && c.Literal(" ") && c.OneOf(kMonths, &month) &&
        c.Literal(" ") && (c.Literal(" ") ? c.Digits(1, &d1) : c.Digits(2, &d1)) &&
        c.Literal(" ") && TimeOfDay(c, &h, &m, &s) && c.Literal(" ") && c.Digits(4, &year) &&
        c.Done() && ValidDate(year, month + 1, d1)) {
      *unix_seconds = ToUnixSeconds(year, month + 1, d1, h, m, s);
      return true;
    }
  }
  return false;
}

bool ParseRetryAfter(std::string_view value, int64_t now_unix_ms,
                     std::chrono::milliseconds* delay) {
  value = TrimOws(value);
  if (value.empty()) return false;
  bool all_digits = true;
  for (char c : value) all_digits = all_digits && c >= '0' && c <= '9';
  if (all_digits) {
    constexpr int64_t kMaxSeconds = int64_t(1) << 31;  // ~68 years: saturate, never overflow
    int64_t seconds = 0;
    for (char c : value) {
      seconds = seconds * 10 + (c - '0');
      if (seconds > kMaxSeconds) {
        seconds = kMaxSeconds;
        break;
      }
    }
    *delay = std::chrono::seconds(seconds);
    return true;
  }
  int64_t at;
  if (!ParseHttpDate(value, now_unix_ms, &at)) return false;
  *delay = std::chrono::milliseconds(at * 1000 - now_unix_ms);
  return true;
}

}  // namespace ccmon
