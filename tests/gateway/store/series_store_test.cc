#include "gateway/store/series_store.h"

#include <gtest/gtest.h>
#include <snappy.h>

#include <atomic>
#include <bit>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <limits>
#include <mutex>
#include <random>
#include <thread>

#include "base/record_codec.h"
#include "gateway/store/exposition.h"
#include "store/mem_store.h"
#include "store/rocks_store.h"
#include "testing/fault_store.h"
#include "testing/temp_dir.h"

namespace ccmon::gateway {
namespace {

using testing_util::FaultStore;
using testing_util::TempDir;

IncomingSeries S(Labels labels, std::vector<rw::Sample> samples) {
  std::sort(labels.begin(), labels.end());
  return IncomingSeries{std::move(labels), std::move(samples)};
}

rw::Metadata Meta(std::string family, rw::MetricKind kind, std::string help = "h") {
  return rw::Metadata{kind, std::move(family), std::move(help), ""};
}

std::map<std::string, SeriesState> Snapshot(const SeriesStore& store) {
  std::map<std::string, SeriesState> out;
  store.Read([&](const SeriesTable& t) { out = t.series(); });
  return out;
}

std::string Exposed(const SeriesStore& store, ExpositionFormat f = ExpositionFormat::kText) {
  std::string out;
  store.Read([&](const SeriesTable& t) { WriteSeriesExposition(t, f, nullptr, &out); });
  return out;
}

TEST(SeriesKeyTest, RoundTripsAnyBytesAndPutsTheNameFirst) {
  Labels labels = {
      {"A", "upper sorts before __name__"}, {"__name__", "m"}, {"z", std::string("nul\0byte", 8)}};
  const std::string key = SeriesKey(labels);
  std::string name;
  ASSERT_TRUE(NameOfKey(key, &name).ok());
  EXPECT_EQ(name, "m");
  Labels back;
  ASSERT_TRUE(LabelsOfKey(key, &back).ok());
  EXPECT_EQ(back, labels);
  EXPECT_EQ(LabelsOfKey(key.substr(0, key.size() - 1), &back).code(), Status::Code::kCorruption);
  EXPECT_EQ(LabelsOfKey("\x05"
                        "ab",
                        &back)
                .code(),
            Status::Code::kCorruption);
}

TEST(SeriesTableTest, DuplicatesAreDroppedAndCountedResetsOnlyForCounters) {
  SeriesTable t;
  PlannedChanges c;
  ApplyResult r;
  t.Plan(
      {S({{"__name__", "x_total"}}, {{1000, 5}, {2000, 7}}), S({{"__name__", "g"}}, {{1000, 9}})},
      {}, &c, &r);
  EXPECT_EQ(r.accepted, 3u);
  EXPECT_EQ(r.new_series, 2u);
  t.Commit(c);
  // At or before the last timestamp: duplicates, whatever the value. Later and lower: a reset
  // for the counter (by its _total name, no metadata), not for the gauge-like name.
  t.Plan({S({{"__name__", "x_total"}}, {{2000, 99}, {1500, 1}, {3000, 2}}),
          S({{"__name__", "g"}}, {{1000, 1}, {4000, 3}})},
         {}, &c, &r);
  EXPECT_EQ(r.accepted, 2u);
  EXPECT_EQ(r.duplicates, 3u);
  EXPECT_EQ(r.counter_resets, 1u);
  EXPECT_EQ(r.new_series, 0u);
  t.Commit(c);
  EXPECT_EQ(t.series().at(SeriesKey({{"__name__", "x_total"}})).value, 2);
  EXPECT_EQ(t.series().at(SeriesKey({{"__name__", "g"}})).timestamp_ms, 4000);
}

// Entry pointers (IncomingSeries::entry) are valid for a generation: every table has its own,
// a copy or assignment a new one; a move carries the entries and the generation along.
TEST(SeriesTableTest, GenerationsFollowTheEntries) {
  SeriesTable a;
  const SeriesEntry* e = a.Put(SeriesKey({{"__name__", "up"}}), SeriesState{1, 2});
  EXPECT_EQ(a.FindEntry(e->first), e);
  EXPECT_EQ(a.FindEntry("nope"), nullptr);
  SeriesTable copy(a);
  EXPECT_NE(copy.generation(), a.generation());
  EXPECT_NE(copy.FindEntry(e->first), e);
  const uint64_t g = a.generation();
  SeriesTable moved(std::move(a));
  EXPECT_EQ(moved.generation(), g);
  EXPECT_EQ(moved.FindEntry(e->first), e);
  EXPECT_NE(a.generation(), g);  // NOLINT(bugprone-use-after-move): reset on purpose
  EXPECT_EQ(a.FindEntry(e->first), nullptr);
  SeriesTable assigned;
  const uint64_t before = assigned.generation();
  assigned = std::move(moved);
  EXPECT_EQ(assigned.generation(), g);
  EXPECT_NE(assigned.generation(), before);
  EXPECT_EQ(assigned.FindEntry(e->first), e);
  copy = assigned;
  EXPECT_NE(copy.generation(), g);
}

// A plan given a series by its table entry plans exactly what its key would.
TEST(SeriesTableTest, AnEntryPlansAsItsKey) {
  SeriesTable t;
  const Labels up = {{"__name__", "up_total"}};
  const SeriesEntry* e = t.Put(SeriesKey(up), SeriesState{10, 5});
  IncomingSeries by_entry({}, {{10, 9}, {11, 1}, {12, 2}});
  by_entry.entry = e;
  by_entry.generation = t.generation();
  const IncomingSeries by_labels(up, {{10, 9}, {11, 1}, {12, 2}});
  PlannedChanges a, b;
  ApplyResult ra, rb;
  std::vector<IncomingSeries> stored_a, stored_b;
  t.Plan({by_entry}, {}, &a, &ra, &stored_a);
  t.Plan({by_labels}, {}, &b, &rb, &stored_b);
  EXPECT_EQ(ra.accepted, rb.accepted);
  EXPECT_EQ(ra.duplicates, 1u);
  EXPECT_EQ(ra.counter_resets, rb.counter_resets);
  EXPECT_EQ(ra.counter_resets, 1u);
  ASSERT_EQ(a.series.size(), 1u);
  EXPECT_EQ(a.key(0), b.key(0));
  EXPECT_EQ(a.series[0].second, b.series[0].second);
  ASSERT_EQ(stored_a.size(), 1u);
  EXPECT_EQ(stored_a[0].entry, e);
  EXPECT_EQ(LabelsOf(stored_a[0]), up);
}

TEST(SeriesTableTest, OneSeriesManyTimesInOneRequestIsMergedInOrder) {
  // Prometheus's own sender puts one TimeSeries per sample.
  SeriesTable t;
  PlannedChanges c;
  ApplyResult r;
  t.Plan({S({{"__name__", "up"}, {"job", "a"}}, {{1000, 1}}),
          S({{"__name__", "up"}, {"job", "a"}}, {{2000, 0}}),
          S({{"__name__", "up"}, {"job", "a"}}, {{2000, 1}})},
         {Meta("up", rw::MetricKind::kGauge)}, &c, &r);
  EXPECT_EQ(r.accepted, 2u);
  EXPECT_EQ(r.duplicates, 1u);
  EXPECT_EQ(r.new_series, 1u);
  EXPECT_EQ(r.counter_resets, 0u);  // a gauge going down
  ASSERT_EQ(c.series.size(), 1u);
  EXPECT_EQ(c.series[0].second.timestamp_ms, 2000);
  EXPECT_EQ(c.series[0].second.value, 0);
}

TEST(SeriesTableTest, FamiliesFromMetadata) {
  SeriesTable t;
  t.PutMetadata(Meta("c", rw::MetricKind::kCounter));
  t.PutMetadata(Meta("h", rw::MetricKind::kHistogram));
  t.PutMetadata(Meta("s", rw::MetricKind::kSummary));
  t.PutMetadata(Meta("g", rw::MetricKind::kGauge));
  t.PutMetadata(Meta("p_total", rw::MetricKind::kCounter));  // Prometheus names it so
  EXPECT_EQ(t.Family("c_total").family, "c");
  EXPECT_EQ(t.Family("h_bucket").family, "h");
  EXPECT_EQ(t.Family("h_count").kind, rw::MetricKind::kHistogram);
  EXPECT_EQ(t.Family("s_sum").family, "s");
  EXPECT_EQ(t.Family("s_bucket").family, "s_bucket");  // summaries have no buckets
  EXPECT_EQ(t.Family("g_total").kind, rw::MetricKind::kUnknown);
  EXPECT_EQ(t.Family("p_total").family, "p_total");
  EXPECT_TRUE(t.IsCounter("c_total"));
  EXPECT_TRUE(t.IsCounter("p_total"));
  EXPECT_TRUE(t.IsCounter("h_bucket"));
  EXPECT_FALSE(t.IsCounter("h_sum"));
  EXPECT_TRUE(t.IsCounter("s_count"));
  EXPECT_FALSE(t.IsCounter("g"));
  // g is a gauge, so g_total is not of its family; without metadata of its own, the _total
  // naming convention makes it a counter.
  EXPECT_TRUE(t.IsCounter("g_total"));
  EXPECT_TRUE(t.IsCounter("unknown_total"));
}

TEST(SeriesTableTest, MetadataIsPlannedOnlyWhenItChanges) {
  SeriesTable t;
  PlannedChanges c;
  ApplyResult r;
  t.Plan({}, {Meta("x", rw::MetricKind::kCounter)}, &c, &r);
  EXPECT_EQ(r.metadata_changed, 1u);
  t.Commit(c);
  t.Plan({}, {Meta("x", rw::MetricKind::kCounter)}, &c, &r);
  EXPECT_EQ(r.metadata_changed, 0u);
  t.Plan({}, {Meta("x", rw::MetricKind::kCounter, "new help")}, &c, &r);
  EXPECT_EQ(r.metadata_changed, 1u);
}

TEST(SeriesTableTest, ARequestsOwnMetadataDecidesWhatIsACounter) {
  SeriesTable t;
  PlannedChanges c;
  ApplyResult r;
  t.Plan({S({{"__name__", "q"}}, {{1000, 5}})}, {}, &c, &r);
  t.Commit(c);
  t.Plan({S({{"__name__", "q"}}, {{2000, 1}})}, {Meta("q", rw::MetricKind::kCounter)}, &c, &r);
  EXPECT_EQ(r.counter_resets, 1u);
}

TEST(EntryIdMapTest, SetFindAndClearOverManyEntriesAnyIdIncludingTheMaximum) {
  SeriesTable t;
  std::vector<const SeriesEntry*> entries;
  for (int i = 0; i < 5000; ++i) {
    entries.push_back(t.Put(SeriesKey({{"__name__", "m" + std::to_string(i)}}), {}));
  }
  EntryIdMap map;
  uint32_t id = 7;
  EXPECT_FALSE(map.Find(entries[0], &id));
  EXPECT_EQ(id, 7u);  // untouched when absent
  for (size_t i = 0; i < entries.size(); i += 2) map.Set(entries[i], uint32_t(i));
  map.Set(entries[1], UINT32_MAX);  // the store's "no log id" is a value like any other
  map.SetIfAbsent(entries[0], 99);  // present: kept
  map.SetIfAbsent(entries[3], 33);  // absent: added
  map.Set(entries[2], 200);         // present: replaced
  EXPECT_EQ(map.size(), entries.size() / 2 + 2);
  for (size_t i = 0; i < entries.size(); ++i) {
    SCOPED_TRACE(i);
    const bool found = map.Find(entries[i], &id);
    if (i == 1) {
      ASSERT_TRUE(found);
      EXPECT_EQ(id, UINT32_MAX);
    } else if (i == 2) {
      ASSERT_TRUE(found);
      EXPECT_EQ(id, 200u);
    } else if (i == 3) {
      ASSERT_TRUE(found);
      EXPECT_EQ(id, 33u);
    } else if (i % 2 == 0) {
      ASSERT_TRUE(found);
      EXPECT_EQ(id, uint32_t(i));
    } else {
      EXPECT_FALSE(found);
    }
  }
  size_t visited = 0;
  map.ForEach([&](const SeriesEntry* e, uint32_t v) {
    ++visited;
    uint32_t again = 0;
    EXPECT_TRUE(map.Find(e, &again));
    EXPECT_EQ(again, v);
  });
  EXPECT_EQ(visited, map.size());
  map.Clear();
  EXPECT_EQ(map.size(), 0u);
  EXPECT_FALSE(map.Find(entries[0], &id));
  map.Set(entries[4], 4);  // usable after Clear
  EXPECT_TRUE(map.Find(entries[4], &id));
  EXPECT_EQ(id, 4u);
}

TEST(GroupPlanTest, EachRequestSeesThoseBeforeItAndTheMergeEqualsOneByOne) {
  SeriesTable base;
  ApplyResult r;
  PlannedChanges c;
  base.Plan({S({{"__name__", "x_total"}}, {{1000, 10}})}, {}, &c, &r);
  base.Commit(c);
  const std::vector<std::vector<IncomingSeries>> requests = {
      {S({{"__name__", "x_total"}}, {{2000, 20}}), S({{"__name__", "y"}}, {{1000, 5}})},
      // x at 2000 again: a duplicate of the request before; y lower: not a counter yet.
      {S({{"__name__", "x_total"}}, {{2000, 1}, {3000, 2}}), S({{"__name__", "y"}}, {{2000, 1}})},
      // y becomes a counter through this request's metadata: its decrease is now a reset.
      {S({{"__name__", "y"}}, {{3000, 0}}), S({{"__name__", "z"}}, {{1, 1}})},
  };
  const std::vector<std::vector<rw::Metadata>> metadata = {
      {}, {Meta("y", rw::MetricKind::kGauge)}, {Meta("y", rw::MetricKind::kCounter)}};

  // One by one, each committed before the next is planned.
  SeriesTable serial = base;
  std::vector<ApplyResult> serial_results(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    serial.Plan(requests[i], metadata[i], &c, &serial_results[i]);
    serial.Commit(c);
  }
  // As one group.
  SeriesTable grouped = base;
  GroupPlan plan(&grouped);
  std::vector<ApplyResult> group_results(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    plan.Add(requests[i], metadata[i], &group_results[i]);
  }
  // Merged: each key and family once.
  EXPECT_EQ(plan.changes().series.size(), 3u);
  EXPECT_EQ(plan.changes().metadata.size(), 1u);
  EXPECT_EQ(plan.changes().metadata[0].kind, rw::MetricKind::kCounter);
  grouped.Commit(plan.changes());

  for (size_t i = 0; i < requests.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(group_results[i].accepted, serial_results[i].accepted);
    EXPECT_EQ(group_results[i].duplicates, serial_results[i].duplicates);
    EXPECT_EQ(group_results[i].counter_resets, serial_results[i].counter_resets);
    EXPECT_EQ(group_results[i].new_series, serial_results[i].new_series);
    EXPECT_EQ(group_results[i].metadata_changed, serial_results[i].metadata_changed);
  }
  EXPECT_EQ(group_results[1].duplicates, 1u);
  EXPECT_EQ(group_results[1].counter_resets, 1u);  // x_total 20 -> 2
  EXPECT_EQ(group_results[2].counter_resets, 1u);  // y 1 -> 0, a counter by then
  EXPECT_EQ(group_results[0].new_series, 1u);
  EXPECT_EQ(group_results[1].new_series, 0u);  // y was new in the request before
  EXPECT_EQ(grouped.series(), serial.series());
  EXPECT_EQ(grouped.metadata(), serial.metadata());
}

// A plan Reset for group after group (as GatewayStore keeps one) plans each group as a new
// plan does: nothing of the groups before it is found again (positions, new series, metadata),
// whatever the table's size and growth.
TEST(GroupPlanTest, AResetPlanPlansEachGroupAsANewOne) {
  SeriesTable reused_table, fresh_table;
  GroupPlan reused(&reused_table);
  std::vector<IncomingSeries> known;  // series named by their entries, as the cache names them
  for (int group = 0; group < 40; ++group) {
    SCOPED_TRACE(group);
    std::vector<std::vector<IncomingSeries>> requests(1 + group % 3);
    for (size_t r = 0; r < requests.size(); ++r) {
      for (int i = 0; i < 5 + group * 7; ++i) {
        const int n = (i * 13 + group * 5 + int(r)) % (20 + group * 3);
        const int64_t ts = 1000 * (group + 1) + int64_t(r);
        requests[r].push_back(S({{"__name__", n % 2 ? "c_total" : "g"}, {"n", std::to_string(n)}},
                                {{ts, double(-n)}}));
      }
    }
    std::vector<rw::Metadata> metadata;
    if (group % 5 == 1)
      metadata.push_back(
          Meta("g", group % 10 == 1 ? rw::MetricKind::kCounter : rw::MetricKind::kGauge));
    reused.Reset();
    GroupPlan fresh(&fresh_table);
    std::vector<ApplyResult> reused_results(requests.size()), fresh_results(requests.size());
    for (size_t r = 0; r < requests.size(); ++r) {
      // The reused plan gets the table's entries where there are (the cache's way), the new
      // one the keys.
      std::vector<IncomingSeries> by_entry = requests[r];
      for (IncomingSeries& in : by_entry) {
        if (const SeriesEntry* e = reused_table.FindEntry(SeriesKey(in.labels))) {
          in.entry = e;
          in.generation = reused_table.generation();
        }
      }
      reused.Add(by_entry, r == 0 ? metadata : std::vector<rw::Metadata>{}, &reused_results[r]);
      fresh.Add(requests[r], r == 0 ? metadata : std::vector<rw::Metadata>{}, &fresh_results[r]);
    }
    for (size_t r = 0; r < requests.size(); ++r) {
      EXPECT_EQ(reused_results[r].accepted, fresh_results[r].accepted);
      EXPECT_EQ(reused_results[r].duplicates, fresh_results[r].duplicates);
      EXPECT_EQ(reused_results[r].counter_resets, fresh_results[r].counter_resets);
      EXPECT_EQ(reused_results[r].new_series, fresh_results[r].new_series);
      EXPECT_EQ(reused_results[r].metadata_changed, fresh_results[r].metadata_changed);
    }
    ASSERT_EQ(reused.changes().series.size(), fresh.changes().series.size());
    for (size_t i = 0; i < fresh.changes().series.size(); ++i) {
      EXPECT_EQ(reused.changes().key(i), fresh.changes().key(i));
      EXPECT_EQ(reused.changes().series[i].second, fresh.changes().series[i].second);
    }
    EXPECT_EQ(reused.changes().metadata, fresh.changes().metadata);
    reused_table.Commit(reused.changes());
    fresh_table.Commit(fresh.changes());
    EXPECT_EQ(reused_table.series(), fresh_table.series());
  }
}

// A KvStore whose writes can be held at a gate, to line requests up behind a batch in flight.
class GatedStore final : public KvStore {
 public:
  explicit GatedStore(KvStore* base) : base_(base) {}
  void Close() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = false;
  }
  void Open() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }
  // Waits (up to 10 s) until `n` writes have started; false on timeout.
  bool WaitForWrites(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(10), [&] { return started_ >= n; });
  }
  int writes() const {
    std::lock_guard<std::mutex> lock(mu_);
    return started_;
  }
  std::vector<size_t> batch_sizes() const {
    std::lock_guard<std::mutex> lock(mu_);
    return batch_sizes_;
  }
  WriteBatch last_batch() const {
    std::lock_guard<std::mutex> lock(mu_);
    return last_batch_;
  }

  Status Get(std::string_view key, std::string* value) override { return base_->Get(key, value); }
  Status Write(const WriteBatch& batch, bool sync) override {
    {
      std::unique_lock<std::mutex> lock(mu_);
      ++started_;
      batch_sizes_.push_back(batch.count());
      last_batch_ = batch;
      cv_.notify_all();
      cv_.wait(lock, [&] { return open_; });
    }
    return base_->Write(batch, sync);
  }
  std::unique_ptr<KvIterator> NewIterator() override { return base_->NewIterator(); }
  uint64_t ApproximateBytes() override { return base_->ApproximateBytes(); }

 private:
  KvStore* base_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = true;
  int started_ = 0;
  std::vector<size_t> batch_sizes_;
  WriteBatch last_batch_;
};

