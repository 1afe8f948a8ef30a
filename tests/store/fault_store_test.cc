// FaultStore (tests/testing/fault_store.h) fails what it is told to, and only that.
#include "testing/fault_store.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "store/mem_store.h"
#include "store/store_test_util.h"

namespace ccmon {
namespace {

using testing_util::Dump;
using testing_util::FaultStore;

Status Put(KvStore* store, const std::string& k, bool sync = false) {
  WriteBatch b;
  b.Put(k, "v");
  return store->Write(b, sync);
}

TEST(FaultStoreTest, FailsTheNthWriteOnly) {
  auto mem = NewMemStore();
  FaultStore store(mem.get());
  ASSERT_TRUE(Put(&store, "before").ok());
  store.FailNthWrite(2);
  EXPECT_TRUE(Put(&store, "a").ok());
  Status s = Put(&store, "b", true);
  EXPECT_EQ(s.code(), Status::Code::kIoError);
  EXPECT_NE(s.message().find("injected"), std::string::npos);
  EXPECT_TRUE(Put(&store, "c").ok());
  EXPECT_EQ(Dump(mem.get()).size(), 3u);  // before, a, c
  EXPECT_EQ(store.writes(), 4);
  EXPECT_EQ(store.sync_writes(), 1);
  EXPECT_EQ(store.failed_writes(), 1);
}

TEST(FaultStoreTest, FailsEveryWriteAfterN) {
  auto mem = NewMemStore();
  FaultStore store(mem.get());
  store.FailWritesAfter(2);
  EXPECT_TRUE(Put(&store, "a").ok());
  EXPECT_TRUE(Put(&store, "b").ok());
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(Put(&store, "x" + std::to_string(i)).ok());
  store.ClearFaults();
  EXPECT_TRUE(Put(&store, "c").ok());
  EXPECT_EQ(Dump(mem.get()).size(), 3u);
  store.FailWritesAfter(0);
  EXPECT_FALSE(Put(&store, "d").ok());
}

TEST(FaultStoreTest, KeptFailedWritesLandLaterInOrder) {
  auto mem = NewMemStore();
  FaultStore store(mem.get());
  store.set_keep_failed_writes(true);
  store.FailWritesAfter(0);
  EXPECT_FALSE(Put(&store, "k").ok());
  WriteBatch del;
  del.Delete("k");
  del.Put("j", "v");
  EXPECT_FALSE(store.Write(del, true).ok());
  std::string v;
  EXPECT_EQ(store.Get("k", &v).code(), Status::Code::kNotFound);  // invisible meanwhile
  store.LandFailedWrites();
  EXPECT_EQ(Dump(mem.get()), (std::vector<std::pair<std::string, std::string>>{{"j", "v"}}));
}

TEST(FaultStoreTest, FailsGetsAndIterators) {
  auto mem = NewMemStore();
  FaultStore store(mem.get());
  for (const char* k : {"a", "b", "c"}) ASSERT_TRUE(Put(&store, k).ok());
  std::string v;
  store.FailGets(true);
  EXPECT_EQ(store.Get("a", &v).code(), Status::Code::kIoError);
  EXPECT_EQ(store.gets(), 1);
  store.FailIterators(true, 2);
  auto it = store.NewIterator();
  int seen = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next()) ++seen;
  EXPECT_EQ(seen, 2);
  EXPECT_EQ(it->status().code(), Status::Code::kIoError);
  store.ClearFaults();
  EXPECT_TRUE(store.Get("a", &v).ok());
  EXPECT_EQ(Dump(&store).size(), 3u);
}

}  // namespace
}  // namespace ccmon
