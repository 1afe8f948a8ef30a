// The bulk first start (docs/agent-design.md "Bulk first start") against the line-by-line
// catch-up: over the same history, both leave stores whose records are the same, and /metrics
// equal to replay's; a failed or interrupted bulk start leaves the state empty; the tailer goes
// on from the scanned cursors without reading a line twice.
#include "agent/engine/bulk_start.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agent/engine/ingest.h"
#include "engine_test_util.h"
#include "ledger/scanner.h"
#include "store/mem_store.h"
#include "store/outbox.h"
#include "store/rocks_store.h"
#include "tail/file_identity.h"
#include "testing/fake_clock.h"
#include "testing/temp_dir.h"
#include "transcript/discovery.h"

namespace ccmon::agent {
namespace {

using namespace ccmon::agent::testing;
using ccmon::testing_util::FakeClock;
using ccmon::testing_util::TempDir;

using Dump = std::map<std::string, std::string>;

Dump DumpStore(KvStore* store) {
  Dump out;
  auto it = store->NewIterator();
  for (it->SeekToFirst(); it->Valid(); it->Next())
    out[std::string(it->key())] = std::string(it->value());
  EXPECT_TRUE(it->status().ok());
  return out;
}

// The first difference of two dumps, printable.
std::string FirstDifference(const Dump& a, const Dump& b) {
  auto printable = [](std::string s) {
    std::string o;
    for (unsigned char c : s) {
      if (c >= 32 && c < 127) {
        o.push_back(char(c));
      } else {
        char buf[8];
        snprintf(buf, sizeof buf, "\\x%02x", c);
        o += buf;
      }
    }
    return o;
  };
  for (const auto& [k, v] : a) {
    auto it = b.find(k);
    if (it == b.end()) return "only in the first: " + printable(k);
    if (it->second != v)
      return "differs: " + printable(k) + ": " + printable(v) + " vs " + printable(it->second);
  }
  for (const auto& [k, v] : b)
    if (!a.count(k)) return "only in the second: " + printable(k);
  return "";
}

EngineOptions Options() {
  EngineOptions eo;
  eo.live.device = "dev";
  eo.live.prices = &PriceTable::Embedded();
  return eo;
}

class BulkStartTest : public ::testing::Test {
 protected:
  void SetUp() override {
    projects_ = dir_.path() + "/claude/projects";
    std::filesystem::create_directories(projects_ + "/p");
  }
  void WriteHistory(const std::vector<std::vector<std::string>>& files, const std::string& tag) {
    for (size_t i = 0; i < files.size(); ++i) {
      std::ofstream f(projects_ + "/p/" + tag + std::to_string(i) + ".jsonl", std::ios::app);
      for (const std::string& l : files[i]) f << l << "\n";
    }
  }
  // The line-by-line path: the agent's engine, tailer and ingestor, stepped until caught up,
  // every commit at `now_ms`.
  void CatchUp(KvStore* store, int64_t now_ms, bool parse_thread = true) {
    std::unique_ptr<Outbox> outbox;
    ASSERT_TRUE(Outbox::Open(store, OutboxOptions{}, 1, &outbox).ok());
    EngineOptions eo = Options();
    eo.write_thread = parse_thread;
    std::unique_ptr<Engine> engine;
    ASSERT_TRUE(Engine::Open(eo, store, outbox.get(), &engine).ok());
    std::vector<TrackedFile> restored;
    ASSERT_TRUE(Ingestor::RestoredFiles(engine.get(), &restored).ok());
    TailerOptions to;
    to.project_dirs = {projects_};
    to.watch_mode = WatchMode::kPoll;
    to.poll_interval = std::chrono::milliseconds(20);
    to.max_offer_bytes = 2 * 4096;
    Tailer tailer(to, std::move(restored));
    IngestOptions io;
    io.step_bytes = 4096;  // many commits
    io.parse_thread = parse_thread;
    FakeClock clock(now_ms);
    Ingestor ingest(io, engine.get(), &tailer, Env::Default(), &clock, nullptr);
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!engine->caught_up()) {
      ASSERT_LT(std::chrono::steady_clock::now(), give_up);
      ASSERT_TRUE(
          ingest.Step(std::chrono::steady_clock::now() + std::chrono::milliseconds(200), {}).ok());
    }
  }
  BulkStartResult Bulk(KvStore* store, int64_t now_ms, const EngineOptions& eo = Options()) {
    std::unique_ptr<Outbox> outbox;
    EXPECT_TRUE(Outbox::Open(store, OutboxOptions{}, 1, &outbox).ok());
    BulkStartOptions bo;
    bo.project_dirs = {projects_};
    bo.threads = 2;
    BulkStartResult r;
    Status s = BulkStart(bo, eo, store, outbox.get(), now_ms, &r);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return r;
  }
  // /metrics' claude_* families of an engine opened over `store` (as after a restart), after a
  // commit at `commit_ms` when given (settling what is quiet by then).
  std::string Metrics(KvStore* store, bool agent_families, int64_t commit_ms = 0) {
    std::unique_ptr<Outbox> outbox;
    EXPECT_TRUE(Outbox::Open(store, OutboxOptions{}, 1, &outbox).ok());
    std::unique_ptr<Engine> engine;
    EXPECT_TRUE(Engine::Open(Options(), store, outbox.get(), &engine).ok());
    EXPECT_TRUE(engine->caught_up());
    if (commit_ms) {  // twice: quiet is settle_after after the first commit that saw it
      EXPECT_TRUE(engine->Commit({}, commit_ms).ok());
      EXPECT_TRUE(engine->Commit({}, commit_ms + 3600000).ok());
    }
    return engine->Exposition(false, agent_families);
  }
  // The line-by-line path over a store that is caught up: steps until every file's cursor is at
  // its last newline.
  void CatchUpAll(KvStore* store, int64_t now_ms) {
    uint64_t want = 0;
    for (const auto& e : std::filesystem::recursive_directory_iterator(projects_)) {
      if (!e.is_regular_file()) continue;
      std::ifstream f(e.path(), std::ios::binary);
      std::string content((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
      want += content.rfind('\n') + 1;
    }
    std::unique_ptr<Outbox> outbox;
    ASSERT_TRUE(Outbox::Open(store, OutboxOptions{}, 1, &outbox).ok());
    std::unique_ptr<Engine> engine;
    ASSERT_TRUE(Engine::Open(Options(), store, outbox.get(), &engine).ok());
    std::vector<TrackedFile> restored;
    ASSERT_TRUE(Ingestor::RestoredFiles(engine.get(), &restored).ok());
    TailerOptions to;
    to.project_dirs = {projects_};
    to.watch_mode = WatchMode::kPoll;
    to.poll_interval = std::chrono::milliseconds(20);
    Tailer tailer(to, std::move(restored));
    FakeClock clock(now_ms);
    Ingestor ingest(IngestOptions{}, engine.get(), &tailer, Env::Default(), &clock, nullptr);
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    for (;;) {
      std::vector<TrackedFile> files;
      ASSERT_TRUE(Ingestor::RestoredFiles(engine.get(), &files).ok());
      uint64_t have = 0;
      for (const auto& f : files) have += f.offset;
      if (have == want) break;
      ASSERT_LT(std::chrono::steady_clock::now(), give_up) << have << " of " << want;
      ASSERT_TRUE(
          ingest.Step(std::chrono::steady_clock::now() + std::chrono::milliseconds(200), {}).ok());
    }
  }
  TempDir dir_;
  std::string projects_;
};

constexpr int64_t kHistoryStart = 1767225600000;  // MakeHistory's first day

// Only the records whose key starts with one of `prefixes`.
Dump Only(const Dump& d, std::string_view prefixes) {
  Dump out;
  for (const auto& [k, v] : d)
    if (!k.empty() && prefixes.find(k[0]) != std::string_view::npos) out[k] = v;
  return out;
}

class BulkEqualsCatchUp : public BulkStartTest {
 protected:
  void SetUp() override {
    BulkStartTest::SetUp();
    for (uint32_t seed : {7u, 8u}) {
      for (auto& f : MakeHistory(seed, 30)) history_.push_back(f);
      WriteHistory(MakeHistory(seed, 30), "s" + std::to_string(seed) + "-");
    }
    LineParser parser;
    ParsedLine line;
    for (const auto& f : history_)
      for (const auto& l : f) {
        parser.Parse(l, &line);
        if (line.kind == LineKind::kUsage || line.kind == LineKind::kPrompt)
          newest_ = std::max(newest_, line.timestamp_ms);
      }
    ASSERT_GT(newest_, kHistoryStart);
  }
  std::vector<std::vector<std::string>> history_;
  int64_t newest_ = 0;
};

// A history long ago (every request settled, every session closed): both paths leave the same
// records, byte for byte (outbox entries included), and /metrics equals replay's.
TEST_F(BulkEqualsCatchUp, A42_AnOldHistoryLeavesTheSameRecordsByteForByte) {
  for (bool parse_thread : {true, false}) {
    const int64_t now_ms = newest_ + int64_t(400) * 86400000;
    std::unique_ptr<KvStore> line_by_line = NewMemStore(), bulk = NewMemStore();
    CatchUp(line_by_line.get(), now_ms, parse_thread);
    const BulkStartResult r = Bulk(bulk.get(), now_ms);
    ASSERT_TRUE(r.done) << r.why_not;
    EXPECT_EQ(r.live.conflicts, 0u);
    EXPECT_EQ(r.live.pending, 0u);
    EXPECT_EQ(r.live.active_sessions, 0u);
    const Dump a = DumpStore(line_by_line.get()), b = DumpStore(bulk.get());
    EXPECT_EQ(a.size(), b.size());
    EXPECT_EQ(FirstDifference(a, b), "");
    EXPECT_EQ(Metrics(bulk.get(), false), ReplayText(history_, "dev"));
    EXPECT_EQ(Metrics(bulk.get(), true), Metrics(line_by_line.get(), true));
  }
}

// A history whose newest line is 5 s old: its newest requests wait to be settled and its last
// sessions are open and active. Which of a session's recent requests waits depends on the
// order its lines were read (A42), and a series' first sample carries its newest change's time
// (the copy's that changed it, not known to the scan): those differ; everything else is the same
// at once, and everything is the same once both have settled.
TEST_F(BulkEqualsCatchUp, A42_ARecentHistoryIsTheSameOnceSettled) {
  const int64_t now_ms = newest_ + 5000;
  std::unique_ptr<KvStore> line_by_line = NewMemStore(), bulk = NewMemStore();
  CatchUp(line_by_line.get(), now_ms);
  const BulkStartResult r = Bulk(bulk.get(), now_ms);
  ASSERT_TRUE(r.done) << r.why_not;
  EXPECT_GT(r.live.pending, 0u);
  EXPECT_GT(r.live.active_sessions, 0u);
  // Open sessions, errors, files, labels, meta, prompts, sessions, tool calls: the same.
  EXPECT_EQ(FirstDifference(Only(DumpStore(line_by_line.get()), "deflmpst"),
                            Only(DumpStore(bulk.get()), "deflmpst")),
            "");
  // Both settle (the histogram observes the rest) and close the sessions as time passes.
  for (KvStore* store : {line_by_line.get(), bulk.get()}) {
    std::unique_ptr<Outbox> outbox;
    ASSERT_TRUE(Outbox::Open(store, OutboxOptions{}, 1, &outbox).ok());
    std::unique_ptr<Engine> engine;
    ASSERT_TRUE(Engine::Open(Options(), store, outbox.get(), &engine).ok());
    for (int64_t later : {600000, 1200000, 3600000, 7200000})
      ASSERT_TRUE(engine->Commit({}, now_ms + later).ok());
  }
  const Dump a = DumpStore(line_by_line.get()), b = DumpStore(bulk.get());
  EXPECT_EQ(FirstDifference(Only(a, "defhlmprst"), Only(b, "defhlmprst")), "");
  EXPECT_EQ(Only(a, "c").size(), Only(b, "c").size());
  EXPECT_EQ(Metrics(bulk.get(), true), Metrics(line_by_line.get(), true));
  EXPECT_EQ(Metrics(bulk.get(), false), ReplayText(history_, "dev"));
}

// A store whose IngestSorted fails after `fail_after` records were put: the crash (or full disk)
// while the table is written.
class FailingIngest final : public KvStore {
 public:
  FailingIngest(KvStore* inner, int fail_after) : inner_(inner), fail_after_(fail_after) {}
  Status Get(std::string_view k, std::string* v) override { return inner_->Get(k, v); }
  Status Write(const WriteBatch& b, bool sync) override { return inner_->Write(b, sync); }
  std::unique_ptr<KvIterator> NewIterator() override { return inner_->NewIterator(); }
  uint64_t ApproximateBytes() override { return inner_->ApproximateBytes(); }
  Status IngestSorted(const std::function<Status(SortedTableSink*)>& fill, bool sync) override {
    return inner_->IngestSorted(
        [&](SortedTableSink* sink) {
          class Counting final : public SortedTableSink {
           public:
            Counting(SortedTableSink* s, int n) : s_(s), left_(n) {}
            Status Put(std::string_view k, std::string_view v) override {
              if (left_-- == 0) return Status::IoError("disk full (test)");
              return s_->Put(k, v);
            }
            SortedTableSink* s_;
            int left_;
          } counting(sink, fail_after_);
          return fill(&counting);
        },
        sync);
  }

 private:
  KvStore* inner_;
  int fail_after_;
};

// The agent's records (not the outbox's shard record).
Dump AgentRecords(KvStore* store) { return Only(DumpStore(store), "cdefhlmprst"); }

// Where the bulk start does not apply it writes nothing and says why, and the caller counts
// line by line: a history over the size cap, labels over their caps (A31), an unlistable dir.
TEST_F(BulkEqualsCatchUp, WhereItDoesNotApplyItWritesNothingAndSaysWhy) {
  const int64_t now_ms = newest_ + int64_t(400) * 86400000;
  auto run = [&](const BulkStartOptions& bo, const EngineOptions& eo, std::string* why_not) {
    std::unique_ptr<KvStore> store = NewMemStore();
    std::unique_ptr<Outbox> outbox;
    ASSERT_TRUE(Outbox::Open(store.get(), OutboxOptions{}, 1, &outbox).ok());
    BulkStartResult r;
    ASSERT_TRUE(BulkStart(bo, eo, store.get(), outbox.get(), now_ms, &r).ok());
    EXPECT_FALSE(r.done);
    EXPECT_TRUE(AgentRecords(store.get()).empty());
    EXPECT_EQ(outbox->Stats().total.entries, 0u);
    *why_not = r.why_not;
  };
  BulkStartOptions bo;
  bo.project_dirs = {projects_};
  std::string why;
  bo.max_history_bytes = 1000;
  run(bo, Options(), &why);
  EXPECT_NE(why.find("is over 1000 bytes"), std::string::npos) << why;
  bo.max_history_bytes = BulkStartOptions().max_history_bytes;
  EngineOptions capped = Options();
  capped.live.labels.max_models = 1;  // the history has several models
  run(bo, capped, &why);
  EXPECT_NE(why.find("over a cap"), std::string::npos) << why;
  bo.project_dirs = {dir_.path() + "/a-file"};
  std::ofstream(dir_.path() + "/a-file") << "not a directory";
  run(bo, Options(), &why);
  EXPECT_NE(why.find("could not be listed"), std::string::npos) << why;
}

// A listing the caller took (the agent takes it while its state opens, after setting up the
// tailer's watcher) is the one scanned: the same records as BulkStart's own listing; a file
// created after it is not in the table (no cursor: the tailer reads it from its start); a
// listing with a problem is refused as BulkStart's own would be.
TEST_F(BulkEqualsCatchUp, AListingTakenByTheCallerIsTheOneScanned) {
  const int64_t now_ms = newest_ + int64_t(400) * 86400000;
  std::unique_ptr<KvStore> own = NewMemStore();
  ASSERT_TRUE(Bulk(own.get(), now_ms).done);
  const DiscoveryResult listed = FindTranscripts({projects_});
  ASSERT_TRUE(listed.complete());
  std::ofstream(projects_ + "/p/later.jsonl") << history_[0][0] << "\n";
  auto run = [&](const DiscoveryResult& listing, KvStore* store) {
    std::unique_ptr<Outbox> outbox;
    EXPECT_TRUE(Outbox::Open(store, OutboxOptions{}, 1, &outbox).ok());
    BulkStartOptions bo;
    bo.project_dirs = {projects_};
    bo.listed = &listing;
    BulkStartResult r;
    EXPECT_TRUE(BulkStart(bo, Options(), store, outbox.get(), now_ms, &r).ok());
    return r;
  };
  std::unique_ptr<KvStore> given = NewMemStore();
  const BulkStartResult r = run(listed, given.get());
  ASSERT_TRUE(r.done) << r.why_not;
  EXPECT_EQ(r.files, listed.files.size());
  EXPECT_EQ(FirstDifference(DumpStore(own.get()), DumpStore(given.get())), "");
  std::string v;
  EXPECT_EQ(
      given->Get(std::string(1, Engine::kFilePrefix) + projects_ + "/p/later.jsonl", &v).code(),
      Status::Code::kNotFound);

  DiscoveryResult broken = listed;
  broken.problems.push_back(projects_ + "/q: Permission denied");
  std::unique_ptr<KvStore> refused = NewMemStore();
  const BulkStartResult r2 = run(broken, refused.get());
  EXPECT_FALSE(r2.done);
  EXPECT_NE(r2.why_not.find("could not be listed: " + projects_ + "/q"), std::string::npos)
      << r2.why_not;
  EXPECT_TRUE(AgentRecords(refused.get()).empty());
}

// A failure while the table is written leaves no record (the next start scans again); a table
// that landed is all there after a restart; a table a crash left half written beside the
// database is removed when it is opened.
TEST_F(BulkEqualsCatchUp, ACrashBeforeTheTableLandsLeavesNothingAndAfterItEverything) {
  const int64_t now_ms = newest_ + int64_t(400) * 86400000;
  std::unique_ptr<KvStore> want = NewMemStore();
  ASSERT_TRUE(Bulk(want.get(), now_ms).done);
  const std::string db = dir_.path() + "/state/db";
  std::unique_ptr<KvStore> rocks;
  ASSERT_TRUE(OpenRocksStore(db, RocksStoreOptions{}, &rocks).ok());
  // Puts: every record but the outbox shard count (written at Outbox::Open).
  const int records = int(DumpStore(want.get()).size());
  for (int fail_after : {0, 1, records / 2, records - 2}) {
    FailingIngest failing(rocks.get(), fail_after);
    std::unique_ptr<Outbox> outbox;
    ASSERT_TRUE(Outbox::Open(&failing, OutboxOptions{}, 1, &outbox).ok());
    BulkStartOptions bo;
    bo.project_dirs = {projects_};
    BulkStartResult r;
    Status s = BulkStart(bo, Options(), &failing, outbox.get(), now_ms, &r);
    EXPECT_EQ(s.code(), Status::Code::kIoError) << fail_after;
    EXPECT_TRUE(AgentRecords(rocks.get()).empty()) << fail_after;
    EXPECT_EQ(outbox->Stats().total.entries, 0u);  // the staged first samples were abandoned
  }
  ASSERT_TRUE(Bulk(rocks.get(), now_ms).done);  // scanned again
  const Dump landed = DumpStore(rocks.get());
  EXPECT_EQ(FirstDifference(AgentRecords(rocks.get()), AgentRecords(want.get())), "");
  rocks.reset();  // a restart
  {
    std::ofstream half(db + "/ccmon-bulk-table.sst.tmp");
    half << "half a table";
  }
  ASSERT_TRUE(OpenRocksStore(db, RocksStoreOptions{}, &rocks).ok());
  EXPECT_FALSE(std::filesystem::exists(db + "/ccmon-bulk-table.sst.tmp"));
  EXPECT_EQ(FirstDifference(DumpStore(rocks.get()), landed), "");
  EXPECT_EQ(Metrics(rocks.get(), false), ReplayText(history_, "dev"));
  // Not on a state that holds records (a second start, a resumed state): refused, nothing written.
  std::unique_ptr<Outbox> outbox;
  ASSERT_TRUE(Outbox::Open(rocks.get(), OutboxOptions{}, 1, &outbox).ok());
  BulkStartOptions bo;
  bo.project_dirs = {projects_};
  BulkStartResult r;
  EXPECT_EQ(BulkStart(bo, Options(), rocks.get(), outbox.get(), now_ms, &r).code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(FirstDifference(DumpStore(rocks.get()), landed), "");
}

// The big families' records are encoded on a thread of their own and handed over in chunks
// (LiveAccounting::StreamHistory): whatever the chunks' size and number, the table is the same as
// the line-by-line catch-up's, byte for byte.
TEST_F(BulkEqualsCatchUp, TheRecordStreamLeavesTheSameTableWhateverItsChunks) {
  const int64_t now_ms = newest_ + int64_t(400) * 86400000;
  std::unique_ptr<KvStore> line_by_line = NewMemStore();
  CatchUp(line_by_line.get(), now_ms);
  const Dump want = DumpStore(line_by_line.get());
  for (size_t chunk_bytes : {size_t(1), size_t(100), size_t(4096), size_t(1) << 20}) {
    for (size_t chunks : {1, 2, 4}) {
      SCOPED_TRACE(std::to_string(chunk_bytes) + " bytes x " + std::to_string(chunks));
      EngineOptions eo = Options();
      eo.live.history_chunk_bytes = chunk_bytes;
      eo.live.history_chunks = chunks;
      std::unique_ptr<KvStore> bulk = NewMemStore();
      ASSERT_TRUE(Bulk(bulk.get(), now_ms, eo).done);
      EXPECT_EQ(FirstDifference(want, DumpStore(bulk.get())), "");
    }
  }
}

// A table whose sink fails at any put, the records being streamed in small chunks: the error
// comes back, the encoding thread stops (no hang), nothing is written, the staged samples are
// abandoned.
TEST_F(BulkEqualsCatchUp, ASinkFailingAtAnyPutStopsTheRecordStream) {
  const int64_t now_ms = newest_ + int64_t(400) * 86400000;
  std::unique_ptr<KvStore> want = NewMemStore();
  ASSERT_TRUE(Bulk(want.get(), now_ms).done);
  const int records = int(AgentRecords(want.get()).size());
  ASSERT_GT(records, 200);
  EngineOptions eo = Options();
  eo.live.history_chunk_bytes = 512;
  eo.live.history_chunks = 2;
  for (int fail_after = 0; fail_after < records; fail_after += 1 + records / 60) {
    std::unique_ptr<KvStore> inner = NewMemStore();
    FailingIngest failing(inner.get(), fail_after);
    std::unique_ptr<Outbox> outbox;
    ASSERT_TRUE(Outbox::Open(&failing, OutboxOptions{}, 1, &outbox).ok());
    BulkStartOptions bo;
    bo.project_dirs = {projects_};
    BulkStartResult r;
    Status s = BulkStart(bo, eo, &failing, outbox.get(), now_ms, &r);
    EXPECT_EQ(s.code(), Status::Code::kIoError) << fail_after;
    EXPECT_FALSE(r.done);
    EXPECT_TRUE(AgentRecords(inner.get()).empty()) << fail_after;
    EXPECT_EQ(outbox->Stats().total.entries, 0u);
  }
}

// The stream straight from LiveAccounting over a scanned ledger: the records EmitHistory gives,
// in order, for every chunk size; a sink failing at its Nth put gets no further put and its own
// error back; an error of the encoding thread (a prefix without records) comes back from Drain.
TEST_F(BulkEqualsCatchUp, TheRecordStreamGivesEmitHistorysRecordsAndBothThreadsErrors) {
  std::vector<std::string> problems;
  ScanOptions so;
  so.threads = 2;
  so.file_cursors_head_bytes = kFingerprintBytes;
  so.spans = true;
  const ScanResult scan = ScanFiles(ListTranscripts({projects_}, &problems), so, nullptr);
  ASSERT_TRUE(problems.empty());
  using Records = std::vector<std::pair<std::string, std::string>>;
  auto counted = [&](const LiveOptions& lo, std::unique_ptr<LiveAccounting>* live) {
    static MapRecords none;
    ASSERT_TRUE(LiveAccounting::Open(lo, &none, live).ok());
    bool fits = false;
    ASSERT_TRUE((*live)->CountHistory(scan.ledger, newest_ + 1000, &fits).ok());
    ASSERT_TRUE(fits);
  };
  const std::string prefixes = "prst";
  Records want;
  {
    std::unique_ptr<LiveAccounting> live;
    counted(Options().live, &live);
    for (char p : prefixes)
      ASSERT_TRUE(live->EmitHistory(p,
                                    [&](std::string_view k, std::string_view v) {
                                      want.emplace_back(k, v);
                                      return Status::Ok();
                                    })
                      .ok());
  }
  ASSERT_GT(want.size(), 200u);
  for (size_t chunk_bytes : {size_t(1), size_t(300), size_t(256) << 10}) {
    SCOPED_TRACE(chunk_bytes);
    LiveOptions lo = Options().live;
    lo.history_chunk_bytes = chunk_bytes;
    lo.history_chunks = 2;
    std::unique_ptr<LiveAccounting> live;
    counted(lo, &live);
    std::unique_ptr<LiveAccounting::HistoryStream> stream;
    ASSERT_TRUE(live->StreamHistory(prefixes, &stream).ok());
    Records got;
    ASSERT_TRUE(stream
                    ->Drain([&](std::string_view k, std::string_view v) {
                      got.emplace_back(k, v);
                      return Status::Ok();
                    })
                    .ok());
    EXPECT_TRUE(got == want);
    // A failing sink: the records up to it, then its error; the stream stops.
    for (size_t fail_at : {size_t(0), size_t(1), want.size() / 3, want.size() - 1}) {
      ASSERT_TRUE(live->StreamHistory(prefixes, &stream).ok());
      size_t puts = 0;
      Status s = stream->Drain([&](std::string_view, std::string_view) {
        return puts++ == fail_at ? Status::IoError("full (test)") : Status::Ok();
      });
      EXPECT_EQ(s.message(), "full (test)");
      EXPECT_EQ(puts, fail_at + 1);
      stream.reset();  // joins the encoding thread
    }
    // A stream dropped before it was drained stops its thread too.
    ASSERT_TRUE(live->StreamHistory(prefixes, &stream).ok());
    stream.reset();
    // The encoding thread's error (records before it may or may not have been put).
    ASSERT_TRUE(live->StreamHistory("px", &stream).ok());
    Status s = stream->Drain([&](std::string_view k, std::string_view) {
      EXPECT_EQ(k[0], 'p');
      return Status::Ok();
    });
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
    EXPECT_NE(s.message().find("prefix x"), std::string::npos) << s.message();
  }
  // Without a counted history: the encoding's error.
  std::unique_ptr<LiveAccounting> fresh;
  MapRecords none;
  ASSERT_TRUE(LiveAccounting::Open(Options().live, &none, &fresh).ok());
  std::unique_ptr<LiveAccounting::HistoryStream> stream;
  ASSERT_TRUE(fresh->StreamHistory("r", &stream).ok());
  EXPECT_EQ(stream->Drain([](std::string_view, std::string_view) { return Status::Ok(); }).code(),
            Status::Code::kInvalidArgument);
}

// After the bulk start the line-by-line path goes on from the scanned cursors: an unfinished last
// line completed later, lines appended to a file, a new file — each counted once.
TEST_F(BulkStartTest, TheTailerGoesOnFromTheCursorsAndReadsNothingTwice) {
  auto history = MakeHistory(21, 16);
  const std::string& cut_line = history[0].back();
  std::vector<std::vector<std::string>> before = history;
  before[0].pop_back();
  WriteHistory(before, "f");
  const std::string first = projects_ + "/p/f0.jsonl";
  {
    std::ofstream f(first, std::ios::app);
    f << cut_line.substr(0, cut_line.size() / 2);  // being written during the scan
  }
  const int64_t now_ms = int64_t(1767225600000) + int64_t(400) * 86400000;
  std::unique_ptr<KvStore> store = NewMemStore();
  const BulkStartResult r = Bulk(store.get(), now_ms);
  ASSERT_TRUE(r.done) << r.why_not;
  {
    std::ofstream f(first, std::ios::app);
    f << cut_line.substr(cut_line.size() / 2) << "\n";
  }
  auto more = MakeHistory(22, 4);
  for (size_t i = 0; i < more.size(); ++i) {
    std::ofstream f(projects_ + "/p/f" + std::to_string(i + 1) + ".jsonl", std::ios::app);
    for (const std::string& l : more[i]) f << l << "\n";
  }
  const std::vector<std::string> added = MakeHistory(23, 1)[0];
  {
    std::ofstream f(projects_ + "/p/new.jsonl");
    for (const std::string& l : added) f << l << "\n";
  }
  CatchUpAll(store.get(), now_ms + 1000);
  std::vector<std::vector<std::string>> all = history;
  for (auto& f : more) all.push_back(f);
  all.push_back(added);
  EXPECT_EQ(Metrics(store.get(), false, now_ms + 600000), ReplayText(all, "dev"));
}

}  // namespace
}  // namespace ccmon::agent
