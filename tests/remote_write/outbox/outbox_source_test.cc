// OutboxShardSource: the agent's outbox as the queue manager's source; what it reports for the
// append -> ack lag histogram; a peeked batch never holds a series twice, so that a batch sent
// twice (an answer lost after the receiver stored it) is taken as duplicates of each series'
// newest sample instead of refused as out of order.
#include "remote_write/outbox/outbox_source.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "remote_write/write_request.h"
#include "store/mem_store.h"
#include "store/outbox.h"
#include "testing/fake_clock.h"

namespace ccmon {
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

constexpr int64_t kT0 = 1767225600000;  // 2026-01-01T00:00:00Z

// A serialized request with one sample per named series (series "a" is {__name__="m",k="a"}).
std::string Entry(const std::vector<std::string>& series, int64_t ts) {
  rw::WriteRequest r;
  for (const std::string& k : series) {
    r.series.push_back(rw::Series{{{"__name__", "m"}, {"k", k}}, {{ts, 1.0}}});
  }
  std::string proto;
  EXPECT_TRUE(rw::Serialize(r, &proto).ok());
  return proto;
}

class OutboxSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = NewMemStore();
    ASSERT_TRUE(Outbox::Open(store_.get(), OutboxOptions{}, 1, &outbox_).ok());
    source_ = std::make_unique<OutboxShardSource>(outbox_.get(), 0);
  }
  void Append(const std::string& payload, uint32_t samples) {
    WriteBatch batch;
    ASSERT_TRUE(outbox_->Stage(0, kT0, samples, payload, &batch).ok());
    ASSERT_TRUE(store_->Write(batch, true).ok());
    outbox_->Committed();
  }
  SourceBatch Peek(size_t max_samples = 2000) {
    SourceBatch b;
    EXPECT_TRUE(source_->Peek(max_samples, size_t(8) << 20, &b).ok());
    return b;
  }
  void Ack(const SourceBatch& b) { ASSERT_TRUE(source_->Ack(b.through_cursor, AckResult()).ok()); }

  std::unique_ptr<KvStore> store_;
  std::unique_ptr<Outbox> outbox_;
  std::unique_ptr<OutboxShardSource> source_;
};

TEST_F(OutboxSourceTest, EntriesOfDistinctSeriesMergeUpToTheLimits) {
  const std::string e1 = Entry({"a", "b"}, 1000), e2 = Entry({"c"}, 2000), e3 = Entry({"d"}, 3000);
  Append(e1, 2);
  Append(e2, 1);
  Append(e3, 1);
  SourceBatch b = Peek();
  EXPECT_EQ(b.entries, 3u);
  EXPECT_EQ(b.samples, 4u);
  EXPECT_EQ(b.payload, e1 + e2 + e3);
  EXPECT_FALSE(b.more);
  b = Peek(3);  // the sample limit still rules
  EXPECT_EQ(b.entries, 2u);
  EXPECT_EQ(b.payload, e1 + e2);
  EXPECT_TRUE(b.more);
}

TEST_F(OutboxSourceTest, ABatchCarriesItsIdentityWhenOneIsSet) {
  Append(Entry({"a"}, 1000), 1);
  EXPECT_TRUE(Peek().headers.empty());  // none set: plain remote-write
  source_->SetBatchIdentity("00112233445566ff", "aaaaaaaaaaaaaaaa");
  Append(Entry({"b"}, 2000), 1);
  SourceBatch b = Peek();
  const std::vector<HttpHeader> want = {{"X-Ccmon-Stream", "00112233445566ff"},
                                        {"X-Ccmon-Batch", "aaaaaaaaaaaaaaaa/0/0-1"}};
  EXPECT_EQ(b.headers, want);
  Ack(b);
  Append(Entry({"c"}, 3000), 1);
  EXPECT_EQ(Peek().headers[1].second, "aaaaaaaaaaaaaaaa/0/2-2");
}

TEST_F(OutboxSourceTest, ABatchEndsBeforeAnEntryThatRepeatsOneOfItsSeries) {
  const std::string e1 = Entry({"a", "b"}, 1000), e2 = Entry({"c"}, 2000);
  const std::string e3 = Entry({"d", "a"}, 3000), e4 = Entry({"e"}, 4000);
  const std::string e5 = Entry({"e", "a"}, 5000);
  Append(e1, 2);
  Append(e2, 1);
  Append(e3, 2);
  Append(e4, 1);
  Append(e5, 2);
  SourceBatch b = Peek();
  EXPECT_EQ(b.entries, 2u);
  EXPECT_EQ(b.samples, 3u);
  EXPECT_EQ(b.payload, e1 + e2);
  EXPECT_TRUE(b.more);  // the rest waits: send this one now
  // Peeking again (a retry after a restart) gives the same batch: resending it is harmless.
  EXPECT_EQ(Peek().payload, e1 + e2);
  Ack(b);
  b = Peek();
  EXPECT_EQ(b.payload, e3 + e4);
  EXPECT_TRUE(b.more);
  Ack(b);
  b = Peek();
  EXPECT_EQ(b.payload, e5);
  EXPECT_FALSE(b.more);
  size_t before = 0;
  bool repeat = true;
  ASSERT_TRUE(rw::SamplesBeforeRepeatedSeries(b.payload, &before, &repeat).ok());
  EXPECT_FALSE(repeat);
}

