// The KvStore contract (store/kv_store.h), run over RocksStore and MemStore alike.
#include "store/kv_store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "store/store_test_util.h"

namespace ccmon {
namespace {

using testing_util::Dump;
using testing_util::MemStoreHolder;
using testing_util::RocksStoreHolder;
using KV = std::pair<std::string, std::string>;

std::string Bytes(std::initializer_list<int> bytes) {
  std::string s;
  for (int b : bytes) s.push_back(char(uint8_t(b)));
  return s;
}

template <typename Holder>
class KvStoreTest : public ::testing::Test {
 protected:
  KvStore* store() { return holder_.store(); }
  void Put(const std::string& k, const std::string& v, bool sync = false) {
    WriteBatch b;
    b.Put(k, v);
    Status s = store()->Write(b, sync);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  std::string GetOrDie(const std::string& k) {
    std::string v;
    Status s = store()->Get(k, &v);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return v;
  }
  bool Has(const std::string& k) {
    std::string v;
    Status s = store()->Get(k, &v);
    EXPECT_TRUE(s.ok() || s.code() == Status::Code::kNotFound) << s.ToString();
    return s.ok();
  }
  Holder holder_;
};

using Implementations = ::testing::Types<RocksStoreHolder, MemStoreHolder>;
class ImplementationNames {
 public:
  template <typename T>
  static std::string GetName(int) {
    return T::kPersistent ? "Rocks" : "Mem";
  }
};
TYPED_TEST_SUITE(KvStoreTest, Implementations, ImplementationNames);

TYPED_TEST(KvStoreTest, GetOfAbsentKeyIsNotFoundAndLeavesValue) {
  std::string v = "untouched";
  Status s = this->store()->Get("nope", &v);
  EXPECT_EQ(s.code(), Status::Code::kNotFound);
  EXPECT_EQ(v, "untouched");
}

TYPED_TEST(KvStoreTest, PutOverwriteDelete) {
  this->Put("k", "v1");
  EXPECT_EQ(this->GetOrDie("k"), "v1");
  this->Put("k", "v2");
  EXPECT_EQ(this->GetOrDie("k"), "v2");
  WriteBatch b;
  b.Delete("k");
  b.Delete("never-there");  // deleting an absent key is fine
  ASSERT_TRUE(this->store()->Write(b, true).ok());
  EXPECT_FALSE(this->Has("k"));
}

TYPED_TEST(KvStoreTest, BatchAppliesInOrder) {
  this->Put("b", "old");
  WriteBatch batch;
  batch.Put("a", "1");
  batch.Delete("a");  // put then delete: gone
  batch.Delete("b");
  batch.Put("b", "new");  // delete then put: there
  batch.Put("c", "x");
  batch.Put("c", "y");  // the last put wins
  EXPECT_EQ(batch.count(), 6u);
  EXPECT_EQ(batch.ApproximateBytes(), 1u + 1 + 1 + 1 + 1 + 3 + 1 + 1 + 1 + 1);
  ASSERT_TRUE(this->store()->Write(batch, false).ok());
  EXPECT_EQ(Dump(this->store()), (std::vector<KV>{{"b", "new"}, {"c", "y"}}));
  batch.Clear();
  EXPECT_EQ(batch.count(), 0u);
  EXPECT_EQ(batch.ApproximateBytes(), 0u);
  EXPECT_TRUE(this->store()->Write(batch, true).ok());  // an empty batch writes nothing
  EXPECT_EQ(Dump(this->store()).size(), 2u);
}

// The RocksDB store writes a batch's operations in key order (faster memtable inserts): the
// operations on each key must still apply in the order they were added, whatever lies between.
TYPED_TEST(KvStoreTest, OperationsOnOneKeyApplyInOrderAmongOthers) {
  WriteBatch batch;
  std::map<std::string, std::optional<std::string>> expected;
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; ++i) {
    const std::string key = "k" + std::to_string(rng() % 40);
    if (rng() % 3 == 0) {
      if (i % 2)
        batch.Delete(key);
      else
        batch.DeleteOwned(key);
      expected[key] = std::nullopt;
    } else {
      const std::string value = std::to_string(i);
      if (i % 2)
        batch.Put(key, value);
      else
        batch.PutOwned(key, value);
      expected[key] = value;
    }
  }
  ASSERT_TRUE(this->store()->Write(batch, false).ok());
  std::vector<KV> want;
  for (const auto& [k, v] : expected)
    if (v) want.push_back({k, *v});
  EXPECT_EQ(Dump(this->store()), want);
}

TYPED_TEST(KvStoreTest, InvalidBatchIsRejectedWhole) {
  WriteBatch batch;
  batch.Put("first", "1");
  batch.Put(std::string(kMaxKvKeyBytes + 1, 'k'), "v");
  Status s = this->store()->Write(batch, true);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << s.ToString();
  EXPECT_NE(s.message().find("operation 1"), std::string::npos) << s.message();
  EXPECT_FALSE(this->Has("first"));  // nothing of the batch was applied

  WriteBatch at_limit;
  at_limit.Put(std::string(kMaxKvKeyBytes, 'k'), "v");
  EXPECT_TRUE(this->store()->Write(at_limit, false).ok());
  EXPECT_EQ(this->GetOrDie(std::string(kMaxKvKeyBytes, 'k')), "v");
}

TYPED_TEST(KvStoreTest, KeysIterateInBytewiseOrder) {
  // Signed-char comparison would put 0x80 and 0xff before 'a'; the contract is unsigned.
  std::vector<std::string> keys = {Bytes({0xff}),
                                   "a",
                                   Bytes({0x80}),
                                   "",
                                   std::string("\0", 1),
                                   std::string("\0\0", 2),
                                   std::string("a\0", 2),
                                   "ab",
                                   Bytes({0x7f}),
                                   Bytes({0xff, 0x00}),
                                   "b"};
  for (const auto& k : keys) this->Put(k, "v:" + k);
  std::vector<std::string> want = keys;
  std::sort(want.begin(), want.end(), [](const std::string& x, const std::string& y) {
    int c = std::memcmp(x.data(), y.data(), std::min(x.size(), y.size()));
    return c != 0 ? c < 0 : x.size() < y.size();
  });
  std::vector<std::string> got;
  for (const auto& [k, v] : Dump(this->store())) {
    got.push_back(k);
    EXPECT_EQ(v, "v:" + k);
  }
  EXPECT_EQ(got, want);
  EXPECT_EQ(got.front(), "");
  EXPECT_EQ(got.back(), Bytes({0xff, 0x00}));
}

TYPED_TEST(KvStoreTest, SeekLandsOnFirstKeyNotLess) {
  for (const char* k : {"b", "d", "f"}) this->Put(k, "x");
  auto it = this->store()->NewIterator();
  EXPECT_FALSE(it->Valid());  // unpositioned
  it->Seek("c");
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key(), "d");
  it->Seek("d");
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key(), "d");
  it->Next();
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key(), "f");
  it->Next();
  EXPECT_FALSE(it->Valid());
  EXPECT_TRUE(it->status().ok());
  it->Seek("g");
  EXPECT_FALSE(it->Valid());
  it->Seek("");
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key(), "b");
}

