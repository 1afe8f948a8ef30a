// Time parsing and civil dates (docs/accounting.md A10, A36).
#include "base/timeutil.h"

#include <gtest/gtest.h>

namespace ccmon {
namespace {

TEST(TimeUtil, A10_ParseIso8601Variants) {
  struct Case {
    const char* text;
    int64_t ms;
  } cases[] = {{"2025-09-28T06:17:23.678Z", 1759040243678},
               {"2025-09-28T06:17:23Z", 1759040243000},
               {"2025-09-28T06:17:23.6Z", 1759040243600},
               {"2025-09-28T06:17:23.60Z", 1759040243600},
               {"2025-09-28T06:17:23.123456789Z", 1759040243123},
               {"2025-09-28T06:17:23.678z", 1759040243678},
               {"2025-09-28 06:17:23.678Z", 1759040243678},
               {"2025-09-28T08:17:23.678+02:00", 1759040243678},
               {"2025-09-28T08:17:23.678+0200", 1759040243678},
               {"2025-09-28T06:17:23+05:30", 1759020443000},
               {"2025-09-28T06:17:23-03:30", 1759052843000},
               {"2024-02-29T00:00:00Z", 1709164800000},
               {"1970-01-01T00:00:00Z", 0},
               {"1969-12-31T23:59:59.999Z", -1},
               {"2000-01-01T00:00:00.000+00:00", 946684800000}};
  for (const Case& c : cases) {
    int64_t ms = 0;
    ASSERT_TRUE(ParseIso8601Ms(c.text, &ms)) << c.text;
    EXPECT_EQ(ms, c.ms) << c.text;
  }
}

TEST(TimeUtil, A10_ParseIso8601RejectsUnzonedAndMalformed) {
  for (const char* bad : {"2025-09-28T06:17:23.678", "2025-09-28T06:17:23", "2025-09-28", "",
                          "yesterday", "2025-09-28T06:17:23.Z", "2025-09-28T06:17:23.678Zx",
                          "2025-09-28T06:17:23+05", "2025-13-28T06:17:23Z", "2025-00-28T06:17:23Z",
                          "2025-09-32T06:17:23Z", "2025-09-28T24:00:00Z", "2025-09-28T06:60:00Z",
                          "2025-09-28X06:17:23Z", "2025/09/28T06:17:23Z", "2025-09-28T06:17:23 Z",
                          "20250928T061723Z", " 2025-09-28T06:17:23Z"}) {
    int64_t ms = 7;
    EXPECT_FALSE(ParseIso8601Ms(bad, &ms)) << bad;
  }
}

TEST(TimeUtil, A10_OffsetsAreValidTimeOffsets) {
  // RFC 3339 time-numoffset: hours 00-23, minutes 00-59 (so +24:00 and +99:99 are not offsets).
  for (const char* bad :
       {"2025-09-28T06:17:23+24:00", "2025-09-28T06:17:23-24:00", "2025-09-28T06:17:23+99:99",
        "2025-09-28T06:17:23+23:60", "2025-09-28T06:17:23+2400", "2025-09-28T06:17:23+0960"}) {
    int64_t ms = 0;
    EXPECT_FALSE(ParseIso8601Ms(bad, &ms)) << bad;
  }
  struct Case {
    const char* text;
    int64_t ms;
  } ok[] = {{"2025-09-28T06:17:23+23:59", 1759040243000 - (23 * 60 + 59) * 60000LL},
            {"2025-09-28T06:17:23-23:59", 1759040243000 + (23 * 60 + 59) * 60000LL},
            {"2025-09-28T06:17:23-00:00", 1759040243000},
            {"2025-09-28T06:17:23+0000", 1759040243000}};
  for (const Case& c : ok) {
    int64_t ms = 0;
    ASSERT_TRUE(ParseIso8601Ms(c.text, &ms)) << c.text;
    EXPECT_EQ(ms, c.ms) << c.text;
  }
}

TEST(TimeUtil, A36_CivilDays) {
  EXPECT_EQ(DaysFromCivil(1970, 1, 1), 0);
  EXPECT_EQ(DaysFromCivil(1969, 12, 31), -1);
  EXPECT_EQ(DaysFromCivil(2000, 1, 1), 10957);
  EXPECT_EQ(DaysFromCivil(2024, 2, 29), 19782);
  EXPECT_EQ(DaysFromCivil(2025, 9, 28), 20359);
  EXPECT_EQ(DaysFromCivil(1900, 3, 1), -25508);
  for (int64_t day = -800000; day <= 800000; day += 997) {
    int y;
    unsigned m, d;
    CivilFromDays(day, &y, &m, &d);
    ASSERT_EQ(DaysFromCivil(y, m, d), day);
  }
  EXPECT_EQ(FormatDay(20359), "2025-09-28");
  EXPECT_EQ(FormatDay(-1), "1969-12-31");
  EXPECT_EQ(FormatDay(19782), "2024-02-29");
  // The edges a zone can reach from the timestamps the parser takes (0000-01-01 to 9999-12-31):
  // a year before 1 BC keeps its four digits after the sign (was "-001-12-31", and its month
  // "-001-12"), a year after 9999 has five.
  EXPECT_EQ(FormatDay(DaysFromCivil(0, 1, 1) - 1), "-0001-12-31");
  EXPECT_EQ(FormatDay(DaysFromCivil(0, 1, 1)), "0000-01-01");
  EXPECT_EQ(FormatDay(DaysFromCivil(10000, 1, 1)), "10000-01-01");
  EXPECT_EQ(FormatDay(DaysFromCivil(-12345, 6, 7)), "-12345-06-07");
  EXPECT_EQ(FormatUtcSeconds((DaysFromCivil(0, 1, 1) - 1) * 86400000), "-0001-12-31T00:00:00Z");
}

TEST(TimeUtil, A36_ParseDay) {
  int64_t day = 0;
  ASSERT_TRUE(ParseDay("2025-09-28", &day));
  EXPECT_EQ(day, 20359);
  ASSERT_TRUE(ParseDay("20240229", &day));
  EXPECT_EQ(day, 19782);
  for (const char* bad : {"2025-9-28", "2025-13-01", "2025-00-10", "2025-01-32", "2025-01-00",
                          "2025_01_01", "202501", "", "2025-01-01T00:00:00Z", "abcd-ef-gh"}) {
    EXPECT_FALSE(ParseDay(bad, &day)) << bad;
  }
}

TEST(TimeUtil, A37_FloorDivRoundsDown) {
  EXPECT_EQ(FloorDiv(7, 2), 3);
  EXPECT_EQ(FloorDiv(-7, 2), -4);
  EXPECT_EQ(FloorDiv(-8, 2), -4);
  EXPECT_EQ(FloorDiv(0, 5), 0);
  EXPECT_EQ(FloorDiv(-1, 1000), -1);
  EXPECT_EQ(FloorDiv(7, -2), -4);
}

}  // namespace
}  // namespace ccmon

namespace ccmon {
namespace {

TEST(FormatUtcSecondsTest, WholeSecondsTruncatedTowardsThePast) {
  EXPECT_EQ(FormatUtcSeconds(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(FormatUtcSeconds(1767225600999), "2026-01-01T00:00:00Z");
  EXPECT_EQ(FormatUtcSeconds(-1), "1969-12-31T23:59:59Z");
  EXPECT_EQ(FormatUtcSeconds(951782400000), "2000-02-29T00:00:00Z");
}

}  // namespace
}  // namespace ccmon
