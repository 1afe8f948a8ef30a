// Engine: commits are atomic (records, cursors and outbox entries together), a failed commit
// loses nothing and counts nothing twice once the engine is reopened from the store, the first
// samples after the catch-up are the totals, and sample timestamps follow the rule of
// agent/engine/series_table.h.
#include "agent/engine/engine.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <utility>

#include "engine_test_util.h"
#include "remote_write/write_request.h"
#include "store/kv_store.h"
#include "store/mem_store.h"
#include "store/outbox.h"
#include "testing/fault_store.h"

namespace ccmon::agent {
namespace {

using namespace ccmon::agent::testing;
using ccmon::testing_util::FaultStore;

constexpr int64_t kNow = 1767225600000 + 400LL * 86400000;  // well after the generated history

struct Harness {
  std::unique_ptr<KvStore> mem = NewMemStore();
  FaultStore store{mem.get()};
  std::unique_ptr<Outbox> outbox;
  std::unique_ptr<Engine> engine;
  EngineOptions options;
  uint32_t shards = 3;

  Harness() {
    options.live.device = "dev";
    options.live.prices = &PriceTable::Embedded();
    options.shards = shards;
    options.max_samples_per_send = 50;
    Reopen();
  }
  void Reopen() {
    engine.reset();
    outbox.reset();
    Status s = Outbox::Open(&store, OutboxOptions{}, int(shards), &outbox);
    ASSERT_TRUE(s.ok()) << s.message();
    s = Engine::Open(options, &store, outbox.get(), &engine);
    ASSERT_TRUE(s.ok()) << s.message();
  }
  // The committed cursor of file i (lines consumed), from the store.
  size_t Cursor(size_t i) {
    std::string v;
    if (!store.Get("f" + std::to_string(i), &v).ok()) return 0;
    return size_t(std::stoull(v));
  }
  // Every outbox entry, decoded, shard by shard in order.
  std::vector<rw::WriteRequest> Drain(bool remove) {
    std::vector<rw::WriteRequest> out;
    for (uint32_t shard = 0; shard < shards; ++shard) {
      for (;;) {
        OutboxBatch b;
        EXPECT_TRUE(outbox->Peek(shard, 1, 1 << 30, &b).ok());  // one entry at a time
        if (b.empty()) break;
        std::string body;
        rw::Compress(b.payload, &body);
        rw::WriteRequest req;
        Status s = rw::Decode(body, 1 << 30, &req);
        EXPECT_TRUE(s.ok()) << s.message();
        out.push_back(std::move(req));
        if (!remove) break;
        EXPECT_TRUE(outbox->Remove(shard, b.last_seq).ok());
      }
    }
    return out;
  }
};

// The last sample of every series in `requests`, keyed by its labels as text; also checks
// that each series' samples strictly ascend.
std::map<std::string, double> LastValues(const std::vector<rw::WriteRequest>& requests) {
  std::map<std::string, std::pair<int64_t, double>> last;
  for (const auto& r : requests) {
    for (const auto& s : r.series) {
      std::string key;
      for (const auto& [n, v] : s.labels) key += n + "=" + v + ",";
      for (const auto& sample : s.samples) {
        auto it = last.find(key);
        if (it != last.end()) {
          EXPECT_GT(sample.timestamp_ms, it->second.first) << key;
        }
        last[key] = {sample.timestamp_ms, sample.value};
      }
    }
  }
  std::map<std::string, double> values;
  for (auto& [k, v] : last) {
    // Replay has no session series (A41, tests/agent/engine/sessions_test.cc).
    if (k.find("__name__=claude_active_sessions,") != std::string::npos ||
        k.find("__name__=claude_session_duration_seconds_") != std::string::npos)
      continue;
    values[k] = v.second;
  }
  return values;
}

// The values of replay's text exposition, keyed the same way.
std::map<std::string, double> ReplayValues(const std::string& text) {
  std::map<std::string, double> values;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const size_t brace = line.find('{'), space = line.rfind(' ');
    std::vector<std::pair<std::string, std::string>> labels;
    labels.emplace_back("__name__", line.substr(0, brace));
    std::string body = line.substr(brace + 1, line.rfind('}') - brace - 1);
    size_t pos = 0;
    while (pos < body.size()) {
      const size_t eq = body.find('=', pos);
      const size_t close = body.find('"', eq + 2);
      const std::string value = body.substr(eq + 2, close - eq - 2);
      if (!value.empty()) labels.emplace_back(body.substr(pos, eq - pos), value);
      pos = close + 2;
    }
    std::sort(labels.begin(), labels.end());
    std::string key;
    for (const auto& [n, v] : labels) key += n + "=" + v + ",";
    values[key] = std::stod(line.substr(space + 1));
  }
  return values;
}

TEST(Engine, A40_NoSamplesBeforeTheCatchUpThenEverySeriesAtItsTotal) {
  Harness h;
  const auto files = MakeHistory(21, 20);
  LineParser parser;
  ParsedLine line;
  // Opening the outbox may have written (its shard count, synced): count from here.
  const int writes0 = h.store.writes(), syncs0 = h.store.sync_writes();
  for (size_t i = 0; i < files.size(); ++i) {
    for (const auto& l : files[i]) {
      parser.Parse(l, &line);
      ASSERT_TRUE(h.engine->AddLine(line).ok());
    }
    ASSERT_TRUE(
        h.engine->Commit({{"f" + std::to_string(i), std::to_string(files[i].size())}}, kNow).ok());
  }
  EXPECT_EQ(h.outbox->Stats().total.entries, 0u);
  // The catch-up's commits queue nothing and are not synced; the write that ends it is.
  EXPECT_EQ(h.store.writes() - writes0, int(files.size()));
  EXPECT_EQ(h.store.sync_writes() - syncs0, 0);
  ASSERT_TRUE(h.engine->MarkCaughtUp(kNow).ok());
  EXPECT_EQ(h.store.sync_writes() - syncs0, 1);
  const auto requests = h.Drain(true);
  ASSERT_FALSE(requests.empty());
  for (const auto& r : requests) {
    EXPECT_LE(r.sample_count(), 50u + 16u);  // one histogram series may overflow a cut
    for (const auto& s : r.series)
      for (const auto& sample : s.samples) EXPECT_EQ(sample.timestamp_ms, kNow);
  }
  EXPECT_EQ(LastValues(requests), ReplayValues(ReplayText(files, "dev")));
  // After it, every commit is synced.
  const int synced = h.store.sync_writes();
  parser.Parse(files[0][0], &line);
  ASSERT_TRUE(h.engine->AddLine(line).ok());
  ASSERT_TRUE(h.engine->Commit({{"f0", "1"}}, kNow + 1).ok());
  EXPECT_EQ(h.store.sync_writes(), synced + 1);
  // Restarted: caught up already, nothing re-queued, the same totals.
  h.Reopen();
  EXPECT_TRUE(h.engine->caught_up());
  EXPECT_EQ(h.outbox->Stats().total.entries, 0u);
  EXPECT_EQ(h.engine->Exposition(false, false), ReplayText(files, "dev"));
}

TEST(Engine, A40_FailedCommitsLoseNothingAndCountNothingTwice) {
  for (uint32_t seed : {31u, 32u, 33u}) {
    SCOPED_TRACE(seed);
    Harness h;
    const auto files = MakeHistory(seed, 30);
    std::mt19937 rng(seed);
    LineParser parser;
    ParsedLine line;
    ASSERT_TRUE(h.engine->MarkCaughtUp(kNow).ok());  // live from the start: samples queued too
    std::vector<rw::WriteRequest> sent;
    int failures = 0;
    size_t i = 0;
    std::string committed = h.engine->Exposition(false);
    while (i < files.size()) {
      // Read a few lines from the committed cursor, then commit.
      const size_t from = h.Cursor(i);
      const size_t to = std::min(files[i].size(), from + 1 + rng() % 4);
      for (size_t j = from; j < to; ++j) {
        parser.Parse(files[i][j], &line);
        ASSERT_TRUE(h.engine->AddLine(line).ok());
      }
      if (rng() % 5 == 0) {
        h.store.set_keep_failed_writes(true);
        h.store.FailNthWrite(1);
      }
      Status s = h.engine->Commit({{"f" + std::to_string(i), std::to_string(to)}}, kNow);
      const bool fault_fired = h.store.failed_writes() > failures;
      h.store.ClearFaults();  // an armed fault that did not fire (nothing to write) is disarmed
      ASSERT_EQ(!s.ok(), fault_fired);
      if (!s.ok()) {
        ++failures;
        // The write may still have reached the disk (a WAL record that survived): half the time.
        // Half the time the failed write reached the disk after all (its WAL record survived).
        const bool landed = rng() % 2;
        if (landed)
          h.store.LandFailedWrites();
        else
          h.store.DropFailedWrites();
        h.Reopen();  // the engine is ahead of the store: start over from it
        // Reopened, it holds exactly what the last successful commit held, or the failed one's.
        if (!landed) {
          ASSERT_EQ(h.engine->Exposition(false), committed) << "after failure " << failures;
        }
        committed = h.engine->Exposition(false);
        continue;
      }
      committed = h.engine->Exposition(false);
      auto drained = h.Drain(true);
      sent.insert(sent.end(), drained.begin(), drained.end());
      if (to == files[i].size()) ++i;
    }
    ASSERT_TRUE(h.engine->Commit({}, kNow + 120000).ok());
    auto drained = h.Drain(true);
    sent.insert(sent.end(), drained.begin(), drained.end());
    EXPECT_GT(failures, 3);
    EXPECT_EQ(h.engine->live_stats().conflicts, 0u);
    EXPECT_EQ(h.engine->Exposition(false, false), ReplayText(files, "dev"));
    EXPECT_EQ(LastValues(sent), ReplayValues(ReplayText(files, "dev")));
  }
}

// A store whose writes wait until the test opens its gate (at most 10 s: a commit that waited
// for its own write would otherwise hang the test instead of failing it).
class GatedStore final : public KvStore {
 public:
  explicit GatedStore(KvStore* base) : base_(base) {}
  void SetOpen(bool open) {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = open;
    cv_.notify_all();
  }
  int landed() const {
    std::lock_guard<std::mutex> lock(mu_);
    return landed_;
  }
  Status Get(std::string_view key, std::string* value) override { return base_->Get(key, value); }
  Status Write(const WriteBatch& batch, bool sync) override {
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (!cv_.wait_for(lock, std::chrono::seconds(10), [&] { return open_; }))
        ADD_FAILURE() << "a write waited 10 s for the gate: the writer of the batch waited for it";
    }
    Status s = base_->Write(batch, sync);
    std::lock_guard<std::mutex> lock(mu_);
    ++landed_;
    return s;
  }
  std::unique_ptr<KvIterator> NewIterator() override { return base_->NewIterator(); }
  uint64_t ApproximateBytes() override { return base_->ApproximateBytes(); }

