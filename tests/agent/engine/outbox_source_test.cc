// OutboxShardSource: the agent's outbox as the queue manager's source; what it reports for the
// append -> ack lag histogram.
#include "agent/engine/outbox_source.h"

#include <gtest/gtest.h>

#include <vector>

#include "store/mem_store.h"
#include "testing/fake_clock.h"

namespace ccmon::agent {
namespace {

using ccmon::testing_util::FakeClock;

AckResult Ack(AckResult::Kind kind) {
  AckResult r;
  r.kind = kind;
  return r;
}

struct Fixture {
  std::unique_ptr<KvStore> store = NewMemStore();
  std::unique_ptr<Outbox> outbox;
  FakeClock clock;
  std::vector<double> lags;

  Fixture() { EXPECT_TRUE(Outbox::Open(store.get(), OutboxOptions{}, 2, &outbox).ok()); }
  void Add(uint32_t shard, int64_t created_ms) {
    WriteBatch batch;
    ASSERT_TRUE(outbox->Stage(shard, created_ms, 1, "x", &batch).ok());
    ASSERT_TRUE(store->Write(batch, true).ok());
    outbox->Committed();
  }
};

TEST(OutboxShardSource, ASentRequestObservesTheLagOfItsOldestEntry) {
  Fixture f;
  const int64_t t0 = f.clock.NowUnixMs();
  f.Add(1, t0 - 2500);
  f.Add(1, t0 - 100);
  OutboxShardSource source(f.outbox.get(), 1, &f.clock, [&](double s) { f.lags.push_back(s); });
  SourceBatch b;
  ASSERT_TRUE(source.Peek(100, 1 << 20, &b).ok());
  ASSERT_EQ(b.entries, 2u);
  f.clock.AdvanceBy(std::chrono::milliseconds(500));
  ASSERT_TRUE(source.Ack(b.through_cursor, Ack(AckResult::Kind::kSent)).ok());
  EXPECT_EQ(f.lags, std::vector<double>{3.0});
  EXPECT_EQ(f.outbox->Stats().total.entries, 0u);
}

TEST(OutboxShardSource, RejectionsAndAClockSteppedBackObserveNoNegativeLag) {
  Fixture f;
  const int64_t t0 = f.clock.NowUnixMs();
  f.Add(0, t0 - 1000);
  OutboxShardSource source(f.outbox.get(), 0, &f.clock, [&](double s) { f.lags.push_back(s); });
  SourceBatch b;
  ASSERT_TRUE(source.Peek(100, 1 << 20, &b).ok());
  ASSERT_TRUE(source.Ack(b.through_cursor, Ack(AckResult::Kind::kRejected)).ok());
  EXPECT_TRUE(f.lags.empty());  // refused samples never arrived: no lag to show
  EXPECT_EQ(source.rejected_batches(), 1u);

  f.Add(0, t0 + 60000);  // created by a clock ahead of ours
  ASSERT_TRUE(source.Peek(100, 1 << 20, &b).ok());
  ASSERT_TRUE(source.Ack(b.through_cursor, Ack(AckResult::Kind::kSent)).ok());
  EXPECT_EQ(f.lags, std::vector<double>{0.0});
}

TEST(OutboxShardSource, WithoutAnObserverNothingIsObserved) {
  Fixture f;
  f.Add(0, f.clock.NowUnixMs());
  OutboxShardSource source(f.outbox.get(), 0);
  SourceBatch b;
  ASSERT_TRUE(source.Peek(100, 1 << 20, &b).ok());
  EXPECT_TRUE(source.Ack(b.through_cursor, Ack(AckResult::Kind::kSent)).ok());
  EXPECT_EQ(f.outbox->Stats().total.entries, 0u);
}

}  // namespace
}  // namespace ccmon::agent
