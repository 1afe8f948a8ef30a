#include "core/string_set.h"

#include <functional>

namespace ccmon {

uint64_t StringSet::Hash(std::string_view s) { return std::hash<std::string_view>{}(s); }

uint32_t StringSet::Find(std::string_view s) const {
  if (slots_.empty()) return kNone;
  const size_t mask = slots_.size() - 1;
  for (size_t i = Hash(s) & mask;; i = (i + 1) & mask) {
    uint32_t idx = slots_[i];
    if (idx == kNone) return kNone;
    if (Get(idx) == s) return idx;
  }
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
  const size_t mask = slots_.size() - 1;
  size_t i = Hash(s) & mask;
  for (;; i = (i + 1) & mask) {
    uint32_t idx = slots_[i];
    if (idx == kNone) break;
    if (Get(idx) == s) {
      *inserted = false;
      return idx;
    }
  }
  uint32_t idx = uint32_t(size());
  arena_.insert(arena_.end(), s.begin(), s.end());
  offsets_.push_back(arena_.size());
  slots_[i] = idx;
  *inserted = true;
  return idx;
}

}  // namespace ccmon