 private:
  KvStore* base_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = true;
  int landed_ = 0;
};

// EngineOptions::write_thread: a catch-up commit returns while its batch is still being written,
// and the lines counted meanwhile never read a record back from the store before its newest
// value is there. With a cache of one record, trimming it before the write landed would make
// the second reading of the same lines find nothing in the store and count every request again.
TEST(Engine, PipelinedCatchUpNeverReadsARecordBackBeforeItsWriteLanded) {
  std::unique_ptr<KvStore> mem = NewMemStore();
  GatedStore store(mem.get());
  std::unique_ptr<Outbox> outbox;
  ASSERT_TRUE(Outbox::Open(&store, OutboxOptions{}, 1, &outbox).ok());
  EngineOptions options;
  options.live.device = "dev";
  options.live.prices = &PriceTable::Embedded();
  options.live.cache_records = 1;
  options.write_thread = true;
  std::unique_ptr<Engine> engine;
  ASSERT_TRUE(Engine::Open(options, &store, outbox.get(), &engine).ok());
  const auto files = MakeHistory(41, 12);
  const size_t half = files.size() / 2;
  LineParser parser;
  ParsedLine line;
  auto add = [&](size_t from, size_t to) {
    for (size_t i = from; i < to; ++i) {
      for (const auto& l : files[i]) {
        parser.Parse(l, &line);
        ASSERT_TRUE(engine->AddLine(line).ok());
      }
    }
  };
  const int landed0 = store.landed();
  store.SetOpen(false);
  add(0, half);
  ASSERT_TRUE(engine->Commit({{"f0", "1"}}, kNow).ok());
  EXPECT_EQ(store.landed(), landed0);  // returned before its write
  add(0, half);                        // the same lines again, while it is in flight
  store.SetOpen(true);
  ASSERT_TRUE(engine->Commit({{"f0", "2"}}, kNow).ok());
  add(half, files.size());
  ASSERT_TRUE(engine->Commit({{"f0", "3"}}, kNow).ok());
  ASSERT_TRUE(engine->MarkCaughtUp(kNow).ok());
  EXPECT_EQ(store.landed(), landed0 + 4);  // the three commits and MarkCaughtUp's, all landed
  EXPECT_EQ(engine->live_stats().conflicts, 0u);
  EXPECT_EQ(engine->Exposition(false, false), ReplayText(files, "dev"));
  // Reopened from the store: the same.
  engine.reset();
  ASSERT_TRUE(Engine::Open(options, &store, outbox.get(), &engine).ok());
  EXPECT_EQ(engine->Exposition(false, false), ReplayText(files, "dev"));
}