// The series of the L records of `batch`: by key where an entry carries one, else by "#" and
// its log id.
std::map<std::string, SeriesState> LoggedSeries(const WriteBatch& batch) {
  std::map<std::string, SeriesState> out;
  for (const WriteBatch::Op& op : batch.ops()) {
    if (op.type != WriteBatch::OpType::kPut || op.key[0] != kLogKeyPrefix) continue;
    EXPECT_TRUE(
        GatewayStore::DecodeLog(op.value, [&](uint32_t id, std::string_view key, SeriesState st) {
          const std::string name = key.empty() ? "#" + std::to_string(id) : std::string(key);
          EXPECT_FALSE(out.contains(name)) << "logged twice";
          out[name] = st;
          return Status::Ok();
        }).ok());
  }
  return out;
}

// Waits (up to 10 s) until `store` has `n` applies queued.
bool WaitForQueued(const GatewayStore& store, size_t n) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (store.queued() < n) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

// Requests that queue behind a batch in flight go out together, as one batch, planned in the
// order they queued: a later request sees an earlier one's samples.
TEST(GatewayStoreGroupTest, QueuedRequestsShareOneBatchInArrivalOrder) {
  auto mem = NewMemStore();
  GatedStore gated(mem.get());
  std::unique_ptr<GatewayStore> store;
  ASSERT_TRUE(GatewayStore::Open(&gated, &store).ok());
  const int writes_before = gated.writes();
  gated.Close();
  ApplyResult ra, rb, rc;
  Status sa, sb, sc;
  std::thread a([&] { sa = store->Apply({S({{"__name__", "x"}}, {{1000, 1}})}, {}, &ra); });
  ASSERT_TRUE(gated.WaitForWrites(writes_before + 1));  // a leads and holds the writer role
  std::thread b([&] {
    sb = store->Apply(
        {S({{"__name__", "x"}}, {{3000, 3}}), S({{"__name__", "y_total"}}, {{1000, 10}})}, {}, &rb);
  });
  ASSERT_TRUE(WaitForQueued(*store, 1));
  std::thread c([&] {
    sc = store->Apply(
        {S({{"__name__", "x"}}, {{2000, 2}}), S({{"__name__", "y_total"}}, {{2000, 4}})}, {}, &rc);
  });
  ASSERT_TRUE(WaitForQueued(*store, 2));
  EXPECT_EQ(Snapshot(*store).size(), 0u);  // nothing visible before it is durable
  gated.Open();
  a.join();
  b.join();
  c.join();
  ASSERT_TRUE(sa.ok() && sb.ok() && sc.ok());
  EXPECT_EQ(gated.writes(), writes_before + 2);            // a's batch, then b's and c's together
  EXPECT_EQ(gated.batch_sizes().back(), 1u);               // one L record, with
  EXPECT_EQ(LoggedSeries(gated.last_batch()).size(), 2u);  // x and y_total once each
  EXPECT_EQ(rb.accepted, 2u);
  EXPECT_EQ(rb.new_series, 1u);
  EXPECT_EQ(rc.duplicates, 1u);  // x at 2000 after b's 3000
  EXPECT_EQ(rc.accepted, 1u);
  EXPECT_EQ(rc.new_series, 0u);
  EXPECT_EQ(rc.counter_resets, 1u);  // y_total 10 -> 4
  auto snap = Snapshot(*store);
  EXPECT_EQ(snap.at(SeriesKey({{"__name__", "x"}})).timestamp_ms, 3000);
  EXPECT_EQ(snap.at(SeriesKey({{"__name__", "y_total"}})).value, 4);
  // And so on disk.
  std::unique_ptr<GatewayStore> reopened;
  ASSERT_TRUE(GatewayStore::Open(mem.get(), &reopened).ok());
  EXPECT_EQ(Snapshot(*reopened), snap);
}

