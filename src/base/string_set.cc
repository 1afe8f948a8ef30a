#include "base/string_set.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>

namespace ccmon {

uint64_t StringSet::Hash(std::string_view s) { return std::hash<std::string_view>{}(s); }

std::string_view StringSet::Get(uint32_t index) const {
  uint64_t loc = locations_[index];
  const unsigned char* p =
      reinterpret_cast<const unsigned char*>(blocks_[loc >> kBlockBits].data.get()) +
      (loc & (kBlockBytes - 1));
  size_t len = 0;
  for (int shift = 0;; shift += 7) {  // varint length
    unsigned char b = *p++;
    len |= size_t(b & 0x7f) << shift;
    if (!(b & 0x80)) break;
  }
  return std::string_view(reinterpret_cast<const char*>(p), len);
}

void StringSet::AddBlock(size_t size) {
  blocks_.push_back(Block{std::unique_ptr<char[]>(new char[size]), size});
}

uint64_t StringSet::Append(std::string_view s) {
  unsigned char prefix[10];
  size_t n = 0;
  for (size_t len = s.size();; len >>= 7) {
    prefix[n++] = static_cast<unsigned char>((len & 0x7f) | (len >= 0x80 ? 0x80 : 0));
    if (len < 0x80) break;
  }
  const size_t need = n + s.size();
  // Blocks grow from 4 KiB to 1 MiB, so that a small set (a worker's batch) stays small.
  const size_t next_block = blocks_.empty() ? 4096 : std::min(kBlockBytes, 2 * blocks_.back().size);
  if (need > kBlockBytes) {  // a string of its own block
    AddBlock(need);
    block_used_ = SIZE_MAX;  // never appended to
    std::memcpy(blocks_.back().data.get(), prefix, n);
    std::memcpy(blocks_.back().data.get() + n, s.data(), s.size());
    return uint64_t(blocks_.size() - 1) << kBlockBits;
  }
  if (blocks_.empty() || block_used_ == SIZE_MAX || block_used_ + need > blocks_.back().size) {
    AddBlock(std::max(next_block, need));
    block_used_ = 0;
  }
  char* dst = blocks_.back().data.get() + block_used_;
  std::memcpy(dst, prefix, n);
  std::memcpy(dst + n, s.data(), s.size());
  uint64_t loc = (uint64_t(blocks_.size() - 1) << kBlockBits) | block_used_;
  block_used_ += need;
  return loc;
}

size_t StringSet::Probe(std::string_view s, uint32_t* idx) const {
  const size_t mask = slots_.size() - 1;
  for (size_t i = Hash(s) & mask;; i = (i + 1) & mask) {
    *idx = slots_[i];
    if (*idx == kNone || Get(*idx) == s) return i;
  }
}

uint32_t StringSet::Find(std::string_view s) const {
  if (slots_.empty()) return kNone;
  uint32_t idx;
  Probe(s, &idx);
  return idx;
}

void StringSet::Grow() {
  std::vector<uint32_t> next(slots_.empty() ? 1024 : slots_.size() * 2, kNone);
  const size_t mask = next.size() - 1;
  for (uint32_t idx = 0; idx < size(); ++idx) {
    size_t i = Hash(Get(idx)) & mask;
    while (next[i] != kNone) i = (i + 1) & mask;
    next[i] = idx;
  }
  slots_.swap(next);
}

uint32_t StringSet::Insert(std::string_view s, bool* inserted) {
  if ((size() + 1) * 4 > slots_.size() * 3) Grow();  // load factor <= 3/4
  uint32_t idx;
  const size_t slot = Probe(s, &idx);
  *inserted = idx == kNone;
  if (*inserted) {
    idx = uint32_t(size());
    locations_.push_back(Append(s));
    slots_[slot] = idx;
  }
  return idx;
}

}  // namespace ccmon