// A failed pipelined write is reported by the next call that waits for it (Commit, ScanRecords,
// MarkCaughtUp); reopened from the store, the catch-up goes on from the committed cursors and
// ends exact, whether the failed batch reached the disk or not. A small record cache makes the
// lines of later steps read evicted records back from the store.
TEST(Engine, A40_PipelinedCatchUpFailuresLoseNothingAndCountNothingTwice) {
  for (uint32_t seed : {51u, 52u, 53u}) {
    SCOPED_TRACE(seed);
    Harness h;
    h.options.write_thread = true;
    h.options.live.cache_records = 20;
    h.Reopen();
    const auto files = MakeHistory(seed, 30);
    std::mt19937 rng(seed);
    LineParser parser;
    ParsedLine line;
    int failures = 0;
    auto recover = [&] {
      ++failures;
      h.store.ClearFaults();
      if (rng() % 2)
        h.store.LandFailedWrites();
      else
        h.store.DropFailedWrites();
      h.Reopen();
    };
    // The cursors as the caller holds them (the store's may lag behind a batch in flight),
    // read back from the store after a reopen.
    std::vector<size_t> cursor(files.size(), 0);
    size_t i = 0;
    auto reload = [&] {
      for (size_t k = 0; k < files.size(); ++k) cursor[k] = h.Cursor(k);
      i = 0;
      while (i < files.size() && cursor[i] == files[i].size()) ++i;
    };
    for (;;) {
      if (i == files.size()) {
        Status s = h.engine->MarkCaughtUp(kNow);
        if (s.ok()) break;
        recover();
        reload();
        continue;
      }
      const size_t from = cursor[i];
      const size_t to = std::min(files[i].size(), from + 1 + rng() % 6);
      for (size_t j = from; j < to; ++j) {
        parser.Parse(files[i][j], &line);
        ASSERT_TRUE(h.engine->AddLine(line).ok());
      }
      if (rng() % 4 == 0) {
        h.store.set_keep_failed_writes(true);
        h.store.FailNthWrite(1);
      }
      Status s = h.engine->Commit({{"f" + std::to_string(i), std::to_string(to)}}, kNow);
      if (s.ok() && rng() % 2) {
        s = h.engine->ScanRecords("f",
                                  [](std::string_view, std::string_view) { return Status::Ok(); });
      }
      if (!s.ok()) {
        recover();
        reload();
        continue;
      }
      cursor[i] = to;
      if (to == files[i].size()) ++i;
    }
    EXPECT_GT(failures, 3);
    EXPECT_TRUE(h.engine->caught_up());
    EXPECT_EQ(h.engine->live_stats().conflicts, 0u);
    EXPECT_EQ(h.engine->Exposition(false, false), ReplayText(files, "dev"));
    EXPECT_EQ(LastValues(h.Drain(true)), ReplayValues(ReplayText(files, "dev")));
    h.Reopen();
    EXPECT_EQ(h.engine->Exposition(false, false), ReplayText(files, "dev"));
  }
}