// A leader takes queued requests only up to max_group_series; the rest make the next group,
// still in arrival order.
TEST(GatewayStoreGroupTest, AGroupTakesAtMostMaxGroupSeries) {
  auto mem = NewMemStore();
  GatedStore gated(mem.get());
  GatewayStoreOptions options;
  options.max_group_series = 3;
  std::unique_ptr<GatewayStore> store;
  ASSERT_TRUE(GatewayStore::Open(&gated, options, &store).ok());
  const int writes_before = gated.writes();
  gated.Close();
  std::vector<std::vector<IncomingSeries>> requests = {
      {S({{"__name__", "x"}}, {{1000, 1}})},
      {S({{"__name__", "x"}}, {{2000, 2}}), S({{"__name__", "b"}}, {{1, 1}})},
      {S({{"__name__", "x"}}, {{4000, 4}}), S({{"__name__", "c"}}, {{1, 1}})},
      {S({{"__name__", "x"}}, {{3000, 3}})},  // after c's 4000: a duplicate
  };
  std::vector<ApplyResult> results(requests.size());
  std::vector<Status> statuses(requests.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < requests.size(); ++i) {
    threads.emplace_back([&, i] { statuses[i] = store->Apply(requests[i], {}, &results[i]); });
    if (i == 0) {
      ASSERT_TRUE(gated.WaitForWrites(writes_before + 1));
    } else {
      ASSERT_TRUE(WaitForQueued(*store, i));
    }
  }
  gated.Open();
  for (auto& t : threads) t.join();
  for (const Status& s : statuses) EXPECT_TRUE(s.ok()) << s.message();
  // a; then b alone (b + c would be 4 series); then c and d together.
  EXPECT_EQ(gated.writes(), writes_before + 3);
  EXPECT_EQ(LoggedSeries(gated.last_batch()).size(), 2u);  // x and c
  EXPECT_EQ(results[3].duplicates, 1u);
  EXPECT_EQ(Snapshot(*store).at(SeriesKey({{"__name__", "x"}})).timestamp_ms, 4000);
}

