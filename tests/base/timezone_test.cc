// Local days in a time zone (docs/accounting.md A36): zone files and POSIX rules read without the
// C library's TZ state, checked against known offsets, hand-built zone files served by MemEnv,
// and the C library itself for many instants.
#include "base/timezone.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <time.h>

#include <optional>
#include <random>
#include <string>
#include <vector>

#include "base/timeutil.h"
#include "testing/mem_env.h"

namespace ccmon {
namespace {

constexpr int64_t kHour = 3600 * 1000;

TEST(LocalDays, A36_UtcDays) {
  LocalDays utc;
  ASSERT_TRUE(LocalDays::Select("UTC", &utc).ok());
  EXPECT_EQ(utc.name(), "UTC");
  EXPECT_EQ(utc.DayOf(1759040243678), 20359);
  EXPECT_EQ(utc.DayOf(DaysFromCivil(2025, 9, 28) * 86400000), 20359);
  EXPECT_EQ(utc.DayOf(DaysFromCivil(2025, 9, 28) * 86400000 - 1), 20358);
  EXPECT_EQ(utc.DayOf(-1), -1);
  EXPECT_EQ(utc.StartOfDay(20359), 20359 * 86400000LL);
  for (const char* alias : {"Etc/UTC", "Z"}) {
    LocalDays d;
    ASSERT_TRUE(LocalDays::Select(alias, &d).ok()) << alias;
    EXPECT_EQ(d.DayOf(1759040243678), 20359);
  }
}

TEST(LocalDays, A36_HalfHourZoneWithDst_StJohns) {
  LocalDays d;
  ASSERT_TRUE(LocalDays::Select("America/St_Johns", &d).ok());
  EXPECT_EQ(d.name(), "America/St_Johns");
  // Winter: UTC-3:30. 2025-01-15 starts at 03:30Z.
  EXPECT_EQ(d.StartOfDay(20103), 1736911800000);
  EXPECT_EQ(d.DayOf(1736911800000), 20103);
  EXPECT_EQ(d.DayOf(1736911800000 - 1), 20102);
  // Summer: UTC-2:30.
  EXPECT_EQ(d.StartOfDay(20284), 1752546600000);
  EXPECT_EQ(d.DayOf(1752546600000), 20284);
  EXPECT_EQ(d.DayOf(1752546600000 - 1), 20283);
  // DST starts on 2025-03-09 (a 23-hour day) and ends on 2025-11-02 (25 hours).
  EXPECT_EQ(d.StartOfDay(20156), 1741491000000);
  EXPECT_EQ(d.StartOfDay(20157), 1741573800000);
  EXPECT_EQ(d.StartOfDay(20157) - d.StartOfDay(20156), 23 * kHour);
  EXPECT_EQ(d.StartOfDay(20395) - d.StartOfDay(20394), 25 * kHour);
  EXPECT_EQ(d.DayOf(1741573800000 - 1), 20156);
  EXPECT_EQ(d.DayOf(1741573800000), 20157);
}

TEST(LocalDays, A36_ThirtyMinuteDst_LordHowe) {
  LocalDays d;
  ASSERT_TRUE(LocalDays::Select("Australia/Lord_Howe", &d).ok());
  // Summer (DST, +11): 2025-01-15 starts 2025-01-14T13:00Z. Winter (+10:30): 13:30Z.
  EXPECT_EQ(d.StartOfDay(20103), 1736859600000);
  EXPECT_EQ(d.DayOf(1736859600000), 20103);
  EXPECT_EQ(d.DayOf(1736859600000 - 1), 20102);
  EXPECT_EQ(d.StartOfDay(20284), 1752499800000);
  EXPECT_EQ(d.DayOf(1752499800000 - 1), 20283);
  // DST ends 2025-04-06 (24.5 h) and starts 2025-10-05 (23.5 h).
  EXPECT_EQ(d.StartOfDay(20184), 1743858000000);
  EXPECT_EQ(d.StartOfDay(20185), 1743946200000);
  EXPECT_EQ(d.StartOfDay(20185) - d.StartOfDay(20184), 24 * kHour + kHour / 2);
  EXPECT_EQ(d.StartOfDay(20366), 1759584600000);
  EXPECT_EQ(d.StartOfDay(20367), 1759669200000);
  EXPECT_EQ(d.StartOfDay(20367) - d.StartOfDay(20366), 23 * kHour + kHour / 2);
  // Every instant of a local day maps to that day.
  for (int64_t day : {20184, 20366, 20103}) {
    for (int64_t t = d.StartOfDay(day); t < d.StartOfDay(day + 1); t += 15 * 60 * 1000) {
      ASSERT_EQ(d.DayOf(t), day) << t;
    }
  }
}

TEST(LocalDays, A36_UnknownZoneIsAnError) {
  for (const char* bad : {"Europe/Nowhere", "../../etc/passwd", "America", "Not A Zone"}) {
    LocalDays d;
    Status s = LocalDays::Select(bad, &d);
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << bad;
    EXPECT_NE(s.message().find(bad), std::string::npos) << s.message();
  }
}

constexpr int64_t kDaySeconds = 86400;

int64_t Utc(int y, unsigned m, unsigned d, int hh = 0, int mm = 0, int ss = 0) {
  return DaysFromCivil(y, m, d) * kDaySeconds + hh * 3600 + mm * 60 + ss;
}

TimeZone MustLoad(Env* env, const std::string& zone) {
  TimeZone z;
  Status s = TimeZone::Load(env, zone, &z);
  EXPECT_TRUE(s.ok()) << zone << ": " << s.message();
  return z;
}

TEST(LocalDays, A36_NegativeOffsetZone_LosAngeles) {
  LocalDays d;
  ASSERT_TRUE(LocalDays::Select("America/Los_Angeles", &d).ok());
  // 2025-01-15 (PST, -8) starts at 08:00Z; 2025-07-15 (PDT, -7) at 07:00Z.
  EXPECT_EQ(d.StartOfDay(20103), Utc(2025, 1, 15, 8) * 1000);
  EXPECT_EQ(d.DayOf(Utc(2025, 1, 15, 8) * 1000 - 1), 20102);
  EXPECT_EQ(d.StartOfDay(20284), Utc(2025, 7, 15, 7) * 1000);
  EXPECT_EQ(d.DayOf(Utc(2025, 7, 16, 6, 59, 59) * 1000), 20284);
  // A negative instant (1969): day -1 local.
  EXPECT_EQ(d.DayOf(Utc(1970, 1, 1, 7, 59, 59) * 1000), -1);
  EXPECT_EQ(d.DayOf(Utc(1970, 1, 1, 8) * 1000), 0);
}

TEST(LocalDays, A36_ZoneWithoutDst_Kolkata) {
  LocalDays d;
  ASSERT_TRUE(LocalDays::Select("Asia/Kolkata", &d).ok());
  for (int year : {1990, 2025, 2060}) {
    const int64_t day = DaysFromCivil(year, 6, 1);
    EXPECT_EQ(d.StartOfDay(day), (day * kDaySeconds - 19800) * 1000) << year;  // +5:30
    EXPECT_EQ(d.StartOfDay(day + 1) - d.StartOfDay(day), 24 * kHour);
  }
  EXPECT_EQ(d.zone().OffsetAt(Utc(2100, 1, 1)), 19800);
}

TEST(LocalDays, A36_PastTheLastTransitionTheFooterRuleApplies_NewYork2050) {
  // Zone files list transitions up to 2037; later ones come from the POSIX rule in the footer.
  LocalDays d;
  ASSERT_TRUE(LocalDays::Select("America/New_York", &d).ok());
  const TimeZone& z = d.zone();
  EXPECT_EQ(z.OffsetAt(Utc(2050, 3, 13, 6, 59, 59)), -5 * 3600);
  EXPECT_EQ(z.OffsetAt(Utc(2050, 3, 13, 7)), -4 * 3600);
  EXPECT_EQ(z.OffsetAt(Utc(2050, 11, 6, 5, 59, 59)), -4 * 3600);
  EXPECT_EQ(z.OffsetAt(Utc(2050, 11, 6, 6)), -5 * 3600);
  TimeZone::Period p = z.PeriodAt(Utc(2050, 7, 1));
  EXPECT_TRUE(p.is_dst);
  EXPECT_EQ(p.begin, Utc(2050, 3, 13, 7));
  EXPECT_EQ(p.end, Utc(2050, 11, 6, 6));
  const int64_t day = DaysFromCivil(2050, 3, 13);  // 23 hours
  EXPECT_EQ(d.StartOfDay(day + 1) - d.StartOfDay(day), 23 * kHour);
  EXPECT_EQ(d.StartOfDay(day), Utc(2050, 3, 13, 5) * 1000);
  EXPECT_EQ(d.DayOf(Utc(2099, 12, 31, 23) * 1000), DaysFromCivil(2099, 12, 31));
}

TEST(LocalDays, A36_BeforeTheFirstTransitionLocalMeanTime_Helsinki) {
  // Helsinki kept +1:39:49 until 1921; in 1800 that is local mean time, before any transition.
  LocalDays d;
  ASSERT_TRUE(LocalDays::Select("Europe/Helsinki", &d).ok());
  const int64_t day = DaysFromCivil(1800, 1, 2);
  const int64_t start = (day * kDaySeconds - 5989) * 1000;
  EXPECT_EQ(d.StartOfDay(day), start);
  EXPECT_EQ(d.DayOf(start), day);
  EXPECT_EQ(d.DayOf(start - 1), day - 1);
  EXPECT_EQ(d.zone().OffsetAt(Utc(1600, 1, 1)), 5989);
  // The 1921 change at 22:20:11Z was not on a 15-minute boundary: the cache must not smear it.
  const int64_t change = Utc(1921, 4, 30, 22, 20, 11);
  EXPECT_EQ(d.zone().OffsetAt(change - 1), 5989);
  EXPECT_EQ(d.zone().OffsetAt(change), 7200);
  EXPECT_EQ(d.DayOf((change - 1) * 1000), DaysFromCivil(1921, 4, 30));
  EXPECT_EQ(d.DayOf(change * 1000), DaysFromCivil(1921, 5, 1));
  EXPECT_EQ(d.DayOf((change - 2) * 1000), DaysFromCivil(1921, 4, 30));  // same slot, cached
  EXPECT_EQ(d.DayOf((change + 1) * 1000), DaysFromCivil(1921, 5, 1));
}

TEST(LocalDays, A36_SelectDoesNotTouchTheProcessTimeZone) {
  const char* before = std::getenv("TZ");
  const std::string saved = before ? before : "<unset>";
  LocalDays d;
  ASSERT_TRUE(LocalDays::Select("Australia/Lord_Howe", &d).ok());
  ASSERT_TRUE(LocalDays::Select("EST5EDT,M3.2.0,M11.1.0", &d).ok());
  const char* after = std::getenv("TZ");
  EXPECT_EQ(after ? after : "<unset>", saved);
}

// --- Zone lookup through an Env

// The bytes of a real zone file (tests that serve them from memory).
std::string RealZoneFile(const std::string& name) {
  std::string data;
  Status s = ReadFileToString(Env::Default(), "/usr/share/zoneinfo/" + name, 1 << 20, &data);
  EXPECT_TRUE(s.ok()) << s.message();
  return data;
}

TEST(TimeZoneLoad, A36_ZoneFileServedFromMemoryMatchesTheRealOne) {
  testing_util::MemEnv mem;
  mem.AddFile("/usr/share/zoneinfo/Europe/Helsinki", RealZoneFile("Europe/Helsinki"));
  TimeZone from_mem = MustLoad(&mem, "Europe/Helsinki");
  TimeZone real = MustLoad(Env::Default(), "Europe/Helsinki");
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<int64_t> any(Utc(1850, 1, 1), Utc(2150, 1, 1));
  for (int i = 0; i < 2000; ++i) {
    const int64_t t = any(rng);
    ASSERT_EQ(from_mem.OffsetAt(t), real.OffsetAt(t)) << t;
  }
  // $TZDIR moves the zone directory.
  mem.AddFile("/zi/Test/Zone", RealZoneFile("Asia/Kolkata"));
  mem.SetEnvVar("TZDIR", "/zi");
  EXPECT_EQ(MustLoad(&mem, "Test/Zone").OffsetAt(Utc(2025, 1, 1)), 19800);
  TimeZone z;
  EXPECT_EQ(TimeZone::Load(&mem, "Europe/Helsinki", &z).code(), Status::Code::kInvalidArgument);
}

TEST(TimeZoneLoad, A36_TheProcessZoneComesFromTzOrEtcLocaltime) {
  testing_util::MemEnv mem;
  mem.AddFile("/usr/share/zoneinfo/America/St_Johns", RealZoneFile("America/St_Johns"));
  mem.AddFile("/etc/localtime", RealZoneFile("Australia/Lord_Howe"));
  const int64_t jan = Utc(2025, 1, 15), jul = Utc(2025, 7, 15);
  // TZ unset: /etc/localtime.
  TimeZone z = MustLoad(&mem, "");
  EXPECT_EQ(z.OffsetAt(jan), 11 * 3600);
  EXPECT_EQ(z.OffsetAt(jul), 10 * 3600 + 1800);
  // TZ names a zone, with or without the leading ':'.
  for (const char* tz : {"America/St_Johns", ":America/St_Johns"}) {
    mem.SetEnvVar("TZ", tz);
    z = MustLoad(&mem, "");
    EXPECT_EQ(z.OffsetAt(jan), -(3 * 3600 + 1800)) << tz;
  }
  // TZ as a POSIX rule, or an absolute path.
  mem.SetEnvVar("TZ", "EST5EDT,M3.2.0,M11.1.0");
  z = MustLoad(&mem, "");
  EXPECT_EQ(z.OffsetAt(jan), -5 * 3600);
  EXPECT_EQ(z.OffsetAt(jul), -4 * 3600);
  mem.SetEnvVar("TZ", ":/etc/localtime");
  EXPECT_EQ(MustLoad(&mem, "").OffsetAt(jan), 11 * 3600);
  // Empty TZ, "UTC0", and no /etc/localtime at all: UTC.
  for (const char* tz : {"", ":", "UTC0", "UTC"}) {
    mem.SetEnvVar("TZ", tz);
    EXPECT_EQ(MustLoad(&mem, "").OffsetAt(jul), 0) << tz;
  }
  mem.UnsetEnvVar("TZ");
  ASSERT_TRUE(mem.RemoveFile("/etc/localtime").ok());
  EXPECT_EQ(MustLoad(&mem, "").OffsetAt(jul), 0);
  // An unknown zone in TZ is an error that says where it came from.
  mem.SetEnvVar("TZ", "Nowhere/Bogus");
  Status s = TimeZone::Load(&mem, "", &z);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("unknown time zone 'Nowhere/Bogus' (from $TZ)"), std::string::npos)
      << s.message();
  LocalDays d;
  mem.SetEnvVar("TZ", "America/St_Johns");
  ASSERT_TRUE(LocalDays::Select(&mem, "", &d).ok());
  EXPECT_EQ(d.name(), "local");
  EXPECT_EQ(d.StartOfDay(20103), 1736911800000);
}

TEST(TimeZoneLoad, A36_BadZoneFilesAreClearErrors) {
  testing_util::MemEnv mem;
  const std::string real = RealZoneFile("Europe/Helsinki");
  mem.AddFile("/usr/share/zoneinfo/Cut", real.substr(0, real.size() / 2));
  mem.AddFile("/usr/share/zoneinfo/Text", "Europe/Helsinki\n");
  mem.AddFile("/usr/share/zoneinfo/Big", std::string(5 << 20, 'x'));
  for (const char* name : {"Cut", "Text", "Big"}) {
    TimeZone z;
    Status s = TimeZone::Load(&mem, name, &z);
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << name;
    EXPECT_NE(s.message().find(std::string("time zone '") + name + "'"), std::string::npos)
        << s.message();
  }
  TimeZone z;
  Status s = TimeZone::Load(&mem, "Text", &z);
  EXPECT_EQ(s.message(),
            "time zone 'Text': /usr/share/zoneinfo/Text: not a valid TZif file (truncated header)");
}

// --- Hand-built zone files

std::string Be32(uint32_t v) {
  std::string s(4, '\0');
  for (int i = 3; i >= 0; --i, v >>= 8) s[size_t(i)] = char(v & 0xff);
  return s;
}
std::string Be64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 7; i >= 0; --i, v >>= 8) s[size_t(i)] = char(v & 0xff);
  return s;
}