TYPED_TEST(KvStoreTest, IteratorSeesSnapshotOfItsCreation) {
  this->Put("a", "1");
  this->Put("b", "2");
  auto before = this->store()->NewIterator();
  WriteBatch b;
  b.Put("a", "changed");
  b.Delete("b");
  b.Put("c", "3");
  ASSERT_TRUE(this->store()->Write(b, false).ok());
  std::vector<KV> seen;
  for (before->SeekToFirst(); before->Valid(); before->Next()) {
    seen.emplace_back(std::string(before->key()), std::string(before->value()));
  }
  EXPECT_EQ(seen, (std::vector<KV>{{"a", "1"}, {"b", "2"}}));
  EXPECT_EQ(Dump(this->store()), (std::vector<KV>{{"a", "changed"}, {"c", "3"}}));
}

TYPED_TEST(KvStoreTest, EmptyAndBinaryKeysAndValues) {
  const std::string nul_key("\0k\0", 3), nul_value("\0\xff\0v\0", 5);
  this->Put("", "empty key");
  this->Put("empty value", "");
  this->Put(nul_key, nul_value);
  EXPECT_EQ(this->GetOrDie(""), "empty key");
  EXPECT_EQ(this->GetOrDie("empty value"), "");
  EXPECT_TRUE(this->Has("empty value"));  // an empty value is not an absent key
  EXPECT_EQ(this->GetOrDie(nul_key), nul_value);
  EXPECT_FALSE(this->Has(std::string("\0k", 2)));  // a prefix up to the NUL is another key
  this->holder_.Reopen();
  if (TypeParam::kPersistent) {
    EXPECT_EQ(this->GetOrDie(""), "empty key");
    EXPECT_EQ(this->GetOrDie(nul_key), nul_value);
  }
}

