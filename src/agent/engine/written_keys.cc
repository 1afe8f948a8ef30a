#include "agent/engine/written_keys.h"

#include <functional>

namespace ccmon::agent {
namespace {

constexpr int kProbes = 4;

// Two independent 64-bit hashes of `key` (the probes are h1 + i * h2, Kirsch-Mitzenmacher).
void Hashes(std::string_view key, uint64_t* h1, uint64_t* h2) {
  const uint64_t h = std::hash<std::string_view>()(key);
  *h1 = h;
  // A 64-bit mix (splitmix64's finalizer) of h: the second hash; odd so that probes differ.
  uint64_t z = h + 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  *h2 = (z ^ (z >> 31)) | 1;
}

}  // namespace

WrittenKeys::WrittenKeys(int bits_log2, size_t max_keys)
    : bits_((size_t(1) << bits_log2) / 64),
      mask_((uint64_t(1) << bits_log2) - 1),
      max_keys_(max_keys) {}

void WrittenKeys::Add(std::string_view key) {
  if (bits_.empty()) return;
  uint64_t h1, h2;
  Hashes(key, &h1, &h2);
  bool is_new = false;
  for (int i = 0; i < kProbes; ++i) {
    const uint64_t bit = (h1 + uint64_t(i) * h2) & mask_;
    uint64_t& word = bits_[bit >> 6];
    const uint64_t b = uint64_t(1) << (bit & 63);
    is_new |= !(word & b);
    word |= b;
  }
  // Keys written again (a request's record at each copy, the series at every commit) set no
  // new bit and are not counted: added_ estimates the distinct keys, which is what fills it.
  if (is_new && ++added_ > max_keys_) std::vector<uint64_t>().swap(bits_);  // gave up
}

bool WrittenKeys::MayContain(std::string_view key) const {
  if (bits_.empty()) return true;
  uint64_t h1, h2;
  Hashes(key, &h1, &h2);
  for (int i = 0; i < kProbes; ++i) {
    const uint64_t bit = (h1 + uint64_t(i) * h2) & mask_;
    if (!(bits_[bit >> 6] & (uint64_t(1) << (bit & 63)))) return false;
  }
  return true;
}

}  // namespace ccmon::agent