struct TzifSpec {
  char version = '2';                                    // 0 for version 1
  std::vector<std::pair<int32_t, bool>> types;           // offset, is_dst
  std::vector<std::pair<int64_t, uint8_t>> transitions;  // at, type
  std::string footer;
};

std::string Block(const TzifSpec& z, int time_size) {
  std::string out = "TZif";
  out += z.version;
  out += std::string(15, '\0');
  out += Be32(0) + Be32(0) + Be32(0) + Be32(uint32_t(z.transitions.size())) +
         Be32(uint32_t(z.types.size())) + Be32(4);
  for (const auto& [at, type] : z.transitions) {
    out += time_size == 8 ? Be64(uint64_t(at)) : Be32(uint32_t(int32_t(at)));
  }
  for (const auto& [at, type] : z.transitions) out += char(type);
  for (const auto& [offset, dst] : z.types) out += Be32(uint32_t(offset)) + char(dst) + char(0);
  out += std::string("ABC\0", 4);
  return out;
}

std::string BuildTzif(const TzifSpec& z) {
  if (z.version == 0) return Block(z, 4);
  return Block(z, 4) + Block(z, 8) + "\n" + z.footer + "\n";
}

TimeZone FromTzif(const std::string& data) {
  TimeZone z;
  Status s = TimeZone::FromTzif(data, &z);
  EXPECT_TRUE(s.ok()) << s.message();
  return z;
}

