#include "base/timezone.h"

#include <algorithm>
#include <array>
#include <optional>

#include "base/timeutil.h"

namespace ccmon {
namespace {

constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr size_t kMaxZoneFileBytes = size_t(4) << 20;  // real ones are a few kB
constexpr const char* kDefaultTzDir = "/usr/share/zoneinfo";

bool IsUtcName(const std::string& zone) {
  return zone == "UTC" || zone == "Etc/UTC" || zone == "Z";
}

// --- POSIX TZ rules

bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// An abbreviation: three or more letters, or <...> with letters, digits, '+' and '-'.
bool ParseAbbr(std::string_view s, size_t* pos, std::string* out) {
  if (*pos < s.size() && s[*pos] == '<') {
    size_t close = s.find('>', *pos + 1);
    if (close == std::string_view::npos) return false;
    std::string_view a = s.substr(*pos + 1, close - *pos - 1);
    if (a.size() < 3) return false;
    for (char c : a) {
      if (!IsAlpha(c) && !IsDigit(c) && c != '+' && c != '-') return false;
    }
    *out = std::string(a);
    *pos = close + 1;
    return true;
  }
  size_t b = *pos;
  while (*pos < s.size() && IsAlpha(s[*pos])) ++*pos;
  if (*pos - b < 3) return false;
  *out = std::string(s.substr(b, *pos - b));
  return true;
}

bool ParseNumber(std::string_view s, size_t* pos, int max_digits, int max_value, int* out) {
  int v = 0, digits = 0;
  while (*pos < s.size() && IsDigit(s[*pos]) && digits < max_digits) {
    v = v * 10 + (s[*pos] - '0');
    ++*pos;
    ++digits;
  }
  if (digits == 0 || v > max_value) return false;
  *out = v;
  return true;
}

// [+|-]hh[:mm[:ss]], in seconds.
bool ParseHms(std::string_view s, size_t* pos, int max_hours, int32_t* out) {
  int sign = 1;
  if (*pos < s.size() && (s[*pos] == '+' || s[*pos] == '-')) {
    sign = s[*pos] == '-' ? -1 : 1;
    ++*pos;
  }
  int h = 0, m = 0, sec = 0;
  if (!ParseNumber(s, pos, 3, max_hours, &h)) return false;
  if (*pos < s.size() && s[*pos] == ':') {
    ++*pos;
    if (!ParseNumber(s, pos, 2, 59, &m)) return false;
    if (*pos < s.size() && s[*pos] == ':') {
      ++*pos;
      if (!ParseNumber(s, pos, 2, 59, &sec)) return false;
    }
  }
  *out = int32_t(sign * (h * 3600 + m * 60 + sec));
  return true;
}

bool ParseDate(std::string_view s, size_t* pos, PosixTzRule::Date* out) {
  using Kind = PosixTzRule::Date::Kind;
  if (*pos >= s.size()) return false;
  if (s[*pos] == 'J') {
    ++*pos;
    out->kind = Kind::kJulian1;
    return ParseNumber(s, pos, 3, 365, &out->day) && out->day >= 1;
  }
  if (s[*pos] == 'M') {
    ++*pos;
    out->kind = Kind::kMonthWeekDay;
    if (!ParseNumber(s, pos, 2, 12, &out->month) || out->month < 1) return false;
    if (*pos >= s.size() || s[(*pos)++] != '.') return false;
    if (!ParseNumber(s, pos, 1, 5, &out->week) || out->week < 1) return false;
    if (*pos >= s.size() || s[(*pos)++] != '.') return false;
    return ParseNumber(s, pos, 1, 6, &out->day);
  }
  out->kind = Kind::kJulian0;
  return ParseNumber(s, pos, 3, 365, &out->day);
}

bool ParseDateAndTime(std::string_view s, size_t* pos, PosixTzRule::Date* date, int32_t* time) {
  if (!ParseDate(s, pos, date)) return false;
  *time = 7200;
  if (*pos < s.size() && s[*pos] == '/') {
    ++*pos;
    return ParseHms(s, pos, 167, time);  // RFC 8536 v3: -167..167 hours
  }
  return true;
}

bool IsLeap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

// 0 = Sunday; 1970-01-01 was a Thursday.
int Weekday(int64_t epoch_day) { return int(((epoch_day % 7) + 7 + 4) % 7); }

int64_t RuleDay(int year, const PosixTzRule::Date& d) {
  using Kind = PosixTzRule::Date::Kind;
  const int64_t jan1 = DaysFromCivil(year, 1, 1);
  switch (d.kind) {
    case Kind::kJulian1:
      return jan1 + d.day - 1 + (IsLeap(year) && d.day >= 60 ? 1 : 0);
    case Kind::kJulian0:
      return jan1 + d.day;
    case Kind::kMonthWeekDay:
      break;
  }
  const int64_t first = DaysFromCivil(year, unsigned(d.month), 1);
  const int64_t next_month =
      d.month == 12 ? DaysFromCivil(year + 1, 1, 1) : DaysFromCivil(year, unsigned(d.month + 1), 1);
  int64_t day = first + (d.day - Weekday(first) + 7) % 7 + int64_t(d.week - 1) * 7;
  while (day >= next_month) day -= 7;  // week 5: the last such day of the month
  return day;
}

// --- TZif (RFC 8536)

class TzifReader {
 public:
  explicit TzifReader(std::string_view data) : data_(data) {}
  bool Has(uint64_t n) const { return n <= data_.size() - pos_; }
  size_t pos() const { return pos_; }
  void Skip(size_t n) { pos_ += n; }
  uint8_t U8() { return uint8_t(data_[pos_++]); }
  uint32_t U32() {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = (v << 8) | U8();
    return v;
  }
  int64_t I64() {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | U8();
    return int64_t(v);
  }
  std::string_view Rest() const { return data_.substr(pos_); }