// A store that counts, per write, the pending records (h) it deletes: how many requests each
// batch settled.
class SettleCountingStore final : public KvStore {
 public:
  explicit SettleCountingStore(KvStore* base) : base_(base) {}
  std::vector<size_t> settled_per_write;
  Status Get(std::string_view key, std::string* value) override { return base_->Get(key, value); }
  Status Write(const WriteBatch& batch, bool sync) override {
    Status s = base_->Write(batch, sync);
    if (!s.ok()) return s;
    size_t settled = 0;
    for (const WriteBatch::Op& op : batch.ops()) {
      if (op.type == WriteBatch::OpType::kDelete && !op.key.empty() &&
          op.key[0] == LiveAccounting::kPendingPrefix)
        ++settled;
    }
    std::lock_guard<std::mutex> lock(mu_);  // the engine's writer thread writes too
    settled_per_write.push_back(settled);
    return s;
  }
  std::unique_ptr<KvIterator> NewIterator() override { return base_->NewIterator(); }
  uint64_t ApproximateBytes() override { return base_->ApproximateBytes(); }
  std::vector<size_t> Taken() {
    std::lock_guard<std::mutex> lock(mu_);
    return std::exchange(settled_per_write, {});
  }

 private:
  KvStore* base_;
  std::mutex mu_;
};