TEST(TimeZoneTzif, A36_Version1TypeZeroBeforeAndTheLastTypeAfter) {
  TzifSpec spec;
  spec.version = 0;
  spec.types = {{3600, false}, {7200, true}, {-1800, false}};
  spec.transitions = {{1000000, 1}, {2000000, 2}};
  TimeZone z = FromTzif(BuildTzif(spec));
  EXPECT_EQ(z.OffsetAt(-5000000000), 3600);  // before the first transition: type 0
  EXPECT_EQ(z.OffsetAt(999999), 3600);
  EXPECT_EQ(z.OffsetAt(1000000), 7200);
  EXPECT_TRUE(z.PeriodAt(1500000).is_dst);
  EXPECT_EQ(z.OffsetAt(2000000), -1800);
  EXPECT_EQ(z.OffsetAt(int64_t(1) << 40), -1800);  // no footer: the last type forever
  TimeZone::Period p = z.PeriodAt(1500000);
  EXPECT_EQ(p.begin, 1000000);
  EXPECT_EQ(p.end, 2000000);
}

TEST(TimeZoneTzif, A36_Version2FooterRuleAfterTheLastTransition) {
  TzifSpec spec;
  spec.types = {{0, false}, {3600, false}, {7200, true}};
  spec.transitions = {{Utc(2000, 1, 1), 1}, {Utc(2000, 3, 26, 1), 2}, {Utc(2000, 10, 29, 1), 1}};
  spec.footer = "<+01>-1<+02>,M3.5.0,M10.5.0/3";
  TimeZone z = FromTzif(BuildTzif(spec));
  EXPECT_EQ(z.OffsetAt(Utc(1999, 6, 1)), 0);
  EXPECT_EQ(z.OffsetAt(Utc(2000, 7, 1)), 7200);
  // 2001 and 2080 from the rule: last Sunday of March 02:00 local (+1) to last Sunday of October
  // 03:00 local (+2), both 01:00Z.
  EXPECT_EQ(z.OffsetAt(Utc(2001, 3, 25, 0, 59, 59)), 3600);
  EXPECT_EQ(z.OffsetAt(Utc(2001, 3, 25, 1)), 7200);
  EXPECT_EQ(z.OffsetAt(Utc(2001, 10, 28, 0, 59, 59)), 7200);
  EXPECT_EQ(z.OffsetAt(Utc(2001, 10, 28, 1)), 3600);
  EXPECT_EQ(z.OffsetAt(Utc(2080, 3, 31, 1)), 7200);  // 2080-03-31 is the last Sunday
  EXPECT_EQ(z.OffsetAt(Utc(2080, 3, 31, 0, 59, 59)), 3600);
  // The rule never reaches back before the last transition.
  TimeZone::Period p = z.PeriodAt(Utc(2000, 12, 1));
  EXPECT_EQ(p.begin, Utc(2000, 10, 29, 1));
  EXPECT_EQ(p.end, Utc(2001, 3, 25, 1));
}