TEST_F(OutboxSourceTest, AnEntryIsNeverSplitEvenIfItRepeatsASeriesItself) {
  rw::WriteRequest r;
  r.series.push_back(rw::Series{{{"__name__", "n"}}, {{1000, 1.0}, {2000, 2.0}}});
  std::string twice;
  ASSERT_TRUE(rw::Serialize(r, &twice).ok());
  const std::string e2 = Entry({"a"}, 3000);
  Append(twice, 2);
  Append(e2, 1);
  SourceBatch b = Peek();
  EXPECT_EQ(b.entries, 1u);
  EXPECT_EQ(b.payload, twice);
  Ack(b);
  EXPECT_EQ(Peek().payload, e2);
}

TEST_F(OutboxSourceTest, AnUnparsablePayloadGoesAsItIs) {
  Append("\xff\xff", 1);
  Append(Entry({"a"}, 1000), 1);
  SourceBatch b = Peek();
  EXPECT_EQ(b.entries, 2u);  // the receiver judges it; nothing is lost or stuck here
}

rw::WriteRequest Parse(const std::string& proto) {
  std::string body;
  rw::Compress(proto, &body);
  rw::WriteRequest r;
  EXPECT_TRUE(rw::Decode(body, size_t(64) << 20, &r).ok());
  return r;
}

// A metadata-only WriteRequest of two families (what the agent sends is its whole catalogue:
// agent/engine/family_metadata.h).
std::string TwoFamiliesMetadata() {
  rw::WriteRequest request;
  request.metadata.push_back(
      rw::Metadata{rw::MetricKind::kCounter, "claude_cost_usd", "Cost in USD", "usd"});
  request.metadata.push_back(rw::Metadata{rw::MetricKind::kGauge, "g", "A gauge", ""});
  std::string proto;
  EXPECT_TRUE(rw::Serialize(request, &proto).ok());
  return proto;
}

// The families' metadata rides on the first batch, and again on the first batch after each
// interval once a batch carrying it was answered (taken or refused), never on every batch.
TEST(OutboxShardSource, MetadataGoesWithTheFirstBatchThenOncePerInterval) {
  auto store = NewMemStore();
  std::unique_ptr<Outbox> outbox;
  ASSERT_TRUE(Outbox::Open(store.get(), OutboxOptions{}, 1, &outbox).ok());
  FakeClock clock;
  OutboxShardSource source(outbox.get(), 0, &clock);
  source.SendMetadata(TwoFamiliesMetadata(), std::chrono::minutes(5));
  int64_t t = 1000;
  auto add = [&] {
    WriteBatch batch;
    ASSERT_TRUE(outbox->Stage(0, t, 1, Entry({"s" + std::to_string(t)}, t), &batch).ok());
    ASSERT_TRUE(store->Write(batch, true).ok());
    outbox->Committed();
    ++t;
  };
  auto peek = [&] {
    SourceBatch b;
    EXPECT_TRUE(source.Peek(2000, size_t(8) << 20, &b).ok());
    return b;
  };
  add();
  SourceBatch b = peek();
  rw::WriteRequest r = Parse(b.payload);
  ASSERT_EQ(r.series.size(), 1u);
  EXPECT_EQ(r.metadata.size(), 2u);
  bool cost = false;
  for (const rw::Metadata& m : r.metadata) {
    cost = cost || (m.family == "claude_cost_usd" && m.kind == rw::MetricKind::kCounter &&
                    m.unit == "usd" && !m.help.empty());
  }
  EXPECT_TRUE(cost);
  // Not answered yet (a retry peeks again): still carried.
  EXPECT_FALSE(Parse(peek().payload).metadata.empty());
  ASSERT_TRUE(source.Ack(b.through_cursor, Ack(AckResult::Kind::kSent)).ok());
  add();
  b = peek();
  EXPECT_TRUE(Parse(b.payload).metadata.empty());
  ASSERT_TRUE(source.Ack(b.through_cursor, Ack(AckResult::Kind::kSent)).ok());
  clock.AdvanceBy(std::chrono::minutes(5));
  add();
  b = peek();
  EXPECT_FALSE(Parse(b.payload).metadata.empty());
  ASSERT_TRUE(source.Ack(b.through_cursor, Ack(AckResult::Kind::kRejected)).ok());
  add();
  EXPECT_TRUE(Parse(peek().payload).metadata.empty());  // refused counts as answered
}

}  // namespace
}  // namespace ccmon
