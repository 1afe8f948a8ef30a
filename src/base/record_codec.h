// Little helpers for store records and keys (docs/store-format.md: the agent's state, the
// gateway's series keys and metadata): LEB128 varints, length-prefixed bytes and fixed-width
// integers appended to a std::string, and a reader that fails (returns false) instead of reading
// past the end. Pure; no allocation beyond the output.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "base/money.h"

namespace ccmon {

inline void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(char(v | 0x80));
    v >>= 7;
  }
  out->push_back(char(v));
}
// Zig-zag, so that small negative values stay short.
inline void PutSignedVarint(std::string* out, int64_t v) {
  PutVarint(out, (uint64_t(v) << 1) ^ uint64_t(v >> 63));
}
inline void PutBytes(std::string* out, std::string_view s) {
  PutVarint(out, s.size());
  out->append(s);
}
// A 128-bit signed amount (pico-dollars or counts) as two zig-zag halves: high then low.
inline void PutInt128(std::string* out, __int128 v) {
  const unsigned __int128 u =
      (static_cast<unsigned __int128>(v) << 1) ^ static_cast<unsigned __int128>(v >> 127);
  PutVarint(out, uint64_t(u >> 64));
  PutVarint(out, uint64_t(u));
}
// Little-endian: the gateway's fixed-width record fields (timestamps, double bits).
inline void PutFixed64LE(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(char(uint8_t(v >> (8 * i))));
}
// The first 8 bytes of `in` (precondition: at least 8), little-endian.
inline uint64_t DecodeFixed64LE(std::string_view in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= uint64_t(uint8_t(in[size_t(i)])) << (8 * i);
  return v;
}
// Big-endian, so that keys sort numerically.
inline void PutFixed64BE(std::string* out, uint64_t v) {
  for (int i = 7; i >= 0; --i) out->push_back(char(v >> (8 * i)));
}

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool Varint(uint64_t* v) {
    uint64_t r = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (in_.empty()) return false;
      const uint8_t b = uint8_t(in_[0]);
      in_.remove_prefix(1);
      r |= uint64_t(b & 0x7f) << shift;
      if (!(b & 0x80)) {
        *v = r;
        return true;
      }
    }
    return false;
  }
  bool Varint32(uint32_t* v) {
    uint64_t w = 0;
    if (!Varint(&w) || w > UINT32_MAX) return false;
    *v = uint32_t(w);
    return true;
  }
  bool SignedVarint(int64_t* v) {
    uint64_t u = 0;
    if (!Varint(&u)) return false;
    *v = int64_t(u >> 1) ^ -int64_t(u & 1);
    return true;
  }
  bool Bytes(std::string_view* s) {
    uint64_t n = 0;
    if (!Varint(&n) || n > in_.size()) return false;
    *s = in_.substr(0, n);
    in_.remove_prefix(n);
    return true;
  }
  bool Bytes(std::string* s) {
    std::string_view v;
    if (!Bytes(&v)) return false;
    s->assign(v);
    return true;
  }
  bool Int128(__int128* v) {
    uint64_t hi = 0, lo = 0;
    if (!Varint(&hi) || !Varint(&lo)) return false;
    const unsigned __int128 u = (static_cast<unsigned __int128>(hi) << 64) | lo;
    *v = static_cast<__int128>(u >> 1) ^ -static_cast<__int128>(u & 1);
    return true;
  }
  bool Fixed64BE(uint64_t* v) {
    if (in_.size() < 8) return false;
    uint64_t r = 0;
    for (int i = 0; i < 8; ++i) r = r << 8 | uint8_t(in_[i]);
    in_.remove_prefix(8);
    *v = r;
    return true;
  }
  bool Byte(uint8_t* b) {
    if (in_.empty()) return false;
    *b = uint8_t(in_[0]);
    in_.remove_prefix(1);
    return true;
  }
  bool done() const { return in_.empty(); }
  std::string_view rest() const { return in_; }

 private:
  std::string_view in_;
};

// 64-bit FNV-1a: stable across runs, platforms and builds (series shards are persisted).
inline uint64_t StableHash(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

}  // namespace ccmon
