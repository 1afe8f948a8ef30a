// Local days in a time zone (docs/accounting.md A36).
#include "base/timezone.h"

#include <gtest/gtest.h>

#include "base/timeutil.h"

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

}  // namespace
}  // namespace ccmon
