#include "state_mirror/state_records.h"

#include <snappy.h>

#include <string>

#include "gtest/gtest.h"

namespace ccmon::state_mirror {
namespace {

std::string Raw(std::string_view body) {
  std::string raw;
  EXPECT_TRUE(snappy::Uncompress(body.data(), body.size(), &raw));
  return raw;
}

std::string Compress(std::string_view raw) {
  std::string body;
  snappy::Compress(raw.data(), raw.size(), &body);
  return body;
}

TEST(StateRecordsTest, GoldenBytes) {
  StateRecordWriter w;
  w.Put("f/a", "xy");
  w.Delete("r\x01");
  w.Put(std::string("k\0", 2), "");
  EXPECT_EQ(w.count(), 3u);
  const std::string raw = Raw(w.Finish());
  EXPECT_EQ(raw, std::string("\x01"  // version
                             "\x01\x03"
                             "f/a"
                             "\x02"
                             "xy"  // put
                             "\x02\x02"
                             "r\x01"  // delete
                             "\x01\x02"
                             "k\0"
                             "\x00",  // put, NUL in the key, empty value
                             1 + 1 + 1 + 3 + 1 + 2 + 1 + 1 + 2 + 1 + 1 + 2 + 1));
  EXPECT_EQ(w.count(), 0u) << "Finish starts a new body";
}

TEST(StateRecordsTest, RoundTripKeepsOrderAndBytes) {
  StateRecordWriter w;
  std::string big(70000, 'v');
  for (int i = 0; i < 256; ++i) big[size_t(i)] = char(i);
  w.Put("a", big);
  w.Delete("a");
  w.Put("a", "again");
  w.Put(std::string(1, '\xff'), std::string("\0\0", 2));
  WriteBatch out;
  ASSERT_TRUE(DecodeStateBody(w.Finish(), 1 << 20, &out).ok());
  ASSERT_EQ(out.count(), 4u);
  EXPECT_EQ(out.ops()[0].type, WriteBatch::OpType::kPut);
  EXPECT_EQ(out.ops()[0].value, big);
  EXPECT_EQ(out.ops()[1].type, WriteBatch::OpType::kDelete);
  EXPECT_EQ(out.ops()[1].key, "a");
  EXPECT_EQ(out.ops()[2].value, "again");
  EXPECT_EQ(out.ops()[3].key, "\xff");
  EXPECT_EQ(out.ops()[3].value, std::string("\0\0", 2));
}

TEST(StateRecordsTest, EmptyBodyHoldsNoRecords) {
  StateRecordWriter w;
  WriteBatch out;
  ASSERT_TRUE(DecodeStateBody(w.Finish(), 16, &out).ok());
  EXPECT_TRUE(out.empty());
}

TEST(StateRecordsTest, RefusesHostileBodies) {
  WriteBatch out;
  EXPECT_EQ(DecodeStateBody("not snappy at all \xff\xff\xff", 1 << 20, &out).code(),
            Status::Code::kCorruption);
  EXPECT_EQ(DecodeStateBody("", 1 << 20, &out).code(), Status::Code::kCorruption);
  EXPECT_EQ(DecodeStateBody(Compress(""), 1 << 20, &out).code(), Status::Code::kCorruption)
      << "no version byte";
  EXPECT_EQ(DecodeStateBody(Compress("\x02"), 1 << 20, &out).code(), Status::Code::kCorruption)
      << "unknown version";
  EXPECT_EQ(DecodeStateBody(Compress("\x01\x03\x01k"), 1 << 20, &out).code(),
            Status::Code::kCorruption)
      << "unknown op";
  EXPECT_EQ(DecodeStateBody(Compress("\x01\x01\x05k"), 1 << 20, &out).code(),
            Status::Code::kCorruption)
      << "truncated key";
  EXPECT_EQ(DecodeStateBody(Compress(std::string("\x01\x01\x00\x00", 4)), 1 << 20, &out).code(),
            Status::Code::kCorruption)
      << "empty key";
  EXPECT_EQ(DecodeStateBody(Compress("\x01\x01\x01k\x09vv"), 1 << 20, &out).code(),
            Status::Code::kCorruption)
      << "truncated value";
  EXPECT_EQ(DecodeStateBody(Compress("\x01\x01\x01k"), 1 << 20, &out).code(),
            Status::Code::kCorruption)
      << "a put without its value";
  EXPECT_EQ(DecodeStateBody(Compress("\x01\x01\x01k\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"),
                            1 << 20, &out)
                .code(),
            Status::Code::kCorruption)
      << "an over-long varint";
  EXPECT_TRUE(out.empty()) << "each of these fails at its first record";
}

TEST(StateRecordsTest, SizeLimitIsCheckedBeforeDecompressing) {
  // A "bomb": snappy declares 1 GiB. Refused from the declared length alone.
  std::string bomb;
  uint64_t n = uint64_t(1) << 30;
  while (n >= 0x80) {
    bomb.push_back(char(n | 0x80));
    n >>= 7;
  }
  bomb.push_back(char(n));
  WriteBatch out;
  const Status s = DecodeStateBody(bomb, 1 << 20, &out);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("too large"), std::string::npos) << s.message();
}

// Paging keys travel in headers as hex (agent keys are binary).
TEST(StateRecordsTest, KeyHexRoundTripsAndRefusesWhatIsNotOne) {
  const std::string binary("u\x00\x01\xff\x7f", 5);
  EXPECT_EQ(FormatKeyHex(binary), "750001ff7f");
  std::string key;
  ASSERT_TRUE(ParseKeyHex("750001FF7f", &key));
  EXPECT_EQ(key, binary);
  for (const char* bad : {"", "7", "75g0", "75 0", "0x75", "-1"}) {
    EXPECT_FALSE(ParseKeyHex(bad, &key)) << bad;
  }
  EXPECT_FALSE(ParseKeyHex(std::string(2 * kMaxKvKeyBytes + 2, 'a'), &key)) << "over a key's size";
  ASSERT_TRUE(ParseKeyHex(std::string(2 * kMaxKvKeyBytes, 'a'), &key));
  EXPECT_EQ(key.size(), kMaxKvKeyBytes);
}

TEST(StateRecordsTest, EpochAndSequenceTexts) {
  EXPECT_EQ(FormatEpoch(0xdeadbeefULL), "00000000deadbeef");
  uint64_t e = 0;
  ASSERT_TRUE(ParseEpoch("FFFFFFFFFFFFFFFF", &e));
  EXPECT_EQ(e, UINT64_MAX);
  ASSERT_TRUE(ParseEpoch(FormatEpoch(0x0123456789abcdefULL), &e));
  EXPECT_EQ(e, 0x0123456789abcdefULL);
  EXPECT_FALSE(ParseEpoch("deadbeef", &e));
  EXPECT_FALSE(ParseEpoch("00000000deadbeeg", &e));
  EXPECT_FALSE(ParseEpoch("", &e));
  uint64_t s = 0;
  ASSERT_TRUE(ParseSequence("18446744073709551615", &s));
  EXPECT_EQ(s, UINT64_MAX);
  EXPECT_FALSE(ParseSequence("18446744073709551616", &s));
  EXPECT_FALSE(ParseSequence("-1", &s));
  EXPECT_FALSE(ParseSequence("1 ", &s));
  EXPECT_FALSE(ParseSequence("", &s));
}

}  // namespace
}  // namespace ccmon::state_mirror