// The end of the first catch-up settles the history's pending requests in chunks of
// EngineOptions::catch_up_settle_chunk, each written before the next is settled (so that their
// records do not all wait in memory for MarkCaughtUp's one batch). A crash (here: a failed
// write, which reached the disk or not) after any number of chunks resumes exactly: reopened
// from the store, the catch-up ends again, settles the rest, and every series equals replay's,
// each request observed once in the histogram, in the first samples too.
TEST(Engine, A40_TheCatchUpsEndSettlesInChunksAndACrashAmongThemResumesExactly) {
  const auto files = MakeHistory(71, 40);
  const std::string replay = ReplayText(files, "dev");
  LineParser parser;
  ParsedLine line;
  for (bool write_thread : {false, true}) {
    // fail_at: the write (from MarkCaughtUp's first) that fails; 0: none.
    for (int fail_at = 0; fail_at <= 12; ++fail_at) {
      for (bool landed : {false, true}) {
        if (fail_at == 0 && landed) continue;
        SCOPED_TRACE(::testing::Message() << "write_thread " << write_thread << " fail_at "
                                          << fail_at << " landed " << landed);
        std::unique_ptr<KvStore> mem = NewMemStore();
        FaultStore faults(mem.get());
        SettleCountingStore store(&faults);
        EngineOptions options;
        options.live.device = "dev";
        options.live.prices = &PriceTable::Embedded();
        options.live.cache_records = 8;  // the settled records are read back from the store
        options.write_thread = write_thread;
        options.catch_up_settle_chunk = 3;
        std::unique_ptr<Outbox> outbox;
        std::unique_ptr<Engine> engine;
        auto reopen = [&] {
          engine.reset();
          outbox.reset();
          ASSERT_TRUE(Outbox::Open(&store, OutboxOptions{}, 1, &outbox).ok());
          ASSERT_TRUE(Engine::Open(options, &store, outbox.get(), &engine).ok());
        };
        reopen();
        for (size_t i = 0; i < files.size(); ++i) {
          for (const auto& l : files[i]) {
            parser.Parse(l, &line);
            ASSERT_TRUE(engine->AddLine(line).ok());
          }
          ASSERT_TRUE(engine->Commit({{"f" + std::to_string(i), "1"}}, kNow - 3600000).ok());
        }
        // The catch-up's commits done (an hour before: the last request of each session is
        // still pending), the store holds the pending requests.
        ASSERT_TRUE(engine->ScanRecords("f", [](auto, auto) { return Status::Ok(); }).ok());
        size_t pending = 0;
        ASSERT_TRUE(engine
                        ->ScanRecords(std::string(1, LiveAccounting::kPendingPrefix),
                                      [&](auto, auto) {
                                        ++pending;
                                        return Status::Ok();
                                      })
                        .ok());
        ASSERT_GT(pending, 3u * 12);  // every fail_at below is a chunk's write
        store.Taken();
        if (fail_at > 0) {
          faults.set_keep_failed_writes(true);
          faults.FailNthWrite(fail_at);
          ASSERT_FALSE(engine->MarkCaughtUp(kNow).ok());
          faults.ClearFaults();
          if (landed)
            faults.LandFailedWrites();
          else
            faults.DropFailedWrites();
          const std::vector<size_t> before_crash = store.Taken();
          EXPECT_EQ(before_crash.size(), size_t(fail_at - 1));
          for (size_t n : before_crash) EXPECT_EQ(n, 3u);
          reopen();  // as after a crash: from the store, still catching up
          ASSERT_FALSE(engine->caught_up());
        }
        ASSERT_TRUE(engine->MarkCaughtUp(kNow).ok());
        const std::vector<size_t> chunks = store.Taken();
        if (fail_at == 0) {
          // Every chunk but the last written on its own; the last in MarkCaughtUp's batch.
          ASSERT_GE(chunks.size(), pending / 3);
          size_t settled = 0;
          for (size_t n : chunks) {
            EXPECT_LE(n, 3u);
            settled += n;
          }
          EXPECT_EQ(settled, pending);
        }
        EXPECT_EQ(engine->live_stats().conflicts, 0u);
        EXPECT_EQ(engine->Exposition(false, false), replay);
        std::vector<rw::WriteRequest> sent;
        for (;;) {
          OutboxBatch b;
          ASSERT_TRUE(outbox->Peek(0, 1, 1 << 30, &b).ok());
          if (b.empty()) break;
          std::string body;
          rw::Compress(b.payload, &body);
          rw::WriteRequest req;
          ASSERT_TRUE(rw::Decode(body, 1 << 30, &req).ok());
          sent.push_back(std::move(req));
          ASSERT_TRUE(outbox->Remove(0, b.last_seq).ok());
        }
        EXPECT_EQ(LastValues(sent), ReplayValues(replay));
        reopen();
        EXPECT_EQ(engine->Exposition(false, false), replay);
      }
    }
  }
}