// The ApplyListener sees a group once, its requests in order, with the table before the group;
// Committed after a durable batch, Aborted after a failed one.
class RecordingListener final : public ApplyListener {
 public:
  void Prepare(const std::vector<IncomingSeries>& series, const SeriesTable& before,
               WriteBatch* batch) override {
    std::string names;
    for (const IncomingSeries& in : series) names += in.labels[0].second + in.labels[1].second;
    prepared.push_back(names);
    before_sizes.push_back(before.size());
    batch->Put("Xlistener" + std::to_string(prepared.size()), names);
  }
  void Committed() override { ++committed; }
  void Aborted() override { ++aborted; }
  std::vector<std::string> prepared;
  std::vector<size_t> before_sizes;
  int committed = 0, aborted = 0;
};

TEST(GatewayStoreGroupTest, TheListenerSeesEachGroupOnceInOrder) {
  auto mem = NewMemStore();
  FaultStore fault(mem.get());
  GatedStore gated(&fault);
  std::unique_ptr<GatewayStore> store;
  ASSERT_TRUE(GatewayStore::Open(&gated, &store).ok());
  RecordingListener listener;
  store->set_apply_listener(&listener);
  const int writes_before = gated.writes();
  gated.Close();
  const auto req = [](std::string name, int64_t t) {
    return std::vector<IncomingSeries>{S({{"__name__", "m"}, {"n", std::move(name)}}, {{t, 1}})};
  };
  std::vector<std::vector<IncomingSeries>> requests = {req("a", 1), req("b", 1), req("c", 1)};
  std::vector<Status> statuses(3);
  std::vector<ApplyResult> results(3);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < 3; ++i) {
    threads.emplace_back([&, i] { statuses[i] = store->Apply(requests[i], {}, &results[i]); });
    if (i == 0) {
      ASSERT_TRUE(gated.WaitForWrites(writes_before + 1));
    } else {
      ASSERT_TRUE(WaitForQueued(*store, i));
    }
  }
  gated.Open();
  for (auto& t : threads) t.join();
  for (const Status& s : statuses) ASSERT_TRUE(s.ok());
  EXPECT_EQ(listener.prepared, (std::vector<std::string>{"ma", "mbmc"}));
  EXPECT_EQ(listener.before_sizes, (std::vector<size_t>{0, 1}));
  EXPECT_EQ(listener.committed, 2);
  std::string value;
  ASSERT_TRUE(mem->Get("Xlistener2", &value).ok());
  // A failed batch: Aborted, and its records are not written.
  fault.FailNthWrite(1);
  ApplyResult r;
  EXPECT_FALSE(store->Apply(req("d", 1), {}, &r).ok());
  EXPECT_EQ(listener.aborted, 1);
  EXPECT_EQ(mem->Get("Xlistener3", &value).code(), Status::Code::kNotFound);
  // A group that changes nothing (a duplicate) calls nothing.
  ASSERT_TRUE(store->Apply(req("a", 1), {}, &r).ok());
  EXPECT_EQ(r.duplicates, 1u);
  EXPECT_EQ(listener.prepared.size(), 3u);
  EXPECT_EQ(listener.committed, 2);
}

// A batch that fails fails every request in it, and none of them changes anything in memory;
// the requests of the batch before and after are not affected.
TEST(GatewayStoreGroupTest, AFailedBatchFailsEveryRequestInItAndChangesNothing) {
  auto mem = NewMemStore();
  FaultStore fault(mem.get());
  GatedStore gated(&fault);
  std::unique_ptr<GatewayStore> store;
  ASSERT_TRUE(GatewayStore::Open(&gated, &store).ok());
  const int writes_before = gated.writes();
  fault.FailNthWrite(2);  // the second batch from now
  gated.Close();
  ApplyResult ra, rb, rc;
  Status sa, sb, sc;
  int appended_b = 0;
  const GatewayStore::AppendRecords append_b = [&](const ApplyResult& r, WriteBatch* batch) {
    ++appended_b;
    batch->Put("Fb", std::to_string(r.accepted));
  };
  std::thread a([&] { sa = store->Apply({S({{"__name__", "x"}}, {{1000, 1}})}, {}, &ra); });
  ASSERT_TRUE(gated.WaitForWrites(writes_before + 1));
  std::thread b([&] {
    sb = store->Apply({S({{"__name__", "x"}}, {{2000, 2}})}, {Meta("x", rw::MetricKind::kGauge)},
                      append_b, &rb);
  });
  ASSERT_TRUE(WaitForQueued(*store, 1));
  std::thread c([&] { sc = store->Apply({S({{"__name__", "new"}}, {{1000, 1}})}, {}, &rc); });
  ASSERT_TRUE(WaitForQueued(*store, 2));
  gated.Open();
  a.join();
  b.join();
  c.join();
  EXPECT_TRUE(sa.ok());
  EXPECT_EQ(sb.code(), Status::Code::kIoError);
  EXPECT_EQ(sc.code(), Status::Code::kIoError);
  EXPECT_EQ(appended_b, 1);
  // What they would have done is still reported.
  EXPECT_EQ(rb.accepted, 1u);
  EXPECT_EQ(rc.new_series, 1u);
  auto snap = Snapshot(*store);
  ASSERT_EQ(snap.size(), 1u);
  EXPECT_EQ(snap.at(SeriesKey({{"__name__", "x"}})).timestamp_ms, 1000);
  EXPECT_EQ(store->Stats().families, 0u);
  std::string value;
  EXPECT_EQ(mem->Get("Fb", &value).code(), Status::Code::kNotFound);
  // The retries start from the same state and succeed, with b's records.
  ASSERT_TRUE(store
                  ->Apply({S({{"__name__", "x"}}, {{2000, 2}})},
                          {Meta("x", rw::MetricKind::kGauge)}, append_b, &rb)
                  .ok());
  EXPECT_EQ(rb.accepted, 1u);
  ASSERT_TRUE(store->Apply({S({{"__name__", "new"}}, {{1000, 1}})}, {}, &rc).ok());
  EXPECT_EQ(rc.accepted, 1u);
  ASSERT_TRUE(mem->Get("Fb", &value).ok());
  EXPECT_EQ(value, "1");
  EXPECT_EQ(store->Stats().families, 1u);
}

// ApplyAsync: a caller that finds a group being written queues and returns at once; the thread
// writing groups (the first caller) calls every completion, group by group, in arrival order;
// a failed batch fails every completion of its group and changes nothing, and the groups before
// and after it are unaffected; a completion may queue another request (it joins a later group).
TEST(GatewayStoreAsyncTest, CallersDoNotWaitAndTheLeaderCompletesEveryGroupInOrder) {
  auto mem = NewMemStore();
  FaultStore fault(mem.get());
  GatedStore gated(&fault);
  std::unique_ptr<GatewayStore> store;
  ASSERT_TRUE(GatewayStore::Open(&gated, &store).ok());
  const int writes_before = gated.writes();
  fault.FailNthWrite(2);  // the group of b and c
  gated.Close();
  std::mutex mu;
  std::vector<std::string> completed;  // name:status code, in completion order
  std::vector<std::thread::id> completers;
  const auto done = [&](std::string name) {
    return [&, name](Status s) {
      std::lock_guard<std::mutex> lock(mu);
      completed.push_back(name + ":" +
                          (s.ok()                               ? "ok"
                           : s.code() == Status::Code::kIoError ? "io"
                                                                : "other"));
      completers.push_back(std::this_thread::get_id());
    };
  };
  const std::vector<IncomingSeries> a = {S({{"__name__", "x"}}, {{1000, 1}})};
  const std::vector<IncomingSeries> b = {S({{"__name__", "x"}}, {{2000, 2}})};
  const std::vector<IncomingSeries> c = {S({{"__name__", "new"}}, {{1000, 1}})};
  const std::vector<IncomingSeries> d = {S({{"__name__", "x"}}, {{3000, 3}})};
  const std::vector<rw::Metadata> none;
  ApplyResult ra, rb, rc, rd;
  std::thread::id leader_id;
  std::thread leader([&] {
    leader_id = std::this_thread::get_id();
    store->ApplyAsync(a, none, &ra, done("a"));  // returns once the queue is empty
  });
  ASSERT_TRUE(gated.WaitForWrites(writes_before + 1));
  store->ApplyAsync(b, none, &rb, done("b"));
  store->ApplyAsync(c, none, &rc, [&](Status s) {
    done("c")(s);
    // From a completion: queued for a later group of the same leader.
    store->ApplyAsync(d, none, &rd, done("d"));
  });
  EXPECT_EQ(store->queued(), 2u);
  {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_TRUE(completed.empty());  // nothing is complete before its group is durable
  }
  gated.Open();
  leader.join();
  EXPECT_EQ(completed, (std::vector<std::string>{"a:ok", "b:io", "c:io", "d:ok"}));
  for (const std::thread::id& id : completers) EXPECT_EQ(id, leader_id);
  EXPECT_EQ(gated.writes(), writes_before + 3);  // a; b and c (failed); d
  EXPECT_EQ(rb.accepted, 1u);                    // what it would have done
  EXPECT_EQ(rc.new_series, 1u);
  EXPECT_EQ(rd.accepted, 1u);
  auto snap = Snapshot(*store);
  ASSERT_EQ(snap.size(), 1u);  // "new" was in the failed batch
  EXPECT_EQ(snap.at(SeriesKey({{"__name__", "x"}})).timestamp_ms, 3000);
  std::unique_ptr<GatewayStore> reopened;
  ASSERT_TRUE(GatewayStore::Open(mem.get(), &reopened).ok());
  EXPECT_EQ(Snapshot(*reopened), snap);
}