TYPED_TEST(KvStoreTest, MegabyteValues) {
  std::mt19937_64 rng(7);
  std::vector<std::string> values;
  for (int i = 0; i < 5; ++i) {
    std::string v(size_t(1) << 20, '\0');
    for (char& c : v) c = char(rng());
    values.push_back(std::move(v));
  }
  WriteBatch batch;
  for (int i = 0; i < 5; ++i) batch.Put("big" + std::to_string(i), values[i]);
  ASSERT_TRUE(this->store()->Write(batch, true).ok());
  EXPECT_GE(this->store()->ApproximateBytes(), uint64_t(5) << 20);
  this->holder_.Reopen();
  if (!TypeParam::kPersistent) return;
  for (int i = 0; i < 5; ++i) EXPECT_EQ(this->GetOrDie("big" + std::to_string(i)), values[i]);
}

TYPED_TEST(KvStoreTest, ReopenKeepsSyncedAndUnsyncedWrites) {
  if (!TypeParam::kPersistent) GTEST_SKIP() << "MemStore keeps nothing across instances";
  this->Put("synced", "1", /*sync=*/true);
  this->Put("unsynced", "2", /*sync=*/false);  // survives a process exit, not a power loss
  this->Put("gone", "3");
  WriteBatch del;
  del.Delete("gone");
  ASSERT_TRUE(this->store()->Write(del, false).ok());
  this->holder_.Reopen();
  EXPECT_EQ(Dump(this->store()), (std::vector<KV>{{"synced", "1"}, {"unsynced", "2"}}));
  this->holder_.Reopen();  // and again, after a reopen that replayed the log
  EXPECT_EQ(Dump(this->store()).size(), 2u);
}

// Readers never see half a batch: every batch sets both keys to the same value.
TYPED_TEST(KvStoreTest, ConcurrentReadersSeeWholeBatches) {
  if (TypeParam::kPersistent && testing_util::kUnderTsan)
    GTEST_SKIP() << testing_util::kRocksUnderTsan;
  this->Put("left", "0");
  this->Put("right", "0");
  std::atomic<bool> done{false};
  std::atomic<int> torn{0}, reads{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&] {
      while (!done.load()) {
        auto it = this->store()->NewIterator();
        it->Seek("left");
        if (!it->Valid()) {
          ++torn;
          continue;
        }
        std::string left(it->value());
        it->Seek("right");
        if (!it->Valid() || it->value() != left) ++torn;
        ++reads;
      }
    });
  }
  for (int i = 1; i <= 2000; ++i) {
    WriteBatch b;
    b.Put("left", std::to_string(i));
    b.Put("right", std::to_string(i));
    ASSERT_TRUE(this->store()->Write(b, false).ok());
  }
  // Make sure the readers overlapped the writes at least a little before stopping them.
  while (reads.load() < 10) std::this_thread::yield();
  done = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(torn.load(), 0);
}