TEST(TimeZoneTzif, A36_Version3RuleWithExtendedTimes) {
  // Permanent DST written the v3 way: DST from Jan 1 00:00 to Dec 31 25:00, i.e. all year.
  TzifSpec spec;
  spec.version = '3';
  spec.types = {{-5 * 3600, false}, {-4 * 3600, true}};
  spec.transitions = {{Utc(2020, 3, 8, 7), 1}};
  spec.footer = "EST5EDT,0/0,J365/25";
  TimeZone z = FromTzif(BuildTzif(spec));
  for (int64_t t : {Utc(2021, 1, 1, 0), Utc(2021, 1, 1, 5), Utc(2021, 12, 31, 23, 59, 59),
                    Utc(2030, 6, 1), Utc(2032, 1, 1, 4, 30)}) {
    EXPECT_EQ(z.OffsetAt(t), -4 * 3600) << t;
  }
  // Negative transition times (Greenland's footer): DST from the last Sunday of March at -1:00
  // local to the last Sunday of October at 0:00 local, offset -2 / -1.
  spec.types = {{-2 * 3600, false}, {-1 * 3600, true}};
  spec.transitions = {{Utc(2024, 1, 1), 0}};
  spec.footer = "<-02>2<-01>,M3.5.0/-1,M10.5.0/0";
  z = FromTzif(BuildTzif(spec));
  // 2025-03-30 is the last Sunday of March; -1:00 local on it is 2025-03-29T23:00 local = 01:00Z.
  EXPECT_EQ(z.OffsetAt(Utc(2025, 3, 30, 0, 59, 59)), -2 * 3600);
  EXPECT_EQ(z.OffsetAt(Utc(2025, 3, 30, 1)), -3600);
  // 2025-10-26 00:00 local (DST, -1) is 01:00Z.
  EXPECT_EQ(z.OffsetAt(Utc(2025, 10, 26, 0, 59, 59)), -3600);
  EXPECT_EQ(z.OffsetAt(Utc(2025, 10, 26, 1)), -2 * 3600);
}

