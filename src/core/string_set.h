// StringSet: an insert-only set of byte strings with dense indices, stored compactly.
//
// Strings live back to back in one arena; an open-addressing table of 32-bit indices finds them.
// About len + 12 bytes per string (std::unordered_set<std::string> needs ~len + 90), which is
// what keeps replay's memory at the number of distinct requests, not at malloc overhead.
// Lookups compare whole strings: the set is exact. Not thread-safe.
#pragma once

#include <cstdint>
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
  std::string_view Get(uint32_t index) const {
    return std::string_view(arena_.data() + offsets_[index], offsets_[index + 1] - offsets_[index]);
  }
  size_t size() const { return offsets_.size() - 1; }

 private:
  static uint64_t Hash(std::string_view s);
  void Grow();

  std::vector<char> arena_;
  std::vector<uint64_t> offsets_{0};  // size() + 1 entries
  std::vector<uint32_t> slots_;       // power-of-two size, kNone = empty
};

}  // namespace ccmon
