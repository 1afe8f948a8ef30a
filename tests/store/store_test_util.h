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
