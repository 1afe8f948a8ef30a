// WrittenKeys: no key added is ever reported absent (exactness), few others are reported
// present, and past its capacity it gives up rather than answer wrongly.
#include "agent/engine/written_keys.h"

#include <gtest/gtest.h>

#include <string>

namespace ccmon::agent {
namespace {

std::string Key(char prefix, int i) {
  return std::string(1, prefix) + "msg_01" + std::to_string(i);
}

TEST(WrittenKeys, NoAddedKeyIsEverAbsentAndFewOthersArePresent) {
  WrittenKeys w;
  EXPECT_TRUE(w.active());
  EXPECT_FALSE(w.MayContain(Key('r', 0)));
  constexpr int kKeys = 60000;
  for (int i = 0; i < kKeys; ++i) w.Add(Key('r', i));
  for (int i = 0; i < kKeys; ++i) ASSERT_TRUE(w.MayContain(Key('r', i))) << i;
  int false_positives = 0;
  for (int i = 0; i < kKeys; ++i) false_positives += w.MayContain(Key('t', i));
  // ~17 bits per key with 4 probes: ~0.2 %; 1 % would mean a broken hash.
  EXPECT_LT(false_positives, kKeys / 100);
  EXPECT_TRUE(w.active());
  EXPECT_GE(w.added(), size_t(kKeys) * 99 / 100);
}

TEST(WrittenKeys, KeysWrittenAgainAreNotCountedTwice) {
  WrittenKeys w;
  for (int round = 0; round < 50; ++round)
    for (int i = 0; i < 100; ++i) w.Add(Key('S', i));
  EXPECT_LE(w.added(), 100u);
}

TEST(WrittenKeys, GivesUpPastItsCapacityAndThenAnswersPresentForEverything) {
  WrittenKeys w(/*bits_log2=*/12, /*max_keys=*/200);
  for (int i = 0; i < 200; ++i) w.Add(Key('r', i));
  EXPECT_TRUE(w.active());
  for (int i = 200; i < 400; ++i) w.Add(Key('r', i));
  EXPECT_FALSE(w.active());
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(w.MayContain(Key('x', i)));
}

}  // namespace
}  // namespace ccmon::agent
