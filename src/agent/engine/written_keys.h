// WrittenKeys: a bloom filter of the record keys this process wrote to a store that held none
// when it was opened, so that the reads of keys that cannot exist there (a first start's new
// requests, tools, sessions: most of its reads) are answered from memory (issue 7, first start).
//
// Exactness: MayContain(k) is false only for a key never given to Add(), so a store that held
// no such key at the start and was written only through Add()ed keys cannot hold k. A false
// positive costs one store read, never a wrong answer.
//
// Memory is fixed (2^bits_log2 bits). Once more than `max_keys` distinct keys were added the false
// positive rate would climb: the filter gives up (frees its bits, MayContain is true from then
// on) and every read goes to the store again, as without it.
//
// Not thread-safe: the engine's thread owns it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace ccmon::agent {

class WrittenKeys {
 public:
  // 2^20 bits = 128 KiB: ~0.2 % false positives (4 probes) at 60,000 keys (a first start over
  // corpus-2000 writes ~75,000), ~2.4 % at max_keys.
  explicit WrittenKeys(int bits_log2 = 20, size_t max_keys = size_t(1) << 17);

  void Add(std::string_view key);
  // False: `key` was never added (and the filter has not given up).
  bool MayContain(std::string_view key) const;
  // False once the filter gave up (see the file comment).
  bool active() const { return !bits_.empty(); }
  // Distinct keys added so far (an estimate: a key whose bits were all set already by others
  // is not counted).
  size_t added() const { return added_; }

 private:
  std::vector<uint64_t> bits_;
  uint64_t mask_;
  size_t max_keys_;
  size_t added_ = 0;
};

}  // namespace ccmon::agent
