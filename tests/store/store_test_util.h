// Helpers shared by the store tests: opening each KvStore implementation the same way, and
// reading a whole store back.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "store/kv_store.h"
#include "store/mem_store.h"
#include "store/rocks_store.h"
#include "testing/temp_dir.h"

namespace ccmon {
namespace testing_util {

// Under ThreadSanitizer. Debian's RocksDB is not instrumented, and TSan takes its lock-free
// hand-offs between application threads (the write group's leader writing for the others, the
// memtable's skip list) for races on memory it cannot see synchronised. Tests that run several
// application threads on a RocksStore skip themselves there; their MemStore twins and every
// test of ccmon's own threading still run (tests/store/tsan_suppressions.cc covers RocksDB's
// background threads).
#if defined(__SANITIZE_THREAD__)
inline constexpr bool kUnderTsan = true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
inline constexpr bool kUnderTsan = true;
#else
inline constexpr bool kUnderTsan = false;
#endif
#else
inline constexpr bool kUnderTsan = false;
#endif
inline constexpr const char* kRocksUnderTsan =
    "RocksDB is not instrumented: TSan misreads its hand-offs between application threads";

// Every key and value of `store`, in iteration order.
inline std::vector<std::pair<std::string, std::string>> Dump(KvStore* store) {
  std::vector<std::pair<std::string, std::string>> out;
  std::unique_ptr<KvIterator> it = store->NewIterator();
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    out.emplace_back(std::string(it->key()), std::string(it->value()));
  }
  EXPECT_TRUE(it->status().ok()) << it->status().ToString();
  return out;
}

// A RocksStore in a temp dir of its own, reopenable (to test persistence).
class RocksStoreHolder {
 public:
  static constexpr bool kPersistent = true;
  RocksStoreHolder() { Open(); }
  KvStore* store() { return store_.get(); }
  const std::string& dir() const { return dir_; }
  void Reopen() {
    store_.reset();
    Open();
  }

 private:
  void Open() {
    Status s = OpenRocksStore(dir_, RocksStoreOptions(), &store_);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  TempDir tmp_;
  std::string dir_ = tmp_ / "state";
  std::unique_ptr<KvStore> store_;
};

class MemStoreHolder {
 public:
  static constexpr bool kPersistent = false;
  KvStore* store() { return store_.get(); }
  void Reopen() {}

 private:
  std::unique_ptr<KvStore> store_ = NewMemStore();
};

}  // namespace testing_util
}  // namespace ccmon