// A synchronous Apply behind a group being written waits for its own group, led by another
// thread; a stale entry is refused through the completion like through Apply.
TEST(GatewayStoreAsyncTest, ApplyWaitsForTheGroupAnotherThreadWrites) {
  auto mem = NewMemStore();
  GatedStore gated(mem.get());
  std::unique_ptr<GatewayStore> store;
  ASSERT_TRUE(GatewayStore::Open(&gated, &store).ok());
  const int writes_before = gated.writes();
  gated.Close();
  const std::vector<IncomingSeries> a = {S({{"__name__", "x"}}, {{1000, 1}})};
  const std::vector<rw::Metadata> none;
  ApplyResult ra, rb;
  std::atomic<bool> a_done{false};
  std::thread leader([&] {
    store->ApplyAsync(a, none, &ra, [&](Status s) {
      EXPECT_TRUE(s.ok());
      a_done = true;
    });
  });
  ASSERT_TRUE(gated.WaitForWrites(writes_before + 1));
  Status sb;
  std::thread waiter([&] { sb = store->Apply({S({{"__name__", "x"}}, {{500, 1}})}, {}, &rb); });
  ASSERT_TRUE(WaitForQueued(*store, 1));
  gated.Open();
  waiter.join();
  leader.join();
  EXPECT_TRUE(a_done);
  EXPECT_TRUE(sb.ok());
  EXPECT_EQ(rb.duplicates, 1u);  // after a's 1000
  // An entry of another generation: kNotFound, nothing applied.
  std::vector<IncomingSeries> stale = {S({}, {{2000, 2}})};
  std::vector<const SeriesEntry*> entries;
  uint64_t generation = 0;
  const std::string key = SeriesKey({{"__name__", "x"}});
  const std::string_view keys[] = {key};
  ASSERT_TRUE(store->Resolve(keys, &entries, &generation));
  stale[0].entry = entries[0];
  stale[0].generation = generation + 1;
  Status ss;
  ApplyResult rs;
  store->ApplyAsync(stale, none, &rs, [&](Status s) { ss = s; });
  EXPECT_EQ(ss.code(), Status::Code::kNotFound);
  EXPECT_EQ(Snapshot(*store).at(key).timestamp_ms, 1000);
}

// Many threads queueing asynchronously on RocksDB: every completion is called once, and the
// results add up to a serial apply (each timestamp of the shared series accepted once).
class GatewayStoreAsyncModeTest : public ::testing::TestWithParam<bool> {};
INSTANTIATE_TEST_SUITE_P(LeaderOrCommitter, GatewayStoreAsyncModeTest, ::testing::Bool());

TEST_P(GatewayStoreAsyncModeTest, ConcurrentAsyncAppliesCompleteOnceEach) {
  TempDir dir;
  std::unique_ptr<KvStore> kv;
  ASSERT_TRUE(OpenRocksStore(dir.path() + "/db", {}, &kv).ok());
  std::unique_ptr<GatewayStore> store;
  GatewayStoreOptions options;
  options.committer_thread = GetParam();
  ASSERT_TRUE(GatewayStore::Open(kv.get(), options, &store).ok());
  constexpr int kThreads = 4, kRequests = 60;
  struct Request {
    std::vector<IncomingSeries> series;
    ApplyResult result;
  };
  std::vector<std::unique_ptr<Request>> requests;
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kRequests; ++i) {
      auto r = std::make_unique<Request>();
      r->series = {S({{"__name__", "shared"}}, {{int64_t(i + 1) * 1000, double(i)}})};
      requests.push_back(std::move(r));
    }
  }
  const std::vector<rw::Metadata> none;  // borrowed until each completion
  std::atomic<int> completions{0}, failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRequests; ++i) {
        Request* r = requests[size_t(t * kRequests + i)].get();
        store->ApplyAsync(r->series, none, &r->result, [&](Status s) {
          if (!s.ok()) ++failures;
          ++completions;
        });
      }
    });
  }
  for (auto& th : threads) th.join();
  if (GetParam()) {  // the committer may still be writing: wait, with a deadline
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (completions < kThreads * kRequests && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::yield();
    }
  }
  // (Without a committer every caller has returned, so the last leader emptied the queue.)
  EXPECT_EQ(completions, kThreads * kRequests);
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(store->queued(), 0u);
  uint64_t accepted = 0, duplicates = 0;
  for (const auto& r : requests) {
    accepted += r->result.accepted;
    duplicates += r->result.duplicates;
  }
  EXPECT_EQ(accepted + duplicates, uint64_t(kThreads * kRequests));
  EXPECT_GE(accepted, 1u);
  EXPECT_EQ(Snapshot(*store).at(SeriesKey({{"__name__", "shared"}})).timestamp_ms,
            kRequests * 1000);
}

// With committer_thread, no caller writes a group: ApplyAsync returns at once even into an idle
// store, completions run on the store's thread in arrival order (a failed batch failing its
// whole group), and the destructor writes what is still queued before it joins.
TEST(GatewayStoreAsyncTest, ACommitterThreadWritesEveryGroupAndDrainsAtDestruction) {
  auto mem = NewMemStore();
  FaultStore fault(mem.get());
  GatedStore gated(&fault);
  GatewayStoreOptions options;
  options.committer_thread = true;
  std::unique_ptr<GatewayStore> store;
  ASSERT_TRUE(GatewayStore::Open(&gated, options, &store).ok());
  const int writes_before = gated.writes();
  fault.FailNthWrite(2);
  gated.Close();
  std::mutex mu;
  std::vector<std::string> completed;
  std::vector<std::thread::id> completers;
  const auto done = [&](std::string name) {
    return [&, name](Status s) {
      std::lock_guard<std::mutex> lock(mu);
      completed.push_back(name + (s.ok() ? ":ok" : ":failed"));
      completers.push_back(std::this_thread::get_id());
    };
  };
  const std::vector<rw::Metadata> none;
  const std::vector<IncomingSeries> a = {S({{"__name__", "x"}}, {{1000, 1}})};
  const std::vector<IncomingSeries> b = {S({{"__name__", "x"}}, {{2000, 2}})};
  const std::vector<IncomingSeries> c = {S({{"__name__", "y"}}, {{1000, 1}})};
  const std::vector<IncomingSeries> d = {S({{"__name__", "x"}}, {{3000, 3}})};
  ApplyResult ra, rb, rc, rd;
  store->ApplyAsync(a, none, &ra, done("a"));  // returns: the committer writes it
  ASSERT_TRUE(gated.WaitForWrites(writes_before + 1));
  store->ApplyAsync(b, none, &rb, done("b"));
  store->ApplyAsync(c, none, &rc, done("c"));
  EXPECT_TRUE(WaitForQueued(*store, 2));
  gated.Open();
  ASSERT_TRUE(gated.WaitForWrites(writes_before + 2));
  store->ApplyAsync(d, none, &rd, done("d"));
  store.reset();  // writes d, then joins
  EXPECT_EQ(completed, (std::vector<std::string>{"a:ok", "b:failed", "c:failed", "d:ok"}));
  for (const std::thread::id& id : completers) EXPECT_NE(id, std::this_thread::get_id());
  std::unique_ptr<GatewayStore> reopened;
  ASSERT_TRUE(GatewayStore::Open(mem.get(), &reopened).ok());
  auto snap = Snapshot(*reopened);
  ASSERT_EQ(snap.size(), 1u);  // y was in the failed batch
  EXPECT_EQ(snap.at(SeriesKey({{"__name__", "x"}})).timestamp_ms, 3000);
  // The synchronous Apply works through the committer too.
  GatewayStoreOptions committed;
  committed.committer_thread = true;
  std::unique_ptr<GatewayStore> again;
  ASSERT_TRUE(GatewayStore::Open(mem.get(), committed, &again).ok());
  ApplyResult r;
  ASSERT_TRUE(again->Apply({S({{"__name__", "x"}}, {{4000, 4}})}, none, &r).ok());
  EXPECT_EQ(r.accepted, 1u);
}

