// TrackedFile's encoding (tail/tracked_file.h; docs/store-format.md, "Tracked files").
#include "tail/tracked_file.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace ccmon {
namespace {

TrackedFile Sample() {
  TrackedFile f;
  f.path = "/home/u/.claude/projects/-home-u-src/0b9c.jsonl";
  f.identity.device = 2049;
  f.identity.inode = 1234567;
  f.identity.fingerprint = 0x0123456789abcdefull;
  f.identity.fingerprint_bytes = 1024;
  f.offset = 300;
  f.size_seen = 345;
  return f;
}

std::string Hex(const std::string& s) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}

TEST(TrackedFile, RoundTrips) {
  TrackedFile in = Sample();
  TrackedFile out;
  ASSERT_TRUE(DecodeTrackedFile(EncodeTrackedFile(in), &out).ok());
  EXPECT_EQ(out, in);
}

// The bytes are a stored format: this golden value may only change with a new version.
TEST(TrackedFile, TheLayoutIsStable) {
  TrackedFile f;
  f.path = "/p/a.jsonl";
  f.identity.device = 1;
  f.identity.inode = 300;
  f.identity.fingerprint = 0x1122334455667788ull;
  f.identity.fingerprint_bytes = 1024;
  f.offset = 127;
  f.size_seen = 128;
  EXPECT_EQ(Hex(EncodeTrackedFile(f)),
            "01"                // version
            "01"                // device
            "ac02"              // inode 300
            "8877665544332211"  // fingerprint, little-endian
            "8008"              // 1024 bytes fingerprinted
            "7f"                // offset 127
            "8001"              // size seen 128
            "0a"                // path length
            "2f702f612e6a736f6e6c");
}

TEST(TrackedFile, ExtremeValuesRoundTrip) {
  TrackedFile in = Sample();
  in.identity.device = UINT64_MAX;
  in.identity.inode = 0;
  in.identity.fingerprint = UINT64_MAX;
  in.identity.fingerprint_bytes = 0;
  in.offset = UINT64_MAX - 1;
  in.size_seen = UINT64_MAX;
  in.path = std::string("\0\xff\n/", 4);
  TrackedFile out;
  ASSERT_TRUE(DecodeTrackedFile(EncodeTrackedFile(in), &out).ok());
  EXPECT_EQ(out, in);
}

TEST(TrackedFile, RandomStatesRoundTrip) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 2000; ++i) {
    TrackedFile in;
    in.identity.device = rng() >> (rng() % 64);
    in.identity.inode = rng() >> (rng() % 64);
    in.identity.fingerprint = rng();
    in.identity.fingerprint_bytes = uint32_t(rng() % (kFingerprintBytes + 1));
    in.offset = rng() >> (rng() % 64);
    in.size_seen = in.offset + (rng() % 1000);
    if (in.size_seen < in.offset) in.size_seen = in.offset;
    in.path.resize(1 + rng() % 300);
    for (char& c : in.path) c = char(rng());
    TrackedFile out;
    ASSERT_TRUE(DecodeTrackedFile(EncodeTrackedFile(in), &out).ok()) << i;
    ASSERT_EQ(out, in) << i;
  }
}

TEST(TrackedFile, EveryTruncationAndTrailingBytesAreCorruption) {
  const std::string bytes = EncodeTrackedFile(Sample());
  TrackedFile out = Sample();
  out.path = "untouched";
  for (size_t n = 0; n < bytes.size(); ++n) {
    Status s = DecodeTrackedFile(bytes.substr(0, n), &out);
    EXPECT_EQ(s.code(), Status::Code::kCorruption) << n;
  }
  EXPECT_EQ(DecodeTrackedFile(bytes + "x", &out).code(), Status::Code::kCorruption);
  EXPECT_EQ(out.path, "untouched");
}

TEST(TrackedFile, InvalidFieldsAreCorruption) {
  auto decode = [](const std::string& bytes) {
    TrackedFile out;
    return DecodeTrackedFile(bytes, &out);
  };
  std::string b = EncodeTrackedFile(Sample());
  std::string v2 = b;
  v2[0] = 2;
  EXPECT_EQ(decode(v2).message(), "tracked file record: unknown version 2");

  TrackedFile f = Sample();
  f.identity.fingerprint_bytes = kFingerprintBytes + 1;
  EXPECT_EQ(decode(EncodeTrackedFile(f)).message(),
            "tracked file record: fingerprint over 1025 bytes");
  f = Sample();
  f.size_seen = f.offset - 1;
  EXPECT_EQ(decode(EncodeTrackedFile(f)).message(),
            "tracked file record: size seen below the offset");
  f = Sample();
  f.path.clear();
  EXPECT_EQ(decode(EncodeTrackedFile(f)).message(), "tracked file record: path length 0");
  f.path.assign(kMaxTrackedPathBytes + 1, 'p');
  EXPECT_EQ(decode(EncodeTrackedFile(f)).code(), Status::Code::kCorruption);

  // A varint with a redundant zero group (0x80 0x00 for 0), and one over 64 bits.
  std::string redundant = std::string("\x01\x80\x00", 3) + b.substr(2);
  EXPECT_EQ(decode(redundant).code(), Status::Code::kCorruption);
  std::string too_long = "\x01" + std::string(10, '\xff') + "\x01" + b.substr(2);
  EXPECT_EQ(decode(too_long).code(), Status::Code::kCorruption);
  EXPECT_EQ(decode("").message(), "tracked file record: empty");
}

}  // namespace
}  // namespace ccmon