 private:
  std::string_view data_;
  size_t pos_ = 0;
};

struct TzifHeader {
  char version = 0;
  uint32_t isutcnt = 0, isstdcnt = 0, leapcnt = 0, timecnt = 0, typecnt = 0, charcnt = 0;
  // The size of the data block that follows, with `time_size`-byte times.
  uint64_t BlockSize(int time_size) const {
    return uint64_t(timecnt) * time_size + timecnt + uint64_t(typecnt) * 6 + charcnt +
           uint64_t(leapcnt) * (time_size + 4) + isstdcnt + isutcnt;
  }
};

Status ReadHeader(TzifReader* r, TzifHeader* h) {
  if (!r->Has(44)) return Status::InvalidArgument("truncated header");
  std::string_view magic = r->Rest().substr(0, 4);
  if (magic != "TZif") return Status::InvalidArgument("no TZif magic");
  r->Skip(4);
  h->version = char(r->U8());
  if (h->version != 0 && (h->version < '2' || h->version > '9')) {
    return Status::InvalidArgument("unknown version");
  }
  r->Skip(15);
  h->isutcnt = r->U32();
  h->isstdcnt = r->U32();
  h->leapcnt = r->U32();
  h->timecnt = r->U32();
  h->typecnt = r->U32();
  h->charcnt = r->U32();
  if (h->typecnt == 0 || h->typecnt > 256) return Status::InvalidArgument("bad type count");
  if ((h->isutcnt != 0 && h->isutcnt != h->typecnt) ||
      (h->isstdcnt != 0 && h->isstdcnt != h->typecnt)) {
    return Status::InvalidArgument("bad indicator counts");
  }
  return Status::Ok();
}

}  // namespace

bool PosixTzRule::Parse(std::string_view s, PosixTzRule* out) {
  PosixTzRule r;
  size_t pos = 0;
  int32_t offset = 0;
  if (!ParseAbbr(s, &pos, &r.std_abbr) || !ParseHms(s, &pos, 24, &offset)) return false;
  r.std_offset = -offset;  // POSIX offsets count west
  if (pos == s.size()) {
    *out = std::move(r);
    return true;
  }
  if (!ParseAbbr(s, &pos, &r.dst_abbr)) return false;
  r.has_dst = true;
  r.dst_offset = r.std_offset + 3600;
  if (pos < s.size() && s[pos] != ',') {
    if (!ParseHms(s, &pos, 24, &offset)) return false;
    r.dst_offset = -offset;
  }
  if (pos == s.size()) {  // no dates: the US rules, as glibc
    r.start = {Date::Kind::kMonthWeekDay, 0, 3, 2};
    r.end = {Date::Kind::kMonthWeekDay, 0, 11, 1};
    *out = std::move(r);
    return true;
  }
  if (s[pos++] != ',' || !ParseDateAndTime(s, &pos, &r.start, &r.start_time)) return false;
  if (pos >= s.size() || s[pos++] != ',' || !ParseDateAndTime(s, &pos, &r.end, &r.end_time)) {
    return false;
  }
  if (pos != s.size()) return false;
  *out = std::move(r);
  return true;
}

Status TimeZone::FromPosixRule(std::string_view rule, TimeZone* out) {
  TimeZone z;
  if (!PosixTzRule::Parse(rule, &z.rule_)) {
    return Status::InvalidArgument("not a POSIX TZ rule: '" + std::string(rule) + "'");
  }
  z.has_rule_ = true;
  z.types_[0] = {z.rule_.std_offset, false};
  *out = std::move(z);
  return Status::Ok();
}

Status TimeZone::FromTzif(std::string_view data, TimeZone* out) {
  auto bad = [](const std::string& why) {
    return Status::InvalidArgument("not a valid TZif file (" + why + ")");
  };
  TzifReader r(data);
  TzifHeader h;
  Status s = ReadHeader(&r, &h);
  if (!s.ok()) return bad(s.message());
  int time_size = 4;
  if (h.version != 0) {
    // Version 2+: skip the 32-bit block; the 64-bit one and the footer follow.
    if (!r.Has(h.BlockSize(4))) return bad("truncated version 1 data");
    r.Skip(size_t(h.BlockSize(4)));
    s = ReadHeader(&r, &h);
    if (!s.ok()) return bad(s.message());
    time_size = 8;
  }
  if (!r.Has(h.BlockSize(time_size))) return bad("truncated data");
  TimeZone z;
  z.transitions_.resize(h.timecnt);
  for (uint32_t i = 0; i < h.timecnt; ++i) {
    z.transitions_[i] = time_size == 8 ? r.I64() : int64_t(int32_t(r.U32()));
    if (i > 0 && z.transitions_[i] <= z.transitions_[i - 1]) return bad("transitions out of order");
  }
  z.transition_types_.resize(h.timecnt);
  for (uint32_t i = 0; i < h.timecnt; ++i) {
    z.transition_types_[i] = r.U8();
    if (z.transition_types_[i] >= h.typecnt) return bad("bad type index");
  }
  z.types_.resize(h.typecnt);
  for (uint32_t i = 0; i < h.typecnt; ++i) {
    const int32_t offset = int32_t(r.U32());
    const uint8_t is_dst = r.U8();
    const uint8_t abbr_index = r.U8();
    if (offset == std::numeric_limits<int32_t>::min() || is_dst > 1 ||
        (abbr_index >= h.charcnt && h.charcnt > 0)) {
      return bad("bad local time type");
    }
    z.types_[i] = {offset, is_dst == 1};
  }
  // Abbreviations, leap seconds (ignored: instants are POSIX time) and indicators.
  r.Skip(size_t(h.charcnt + uint64_t(h.leapcnt) * (time_size + 4) + h.isstdcnt + h.isutcnt));
  if (h.version != 0) {
    std::string_view rest = r.Rest();
    if (rest.empty() || rest[0] != '\n') return bad("no footer");
    size_t end = rest.find('\n', 1);
    if (end == std::string_view::npos) return bad("unterminated footer");
    std::string_view footer = rest.substr(1, end - 1);
    if (!footer.empty()) {
      if (!PosixTzRule::Parse(footer, &z.rule_)) {
        return bad("bad footer rule '" + std::string(footer) + "'");
      }
      z.has_rule_ = true;
    }
  }
  *out = std::move(z);
  return Status::Ok();
}

TimeZone::Period TimeZone::RulePeriodAt(int64_t t, int64_t not_before) const {
  if (!rule_.has_dst) return {rule_.std_offset, false, not_before, kMax};
  // Transitions of the years around t (a rule's transition may fall outside its own year by up
  // to a week, with v3 times): the last one at or before t gives the state, the next one the end.
  constexpr int64_t kLimit = int64_t(1) << 40;  // about 35,000 years: keeps the civil math exact
  const int64_t clamped = std::clamp(t, -kLimit, kLimit);
  int year;
  unsigned month, day;
  CivilFromDays(FloorDiv(clamped, 86400), &year, &month, &day);
  struct Transition {
    int64_t at;
    bool to_dst;
  };
  std::array<Transition, 10> all;
  size_t n = 0;
  for (int y = year - 2; y <= year + 2; ++y) {
    all[n++] = {RuleDay(y, rule_.start) * 86400 + rule_.start_time - rule_.std_offset, true};
    all[n++] = {RuleDay(y, rule_.end) * 86400 + rule_.end_time - rule_.dst_offset, false};
  }
  // Equal instants keep year order (DST all year: one year's end is the next one's start).
  std::stable_sort(all.begin(), all.end(),
                   [](const Transition& a, const Transition& b) { return a.at < b.at; });
  size_t last = 0;
  for (size_t i = 0; i < n; ++i) {
    if (all[i].at <= clamped) last = i;
  }
  Period p;
  p.is_dst = all[last].to_dst;
  p.utc_offset = p.is_dst ? rule_.dst_offset : rule_.std_offset;
  p.begin = std::max(all[last].at, not_before);
  p.end = kMax;
  for (size_t i = last + 1; i < n; ++i) {
    if (all[i].at > clamped) {
      p.end = all[i].at;
      break;
    }
  }
  // Beyond the civil range (tens of thousands of years): the state found at the limit, unbounded.
  if (t < clamped) p.begin = not_before;
  if (t > clamped) p.end = kMax;
  return p;
}

TimeZone::Period TimeZone::PeriodAt(int64_t t) const {
  if (transitions_.empty()) {
    if (has_rule_) return RulePeriodAt(t, kMin);
    return {types_[0].utc_offset, types_[0].is_dst, kMin, kMax};
  }
  if (t < transitions_.front()) {
    // Before the first transition: time type 0 (RFC 8536 3.2).
    return {types_[0].utc_offset, types_[0].is_dst, kMin, transitions_.front()};
  }
  if (has_rule_ && t >= transitions_.back()) return RulePeriodAt(t, transitions_.back());
  auto next = std::upper_bound(transitions_.begin(), transitions_.end(), t);
  const size_t i = size_t(next - transitions_.begin()) - 1;
  const LocalType& type = types_[transition_types_[i]];
  return {type.utc_offset, type.is_dst, transitions_[i], next == transitions_.end() ? kMax : *next};
}

Status TimeZone::Load(Env* env, const std::string& zone, TimeZone* out) {
  if (IsUtcName(zone)) {
    *out = TimeZone();
    return Status::Ok();
  }
  std::string spec = zone;
  const bool from_tz_variable = zone.empty();
  if (from_tz_variable) {
    std::optional<std::string> tz = env->GetEnvVar("TZ");
    if (!tz) {
      std::string data;
      Status s = ReadFileToString(env, "/etc/localtime", kMaxZoneFileBytes, &data);
      if (s.code() == Status::Code::kNotFound) {  // no local zone configured: UTC, as libc
        *out = TimeZone();
        return Status::Ok();
      }
      if (!s.ok())
        return Status::InvalidArgument("cannot read the local time zone: " + s.message());
      s = FromTzif(data, out);
      if (!s.ok()) return Status::InvalidArgument("/etc/localtime: " + s.message());
      return Status::Ok();
    }
    spec = *tz;
    if (!spec.empty() && spec[0] == ':') spec.erase(0, 1);
    if (spec.empty() || IsUtcName(spec)) {
      *out = TimeZone();
      return Status::Ok();
    }
  }
  const std::string quoted = "'" + spec + "'" + (from_tz_variable ? " (from $TZ)" : "");
  // A file: an absolute path, or a name below the zone directory (never outside it).
  std::string path;
  const bool climbs = spec == ".." || spec.rfind("../", 0) == 0 ||
                      spec.find("/../") != std::string::npos ||
                      (spec.size() >= 3 && spec.compare(spec.size() - 3, 3, "/..") == 0);
  if (spec[0] == '/') {
    path = spec;
  } else if (!climbs) {
    std::string dir = env->GetEnvVar("TZDIR").value_or("");
    path = (dir.empty() ? kDefaultTzDir : dir) + "/" + spec;
  }
  FileInfo info;
  if (!path.empty() && env->Stat(path, &info).ok() && info.type == FileType::kRegular) {
    std::string data;
    Status s = ReadFileToString(env, path, kMaxZoneFileBytes, &data);
    if (!s.ok()) return Status::InvalidArgument("time zone " + quoted + ": " + s.message());
    s = FromTzif(data, out);
    if (!s.ok())
      return Status::InvalidArgument("time zone " + quoted + ": " + path + ": " + s.message());
    return Status::Ok();
  }
  if (FromPosixRule(spec, out).ok()) return Status::Ok();
  return Status::InvalidArgument("unknown time zone " + quoted +
                                 " (expected an IANA name such as Europe/Helsinki, or a POSIX TZ "
                                 "rule such as EST5EDT,M3.2.0,M11.1.0)");
}

Status LocalDays::Select(Env* env, const std::string& zone, LocalDays* out) {
  LocalDays d;
  if (!IsUtcName(zone)) {
    Status s = TimeZone::Load(env, zone, &d.zone_);
    if (!s.ok()) return s;
    d.utc_ = false;
    d.name_ = zone.empty() ? "local" : zone;
  }
  *out = std::move(d);
  return Status::Ok();
}

int64_t LocalDays::OffsetSeconds(int64_t t) {
  const int64_t slot = FloorDiv(t, 900);
  auto it = offsets_.find(slot);
  if (it != offsets_.end()) return it->second;
  const TimeZone::Period p = zone_.PeriodAt(t);
  // Cache only a slot that lies wholly in one period (old LMT changes fall at odd seconds).
  const int64_t slot_start = slot * 900;
  if (p.begin <= slot_start && (p.end == kMax || slot_start + 900 <= p.end)) {
    offsets_.emplace(slot, p.utc_offset);
  }
  return p.utc_offset;
}

int64_t LocalDays::DayOf(int64_t ms) {
  int64_t s = FloorDiv(ms, 1000);
  if (utc_) return FloorDiv(s, 86400);
  return FloorDiv(s + OffsetSeconds(s), 86400);
}

int64_t LocalDays::StartOfDay(int64_t epoch_day) {
  const int64_t local_midnight = epoch_day * 86400;
  if (utc_) return local_midnight * 1000;
  // The earliest t with t + offset(t) >= local midnight. Offsets stay within a day of UTC, so
  // the search starts two days early and walks period by period.
  int64_t t = local_midnight - 2 * 86400;
  for (;;) {
    const TimeZone::Period p = zone_.PeriodAt(t);
    const int64_t candidate = std::max(t, local_midnight - int64_t(p.utc_offset));
    if (candidate < p.end) return candidate * 1000;
    t = p.end;
  }
}

}  // namespace ccmon