class GatewayStoreTest : public ::testing::Test {
 protected:
  void Open() {
    store_.reset();
    kv_.reset();
    ASSERT_TRUE(OpenRocksStore(dir_.path() + "/db", {}, &kv_).ok());
    Status s = GatewayStore::Open(kv_.get(), &store_);
    ASSERT_TRUE(s.ok()) << s.message();
  }
  TempDir dir_;
  std::unique_ptr<KvStore> kv_;
  std::unique_ptr<GatewayStore> store_;
};

TEST_F(GatewayStoreTest, ARestartedStoreServesExactlyWhatItServedBefore) {
  Open();
  ApplyResult r;
  const double nan_payload = std::bit_cast<double>(uint64_t(0x7ff8000000000123ull));
  ASSERT_TRUE(
      store_
          ->Apply({S({{"__name__", "claude_cost_usd_total"}, {"device", "a"}}, {{1000, 0.1 + 0.2}}),
                   S({{"__name__", "weird"}, {"v", "quote\" back\\ nl\n"}}, {{1000, nan_payload}}),
                   S({{"__name__", "big"}}, {{-5, 1e300}})},
                  {Meta("claude_cost_usd", rw::MetricKind::kCounter, "Cost\nin USD")}, &r)
          .ok());
  const auto before = Snapshot(*store_);
  const std::string text = Exposed(*store_);
  const std::string om = Exposed(*store_, ExpositionFormat::kOpenMetrics);
  ASSERT_NE(text.find("claude_cost_usd_total{device=\"a\"} 0.30000000000000004\n"),
            std::string::npos)
      << text;
  Open();
  const auto after = Snapshot(*store_);
  ASSERT_EQ(after.size(), before.size());
  for (const auto& [k, st] : before) {
    EXPECT_EQ(after.at(k).timestamp_ms, st.timestamp_ms);
    EXPECT_EQ(std::bit_cast<uint64_t>(after.at(k).value), std::bit_cast<uint64_t>(st.value));
  }
  EXPECT_EQ(Exposed(*store_), text);
  EXPECT_EQ(Exposed(*store_, ExpositionFormat::kOpenMetrics), om);
  // And dedup continues from the stored state.
  ASSERT_TRUE(
      store_
          ->Apply({S({{"__name__", "claude_cost_usd_total"}, {"device", "a"}}, {{1000, 7}})}, {},
                  &r)
          .ok());
  EXPECT_EQ(r.duplicates, 1u);
  EXPECT_EQ(store_->Stats().series, 3u);
  EXPECT_EQ(store_->Stats().families, 1u);
}

TEST_F(GatewayStoreTest, RefusesAStoreThatIsNotAGateways) {
  {
    std::unique_ptr<KvStore> kv;
    ASSERT_TRUE(OpenRocksStore(dir_.path() + "/db", {}, &kv).ok());
    WriteBatch b;
    b.Put("mcaught_up", "1");  // an agent's state dir
    ASSERT_TRUE(kv->Write(b, true).ok());
  }
  ASSERT_TRUE(OpenRocksStore(dir_.path() + "/db", {}, &kv_).ok());
  Status s = GatewayStore::Open(kv_.get(), &store_);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("not a ccmon-gateway"), std::string::npos);
  WriteBatch b;
  b.Put(kFormatKey, "9");
  ASSERT_TRUE(kv_->Write(b, true).ok());
  s = GatewayStore::Open(kv_.get(), &store_);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("version 9"), std::string::npos);
}

TEST_F(GatewayStoreTest, CorruptRecordsAreReportedNotServed) {
  Open();
  ApplyResult r;
  ASSERT_TRUE(store_->Apply({S({{"__name__", "m"}}, {{1, 1}})}, {}, &r).ok());
  WriteBatch b;
  b.Put(std::string(1, kSeriesKeyPrefix) + SeriesKey({{"__name__", "m"}}), "short");
  ASSERT_TRUE(kv_->Write(b, true).ok());
  std::unique_ptr<GatewayStore> again;
  EXPECT_EQ(GatewayStore::Open(kv_.get(), &again).code(), Status::Code::kCorruption);
}

TEST(GatewayStoreFaultTest, AFailedWriteAppliesNothingAndTheRetryStartsOver) {
  auto mem = NewMemStore();
  FaultStore fault(mem.get());
  std::unique_ptr<GatewayStore> store;
  ASSERT_TRUE(GatewayStore::Open(&fault, &store).ok());
  ApplyResult r;
  ASSERT_TRUE(store->Apply({S({{"__name__", "a_total"}}, {{1000, 1}})}, {}, &r).ok());
  EXPECT_GE(fault.sync_writes(), 2);  // the format key, then the request: both synced
  fault.set_keep_failed_writes(true);
  fault.FailNthWrite(1);
  const std::vector<IncomingSeries> req = {S({{"__name__", "a_total"}}, {{2000, 2}}),
                                           S({{"__name__", "b_total"}}, {{2000, 5}})};
  Status s = store->Apply(req, {Meta("a", rw::MetricKind::kCounter)}, &r);
  EXPECT_EQ(s.code(), Status::Code::kIoError);
  auto snap = Snapshot(*store);
  EXPECT_EQ(snap.size(), 1u);
  EXPECT_EQ(snap.at(SeriesKey({{"__name__", "a_total"}})).timestamp_ms, 1000);
  EXPECT_EQ(store->Stats().families, 0u);
  // The retry applies the whole request.
  ASSERT_TRUE(store->Apply(req, {Meta("a", rw::MetricKind::kCounter)}, &r).ok());
  EXPECT_EQ(r.accepted, 2u);
  EXPECT_EQ(r.duplicates, 0u);
  // Had the failed batch reached the disk after all (seen after a restart), it is there whole,
  // and the same retry is all duplicates.
  auto mem2 = NewMemStore();
  FaultStore fault2(mem2.get());
  fault2.set_keep_failed_writes(true);
  std::unique_ptr<GatewayStore> s2;
  ASSERT_TRUE(GatewayStore::Open(&fault2, &s2).ok());
  fault2.FailNthWrite(1);
  EXPECT_FALSE(s2->Apply(req, {}, &r).ok());
  fault2.LandFailedWrites();
  ASSERT_TRUE(GatewayStore::Open(&fault2, &s2).ok());
  EXPECT_EQ(Snapshot(*s2).size(), 2u);
  ASSERT_TRUE(s2->Apply(req, {}, &r).ok());
  EXPECT_EQ(r.accepted, 0u);
  EXPECT_EQ(r.duplicates, 2u);
}

TEST(GatewayStoreFaultTest, OpenReportsStoreErrors) {
  auto mem = NewMemStore();
  FaultStore fault(mem.get());
  fault.FailGets(true);
  std::unique_ptr<GatewayStore> store;
  EXPECT_EQ(GatewayStore::Open(&fault, &store).code(), Status::Code::kIoError);
  fault.ClearFaults();
  ASSERT_TRUE(GatewayStore::Open(&fault, &store).ok());
  ApplyResult r;
  ASSERT_TRUE(store->Apply({S({{"__name__", "m"}}, {{1, 1}})}, {}, &r).ok());
  fault.FailIterators(true, 0);
  EXPECT_FALSE(GatewayStore::Open(&fault, &store).ok());
}

