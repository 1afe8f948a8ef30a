// The outbox (store/outbox.h): order, merging into batches, recovery after a reopen, staging
// that only commits make visible, limits, waiting, and failures of the store underneath.
#include "store/outbox.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <random>
#include <stop_token>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "store/mem_store.h"
#include "store/store_test_util.h"
#include "testing/fault_store.h"

namespace ccmon {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;
using testing_util::Dump;
using testing_util::FaultStore;
using testing_util::RocksStoreHolder;

constexpr int64_t kT0 = 1767225600000;  // 2026-01-01T00:00:00Z

// The store's records other than the outbox's shard-count record (which Open writes).
std::vector<std::pair<std::string, std::string>> Records(KvStore* store) {
  auto all = Dump(store);
  std::erase_if(all, [](const auto& kv) { return kv.first == kOutboxShardCountKey; });
  return all;
}

std::unique_ptr<Outbox> OpenOrDie(KvStore* store, int shards,
                                  OutboxOptions options = OutboxOptions()) {
  std::unique_ptr<Outbox> outbox;
  Status s = Outbox::Open(store, options, shards, &outbox);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return outbox;
}

// Stages one entry in a batch of its own (with an unrelated key, as the agent's offsets would
// be), writes it and commits it.
void Append(Outbox* outbox, KvStore* store, uint32_t shard, int64_t created, uint32_t samples,
            const std::string& payload) {
  WriteBatch batch;
  batch.Put("f/offset", payload);
  ASSERT_TRUE(outbox->Stage(shard, created, samples, payload, &batch).ok());
  Status s = store->Write(batch, false);
  ASSERT_TRUE(s.ok()) << s.ToString();
  outbox->Committed();
}

// Peeks everything of a shard, one batch at a time, removing each: the payloads in order.
std::vector<std::string> Drain(Outbox* outbox, uint32_t shard, size_t max_samples = 1000000) {
  std::vector<std::string> out;
  for (;;) {
    OutboxBatch batch;
    Status s = outbox->Peek(shard, max_samples, size_t(1) << 30, &batch);
    EXPECT_TRUE(s.ok()) << s.ToString();
    if (!s.ok() || batch.empty()) break;
    out.push_back(batch.payload);
    s = outbox->Remove(shard, batch.last_seq);
    EXPECT_TRUE(s.ok()) << s.ToString();
    if (!s.ok()) break;
  }
  return out;
}

TEST(OutboxTest, KeyLayout) {
  EXPECT_EQ(OutboxKey(3, 0x0102030405060708),
            std::string("o\x03\x01\x02\x03\x04\x05\x06\x07\x08", 10));
  // Big-endian sequences sort numerically; shards sort before sequences.
  EXPECT_LT(OutboxKey(0, 255), OutboxKey(0, 256));
  EXPECT_LT(OutboxKey(0, ~uint64_t(0)), OutboxKey(1, 0));
  EXPECT_LT(OutboxKey(254, 0), OutboxKey(255, 0));
}

// The example of docs/store-format.md, "Outbox keys", byte for byte.
TEST(OutboxTest, DocumentedExample) {
  auto store = NewMemStore();
  auto outbox = OpenOrDie(store.get(), 3);
  WriteBatch batch;
  for (uint64_t i = 0; i < 301; ++i) {
    ASSERT_TRUE(outbox->Stage(2, kT0, 12, "PPPPP", &batch).ok());
  }
  const WriteBatch::Op& op = batch.ops().back();
  EXPECT_EQ(op.key, std::string("\x6f\x02\x00\x00\x00\x00\x00\x00\x01\x2c", 10));
  EXPECT_EQ(op.value, std::string("\x01\x00\xa8\xda\x76\x9b\x01\x00\x00\x0c\x00\x00\x00"
                                  "\x05\x00\x00\x00PPPPP",
                                  22));
}

TEST(OutboxTest, EntriesComeOutInOrderWithTheirHeader) {
  auto store = NewMemStore();
  auto outbox = OpenOrDie(store.get(), 1);
  Append(outbox.get(), store.get(), 0, kT0 + 5, 2, "first|");
  Append(outbox.get(), store.get(), 0, kT0 + 3, 3, "second|");  // a clock that stepped back
  Append(outbox.get(), store.get(), 0, kT0 + 9, 4, "third|");

  OutboxBatch batch;
  ASSERT_TRUE(outbox->Peek(0, 100, 1 << 20, &batch).ok());
  EXPECT_EQ(batch.payload, "first|second|third|");
  EXPECT_EQ(batch.entries, 3u);
  EXPECT_EQ(batch.samples, 9u);
  EXPECT_EQ(batch.oldest_created_ms, kT0 + 3);
  EXPECT_EQ(batch.first_seq, 0u);
  EXPECT_EQ(batch.last_seq, 2u);

  // The stored value: version 1, created (LE int64), samples (LE u32), length (LE u32), payload.
  std::string value;
  ASSERT_TRUE(store->Get(OutboxKey(0, 1), &value).ok());
  std::string want("\x01", 1);
  for (int i = 0; i < 8; ++i) want.push_back(char(uint8_t(uint64_t(kT0 + 3) >> (8 * i))));
  want += std::string("\x03\0\0\0\x07\0\0\0", 8) + "second|";
  EXPECT_EQ(value, want);

  // Peek does not consume: the same batch again.
  OutboxBatch again;
  ASSERT_TRUE(outbox->Peek(0, 100, 1 << 20, &again).ok());
  EXPECT_EQ(again.payload, batch.payload);
  ASSERT_TRUE(outbox->Remove(0, batch.last_seq).ok());
  ASSERT_TRUE(outbox->Peek(0, 100, 1 << 20, &again).ok());
  EXPECT_TRUE(again.empty());
  EXPECT_EQ(Records(store.get()).size(), 1u);  // only f/offset is left
}

TEST(OutboxTest, PeekMergesUpToMaxSamplesAndMaxBytes) {
  auto store = NewMemStore();
  auto outbox = OpenOrDie(store.get(), 1);
  const std::vector<uint32_t> samples = {3, 4, 5, 10, 1, 0, 2};
  for (size_t i = 0; i < samples.size(); ++i) {
    Append(outbox.get(), store.get(), 0, kT0 + int64_t(i), samples[i],
           "[" + std::to_string(i) + "]");
  }
  std::vector<std::pair<std::string, uint64_t>> got;
  for (;;) {
    OutboxBatch b;
    ASSERT_TRUE(outbox->Peek(0, 8, 1 << 20, &b).ok());
    if (b.empty()) break;
    got.emplace_back(b.payload, b.samples);
    ASSERT_TRUE(outbox->Remove(0, b.last_seq).ok());
  }
  // 3+4 (adding 5 would exceed 8); 5 (adding 10 would); 10 alone although over the limit;
  // 1+0+2.
  EXPECT_EQ(got, (std::vector<std::pair<std::string, uint64_t>>{
                     {"[0][1]", 7}, {"[2]", 5}, {"[3]", 10}, {"[4][5][6]", 3}}));

  for (int i = 0; i < 4; ++i) Append(outbox.get(), store.get(), 0, kT0, 1, "12345");
  OutboxBatch b;
  ASSERT_TRUE(outbox->Peek(0, 100, 12, &b).ok());  // two payloads fit in 12 bytes, not three
  EXPECT_EQ(b.entries, 2u);
  ASSERT_TRUE(outbox->Peek(0, 0, 0, &b).ok());  // limits of 0: still one entry
  EXPECT_EQ(b.entries, 1u);
  EXPECT_EQ(b.payload, "12345");
}

TEST(OutboxTest, ShardsAreIndependentQueues) {
  auto store = NewMemStore();
  auto outbox = OpenOrDie(store.get(), 3);
  WriteBatch batch;  // one batch feeding several shards
  ASSERT_TRUE(outbox->Stage(2, kT0, 1, "c0", &batch).ok());
  ASSERT_TRUE(outbox->Stage(0, kT0, 1, "a0", &batch).ok());
  ASSERT_TRUE(outbox->Stage(2, kT0, 1, "c1", &batch).ok());
  ASSERT_TRUE(store->Write(batch, true).ok());
  outbox->Committed();
  EXPECT_EQ(Drain(outbox.get(), 0), std::vector<std::string>{"a0"});
  EXPECT_EQ(Drain(outbox.get(), 1), std::vector<std::string>{});
  EXPECT_EQ(Drain(outbox.get(), 2), std::vector<std::string>{"c0c1"});
}

TEST(OutboxTest, StagedEntriesAreInvisibleUntilCommitted) {
  auto store = NewMemStore();
  auto outbox = OpenOrDie(store.get(), 1);
  WriteBatch batch;
  ASSERT_TRUE(outbox->Stage(0, kT0, 5, "payload", &batch).ok());
  OutboxBatch b;
  ASSERT_TRUE(outbox->Peek(0, 100, 1 << 20, &b).ok());
  EXPECT_TRUE(b.empty());
  ASSERT_TRUE(store->Write(batch, true).ok());
  // Durable now, but not yet reported so: still invisible, and not counted.
  ASSERT_TRUE(outbox->Peek(0, 100, 1 << 20, &b).ok());
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(outbox->Stats().total.entries, 0u);
  EXPECT_FALSE(outbox->WaitForEntries(0, steady_clock::now(), std::stop_token()));
  outbox->Committed();
  ASSERT_TRUE(outbox->Peek(0, 100, 1 << 20, &b).ok());
  EXPECT_EQ(b.payload, "payload");
  EXPECT_TRUE(outbox->WaitForEntries(0, steady_clock::now(), std::stop_token()));
}

TEST(OutboxTest, AbandonLeavesNothing) {
  auto mem = NewMemStore();
  FaultStore store(mem.get());
  auto outbox = OpenOrDie(&store, 2);
  WriteBatch batch;
  ASSERT_TRUE(outbox->Stage(0, kT0, 5, "lost", &batch).ok());
  ASSERT_TRUE(outbox->Stage(1, kT0, 5, "lost too", &batch).ok());
  store.FailNthWrite(1);
  EXPECT_FALSE(store.Write(batch, true).ok());
  outbox->Abandon();
  EXPECT_EQ(outbox->Stats().total.entries, 0u);
  EXPECT_EQ(Drain(outbox.get(), 0), std::vector<std::string>{});
  EXPECT_TRUE(Records(mem.get()).empty());
  // The next entry works as usual (with a sequence of its own), and a reopen finds only it.
  Append(outbox.get(), &store, 0, kT0, 1, "kept");
  EXPECT_EQ(Records(mem.get()).size(), 2u);  // the entry and f/offset
  outbox = OpenOrDie(&store, 2);
  EXPECT_EQ(outbox->Stats().total.entries, 1u);
  EXPECT_EQ(Drain(outbox.get(), 0), std::vector<std::string>{"kept"});
}

// The write reported failure but reached the store (a lost acknowledgement): the entry stays
// invisible in this process, is not overwritten, and appears once after a reopen.
TEST(OutboxTest, FailedWriteThatLandedAppearsOnceAfterReopen) {
  auto mem = NewMemStore();
  FaultStore store(mem.get());
  auto outbox = OpenOrDie(&store, 1);
  Append(outbox.get(), &store, 0, kT0, 1, "a");
  store.set_keep_failed_writes(true);
  store.FailNthWrite(1);
  WriteBatch batch;
  ASSERT_TRUE(outbox->Stage(0, kT0 + 1, 1, "ghost", &batch).ok());
  EXPECT_FALSE(store.Write(batch, true).ok());
  outbox->Abandon();
  Append(outbox.get(), &store, 0, kT0 + 2, 1, "b");
  EXPECT_EQ(outbox->Stats().total.entries, 2u);
  EXPECT_EQ(Drain(outbox.get(), 0, 1), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(outbox->Stats().total.entries, 0u);

  store.LandFailedWrites();  // a restart finds the failed write durable after all
  outbox = OpenOrDie(&store, 1);
  EXPECT_EQ(outbox->Stats().total.entries, 1u);
  EXPECT_EQ(Drain(outbox.get(), 0), std::vector<std::string>{"ghost"});
  EXPECT_EQ(Records(mem.get()).size(), 1u);  // f/offset
}

TEST(OutboxTest, ReopenOnRocksRecoversExactlyTheCommittedEntries) {
  RocksStoreHolder rocks;
  {
    auto outbox = OpenOrDie(rocks.store(), 3);
    for (int i = 0; i < 10; ++i) {
      Append(outbox.get(), rocks.store(), i % 3, kT0 + i, uint32_t(i), "e" + std::to_string(i));
    }
    // Shard 0 holds e0 e3 e6 e9: remove e0 and e3.
    OutboxBatch b;
    ASSERT_TRUE(outbox->Peek(0, 3, 1 << 20, &b).ok());
    EXPECT_EQ(b.payload, "e0e3");
    ASSERT_TRUE(outbox->Remove(0, b.last_seq).ok());
    // Staged but never written: must not come back.
    WriteBatch unwritten;
    ASSERT_TRUE(outbox->Stage(1, kT0, 1, "never", &unwritten).ok());
    outbox->Abandon();
  }
  rocks.Reopen();
  auto outbox = OpenOrDie(rocks.store(), 3);
  OutboxStats st = outbox->Stats();
  EXPECT_EQ(st.total.entries, 8u);
  EXPECT_EQ(st.total.samples, 45u - 0 - 3);
  EXPECT_EQ(st.shards[0].entries, 2u);
  EXPECT_EQ(st.shards[0].oldest_created_ms, kT0 + 6);
  EXPECT_EQ(st.total.oldest_created_ms, kT0 + 1);
  EXPECT_EQ(st.corrupt_dropped, 0u);
  // New entries go after the recovered ones.
  Append(outbox.get(), rocks.store(), 0, kT0 + 20, 1, "new");
  EXPECT_EQ(Drain(outbox.get(), 0), (std::vector<std::string>{"e6e9new"}));
  EXPECT_EQ(Drain(outbox.get(), 1, 5), (std::vector<std::string>{"e1e4", "e7"}));
  EXPECT_EQ(Drain(outbox.get(), 2), (std::vector<std::string>{"e2e5e8"}));
  rocks.Reopen();
  outbox = OpenOrDie(rocks.store(), 3);
  EXPECT_EQ(outbox->Stats().total.entries, 0u);
  EXPECT_EQ(Records(rocks.store()).size(), 1u);  // f/offset
}

TEST(OutboxTest, RemoveIsASyncWriteAndChecksItsRange) {
  auto mem = NewMemStore();
  FaultStore store(mem.get());
  auto outbox = OpenOrDie(&store, 1);
  Append(outbox.get(), &store, 0, kT0, 1, "a");
  Append(outbox.get(), &store, 0, kT0, 1, "b");
  const int syncs = store.sync_writes();
  ASSERT_TRUE(outbox->Remove(0, 0).ok());
  EXPECT_EQ(store.sync_writes(), syncs + 1);
  EXPECT_TRUE(outbox->Remove(0, 0).ok());  // already gone: nothing to do
  EXPECT_EQ(store.sync_writes(), syncs + 1);
  Status s = outbox->Remove(0, 2);  // beyond the tail
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << s.ToString();
  EXPECT_EQ(outbox->Remove(5, 0).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(Drain(outbox.get(), 0), std::vector<std::string>{"b"});
}

TEST(OutboxTest, InvalidArguments) {
  auto store = NewMemStore();
  std::unique_ptr<Outbox> outbox;
  EXPECT_EQ(Outbox::Open(store.get(), OutboxOptions(), 0, &outbox).code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(Outbox::Open(store.get(), OutboxOptions(), 257, &outbox).code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(Outbox::Open(nullptr, OutboxOptions(), 1, &outbox).code(),
            Status::Code::kInvalidArgument);
  OutboxOptions negative;
  negative.max_age = milliseconds(-1);
  EXPECT_EQ(Outbox::Open(store.get(), negative, 1, &outbox).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(outbox, nullptr);

  outbox = OpenOrDie(store.get(), 256);
  WriteBatch batch;
  EXPECT_TRUE(outbox->Stage(255, kT0, 1, "x", &batch).ok());
  EXPECT_EQ(outbox->Stage(256, kT0, 1, "x", &batch).code(), Status::Code::kInvalidArgument);
  std::string huge(kMaxOutboxPayloadBytes + 1, 'p');
  EXPECT_EQ(outbox->Stage(0, kT0, 1, huge, &batch).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(batch.count(), 1u);  // the refused ones added nothing
  OutboxBatch b;
  EXPECT_EQ(outbox->Peek(256, 1, 1, &b).code(), Status::Code::kInvalidArgument);
  EXPECT_FALSE(outbox->WaitForEntries(256, steady_clock::now(), std::stop_token()));
}

TEST(OutboxTest, HostileHeaderValues) {
  auto store = NewMemStore();
  auto outbox = OpenOrDie(store.get(), 1);
  const int64_t kMin = std::numeric_limits<int64_t>::min();
  const int64_t kMax = std::numeric_limits<int64_t>::max();
  Append(outbox.get(), store.get(), 0, kMin, UINT32_MAX, "");
  Append(outbox.get(), store.get(), 0, kMax, UINT32_MAX, "x");
  Append(outbox.get(), store.get(), 0, -1, 0, std::string("\0\xff", 2));
  OutboxStats st = outbox->Stats();
  EXPECT_EQ(st.total.samples, 2 * uint64_t(UINT32_MAX));  // no 32-bit wrap
  EXPECT_EQ(st.total.oldest_created_ms, kMin);
  OutboxBatch b;
  ASSERT_TRUE(outbox->Peek(0, SIZE_MAX, SIZE_MAX, &b).ok());
  EXPECT_EQ(b.entries, 3u);
  EXPECT_EQ(b.samples, 2 * uint64_t(UINT32_MAX));
  EXPECT_EQ(b.payload, std::string("x\0\xff", 3));
  EXPECT_EQ(b.oldest_created_ms, kMin);
  // A limit check at the extremes of the clock does not overflow.
  OutboxDropStats dropped;
  ASSERT_TRUE(outbox->EnforceLimits(kMin, &dropped).ok());
  EXPECT_TRUE(dropped.empty());
  ASSERT_TRUE(outbox->EnforceLimits(kMax, &dropped).ok());
  EXPECT_EQ(dropped.entries, 1u);  // the head; the next one, created at kMax, stops the drop
}

TEST(OutboxTest, DamagedEntriesAreDroppedAtOpenAndReportedByPeek) {
  auto store = NewMemStore();
  {
    auto outbox = OpenOrDie(store.get(), 2);
    Append(outbox.get(), store.get(), 0, kT0, 1, "good0");
    Append(outbox.get(), store.get(), 0, kT0, 1, "good1");
  }
  WriteBatch damage;
  damage.Put(std::string("o\x00", 2), "short key");
  damage.Put(OutboxKey(1, 7), "not a header");
  std::string truncated;
  ASSERT_TRUE(store->Get(OutboxKey(0, 1), &truncated).ok());
  damage.Put(OutboxKey(0, 9), truncated.substr(0, truncated.size() - 1));
  damage.Put("p-not-ours", "x");  // keys of other owners are left alone
  ASSERT_TRUE(store->Write(damage, true).ok());

  auto outbox = OpenOrDie(store.get(), 2);
  OutboxStats st = outbox->Stats();
  EXPECT_EQ(st.corrupt_dropped, 3u);
  EXPECT_EQ(st.total.entries, 2u);
  std::string v;
  EXPECT_EQ(store->Get(OutboxKey(1, 7), &v).code(), Status::Code::kNotFound);
  EXPECT_TRUE(store->Get("p-not-ours", &v).ok());

  // Damage after the open (a disk that changes data under us): Peek names the entry, hands out
  // what precedes it, and Remove gets past it.
  WriteBatch later;
  later.Put(OutboxKey(0, 1), "\x01garbage");
  ASSERT_TRUE(store->Write(later, true).ok());
  OutboxBatch b;
  ASSERT_TRUE(outbox->Peek(0, 100, 1 << 20, &b).ok());
  EXPECT_EQ(b.payload, "good0");
  ASSERT_TRUE(outbox->Remove(0, b.last_seq).ok());
  Status s = outbox->Peek(0, 100, 1 << 20, &b);
  EXPECT_EQ(s.code(), Status::Code::kCorruption);
  EXPECT_NE(s.message().find("outbox shard 0 entry 1"), std::string::npos) << s.message();
  ASSERT_TRUE(outbox->Remove(0, 1).ok());
  EXPECT_EQ(outbox->Stats().total.entries, 0u);
}

// Open's write (the shard count, damaged keys' deletes) is not synced: a first start waited
// for its fsync; the synced batch that queues an entry makes it durable (docs/store-format.md).
TEST(OutboxTest, OpenRecordsTheShardCountWithoutSyncing) {
  auto mem = NewMemStore();
  FaultStore store(mem.get());
  auto outbox = OpenOrDie(&store, 4);
  EXPECT_EQ(store.writes(), 1);
  EXPECT_EQ(store.sync_writes(), 0);
  std::string v;
  ASSERT_TRUE(mem->Get(kOutboxShardCountKey, &v).ok());
  EXPECT_EQ(v, std::string("\x01\x04\x00", 3));
}

TEST(OutboxTest, ShardsBeyondTheRequestedCountAreKeptForDraining) {
  auto store = NewMemStore();
  {
    auto outbox = OpenOrDie(store.get(), 4);
    Append(outbox.get(), store.get(), 3, kT0, 1, "left in shard 3");
  }
  auto outbox = OpenOrDie(store.get(), 2);
  EXPECT_EQ(outbox->shard_count(), 4);
  EXPECT_EQ(outbox->Stats().shards.size(), 4u);
  EXPECT_EQ(Drain(outbox.get(), 3), std::vector<std::string>{"left in shard 3"});
  outbox = OpenOrDie(store.get(), 2);
  EXPECT_EQ(outbox->shard_count(), 2);
}

// A series keeps its order only within one shard: while samples are queued, a changed shard
// count would send a series' new samples through another shard, possibly before its queued
// ones (an out-of-order refusal upstream, and the samples lost). So the count the queue was
// sharded by is recorded and kept until a start finds the queue empty.
TEST(OutboxTest, TheShardCountOfQueuedEntriesIsKeptUntilTheQueueIsEmpty) {
  auto store = NewMemStore();
  {
    auto outbox = OpenOrDie(store.get(), 8);
    Append(outbox.get(), store.get(), 5, kT0, 1, "five");
    Append(outbox.get(), store.get(), 1, kT0, 1, "one");
  }
  // Fewer shards wanted: still 8 (not 6, the highest non-empty shard plus one).
  auto outbox = OpenOrDie(store.get(), 4);
  EXPECT_EQ(outbox->shard_count(), 8);
  outbox = OpenOrDie(store.get(), 16);  // more wanted: still 8
  EXPECT_EQ(outbox->shard_count(), 8);
  EXPECT_EQ(Drain(outbox.get(), 5), std::vector<std::string>{"five"});
  outbox = OpenOrDie(store.get(), 16);
  EXPECT_EQ(outbox->shard_count(), 8);  // shard 1 still holds an entry
  EXPECT_EQ(Drain(outbox.get(), 1), std::vector<std::string>{"one"});
  outbox = OpenOrDie(store.get(), 16);  // empty: the new count applies and is recorded
  EXPECT_EQ(outbox->shard_count(), 16);
  Append(outbox.get(), store.get(), 15, kT0, 1, "fifteen");
  outbox = OpenOrDie(store.get(), 2);
  EXPECT_EQ(outbox->shard_count(), 16);
  std::string v;
  ASSERT_TRUE(store->Get(kOutboxShardCountKey, &v).ok());
  EXPECT_EQ(v, std::string("\x01\x10\x00", 3));  // version 1, 16 little-endian
  EXPECT_EQ(outbox->Stats().corrupt_dropped, 0u);
}

TEST(OutboxTest, AStoreWithoutARecordedShardCountKeepsItsHighestQueuedShard) {
  auto store = NewMemStore();
  {
    auto outbox = OpenOrDie(store.get(), 8);
    Append(outbox.get(), store.get(), 5, kT0, 1, "five");
  }
  WriteBatch forget;  // as written before the count was recorded
  forget.Delete(kOutboxShardCountKey);
  ASSERT_TRUE(store->Write(forget, true).ok());
  auto outbox = OpenOrDie(store.get(), 2);
  EXPECT_EQ(outbox->shard_count(), 6);
  outbox = OpenOrDie(store.get(), 2);  // recorded now
  EXPECT_EQ(outbox->shard_count(), 6);
  outbox = OpenOrDie(store.get(), 7);
  EXPECT_EQ(outbox->shard_count(), 6);
}

TEST(OutboxTest, ADamagedShardCountRecordIsDroppedAndRewritten) {
  for (const std::string& bad :
       {std::string(), std::string("\x02\x04\x00", 3), std::string("\x01\x00\x00", 3),
        std::string("\x01\x01\x01", 3), std::string("\x01\x04", 2)}) {
    auto store = NewMemStore();
    WriteBatch b;
    b.Put(kOutboxShardCountKey, bad);
    ASSERT_TRUE(store->Write(b, true).ok());
    auto outbox = OpenOrDie(store.get(), 3);
    EXPECT_EQ(outbox->shard_count(), 3);
    EXPECT_EQ(outbox->Stats().corrupt_dropped, 1u);
    std::string v;
    ASSERT_TRUE(store->Get(kOutboxShardCountKey, &v).ok());
    EXPECT_EQ(v, std::string("\x01\x03\x00", 3));
  }
}

TEST(OutboxTest, LimitsDropOldestFirstAndCountIt) {
  auto store = NewMemStore();
  OutboxOptions options;
  options.max_bytes = 10;
  options.max_age = std::chrono::hours(1);
  auto outbox = OpenOrDie(store.get(), 2, options);
  // Payload bytes 4 each; created times interleave across shards.
  Append(outbox.get(), store.get(), 0, kT0 + 10, 1, "s0e0");
  Append(outbox.get(), store.get(), 1, kT0 + 5, 2, "s1e0");
  Append(outbox.get(), store.get(), 0, kT0 + 20, 3, "s0e1");
  Append(outbox.get(), store.get(), 1, kT0 + 30, 4, "s1e1");
  EXPECT_EQ(outbox->Stats().total.bytes, 16u);

  OutboxDropStats dropped;
  ASSERT_TRUE(outbox->EnforceLimits(kT0 + 40, &dropped).ok());
  // 16 > 10: drop s1e0 (oldest, 12 left), then s0e0 (8 left).
  EXPECT_EQ(dropped.entries, 2u);
  EXPECT_EQ(dropped.samples, 3u);
  EXPECT_EQ(dropped.bytes, 8u);
  EXPECT_EQ(dropped.by_size, 2u);
  EXPECT_EQ(dropped.by_age, 0u);
  OutboxStats st = outbox->Stats();
  EXPECT_EQ(st.total.bytes, 8u);
  EXPECT_EQ(st.shards[0].oldest_created_ms, kT0 + 20);
  EXPECT_EQ(st.shards[1].oldest_created_ms, kT0 + 30);
  EXPECT_EQ(st.dropped_total.entries, 2u);

  // Within limits: nothing happens (and nothing is written).
  OutboxDropStats none;
  ASSERT_TRUE(outbox->EnforceLimits(kT0 + 40, &none).ok());
  EXPECT_TRUE(none.empty());

  // An hour after s0e1 was created it is too old; s1e1 is 10 ms younger and stays.
  ASSERT_TRUE(outbox->EnforceLimits(kT0 + 20 + 3600 * 1000 + 1, &dropped).ok());
  EXPECT_EQ(dropped.entries, 3u);  // accumulated
  EXPECT_EQ(dropped.by_age, 1u);
  EXPECT_EQ(Drain(outbox.get(), 0), std::vector<std::string>{});
  EXPECT_EQ(Drain(outbox.get(), 1), std::vector<std::string>{"s1e1"});
  EXPECT_EQ(outbox->Stats().dropped_total.entries, 3u);
  EXPECT_EQ(Records(store.get()).size(), 1u);
}

TEST(OutboxTest, LimitsOnlyDropFromTheHead) {
  auto store = NewMemStore();
  OutboxOptions options;
  options.max_bytes = 0;
  options.max_age = milliseconds(100);
  auto outbox = OpenOrDie(store.get(), 1, options);
  Append(outbox.get(), store.get(), 0, kT0 + 1000, 1, "young head");
  Append(outbox.get(), store.get(), 0, kT0, 1, "old, behind it");  // clock stepped back
  OutboxDropStats dropped;
  ASSERT_TRUE(outbox->EnforceLimits(kT0 + 1050, &dropped).ok());
  EXPECT_TRUE(dropped.empty());
  ASSERT_TRUE(outbox->EnforceLimits(kT0 + 1101, &dropped).ok());
  EXPECT_EQ(dropped.entries, 2u);
}

TEST(OutboxTest, FailedLimitWriteDropsNothing) {
  auto mem = NewMemStore();
  FaultStore store(mem.get());
  OutboxOptions options;
  options.max_bytes = 1;
  auto outbox = OpenOrDie(&store, 1, options);
  Append(outbox.get(), &store, 0, kT0, 1, "abc");
  store.FailNthWrite(1);
  OutboxDropStats dropped;
  EXPECT_FALSE(outbox->EnforceLimits(kT0, &dropped).ok());
  EXPECT_TRUE(dropped.empty());
  EXPECT_EQ(outbox->Stats().total.entries, 1u);
  EXPECT_EQ(outbox->Stats().dropped_total.entries, 0u);
  ASSERT_TRUE(outbox->EnforceLimits(kT0, &dropped).ok());
  EXPECT_EQ(dropped.entries, 1u);
}

TEST(OutboxTest, StoreReadFailuresAreReported) {
  auto mem = NewMemStore();
  FaultStore store(mem.get());
  auto outbox = OpenOrDie(&store, 1);
  for (int i = 0; i < 5; ++i) Append(outbox.get(), &store, 0, kT0, 1, "e");
  store.FailIterators(true, 2);
  OutboxBatch b;
  EXPECT_EQ(outbox->Peek(0, 100, 1 << 20, &b).code(), Status::Code::kIoError);
  EXPECT_TRUE(b.empty());  // nothing half-read is handed out
  EXPECT_EQ(outbox->Remove(0, 4).code(), Status::Code::kIoError);
  EXPECT_EQ(outbox->EnforceLimits(kT0 + 1, nullptr).code(), Status::Code::kOk);  // no limits
  std::unique_ptr<Outbox> reopened;
  EXPECT_EQ(Outbox::Open(&store, OutboxOptions(), 1, &reopened).code(), Status::Code::kIoError);
  EXPECT_EQ(reopened, nullptr);
  store.ClearFaults();
  EXPECT_EQ(Drain(outbox.get(), 0), std::vector<std::string>{"eeeee"});
}

// Random writes, sends and limit checks over a store that fails some writes and reads: every
// committed entry comes out exactly once, in order, and a reopen agrees with the model.
TEST(OutboxTest, StoreFailuresNeverLoseOrDuplicateEntries) {
  for (bool ack_lost : {false, true}) {
    SCOPED_TRACE(ack_lost ? "failed writes land" : "failed writes do not land");
    auto mem = NewMemStore();
    FaultStore store(mem.get());
    store.set_keep_failed_writes(ack_lost);
    auto outbox = OpenOrDie(&store, 2);
    std::mt19937 rng(ack_lost ? 11 : 5);
    std::map<uint32_t, std::vector<std::string>> pending, sent, ghosts;
    int next = 0;
    for (int step = 0; step < 600; ++step) {
      const uint32_t shard = rng() % 2;
      if (rng() % 4 == 0) store.FailNthWrite(1);
      if (rng() % 2 == 0) {
        std::string p = "<" + std::to_string(next++) + ">";
        WriteBatch batch;
        ASSERT_TRUE(outbox->Stage(shard, kT0 + step, 1, p, &batch).ok());
        if (store.Write(batch, false).ok()) {
          outbox->Committed();
          pending[shard].push_back(p);
        } else {
          outbox->Abandon();
          if (ack_lost) ghosts[shard].push_back(p);
        }
      } else {
        OutboxBatch b;
        if (rng() % 5 == 0) store.FailIterators(true, int(rng() % 3));
        Status s = outbox->Peek(shard, 1 + rng() % 4, 1 << 20, &b);
        store.FailIterators(false);
        if (!s.ok() || b.empty()) continue;
        // What Peek hands out is the head of the model, in order.
        std::string want;
        for (size_t i = 0; i < b.entries; ++i) want += pending[shard][i];
        ASSERT_EQ(b.payload, want);
        if (outbox->Remove(shard, b.last_seq).ok()) {
          auto& q = pending[shard];
          sent[shard].insert(sent[shard].end(), q.begin(), q.begin() + long(b.entries));
          q.erase(q.begin(), q.begin() + long(b.entries));
        }  // else: sent again later (at least once)
      }
      OutboxStats st = outbox->Stats();
      ASSERT_EQ(st.shards[shard].entries, pending[shard].size());
    }
    // The run did exercise what it is about.
    EXPECT_GT(store.failed_writes(), 50);
    EXPECT_GT(sent[0].size() + sent[1].size(), 100u);
    store.ClearFaults();
    for (uint32_t shard : {0u, 1u}) {
      std::vector<std::string> rest = Drain(outbox.get(), shard, 1);
      EXPECT_EQ(rest, pending[shard]);
    }
    // A restart brings back exactly the failed batches that landed anyway, once each (failed
    // Removes that land delete what is gone already).
    store.LandFailedWrites();
    outbox = OpenOrDie(&store, 2);
    for (uint32_t shard : {0u, 1u}) {
      EXPECT_EQ(Drain(outbox.get(), shard, 1), ghosts[shard]);
    }
    EXPECT_EQ(Records(mem.get()).size(), 0u);
  }
}

// --- Threads.

TEST(OutboxTest, WaitForEntriesWakesOnCommit) {
  auto store = NewMemStore();
  auto outbox = OpenOrDie(store.get(), 2);
  std::atomic<bool> waiting{false};
  std::atomic<int> result{-1};
  const auto start = steady_clock::now();
  std::thread waiter([&] {
    waiting = true;
    result =
        outbox->WaitForEntries(1, steady_clock::now() + std::chrono::minutes(5), std::stop_token())
            ? 1
            : 0;
  });
  while (!waiting.load()) std::this_thread::yield();
  Append(outbox.get(), store.get(), 0, kT0, 1, "other shard");  // does not satisfy shard 1
  EXPECT_EQ(result.load(), -1);
  Append(outbox.get(), store.get(), 1, kT0, 1, "x");
  waiter.join();
  EXPECT_EQ(result.load(), 1);
  // Woken by the commit, not by the 5-minute deadline.
  EXPECT_LT(steady_clock::now() - start, std::chrono::minutes(1));
}

TEST(OutboxTest, WaitForSamplesWaitsForEnough) {
  auto store = NewMemStore();
  auto outbox = OpenOrDie(store.get(), 1);
  std::atomic<int> result{-1};
  std::thread waiter([&] {
    result = outbox->WaitForSamples(0, 5, steady_clock::now() + std::chrono::minutes(5),
                                    std::stop_token())
                 ? 1
                 : 0;
  });
  Append(outbox.get(), store.get(), 0, kT0, 3, "three");
  EXPECT_NE(result.load(), 1);  // 3 < 5: still waiting (or not yet started)
  Append(outbox.get(), store.get(), 0, kT0, 2, "two");
  waiter.join();
  EXPECT_EQ(result.load(), 1);
}

TEST(OutboxTest, WaitForEntriesEndsOnStopAndDeadline) {
  auto store = NewMemStore();
  auto outbox = OpenOrDie(store.get(), 1);
  const auto start = steady_clock::now();
  std::atomic<int> result{-1};
  std::jthread waiter([&](std::stop_token stop) {
    result = outbox->WaitForEntries(0, steady_clock::now() + std::chrono::minutes(5), stop);
  });
  waiter.request_stop();
  waiter.join();
  EXPECT_EQ(result.load(), 0);
  EXPECT_LT(steady_clock::now() - start, std::chrono::minutes(1));

  std::stop_source stopped;
  stopped.request_stop();
  EXPECT_FALSE(outbox->WaitForEntries(0, steady_clock::now() + std::chrono::minutes(5),
                                      stopped.get_token()));
  EXPECT_FALSE(outbox->WaitForEntries(0, steady_clock::now() - milliseconds(1), {}));
}

// One writer, a reader per shard, limits and stats from another thread: every entry arrives
// once, in order per shard.
void RunConcurrentWriterReadersAndMaintenance(KvStore* store) {
  constexpr int kShards = 3, kEntries = 600;
  OutboxOptions no_limits;
  no_limits.max_bytes = 0;
  no_limits.max_age = milliseconds(0);
  auto outbox = OpenOrDie(store, kShards, no_limits);
  std::vector<std::vector<int>> received(kShards);
  std::atomic<bool> failed{false};
  std::vector<std::thread> readers;
  for (int shard = 0; shard < kShards; ++shard) {
    readers.emplace_back([&, shard] {
      const int want = kEntries / kShards;
      while (int(received[shard].size()) < want && !failed) {
        if (!outbox->WaitForEntries(shard, steady_clock::now() + std::chrono::minutes(1), {})) {
          failed = true;
          break;
        }
        OutboxBatch b;
        if (!outbox->Peek(shard, 7, 1 << 20, &b).ok() || b.empty()) {
          failed = true;
          break;
        }
        // Payloads are "<n>" back to back.
        for (size_t pos = 0; pos < b.payload.size();) {
          size_t close = b.payload.find('>', pos);
          received[shard].push_back(std::stoi(b.payload.substr(pos + 1, close - pos - 1)));
          pos = close + 1;
        }
        if (!outbox->Remove(shard, b.last_seq).ok()) failed = true;
      }
    });
  }
  std::atomic<bool> writing{true};
  std::thread maintenance([&] {
    while (writing) {
      if (!outbox->EnforceLimits(kT0, nullptr).ok()) failed = true;
      OutboxStats st = outbox->Stats();
      if (st.total.entries > uint64_t(kEntries)) failed = true;
    }
  });
  for (int i = 0; i < kEntries; ++i) {
    WriteBatch batch;
    ASSERT_TRUE(outbox->Stage(i % kShards, kT0 + i, 1, "<" + std::to_string(i) + ">", &batch).ok());
    ASSERT_TRUE(store->Write(batch, false).ok());
    outbox->Committed();
  }
  for (auto& t : readers) t.join();
  writing = false;
  maintenance.join();
  ASSERT_FALSE(failed.load());
  for (int shard = 0; shard < kShards; ++shard) {
    std::vector<int> want;
    for (int i = shard; i < kEntries; i += kShards) want.push_back(i);
    EXPECT_EQ(received[shard], want) << "shard " << shard;
  }
  EXPECT_EQ(outbox->Stats().total.entries, 0u);
}

TEST(OutboxTest, ConcurrentWriterReadersAndMaintenanceOnMem) {
  auto store = NewMemStore();
  RunConcurrentWriterReadersAndMaintenance(store.get());
}

TEST(OutboxTest, ConcurrentWriterReadersAndMaintenanceOnRocks) {
  if (testing_util::kUnderTsan) GTEST_SKIP() << testing_util::kRocksUnderTsan;
  RocksStoreHolder rocks;
  RunConcurrentWriterReadersAndMaintenance(rocks.store());
}

}  // namespace
}  // namespace ccmon
