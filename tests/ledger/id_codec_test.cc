#include "ledger/id_codec.h"

#include <gtest/gtest.h>

#include <random>
#include <set>
#include <string>
#include <vector>

namespace ccmon {
namespace {

std::string Encode(std::string_view id) {
  std::string out;
  AppendEncodedId(id, &out);
  return out;
}

std::string RoundTrip(std::string_view id) {
  std::string enc = Encode(id);
  std::string_view in = enc;
  std::string out;
  EXPECT_TRUE(DecodeId(&in, &out)) << id;
  EXPECT_TRUE(in.empty()) << id;
  return out;
}

TEST(IdCodecTest, AnthropicIdsPackToSixBitsPerCharacter) {
  // Shapes of real ids: msg_01 + 22, req_011C + 20, toolu_01 + 22 base-62 characters.
  EXPECT_EQ(Encode("msg_01XFDUDYJgAACzvnptvVoYEL").size(), 1u + 17);
  EXPECT_EQ(Encode("req_011CRRE3xT7wW2nLm9QpKs4z").size(), 1u + 15);
  EXPECT_EQ(Encode("toolu_01qzYdwOyjhVni9Q0Y6CGciS").size(), 1u + 17);
  EXPECT_EQ(Encode("msg_bdrk_01AbCdEfGhIjKlMnOpQrStUv").size(), 1u + 17);
  EXPECT_EQ(Encode("srvtoolu_01AbCdEfGhIjKlMnOpQrStUv").size(), 1u + 17);
  EXPECT_EQ(Encode("abc123").size(), 1u + 5);  // no prefix, all base-62
  for (const char* id : {"msg_01XFDUDYJgAACzvnptvVoYEL", "req_011CRRE3xT7wW2nLm9QpKs4z",
                         "toolu_01qzYdwOyjhVni9Q0Y6CGciS", "msg_bdrk_01AbCdEfGhIjKlMnOpQrStUv",
                         "srvtoolu_01AbCdEfGhIjKlMnOpQrStUv", "abc123", "zzzzzzzzzzzz",
                         "000000000000", "msg_01", "req_011C", ""}) {
    EXPECT_EQ(RoundTrip(id), id);
  }
}

TEST(IdCodecTest, AnyOtherStringRoundTripsRaw) {
  const std::string nul("m\0r", 3);
  const std::string long_tail = "msg_01" + std::string(kMaxPackedTail, 'a');  // too long to pack
  for (const std::string& id :
       {std::string("msg_1"), std::string("msg_01abc-def"), std::string("msg_vrtx_01X"), nul,
        long_tail, std::string(300, 'x') + "_", std::string("\xff\xfe"), std::string("é")}) {
    EXPECT_EQ(RoundTrip(id), id);
  }
  EXPECT_EQ(static_cast<uint8_t>(Encode("msg_1")[0]), kRawTag);
  EXPECT_EQ(Encode(long_tail).size(), 1u + 1 + long_tail.size());
}

// The property dedup depends on: different ids never share an encoding, and concatenated
// encodings split back into the same ids (so pairs stay distinct too).
TEST(IdCodecTest, InjectiveAndSelfDelimitingOnRandomIds) {
  std::mt19937_64 rng(7);
  const std::string alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_-\0";
  auto random_id = [&] {
    static const char* prefixes[] = {"",     "msg_01", "req_011C",    "toolu_01",
                                     "msg_", "m",      "srvtoolu_01", "msg_bdrk_01"};
    std::string id = prefixes[rng() % std::size(prefixes)];
    const size_t n = rng() % 45;
    // Mostly base-62 tails so that packed encodings of different lengths meet often.
    const size_t letters = (rng() % 4 == 0) ? alphabet.size() : 62;
    for (size_t i = 0; i < n; ++i) id.push_back(alphabet[rng() % letters]);
    return id;
  };
  std::set<std::string> ids;
  std::set<std::string> encodings;
  for (int i = 0; i < 20000; ++i) {
    std::string a = random_id();
    std::string b = random_id();
    std::string joined = Encode(a) + Encode(b);
    std::string_view in = joined;
    std::string da, db;
    ASSERT_TRUE(DecodeId(&in, &da));
    ASSERT_TRUE(DecodeId(&in, &db));
    EXPECT_TRUE(in.empty());
    EXPECT_EQ(da, a);
    EXPECT_EQ(db, b);
    if (ids.insert(a).second) {
      EXPECT_TRUE(encodings.insert(Encode(a)).second) << a;
    }
  }
  EXPECT_EQ(ids.size(), encodings.size());
}

TEST(IdCodecTest, MalformedInputIsRejectedAndNotConsumed) {
  std::string out;
  for (std::string bad :
       {std::string(""), std::string(1, char(kAbsentTag)), std::string(1, char(kRawTag)),
        std::string("\xff\x05"
                    "abc"),
        Encode("msg_01XFDUDYJgAACzvnptvVoYEL").substr(0, 10),
        std::string("\x02\xff\x0f")}) {  // packed digit value 63 is not base-62
    std::string_view in = bad;
    EXPECT_FALSE(DecodeId(&in, &out));
    EXPECT_EQ(in.size(), bad.size());
  }
  EXPECT_TRUE(out.empty());
}

}  // namespace
}  // namespace ccmon
