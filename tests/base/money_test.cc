// Exact money (docs/accounting.md A20, A25).
#include "base/money.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

namespace ccmon {
namespace {

TEST(Money, A20_FormatUsdIsExactDecimal) {
  EXPECT_EQ(FormatUsd(0), "0");
  EXPECT_EQ(FormatUsd(1), "0.000000000001");
  EXPECT_EQ(FormatUsd(1250000000000), "1.25");
  EXPECT_EQ(FormatUsd(kPicoPerUsd), "1");
  EXPECT_EQ(FormatUsd(-1000000), "-0.000001");
  EXPECT_EQ(FormatUsd(PicoSum(kPicoPerUsd) * 1000000000), "1000000000");
  EXPECT_EQ(FormatUsd(PicoSum(123456789012345)), "123.456789012345");
  PicoSum big = PicoSum(kPicoPerUsd) * PicoSum(kPicoPerUsd) * 1000000;  // beyond 64 bits
  EXPECT_EQ(FormatUsd(big + 5), "1000000000000000000.000000000005");
}

TEST(Money, A20_FormatIntCovers128Bits) {
  EXPECT_EQ(FormatInt(0), "0");
  EXPECT_EQ(FormatInt(-5), "-5");
  PicoSum max = PicoSum((unsigned __int128)(-1) >> 1);
  EXPECT_EQ(FormatInt(max), "170141183460469231731687303715884105727");
  EXPECT_EQ(FormatInt(-max - 1), "-170141183460469231731687303715884105728");
}

TEST(Money, A20_IntegerSumsAreExactAndOrderFree) {
  // Ten requests of $0.10 and one of $0.000000000001: in doubles the order changes the sum.
  std::vector<Pico> costs(10, 100000000000);
  costs.push_back(1);
  PicoSum forward = 0, backward = 0;
  for (Pico c : costs) forward += c;
  for (auto it = costs.rbegin(); it != costs.rend(); ++it) backward += *it;
  EXPECT_EQ(forward, backward);
  EXPECT_EQ(FormatUsd(forward), "1.000000000001");
  double d = 0;
  for (int i = 0; i < 10; ++i) d += 0.1;
  EXPECT_NE(d, 1.0);  // why money is not summed as double
  EXPECT_DOUBLE_EQ(PicoToUsd(forward), 1.000000000001);
  EXPECT_EQ(PicoToUsd(1234567890123), 1.234567890123);
  EXPECT_EQ(PicoToUsd(-2500000000000), -2.5);
}

TEST(Money, A29_UsdToPicoRoundsRatesToWholePico) {
  EXPECT_EQ(UsdToPico(3e-06), 3000000);
  EXPECT_EQ(UsdToPico(3.75e-06), 3750000);
  EXPECT_EQ(UsdToPico(1.5e-05), 15000000);
  EXPECT_EQ(UsdToPico(2.25e-05), 22500000);
  EXPECT_EQ(UsdToPico(1.875e-05), 18750000);
  EXPECT_EQ(UsdToPico(8e-08), 80000);
  EXPECT_EQ(UsdToPico(0.01), 10000000000);
}

TEST(Money, A25_ParseUsdDecimalExact) {
  struct Case {
    const char* text;
    Pico pico;
  } cases[] = {{"0.123456789", 123456789000},
               {"0", 0},
               {"0.0", 0},
               {"12", 12 * kPicoPerUsd},
               {"1e-3", 1000000000},
               {"1E+2", 100 * kPicoPerUsd},
               {"2.5e-1", 250000000000},
               {"0.000000000001", 1},
               {"0.0000000000005", 1},  // half rounds away from zero
               {"0.0000000000004999", 0},
               {"1.0000000000004999", kPicoPerUsd},
               {"0.30000000000000004", 300000000000},
               {"1000000", 1000000 * kPicoPerUsd},
               {"1e-400", 0}};
  for (const Case& c : cases) {
    Pico p = -1;
    ASSERT_TRUE(ParseUsdDecimal(c.text, &p)) << c.text;
    EXPECT_EQ(p, c.pico) << c.text;
  }
}

TEST(Money, A25_ParseUsdDecimalRejects) {
  for (const char* bad : {"-1", "-0.5", "abc", "1.2.3", "1e", "1e+", "+1", "1000000.000000000001",
                          "1e7", "1e400", "0x10", "1 "}) {
    Pico p = 42;
    EXPECT_FALSE(ParseUsdDecimal(bad, &p)) << bad;
  }
}

// Text without any digit is not a number (regression: "", "." and "e5" were read as $0).
TEST(Money, A25_ParseUsdDecimalNeedsADigit) {
  for (const char* bad : {"", ".", "e5"}) {
    Pico p = 42;
    EXPECT_FALSE(ParseUsdDecimal(bad, &p)) << "'" << bad << "'";
  }
}

}  // namespace
}  // namespace ccmon
