// StringSet: an insert-only set of byte strings with dense indices, stored compactly.
//
// Strings live back to back in arena blocks (4 KiB growing to 1 MiB), each behind a varint length;
// a deque of 64-bit locations gives index -> string, and an open-addressing table of 32-bit indices
// finds them. About len + 14 bytes per string (std::unordered_set<std::string> needs ~len + 90),
// and no growth step copies the strings, which keeps replay's peak memory at the number of distinct
// requests. Lookups compare whole strings: the set is exact. Not thread-safe.
#pragma once

#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <string_view>
#include <vector>

namespace ccmon {

class StringSet {
 public:
  static constexpr uint32_t kNone = UINT32_MAX;

  // The index of `s`, inserting it if absent (*inserted tells which).
  uint32_t Insert(std::string_view s, bool* inserted);
  // The index of `s`, or kNone.
  uint32_t Find(std::string_view s) const;
  std::string_view Get(uint32_t index) const;
  size_t size() const { return locations_.size(); }

 private:
  static constexpr int kBlockBits = 20;  // 1 MiB blocks
  static constexpr size_t kBlockBytes = size_t(1) << kBlockBits;
  static uint64_t Hash(std::string_view s);
  // The slot holding `s` (*idx = its index) or the empty slot where it belongs (*idx = kNone).
  // Precondition: slots_ is not empty.
  size_t Probe(std::string_view s, uint32_t* idx) const;
  void Grow();
  uint64_t Append(std::string_view s);  // returns the location: block << kBlockBits | offset

  struct Block {
    std::unique_ptr<char[]> data;  // not zeroed: untouched pages of a fresh block cost no memory
    size_t size = 0;

    Block(std::unique_ptr<char[]> d, size_t n) : data(std::move(d)), size(n) {}
    Block(Block&&) = default;
    Block& operator=(Block&&) = default;
    Block(const Block& o) : data(new char[o.size]), size(o.size) {  // ledgers are copyable
      std::memcpy(data.get(), o.data.get(), size);
    }
    Block& operator=(const Block& o) {
      if (this != &o) *this = Block(o);
      return *this;
    }
  };
  void AddBlock(size_t size);

  std::vector<Block> blocks_;  // a string longer than a block gets its own
  size_t block_used_ = 0;      // bytes used in blocks_.back(); SIZE_MAX: a string's own block
  std::deque<uint64_t> locations_;
  std::vector<uint32_t> slots_;  // power-of-two size, kNone = empty
};

}  // namespace ccmon