// A first start (no record in the store) answers the reads of records it never wrote from
// memory; an engine opened over existing records asks the store, and both count the same.
TEST(Engine, AFirstStartReadsOnlyRecordsItWrote) {
  Harness h;
  const auto files = MakeHistory(61, 20);
  LineParser parser;
  ParsedLine line;
  const size_t half = files.size() / 2;
  for (size_t i = 0; i < half; ++i) {
    for (const auto& l : files[i]) {
      parser.Parse(l, &line);
      ASSERT_TRUE(h.engine->AddLine(line).ok());
    }
    ASSERT_TRUE(h.engine->Commit({}, kNow).ok());
  }
  const uint64_t skipped = h.engine->stats().reads_skipped;
  EXPECT_GT(skipped, 0u);
  // Every read skipped was a record lookup that found nothing; most lookups of a first start
  // are of new keys, so few reach the store.
  EXPECT_LT(uint64_t(h.store.gets()), skipped);
  h.Reopen();  // the store holds records now
  const int gets0 = h.store.gets();
  for (size_t i = half; i < files.size(); ++i) {
    for (const auto& l : files[i]) {
      parser.Parse(l, &line);
      ASSERT_TRUE(h.engine->AddLine(line).ok());
    }
    ASSERT_TRUE(h.engine->Commit({}, kNow).ok());
  }
  EXPECT_EQ(h.engine->stats().reads_skipped, 0u);
  EXPECT_GT(h.store.gets() - gets0, 0);
  ASSERT_TRUE(h.engine->MarkCaughtUp(kNow).ok());
  EXPECT_EQ(h.engine->Exposition(false, false), ReplayText(files, "dev"));
}