TEST(TimeZoneTzif, A36_MalformedFilesAreRejected) {
  TzifSpec spec;
  spec.types = {{0, false}, {3600, false}};
  spec.transitions = {{100, 1}, {200, 0}};
  spec.footer = "XYZ-1";
  const std::string good = BuildTzif(spec);
  TimeZone parsed;
  ASSERT_TRUE(TimeZone::FromTzif(good, &parsed).ok());
  struct Case {
    std::string data, why;
  };
  TzifSpec unordered = spec;
  unordered.transitions = {{200, 1}, {100, 0}};
  TzifSpec bad_index = spec;
  bad_index.transitions = {{100, 5}};
  TzifSpec bad_footer = spec;
  bad_footer.footer = "XYZ";
  TzifSpec no_types = spec;
  no_types.types.clear();
  no_types.transitions.clear();
  const std::vector<Case> cases = {
      {"", "truncated header"},
      {"TZjf" + good.substr(4), "no TZif magic"},
      {good.substr(0, 60), "truncated version 1 data"},
      {good.substr(0, good.size() - 1), "unterminated footer"},
      {good.substr(0, good.size() - spec.footer.size() - 2), "no footer"},
      {BuildTzif(unordered), "transitions out of order"},
      {BuildTzif(bad_index), "bad type index"},
      {BuildTzif(bad_footer), "bad footer rule 'XYZ'"},
      {BuildTzif(no_types), "bad type count"},
  };
  for (const Case& c : cases) {
    TimeZone z;
    Status s = TimeZone::FromTzif(c.data, &z);
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << c.why;
    EXPECT_EQ(s.message(), "not a valid TZif file (" + c.why + ")");
  }
}

