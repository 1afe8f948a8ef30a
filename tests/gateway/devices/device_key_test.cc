#include "gateway/devices/device_key.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <thread>
#include <vector>

namespace ccmon::gateway {
namespace {

TEST(DeviceKeyTest, GeneratedKeysHaveTheFormAndDiffer) {
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) {
    std::string key;
    ASSERT_TRUE(GenerateDeviceKey(&key).ok());
    EXPECT_EQ(key.size(), kDeviceKeyLength) << key;
    EXPECT_TRUE(key.starts_with("dk_")) << key;
    EXPECT_TRUE(IsWellFormedDeviceKey(key)) << key;
    EXPECT_EQ(key.find('='), std::string::npos);
    EXPECT_TRUE(seen.insert(key).second) << "a repeated key " << key;
  }
}

TEST(DeviceKeyTest, HashIsSha256OfTheBytes) {
  // SHA-256("abc"), FIPS 180-2.
  const DeviceKeyHash h = HashDeviceKey("abc");
  EXPECT_EQ(h[0], 0xba);
  EXPECT_EQ(h[1], 0x78);
  EXPECT_EQ(h[31], 0xad);
  EXPECT_TRUE(HashesEqual(HashDeviceKey("dk_x"), HashDeviceKey("dk_x")));
  EXPECT_FALSE(HashesEqual(HashDeviceKey("dk_x"), HashDeviceKey("dk_y")));
  // NUL bytes and huge inputs are hashed as given.
  EXPECT_FALSE(HashesEqual(HashDeviceKey(std::string("a\0b", 3)), HashDeviceKey("a")));
  const std::string huge(10 << 20, 'k');
  EXPECT_FALSE(HashesEqual(HashDeviceKey(huge), HashDeviceKey(huge + "k")));
}

// The hash reuses a context per thread: every call starts afresh, whatever came before it on
// that thread, and threads do not share one.
TEST(DeviceKeyTest, HashesAreIndependentOfEarlierCallsAndThreads) {
  const auto hex = [](const DeviceKeyHash& h) {
    std::string out;
    for (uint8_t b : h) {
      out += "0123456789abcdef"[b >> 4];
      out += "0123456789abcdef"[b & 15];
    }
    return out;
  };
  const std::string abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
  const std::string empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
  EXPECT_EQ(hex(HashDeviceKey("abc")), abc);
  EXPECT_EQ(hex(HashDeviceKey(std::string(1 << 20, 'x'))).size(), 64u);
  EXPECT_EQ(hex(HashDeviceKey("")), empty);
  EXPECT_EQ(hex(HashDeviceKey("abc")), abc);
  std::vector<std::thread> threads;
  std::vector<int> wrong(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        if (hex(HashDeviceKey(i % 2 == 0 ? "abc" : "")) != (i % 2 == 0 ? abc : empty)) ++wrong[t];
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(wrong, std::vector<int>(4, 0));
}

TEST(DeviceKeyTest, MalformedKeysAreRefused) {
  std::string good;
  ASSERT_TRUE(GenerateDeviceKey(&good).ok());
  const std::string body = good.substr(3);
  EXPECT_FALSE(IsWellFormedDeviceKey(""));
  EXPECT_FALSE(IsWellFormedDeviceKey("dk_"));
  EXPECT_FALSE(IsWellFormedDeviceKey("DK_" + body));  // wrong prefix
  EXPECT_FALSE(IsWellFormedDeviceKey("dk-" + body));
  EXPECT_FALSE(IsWellFormedDeviceKey("xx_" + body));
  EXPECT_FALSE(IsWellFormedDeviceKey(good + "A"));                        // too long
  EXPECT_FALSE(IsWellFormedDeviceKey(good.substr(0, 45)));                // too short
  EXPECT_FALSE(IsWellFormedDeviceKey("dk_" + body.substr(0, 42) + "="));  // padding
  EXPECT_FALSE(IsWellFormedDeviceKey("dk_+" + body.substr(1)));           // standard alphabet
  EXPECT_FALSE(IsWellFormedDeviceKey("dk_/" + body.substr(1)));
  EXPECT_FALSE(IsWellFormedDeviceKey("dk_" + body.substr(0, 42) + "B"));  // stray low bits
  EXPECT_TRUE(IsWellFormedDeviceKey("dk_" + body.substr(0, 42) + "E"));
  EXPECT_FALSE(IsWellFormedDeviceKey("dk_\xc3\xa9" + body.substr(2)));  // non-ASCII
  EXPECT_FALSE(IsWellFormedDeviceKey(std::string("dk_\0", 4) + body.substr(1)));
  EXPECT_FALSE(IsWellFormedDeviceKey("dk_" + std::string(10 << 20, 'A')));
}

TEST(DeviceKeyTest, BearerToken) {
  EXPECT_EQ(BearerToken("Bearer dk_abc"), "dk_abc");
  EXPECT_EQ(BearerToken("bearer   dk_abc  "), "dk_abc");
  EXPECT_EQ(BearerToken("BEARER\tdk_abc"), "dk_abc");
  EXPECT_EQ(BearerToken(""), "");
  EXPECT_EQ(BearerToken("Bearer"), "");
  EXPECT_EQ(BearerToken("Bearer "), "");
  EXPECT_EQ(BearerToken("Bearerdk_abc"), "");
  EXPECT_EQ(BearerToken("Basic dXNlcjpwYXNz"), "");
  EXPECT_EQ(BearerToken("Bearér dk_abc"), "");
  const std::string huge = "Bearer " + std::string(10 << 20, 'x');
  EXPECT_EQ(BearerToken(huge).size(), size_t(10 << 20));
}

}  // namespace
}  // namespace ccmon::gateway