// A42 (found by the hostile19 trial): a record whose id, session, model or cwd is over 4 KiB is
// skipped by both tools. Before, such a string longer than the store's key limit (64 KiB) went
// into a key (r/e/h + dedup key, s/d + session, the l label records and c series keys) and made
// every commit fail: the agent stopped reading for good while replay counted the line. At
// exactly kMaxIdBytes a record still counts (its keys fit), and the reading goes on after both.
TEST(Engine, A42_AnIdOver4KiBIsSkippedAsReplaySkipsIt) {
  const std::string big(kMaxKvKeyBytes + 1, 'x');
  const std::string over(kMaxIdBytes + 1, 'y');
  const std::string model_at_limit = "claude-" + std::string(kMaxIdBytes - 7, 'z');
  const std::vector<std::vector<std::string>> files = {
      {Assistant("s1", "/w/" + big, kNow - 9000, "m1", "claude-opus-4-6", 10, 0, false, {}, 0)
           .dump(),
       Assistant("s1", "/w/" + over, kNow - 8900, "m1b", "claude-opus-4-6", 10, 0, false, {}, 0)
           .dump()},
      {Assistant("s2", "/w/p", kNow - 8000, "m" + big, "claude-opus-4-6", 10, 0, false, {}, 0)
           .dump(),
       Assistant("s2", "/w/p", kNow - 7900, "m" + over, "claude-opus-4-6", 10, 0, false, {}, 0)
           .dump()},
      {Assistant(big, "/w/p", kNow - 7000, "m3", "claude-opus-4-6", 10, 0, false, {}, 0).dump(),
       Assistant(over, "/w/p", kNow - 6900, "m3b", "claude-opus-4-6", 10, 0, false, {}, 0).dump()},
      {Assistant("s4", "/w/p", kNow - 6000, "m4", "claude-" + big, 10, 0, false, {}, 0).dump(),
       Assistant("s4", "/w/p", kNow - 5900, "m4b", "claude-" + over, 10, 0, false, {}, 0).dump()},
      // At the limit (the requestId is "req_" + the message id): counted.
      {Assistant("s5", "/w/" + std::string(kMaxIdBytes - 3, 'q'), kNow - 5000,
                 std::string(kMaxIdBytes - 4, 'i'), model_at_limit, 10, 0, false, {}, 0)
           .dump(),
       Assistant("s6", "/w/p", kNow - 4000, "m6", "claude-opus-4-6", 7, 0, false, {}, 0).dump()},
  };
  Harness h;
  LineParser parser;
  ParsedLine line;
  for (size_t i = 0; i < files.size(); ++i) {
    for (const auto& l : files[i]) {
      parser.Parse(l, &line);
      ASSERT_TRUE(h.engine->AddLine(line).ok());
    }
    Status s = h.engine->Commit({{"f" + std::to_string(i), "1"}}, kNow);
    ASSERT_TRUE(s.ok()) << "file " << i << ": " << s.message();
  }
  ASSERT_TRUE(h.engine->MarkCaughtUp(kNow + 120000).ok());
  const std::string exposition = h.engine->Exposition(false, false);
  EXPECT_EQ(exposition, ReplayText(files, "dev"));
  EXPECT_NE(exposition.find(model_at_limit), std::string::npos);
  EXPECT_EQ(exposition.find("yyyy"), std::string::npos);
}

