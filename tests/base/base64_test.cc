#include "base/base64.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace ccmon {
namespace {

TEST(Base64Test, KnownAnswersRoundTripsAndStrictDecoding) {
  EXPECT_EQ(Base64Encode(""), "");
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(Base64Encode("foo"), "Zm9v");
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(char(i));
  for (size_t n = 0; n <= all.size(); ++n) {
    std::string back;
    ASSERT_TRUE(Base64Decode(Base64Encode(all.substr(0, n)), &back)) << n;
    ASSERT_EQ(back, all.substr(0, n));
  }
  std::string out = "unchanged";
  for (std::string_view bad : {"Zg=", "Zg", "Z===", "Zh==", "Zm9=", "Zg==Zg==", "Z m9", "Zm9v\n",
                               "=Zm9", "Zm-v", "Zm_v"}) {
    EXPECT_FALSE(Base64Decode(bad, &out)) << bad;
  }
  EXPECT_EQ(out, "unchanged");
}

TEST(Base64Test, UrlAlphabetWithoutPadding) {
  // RFC 4648 test vectors, unpadded, with the URL alphabet.
  EXPECT_EQ(Base64UrlEncode(""), "");
  EXPECT_EQ(Base64UrlEncode("f"), "Zg");
  EXPECT_EQ(Base64UrlEncode("fo"), "Zm8");
  EXPECT_EQ(Base64UrlEncode("foo"), "Zm9v");
  EXPECT_EQ(Base64UrlEncode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(Base64UrlEncode("\xfb\xff\xbf"), "-_-_");  // '+' and '/' in the standard alphabet
  EXPECT_EQ(Base64UrlEncode(std::string(32, '\0')), std::string(43, 'A'));
}

}  // namespace
}  // namespace ccmon
