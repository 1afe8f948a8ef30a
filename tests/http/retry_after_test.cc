// Retry-After (RFC 9110 10.2.3): delta-seconds and the three HTTP-date forms.
#include "http/retry_after.h"

#include <gtest/gtest.h>

namespace ccmon {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr int64_t kNow = 1767225600000;  // 2026-01-01T00:00:00Z

TEST(RetryAfter, DeltaSeconds) {
  milliseconds d;
  ASSERT_TRUE(ParseRetryAfter("120", kNow, &d));
  EXPECT_EQ(d, seconds(120));
  ASSERT_TRUE(ParseRetryAfter("0", kNow, &d));
  EXPECT_EQ(d, seconds(0));
  ASSERT_TRUE(ParseRetryAfter(" \t7 ", kNow, &d));  // surrounding whitespace
  EXPECT_EQ(d, seconds(7));
  // Saturates instead of overflowing.
  ASSERT_TRUE(ParseRetryAfter("99999999999999999999999999", kNow, &d));
  EXPECT_EQ(d, seconds(int64_t(1) << 31));
}

TEST(RetryAfter, HttpDatesInAllThreeForms) {
  milliseconds d;
  ASSERT_TRUE(ParseRetryAfter("Thu, 01 Jan 2026 00:01:30 GMT", kNow, &d));
  EXPECT_EQ(d, seconds(90));
  ASSERT_TRUE(ParseRetryAfter("Thursday, 01-Jan-26 00:01:30 GMT", kNow, &d));
  EXPECT_EQ(d, seconds(90));
  ASSERT_TRUE(ParseRetryAfter("Thu Jan  1 00:01:30 2026", kNow, &d));
  EXPECT_EQ(d, seconds(90));
  ASSERT_TRUE(ParseRetryAfter("Thu Jan 15 00:00:00 2026", kNow, &d));
  EXPECT_EQ(d, seconds(14 * 86400));
  // In the past: negative (the sender then uses its backoff).
  ASSERT_TRUE(ParseRetryAfter("Wed, 31 Dec 2025 23:59:00 GMT", kNow, &d));
  EXPECT_EQ(d, seconds(-60));
  // Relative to a wall clock with milliseconds.
  ASSERT_TRUE(ParseRetryAfter("Thu, 01 Jan 2026 00:00:01 GMT", kNow + 250, &d));
  EXPECT_EQ(d, milliseconds(750));
}

TEST(RetryAfter, HttpDateValues) {
  int64_t t;
  ASSERT_TRUE(ParseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT", kNow, &t));
  EXPECT_EQ(t, 784111777);  // RFC 9110's example
  ASSERT_TRUE(ParseHttpDate("Sunday, 06-Nov-94 08:49:37 GMT", kNow, &t));
  EXPECT_EQ(t, 784111777);
  ASSERT_TRUE(ParseHttpDate("Sun Nov  6 08:49:37 1994", kNow, &t));
  EXPECT_EQ(t, 784111777);
  ASSERT_TRUE(ParseHttpDate("Thu, 29 Feb 2024 12:00:00 GMT", kNow, &t));  // leap day
  EXPECT_EQ(t, 1709208000);
  // RFC 850 years: up to 50 years ahead of now are this century, beyond that the last one.
  ASSERT_TRUE(ParseHttpDate("Monday, 01-Jan-76 00:00:00 GMT", kNow, &t));
  EXPECT_EQ(t, 3345062400);  // 2076
  ASSERT_TRUE(ParseHttpDate("Monday, 01-Jan-77 00:00:00 GMT", kNow, &t));
  EXPECT_EQ(t, 220924800);  // 1977
}

TEST(RetryAfter, MalformedValuesAreRefused) {
  milliseconds d;
  for (const char* bad : {"",
                          "  ",
                          "-1",
                          "+5",
                          "1.5",
                          "5s",
                          "soon",
                          "0x10",
                          "Thu, 01 Jan 2026 00:01:30 UTC",
                          "Thu, 01 Jan 2026 00:01:30",
                          "Thu, 1 Jan 2026 00:01:30 GMT",
                          "Thu, 01 Foo 2026 00:01:30 GMT",
                          "Xyz, 01 Jan 2026 00:01:30 GMT",
                          "Thu, 30 Feb 2026 00:00:00 GMT",
                          "Thu, 29 Feb 2026 00:00:00 GMT",
                          "Thu, 01 Jan 2026 24:00:00 GMT",
                          "Thu, 01 Jan 2026 00:60:00 GMT",
                          "Thu, 01 Jan 2026 00:00:61 GMT",
                          "Thu, 00 Jan 2026 00:00:00 GMT",
                          "Thu, 01 Jan 2026 00:01:30 GMT trailing",
                          "Thu Jan 1 00:01:30 2026",
                          "2026-01-01T00:01:30Z"}) {
    EXPECT_FALSE(ParseRetryAfter(bad, kNow, &d)) << "'" << bad << "'";
  }
}

}  // namespace
}  // namespace ccmon