TEST_F(GatewayStoreTest, ConcurrentAppliesAndReadsCountEverySampleOnce) {
  Open();
  constexpr int kThreads = 4, kRequests = 50;
  std::vector<std::thread> threads;
  std::atomic<uint64_t> accepted{0}, duplicates{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRequests; ++i) {
        // Every thread writes the shared series at the same timestamps: exactly one wins each.
        ApplyResult r;
        Status s = store_->Apply({S({{"__name__", "shared"}}, {{int64_t(i + 1) * 1000, double(i)}}),
                                  S({{"__name__", "own"}, {"t", std::to_string(t)}},
                                    {{int64_t(i + 1) * 1000, double(i)}})},
                                 {}, &r);
        ASSERT_TRUE(s.ok()) << s.message();
        accepted += r.accepted;
        duplicates += r.duplicates;
        (void)Exposed(*store_);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(accepted + duplicates, uint64_t(2 * kThreads * kRequests));
  // "own" series: all accepted. "shared": at most one per timestamp.
  EXPECT_LE(accepted.load(), uint64_t(kThreads * kRequests + kRequests));
  EXPECT_GE(accepted.load(), uint64_t(kThreads * kRequests + 1));
  EXPECT_EQ(Snapshot(*store_).size(), size_t(kThreads + 1));
  EXPECT_EQ(Snapshot(*store_).at(SeriesKey({{"__name__", "shared"}})).timestamp_ms,
            kRequests * 1000);
}

// Many threads applying overlapping series: every request's result is exactly what applying the
// requests one by one in commit order (the order AppendRecords sees them) gives, the table ends
// as that serial apply, and the appended records are durable with their requests.
TEST_F(GatewayStoreTest, ConcurrentGroupsEqualASerialApplyInCommitOrder) {
  Open();
  constexpr int kThreads = 6, kRequests = 40, kSeries = 8;
  struct Done {
    std::vector<IncomingSeries> series;
    ApplyResult result;
  };
  std::vector<std::vector<Done>> done(kThreads, std::vector<Done>(kRequests));
  std::mutex order_mu;
  std::vector<std::pair<int, int>> commit_order;  // (thread, request)
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(uint32_t(t) + 1);
      for (int i = 0; i < kRequests; ++i) {
        // Shared series at timestamps that collide and go back and forth between threads,
        // counters that sometimes decrease, and a series of the thread's own.
        std::vector<IncomingSeries> req;
        for (int k = 0; k < 3; ++k) {
          const int series = int(rng() % kSeries);
          req.push_back(S({{"__name__", "c_total"}, {"k", std::to_string(series)}},
                          {{int64_t(i * 10 + int(rng() % 15)), double(rng() % 100)}}));
        }
        req.push_back(S({{"__name__", "own"}, {"t", std::to_string(t)}}, {{i + 1, double(i)}}));
        done[size_t(t)][size_t(i)].series = req;
        const GatewayStore::AppendRecords append = [&, t, i](const ApplyResult&, WriteBatch* b) {
          std::lock_guard<std::mutex> lock(order_mu);
          b->Put("F" + std::to_string(t) + "/" + std::to_string(i), "");
          commit_order.emplace_back(t, i);
        };
        Status s = store_->Apply(req, {}, append, &done[size_t(t)][size_t(i)].result);
        ASSERT_TRUE(s.ok()) << s.message();
        if (i % 8 == 0) (void)Exposed(*store_);
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(commit_order.size(), size_t(kThreads * kRequests));
  SeriesTable serial;
  uint64_t accepted = 0;
  for (const auto& [t, i] : commit_order) {
    const Done& d = done[size_t(t)][size_t(i)];
    PlannedChanges c;
    ApplyResult r;
    serial.Plan(d.series, {}, &c, &r);
    serial.Commit(c);
    SCOPED_TRACE(std::to_string(t) + "/" + std::to_string(i));
    EXPECT_EQ(d.result.accepted, r.accepted);
    EXPECT_EQ(d.result.duplicates, r.duplicates);
    EXPECT_EQ(d.result.counter_resets, r.counter_resets);
    EXPECT_EQ(d.result.new_series, r.new_series);
    accepted += r.accepted;
  }
  EXPECT_GT(accepted, uint64_t(kThreads * kRequests));  // the shared series took some
  EXPECT_EQ(Snapshot(*store_), serial.series());
  Open();  // restart: the same table, and every request's own record
  EXPECT_EQ(Snapshot(*store_), serial.series());
  int records = 0;
  auto it = kv_->NewIterator();
  for (it->Seek("F"); it->Valid() && it->key()[0] == 'F'; it->Next()) ++records;
  EXPECT_EQ(records, kThreads * kRequests);
}

// Checkpoints: the L records stay few (the policy), every restart in between serves the same
// table, and the S records end up holding what the log said.
TEST_F(GatewayStoreTest, CheckpointsBoundTheLogAndEveryRestartServesTheSame) {
  ASSERT_TRUE(OpenRocksStore(dir_.path() + "/db", {}, &kv_).ok());
  GatewayStoreOptions policy;
  policy.log_records = 3;
  ASSERT_TRUE(GatewayStore::Open(kv_.get(), policy, &store_).ok());
  std::map<std::string, SeriesState> expected;
  for (int i = 0; i < 20; ++i) {
    ApplyResult r;
    const std::vector<IncomingSeries> req = {
        S({{"__name__", "a_total"}}, {{int64_t(i + 1) * 1000, double(i)}}),
        S({{"__name__", "b"}, {"i", std::to_string(i % 4)}}, {{int64_t(i + 1) * 1000, -1.0 * i}})};
    ASSERT_TRUE(store_->Apply(req, {}, &r).ok());
    EXPECT_EQ(r.accepted, 2u);
    EXPECT_LE(store_->log_records(), 3u);
    EXPECT_GE(store_->log_records(), 1u);
    expected = Snapshot(*store_);
    if (i % 3 == 0) {
      store_.reset();
      ASSERT_TRUE(GatewayStore::Open(kv_.get(), policy, &store_).ok());
      EXPECT_EQ(Snapshot(*store_), expected) << "restart after request " << i;
      EXPECT_LE(store_->log_records(), 3u);
    }
  }
  EXPECT_EQ(expected.size(), 5u);
  // The S records alone hold at least the checkpointed states; with the log, exactly the table.
  int logs = 0, series = 0;
  auto it = kv_->NewIterator();
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    logs += it->key()[0] == kLogKeyPrefix;
    series += it->key()[0] == kSeriesKeyPrefix;
  }
  EXPECT_EQ(uint64_t(logs), store_->log_records());
  EXPECT_EQ(series, 5);
}

// A failed checkpointing batch fails its requests and leaves the log as it was; the next batch
// checkpoints, and a restart at any point serves what was acknowledged.
TEST(GatewayStoreFaultTest, AFailedCheckpointChangesNothing) {
  auto mem = NewMemStore();
  FaultStore fault(mem.get());
  GatewayStoreOptions policy;
  policy.log_records = 2;
  std::unique_ptr<GatewayStore> store;
  ASSERT_TRUE(GatewayStore::Open(&fault, policy, &store).ok());
  ApplyResult r;
  ASSERT_TRUE(store->Apply({S({{"__name__", "x"}}, {{1000, 1}})}, {}, &r).ok());
  ASSERT_TRUE(store->Apply({S({{"__name__", "y"}}, {{1000, 1}})}, {}, &r).ok());
  EXPECT_EQ(store->log_records(), 2u);
  fault.FailNthWrite(1);  // the batch that checkpoints
  EXPECT_EQ(store->Apply({S({{"__name__", "x"}}, {{2000, 2}})}, {}, &r).code(),
            Status::Code::kIoError);
  EXPECT_EQ(store->log_records(), 2u);
  EXPECT_EQ(Snapshot(*store).at(SeriesKey({{"__name__", "x"}})).timestamp_ms, 1000);
  std::unique_ptr<GatewayStore> reopened;
  ASSERT_TRUE(GatewayStore::Open(&fault, policy, &reopened).ok());
  EXPECT_EQ(Snapshot(*reopened), Snapshot(*store));
  ASSERT_TRUE(store->Apply({S({{"__name__", "x"}}, {{2000, 2}})}, {}, &r).ok());
  EXPECT_EQ(store->log_records(), 1u);  // checkpointed: only this request's record is left
  std::string value;
  ASSERT_TRUE(
      mem->Get(std::string(1, kSeriesKeyPrefix) + SeriesKey({{"__name__", "y"}}), &value).ok());
  ASSERT_TRUE(GatewayStore::Open(&fault, policy, &reopened).ok());
  EXPECT_EQ(Snapshot(*reopened), Snapshot(*store));
  EXPECT_EQ(Snapshot(*reopened).at(SeriesKey({{"__name__", "x"}})).timestamp_ms, 2000);
}

TEST(GatewayStoreFormatTest, AVersion1StoreIsReadAndMarkedVersion3) {
  auto mem = NewMemStore();
  WriteBatch v1;
  v1.Put(kFormatKey, kFormatVersion1);
  v1.Put(std::string(1, kSeriesKeyPrefix) + SeriesKey({{"__name__", "old"}}),
         GatewayStore::EncodeState({5000, 7}));
  ASSERT_TRUE(mem->Write(v1, true).ok());
  std::unique_ptr<GatewayStore> store;
  ASSERT_TRUE(GatewayStore::Open(mem.get(), &store).ok());
  EXPECT_EQ(Snapshot(*store).at(SeriesKey({{"__name__", "old"}})).value, 7);
  std::string version;
  ASSERT_TRUE(mem->Get(kFormatKey, &version).ok());
  EXPECT_EQ(version, kFormatVersion);
  EXPECT_EQ(version, "3");
}

TEST(GatewayStoreFormatTest, LogRecordsRoundTripByIdAndKey) {
  PlannedChanges changes;
  const double nan_payload = std::bit_cast<double>(uint64_t(0x7ff8000000000123ull));
  const int64_t kMin = std::numeric_limits<int64_t>::min();
  const int64_t kMax = std::numeric_limits<int64_t>::max();
  changes.series = {{SeriesKey({{"__name__", "a"}}), {1000, 1.5}},
                    {SeriesKey({{"__name__", "b"}, {"v", std::string(20000, 'x')}}), {-5, 1e300}},
                    {SeriesKey({{"__name__", "c"}}), {kMin, nan_payload}},
                    {SeriesKey({{"__name__", "d"}}), {kMax, -0.0}},
                    {SeriesKey({{"__name__", "e"}}), {kMin, 2}}};
  const std::vector<GatewayStore::LogId> ids = {
      {0, true}, {7, false}, {1, true}, {123456789, false}, {2, true}};
  std::string value;
  GatewayStore::EncodeLog(changes, ids, &value);
  EXPECT_EQ(value[0], 3);
  // Entries by id alone are small: the 20 000-byte key is not in the record.
  EXPECT_LT(value.size(), 100u);
  struct Back {
    uint32_t id;
    std::string key;
    SeriesState state;
  };
  std::vector<Back> back;
  ASSERT_TRUE(
      GatewayStore::DecodeLog(value, [&](uint32_t id, std::string_view key, SeriesState st) {
        back.push_back({id, std::string(key), st});
        return Status::Ok();
      }).ok());
  ASSERT_EQ(back.size(), 5u);
  for (size_t i = 0; i < back.size(); ++i) {
    EXPECT_EQ(back[i].id, ids[i].id);
    EXPECT_EQ(back[i].key, ids[i].defines ? changes.series[i].first : "");
    EXPECT_EQ(back[i].state.timestamp_ms, changes.series[i].second.timestamp_ms) << i;
    EXPECT_EQ(std::bit_cast<uint64_t>(back[i].state.value),
              std::bit_cast<uint64_t>(changes.series[i].second.value))
        << i;
  }
  // What `fn` returns stops the decoding.
  EXPECT_EQ(GatewayStore::DecodeLog(value, [](uint32_t, std::string_view,
                                              SeriesState) { return Status::Corruption("stop"); })
                .message(),
            "stop");
}

// An L record's bytes, entry by entry, as docs/store-format.md lays them out (EncodeLog writes
// them in place: a key longer than the room it reserved, many entries, ids and deltas of every
// varint length).
TEST(GatewayStoreFormatTest, LogRecordBytesAreTheDocumentedLayout) {
  PlannedChanges changes;
  std::vector<GatewayStore::LogId> ids;
  std::string expected(1, char(3));
  uint64_t previous = 0;
  for (int i = 0; i < 600; ++i) {
    const bool defines = i % 7 == 0;
    const std::string key = SeriesKey({{"__name__", "m" + std::to_string(i)},
                                       {"v", std::string(size_t(i % 5 == 0 ? 3000 : i), 'k')}});
    const int64_t ts = i % 11 == 0 ? -int64_t(i) * 977 : int64_t(i) << (i % 50);
    const double value = i % 3 == 0 ? -0.0 : i * 1.25;
    changes.series.push_back({key, {ts, value}});
    const uint32_t id = uint32_t(i) * 104729u;
    ids.push_back({id, defines});
    PutVarint(&expected, uint64_t(id) << 1 | (defines ? 1 : 0));
    if (defines) {
      PutVarint(&expected, key.size());
      expected += key;
    }
    const int64_t delta = int64_t(uint64_t(ts) - previous);
    PutVarint(&expected, (uint64_t(delta) << 1) ^ uint64_t(delta >> 63));
    previous = uint64_t(ts);
    PutFixed64LE(&expected, std::bit_cast<uint64_t>(value));
  }
  std::string value = "left over from the previous group";
  GatewayStore::EncodeLog(changes, ids, &value);
  EXPECT_EQ(value, expected);
  // Into a buffer reused from a larger record: the record is its first bytes, the same.
  std::string buffer(expected.size() * 3, 'z');
  const size_t size = GatewayStore::EncodeLogInto(changes, ids, &buffer);
  EXPECT_EQ(std::string_view(buffer).substr(0, size), expected);
  changes.series.resize(3);
  ids.resize(3);
  std::string small;
  GatewayStore::EncodeLog(changes, ids, &small);
  EXPECT_EQ(std::string_view(buffer).substr(0, GatewayStore::EncodeLogInto(changes, ids, &buffer)),
            small);
}

// A version 2 store's L records (versions 1 and 2: keys, no ids) are read at Open, and the log
// continues with version 3 records over them (series they logged get ids in their next record);
// every restart serves the same.
TEST(GatewayStoreFormatTest, AVersion2StoresLogIsReadAndContinued) {
  const std::string a = SeriesKey({{"__name__", "a"}});
  const std::string b = SeriesKey({{"__name__", "b"}, {"job", "j"}});
  std::string raw;  // version 2: (key, ts, value) entries, snappy-compressed
  for (const auto& [key, ts] : {std::pair{a, 1000}, std::pair{b, 2000}}) {
    PutBytes(&raw, key);
    PutFixed64LE(&raw, uint64_t(ts));
    PutFixed64LE(&raw, std::bit_cast<uint64_t>(double(ts) / 10));
  }
  std::string v2(1, '\x02');
  std::string compressed;
  snappy::Compress(raw.data(), raw.size(), &compressed);
  v2 += compressed;
  std::string v1(1, '\x01');  // version 1: the same uncompressed; a newer state of a
  PutBytes(&v1, a);
  PutFixed64LE(&v1, 1500);
  PutFixed64LE(&v1, std::bit_cast<uint64_t>(1.25));
  auto mem = NewMemStore();
  WriteBatch old;
  old.Put(kFormatKey, kFormatVersion2);
  old.Put(GatewayStore::LogKey(0), v2);
  old.Put(GatewayStore::LogKey(1), v1);
  ASSERT_TRUE(mem->Write(old, true).ok());
  GatewayStoreOptions policy;
  policy.log_records = 4;
  std::unique_ptr<GatewayStore> store;
  ASSERT_TRUE(GatewayStore::Open(mem.get(), policy, &store).ok());
  EXPECT_EQ(Snapshot(*store).at(a), (SeriesState{1500, 1.25}));
  EXPECT_EQ(Snapshot(*store).at(b), (SeriesState{2000, 200}));
  EXPECT_EQ(store->log_records(), 2u);
  std::string version;
  ASSERT_TRUE(mem->Get(kFormatKey, &version).ok());
  EXPECT_EQ(version, kFormatVersion);
  // More groups: records by id over the old ones, then a checkpoint, then ids afresh.
  for (int i = 0; i < 6; ++i) {
    ApplyResult r;
    ASSERT_TRUE(store
                    ->Apply({S({{"__name__", "a"}}, {{3000 + i, double(i)}}),
                             S({{"__name__", "c"}}, {{3000 + i, double(-i)}})},
                            {}, &r)
                    .ok());
    EXPECT_EQ(r.accepted, 2u);
    std::unique_ptr<GatewayStore> reopened;
    ASSERT_TRUE(GatewayStore::Open(mem.get(), policy, &reopened).ok());
    EXPECT_EQ(Snapshot(*reopened), Snapshot(*store)) << "after group " << i;
    EXPECT_EQ(reopened->log_records(), store->log_records());
  }
  EXPECT_EQ(Snapshot(*store).at(a), (SeriesState{3005, 5}));
  EXPECT_EQ(Snapshot(*store).at(b), (SeriesState{2000, 200}));
}

TEST(GatewayStoreFormatTest, MalformedLogRecordsAreCorruption) {
  for (const std::string& bad :
       {std::string(""), std::string("\x02"),
        std::string("\x01\x03"
                    "ab"),
        std::string("\x01\x01k") + std::string(15, '\0'),
        std::string("\x04"),  // an unknown version
        // version 3: an id never defined; a defining entry without
        // its key, or with an empty one; a value cut short; a varint
        // cut short; an id of 2^32 - 1 (reserved)
        std::string("\x03\x02\x00") + std::string(8, '\0'), std::string("\x03\x01"),
        std::string("\x03\x01\x00\x00"),
        std::string("\x03\x01\x02\x01k\x00") + std::string(7, '\0'), std::string("\x03\x80"),
        std::string("\x03\xfe\xff\xff\xff\x1f\x00") + std::string(8, '\0'),
        std::string("\x02garbage that is not snappy"),
        // snappy claiming 2 GiB: refused before allocating
        std::string("\x02\x80\x80\x80\x80\x08")}) {
    auto mem = NewMemStore();
    std::unique_ptr<GatewayStore> store;
    ASSERT_TRUE(GatewayStore::Open(mem.get(), &store).ok());
    WriteBatch b;
    b.Put(GatewayStore::LogKey(0), bad);
    ASSERT_TRUE(mem->Write(b, true).ok());
    EXPECT_EQ(GatewayStore::Open(mem.get(), &store).code(), Status::Code::kCorruption);
  }
  auto mem = NewMemStore();
  std::unique_ptr<GatewayStore> store;
  ASSERT_TRUE(GatewayStore::Open(mem.get(), &store).ok());
  WriteBatch b;
  b.Put("Lshort", "\x01");
  ASSERT_TRUE(mem->Write(b, true).ok());
  EXPECT_EQ(GatewayStore::Open(mem.get(), &store).code(), Status::Code::kCorruption);
}

}  // namespace
}  // namespace ccmon::gateway
