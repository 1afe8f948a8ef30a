// FNV-1a, 64 bit: the hash of a transcript's head that identifies the file (tail/file_identity.h,
// docs/store-format.md "Tracked files"). Stable: stored fingerprints depend on it.
#pragma once

#include <cstdint>
#include <string_view>

namespace ccmon {

// Offset basis 0xcbf29ce484222325, prime 0x100000001b3, over `data`, continuing from `hash` (the
// basis for a fresh hash). Hashing a + b equals hashing b continuing from the hash of a.
inline constexpr uint64_t kFnv1a64Basis = 0xcbf29ce484222325ull;
inline uint64_t Fnv1a64(std::string_view data, uint64_t hash = kFnv1a64Basis) {
  for (unsigned char c : data) {
    hash ^= c;
    hash *= 0x100000001b3ull;
  }
  return hash;
}

}  // namespace ccmon
