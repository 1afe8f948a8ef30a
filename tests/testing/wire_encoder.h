// A hand encoder of the protobuf wire format for tests that need exact bytes: requests a valid
// sender never sends (rw::Encode refuses them), or label bytes a test must know exactly (the
// gateway's series cache keys on them). Header only; appends to `out`.
#pragma once

#include <bit>
#include <cstdint>
#include <string>
#include <string_view>

namespace ccmon {
namespace testing_util {

inline void Varint(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(char(uint8_t(v) | 0x80));
    v >>= 7;
  }
  out->push_back(char(uint8_t(v)));
}

// A length-delimited field (wire type 2): a string, bytes or an embedded message.
inline void Bytes(int field, std::string_view b, std::string* out) {
  Varint(uint64_t(field) << 3 | 2, out);
  Varint(b.size(), out);
  out->append(b);
}

inline void VarintField(int field, uint64_t v, std::string* out) {
  Varint(uint64_t(field) << 3, out);
  Varint(v, out);
}

// A 64-bit field (wire type 1) holding a double, little-endian.
inline void DoubleField(int field, double v, std::string* out) {
  Varint(uint64_t(field) << 3 | 1, out);
  const uint64_t bits = std::bit_cast<uint64_t>(v);
  for (int i = 0; i < 8; ++i) out->push_back(char(uint8_t(bits >> (8 * i))));
}

// prometheus.Sample: value (1, double), timestamp (2, int64 as varint).
inline std::string SampleMessage(int64_t timestamp_ms, double value) {
  std::string m;
  DoubleField(1, value, &m);
  VarintField(2, uint64_t(timestamp_ms), &m);
  return m;
}

}  // namespace testing_util
}  // namespace ccmon