TEST(PosixTzRule, A36_ParsesTheForms) {
  PosixTzRule r;
  ASSERT_TRUE(PosixTzRule::Parse("UTC0", &r));
  EXPECT_EQ(r.std_offset, 0);
  EXPECT_FALSE(r.has_dst);
  ASSERT_TRUE(PosixTzRule::Parse("<+0545>-5:45", &r));
  EXPECT_EQ(r.std_abbr, "+0545");
  EXPECT_EQ(r.std_offset, 5 * 3600 + 45 * 60);
  ASSERT_TRUE(PosixTzRule::Parse("AEST-10AEDT,M10.1.0,M4.1.0/3", &r));
  EXPECT_EQ(r.std_offset, 36000);
  EXPECT_EQ(r.dst_offset, 39600);
  EXPECT_EQ(r.start.month, 10);
  EXPECT_EQ(r.start_time, 7200);
  EXPECT_EQ(r.end_time, 10800);
  ASSERT_TRUE(PosixTzRule::Parse("IST-1GMT0,M10.5.0,M3.5.0/1", &r));  // Dublin: negative DST
  EXPECT_EQ(r.std_offset, 3600);
  EXPECT_EQ(r.dst_offset, 0);
  ASSERT_TRUE(PosixTzRule::Parse("EST5EDT", &r));  // the US rules by default
  EXPECT_EQ(r.start.month, 3);
  EXPECT_EQ(r.end.month, 11);
  ASSERT_TRUE(PosixTzRule::Parse("ABC+3DEF+2:30:15,J60/-1:30,300/167", &r));
  EXPECT_EQ(r.dst_offset, -(2 * 3600 + 30 * 60 + 15));
  EXPECT_EQ(r.start.kind, PosixTzRule::Date::Kind::kJulian1);
  EXPECT_EQ(r.start_time, -5400);
  EXPECT_EQ(r.end.kind, PosixTzRule::Date::Kind::kJulian0);
  EXPECT_EQ(r.end_time, 167 * 3600);
  for (const char* bad :
       {"", "UT0", "UTC", "UTC25", "Europe/Helsinki", "EST5EDT,M3.2.0", "EST5EDT,M13.2.0,M11.1.0",
        "EST5EDT,M3.6.0,M11.1.0", "EST5EDT,J0,J365", "EST5EDT,M3.2.0,M11.1.0/168", "<AB>3",
        "EST5EDT,M3.2.0,M11.1.0x", "Not A Zone"}) {
    EXPECT_FALSE(PosixTzRule::Parse(bad, &r)) << bad;
  }
}

