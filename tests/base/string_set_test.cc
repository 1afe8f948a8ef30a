// StringSet: the exact, compact string set behind the dedup keys (docs/accounting.md A16).
#include "base/string_set.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <unordered_map>

namespace ccmon {
namespace {

TEST(StringSet, A16_InsertFindAndGetAreExactForAnyBytesAndLengths) {
  StringSet set;
  std::unordered_map<std::string, uint32_t> want;
  std::mt19937 rng(7);
  std::vector<std::string> samples = {"",
                                      std::string("a\0b", 3),
                                      std::string(1, '\0'),
                                      "msg_01",
                                      std::string(127, 'x'),
                                      std::string(128, 'x'),
                                      std::string(16383, 'y'),
                                      std::string(16384, 'y'),
                                      std::string((1 << 20) - 1, 'z'),  // fills a block exactly
                                      std::string((1 << 20) + 5, 'w'),  // a block of its own
                                      "after-the-big-one"};
  for (int i = 0; i < 60000; ++i) {  // enough to span several blocks and table growths
    std::string s = "k" + std::to_string(rng() % 40000);
    if (i % 997 == 0) s += std::string(rng() % 3000, char('a' + i % 26));
    samples.push_back(s);
  }
  for (const std::string& s : samples) {
    bool inserted = false;
    uint32_t idx = set.Insert(s, &inserted);
    auto it = want.find(s);
    if (it == want.end()) {
      EXPECT_TRUE(inserted) << s.size();
      EXPECT_EQ(idx, want.size());
      want.emplace(s, idx);
    } else {
      EXPECT_FALSE(inserted);
      EXPECT_EQ(idx, it->second);
    }
  }
  ASSERT_EQ(set.size(), want.size());
  for (const auto& [s, idx] : want) {
    EXPECT_EQ(set.Find(s), idx);
    EXPECT_EQ(set.Get(idx), s);
  }
  EXPECT_EQ(set.Find("absent"), StringSet::kNone);
  EXPECT_EQ(set.Find(std::string("a\0c", 3)), StringSet::kNone);
}

}  // namespace
}  // namespace ccmon