TEST(Engine, SampleTimestampsAreEventTimesClampedToNowAndAscending) {
  Harness h;
  h.options.max_sample_age_ms = 3600000;
  h.Reopen();
  ASSERT_TRUE(h.engine->MarkCaughtUp(kNow).ok());
  h.Drain(true);
  LineParser parser;
  ParsedLine line;
  auto add = [&](int64_t ts, const std::string& id) {
    parser.Parse(Assistant("s1", "/w/p", ts, id, "claude-opus-4-6", 10, 0, false, {}, 0).dump(),
                 &line);
    ASSERT_TRUE(h.engine->AddLine(line).ok());
  };
  auto requests_sample = [&](const std::vector<rw::WriteRequest>& reqs) {
    for (const auto& r : reqs)
      for (const auto& s : r.series)
        for (const auto& [n, v] : s.labels)
          if (n == "__name__" && v == "claude_requests_total") return s.samples.back();
    ADD_FAILURE() << "no claude_requests_total sample";
    return rw::Sample{};
  };
  // A recent line: stamped at its own time.
  add(kNow - 5000, "m1");
  ASSERT_TRUE(h.engine->Commit({}, kNow).ok());
  EXPECT_EQ(requests_sample(h.Drain(true)).timestamp_ms, kNow - 5000);
  // A line from the future (a clock ahead of ours): stamped now.
  add(kNow + 3600000, "m2");
  ASSERT_TRUE(h.engine->Commit({}, kNow + 1000).ok());
  EXPECT_EQ(requests_sample(h.Drain(true)).timestamp_ms, kNow + 1000);
  // An old line (beyond max_sample_age): stamped now, and counted.
  add(kNow - 2 * 3600000, "m3");
  ASSERT_TRUE(h.engine->Commit({}, kNow + 2000).ok());
  EXPECT_EQ(requests_sample(h.Drain(true)).timestamp_ms, kNow + 2000);
  EXPECT_GE(h.engine->stats().samples_stamped_now, 1u);
  // A line older than the series' last sample (but recent): just after that sample.
  add(kNow - 1000, "m4");
  ASSERT_TRUE(h.engine->Commit({}, kNow + 3000).ok());
  EXPECT_EQ(requests_sample(h.Drain(true)).timestamp_ms, kNow + 2001);
}

// After a --backfill, the live samples follow the history's end: a recent line's sample (its
// event time would go before that end) is stamped just after it.
TEST(Engine, SamplesFollowABackfilledHistorysEnd) {
  Harness h;
  h.options.samples_after_ms = kNow - 1000;
  h.Reopen();
  LineParser parser;
  ParsedLine line;
  parser.Parse(
      Assistant("s1", "/w/p", kNow - 30000, "m1", "claude-opus-4-6", 10, 0, false, {}, 0).dump(),
      &line);
  ASSERT_TRUE(h.engine->AddLine(line).ok());
  ASSERT_TRUE(h.engine->Commit({}, kNow).ok());
  ASSERT_TRUE(h.engine->MarkCaughtUp(kNow).ok());
  size_t samples = 0, at_floor = 0;
  for (const auto& r : h.Drain(true)) {
    for (const auto& series : r.series) {
      for (const auto& sample : series.samples) {
        EXPECT_GT(sample.timestamp_ms, kNow - 1000);    // never at or before the history's end
        at_floor += sample.timestamp_ms == kNow - 999;  // the line's series (others: now)
        ++samples;
      }
    }
  }
  EXPECT_GT(samples, 0u);
  EXPECT_GT(at_floor, 0u);
}

TEST(Engine, UnchangedSeriesAreResentAfterTheIntervalOnlyWhenTheOutboxIsEmpty) {
  Harness h;
  h.options.resend_interval_ms = 15000;
  h.Reopen();
  LineParser parser;
  ParsedLine line;
  parser.Parse(
      Assistant("s1", "/w/p", kNow - 1000, "m1", "claude-opus-4-6", 10, 0, false, {}, 0).dump(),
      &line);
  ASSERT_TRUE(h.engine->AddLine(line).ok());
  ASSERT_TRUE(h.engine->MarkCaughtUp(kNow).ok());
  const size_t series = LastValues(h.Drain(false)).size();
  // Not drained: the outbox holds a backlog, so a commit after the interval resends nothing.
  ASSERT_TRUE(h.engine->Commit({}, kNow + 20000).ok());
  const uint64_t entries = h.outbox->Stats().total.entries;
  h.Drain(true);
  EXPECT_EQ(h.engine->stats().samples_resent, 0u);
  // Empty outbox and the interval passed: every series again, at the commit's time.
  ASSERT_TRUE(h.engine->Commit({}, kNow + 40000).ok());
  const auto resent = h.Drain(true);
  EXPECT_EQ(LastValues(resent).size(), series);
  for (const auto& r : resent)
    for (const auto& s : r.series) EXPECT_EQ(s.samples.back().timestamp_ms, kNow + 40000);
  EXPECT_GT(entries, 0u);
  // Within the interval: nothing.
  ASSERT_TRUE(h.engine->Commit({}, kNow + 41000).ok());
  EXPECT_EQ(h.outbox->Stats().total.entries, 0u);
}

}  // namespace
}  // namespace ccmon::agent