// --- Against the C library

// The C library's UTC offset at `t` in the zone of $TZ (set by the caller).
int32_t LibcOffset(int64_t t) {
  time_t tt = time_t(t);
  struct tm tm;
  EXPECT_NE(::localtime_r(&tt, &tm), nullptr);
  return int32_t(tm.tm_gmtoff);
}

// Sets TZ for the C library only (this test's comparison side), and restores it.
class LibcZone {
 public:
  explicit LibcZone(const std::string& zone) {
    if (const char* old = std::getenv("TZ")) saved_ = old;
    ::setenv("TZ", zone.c_str(), 1);
    ::tzset();
  }
  ~LibcZone() {
    if (saved_) {
      ::setenv("TZ", saved_->c_str(), 1);
    } else {
      ::unsetenv("TZ");
    }
    ::tzset();
  }

 private:
  std::optional<std::string> saved_;
};

TEST(TimeZoneVsLibc, A36_SameOffsetsAndDaysAsLocaltimeFrom1900To2100) {
  const std::vector<std::string> zones = {
      "America/New_York", "America/Los_Angeles", "America/St_Johns", "America/Sao_Paulo",
      "America/Santiago", "America/Nuuk", "Europe/Helsinki", "Europe/Dublin", "Europe/London",
      "Africa/Casablanca", "Asia/Kolkata", "Asia/Kathmandu", "Asia/Tehran", "Australia/Lord_Howe",
      "Australia/Sydney", "Pacific/Chatham", "Pacific/Apia", "Pacific/Kiritimati",
      "Antarctica/Troll",
      // POSIX rules as $TZ would hold them.
      "EST5EDT,M3.2.0,M11.1.0", "<+0330>-3:30", "AEST-10AEDT,M10.1.0,M4.1.0/3",
      "NZST-12NZDT,M9.5.0,M4.1.0/3", "<-02>2<-01>,M3.5.0/-1,M10.5.0/0", "UTC0"};
  std::mt19937_64 rng(20250928);
  for (const std::string& name : zones) {
    // glibc evaluates a POSIX rule for any year before 1970 with 1970's dates (compute_change):
    // rules are compared from 1970 on (zone files use their rule only after 2037).
    const bool rule = !Env::Default()->IsReadable("/usr/share/zoneinfo/" + name);
    const int64_t from = rule ? Utc(1970, 1, 1) : Utc(1900, 1, 1), to = Utc(2100, 1, 1);
    std::uniform_int_distribution<int64_t> any(from, to - 1);
    TimeZone zone = MustLoad(Env::Default(), name);
    LocalDays days;
    ASSERT_TRUE(LocalDays::Select(name, &days).ok()) << name;
    LibcZone libc(name);
    int checked = 0;
    auto check = [&](int64_t t) {
      const int32_t want = LibcOffset(t);
      ASSERT_EQ(zone.OffsetAt(t), want) << name << " at " << t;
      ASSERT_EQ(days.DayOf(t * 1000), FloorDiv(t + want, kDaySeconds)) << name << " at " << t;
      ++checked;
    };
    for (int i = 0; i < 3000; ++i) check(any(rng));
    // Both sides of every transition in the range, footer-rule ones included.
    for (int64_t t = from; t < to;) {
      TimeZone::Period p = zone.PeriodAt(t);
      ASSERT_LE(p.begin, t);
      ASSERT_GT(p.end, t);
      if (p.end >= to) break;
      check(p.end - 1);
      check(p.end);
      t = p.end;
    }
    // Every local day's start, around a few years of transitions.
    for (int64_t day = DaysFromCivil(2024, 1, 1); day < DaysFromCivil(2026, 1, 1); ++day) {
      const int64_t start = days.StartOfDay(day) / 1000;
      ASSERT_GE(FloorDiv(start + LibcOffset(start), kDaySeconds), day) << name << " day " << day;
      ASSERT_LT(FloorDiv(start - 1 + LibcOffset(start - 1), kDaySeconds), day)
          << name << " day " << day;
    }
    EXPECT_GE(checked, 3000) << name;
  }
}

}  // namespace
}  // namespace ccmon