TYPED_TEST(KvStoreTest, ConcurrentWritersLoseNothing) {
  if (TypeParam::kPersistent && testing_util::kUnderTsan)
    GTEST_SKIP() << testing_util::kRocksUnderTsan;
  constexpr int kThreads = 4, kPerThread = 500;
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        WriteBatch b;
        b.Put("t" + std::to_string(t) + "/" + std::to_string(i), std::to_string(i));
        EXPECT_TRUE(this->store()->Write(b, i % 100 == 0).ok());
      }
    });
  }
  for (auto& t : writers) t.join();
  EXPECT_EQ(Dump(this->store()).size(), size_t(kThreads * kPerThread));
}

}  // namespace
}  // namespace ccmon

namespace ccmon {
namespace {

// IngestSorted: a table of ascending records lands whole, after the writes before it (its keys
// replace theirs), and survives a reopen; a failing fill or keys out of order add nothing.
TYPED_TEST(KvStoreTest, IngestSortedAddsTheTableWholeOrNothing) {
  this->Put("b", "old");
  this->Put("z", "kept");
  std::vector<KV> table;
  // ~1.8 MB: several of RocksDB's data blocks, and a failure after most of them were built.
  for (int i = 0; i < 12000; ++i) {
    char k[16];
    std::snprintf(k, sizeof k, "b%05d", i);
    table.emplace_back(k, std::string(size_t(i % 300), char('a' + i % 26)));
  }
  auto fill_all = [&](SortedTableSink* sink) {
    if (Status s = sink->Put("b", "new"); !s.ok()) return s;
    for (const auto& [k, v] : table)
      if (Status s = sink->Put(k, v); !s.ok()) return s;
    return Status::Ok();
  };
  // A fill that fails half way adds nothing, and its error is the call's.
  Status s = this->store()->IngestSorted(
      [&](SortedTableSink* sink) {
        if (Status ps = sink->Put("a", "1"); !ps.ok()) return ps;
        return Status::IoError("the scan failed");
      },
      true);
  EXPECT_EQ(s.code(), Status::Code::kIoError);
  EXPECT_EQ(s.message(), "the scan failed");
  // So does one that fails after most of the table was handed over.
  s = this->store()->IngestSorted(
      [&](SortedTableSink* sink) {
        if (Status ps = fill_all(sink); !ps.ok()) return ps;
        return Status::IoError("the scan failed late");
      },
      true);
  EXPECT_EQ(s.message(), "the scan failed late");
  // Keys out of order (or repeated) are refused, and add nothing.
  for (const std::vector<std::string>& keys :
       {std::vector<std::string>{"c", "b"}, std::vector<std::string>{"c", "c"}}) {
    s = this->store()->IngestSorted(
        [&](SortedTableSink* sink) {
          for (const std::string& k : keys)
            if (Status ps = sink->Put(k, "x"); !ps.ok()) return ps;
          return Status::Ok();
        },
        true);
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  }
  EXPECT_EQ(Dump(this->store()), (std::vector<KV>{{"b", "old"}, {"z", "kept"}}));
  // Nothing to add: OK, nothing added.
  ASSERT_TRUE(
      this->store()->IngestSorted([](SortedTableSink*) { return Status::Ok(); }, true).ok());

  ASSERT_TRUE(this->store()->IngestSorted(fill_all, true).ok());
  std::vector<KV> want = {{"b", "new"}};
  want.insert(want.end(), table.begin(), table.end());
  want.emplace_back("z", "kept");
  EXPECT_EQ(Dump(this->store()), want);
  // Later writes go over the table as over any write.
  this->Put("b00007", "changed");
  EXPECT_EQ(this->GetOrDie("b00007"), "changed");
  if (TypeParam::kPersistent) {
    this->holder_.Reopen();
    want[8].second = "changed";
    EXPECT_EQ(Dump(this->store()), want);
  }
}

}  // namespace
}  // namespace ccmon
