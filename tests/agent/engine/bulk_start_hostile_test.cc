// The bulk first start (docs/agent-design.md "Bulk first start") under a hostile file system:
// files appended to, truncated, replaced, deleted or created while the scan reads them,
// directories removed, a history that grows past the size cap while it is read. Whatever
// happens, once the agent has caught up (the bulk start, or the line-by-line path it falls back
// to, then the tailer from the cursors) its claude_* series equal replay's over what the files
// hold at the end: no line lost, none counted twice. The changes are driven from FaultEnv hooks
// at chosen reads, never by timing.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "agent/engine/bulk_start.h"
#include "agent/engine/ingest.h"
#include "engine_test_util.h"
#include "store/mem_store.h"
#include "store/outbox.h"
#include "testing/fake_clock.h"
#include "testing/fault_env.h"
#include "testing/temp_dir.h"

namespace ccmon::agent {
namespace {

using namespace ccmon::agent::testing;
using ccmon::testing_util::FakeClock;
using ccmon::testing_util::Fault;
using ccmon::testing_util::FaultEnv;
using ccmon::testing_util::FaultOp;
using ccmon::testing_util::TempDir;
namespace fs = std::filesystem;

EngineOptions Options() {
  EngineOptions eo;
  eo.live.device = "dev";
  eo.live.prices = &PriceTable::Embedded();
  return eo;
}

std::string ReadAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

// The complete lines of `content` (an unfinished last line is not a line yet, A4).
std::vector<std::string> CompleteLines(const std::string& content) {
  std::vector<std::string> lines;
  size_t at = 0;
  for (size_t nl; (nl = content.find('\n', at)) != std::string::npos; at = nl + 1)
    lines.push_back(content.substr(at, nl - at));
  return lines;
}

class BulkStartHostile : public ::testing::Test {
 protected:
  void SetUp() override {
    projects_ = dir_.path() + "/claude/projects";
    fs::remove_all(projects_);  // called again by tests that try several variants
    fs::create_directories(projects_ + "/p");
    fs::create_directories(projects_ + "/q");
    history_ = MakeHistory(31, 24);
    for (size_t i = 0; i < history_.size(); ++i) Write(Path(i), history_[i], /*append=*/false);
  }
  std::string Path(size_t i) const {
    return projects_ + (i % 2 ? "/q/" : "/p/") + "f" + std::to_string(i) + ".jsonl";
  }
  static void Write(const std::string& path, const std::vector<std::string>& lines, bool append,
                    const std::string& unfinished = "") {
    std::ofstream f(path, append ? std::ios::app | std::ios::binary : std::ios::binary);
    for (const std::string& l : lines) f << l << "\n";
    f << unfinished;
  }
  // Replay's series over every transcript the projects hold now, plus `gone` (files the agent
  // read whole before they were deleted: a counter never goes down).
  std::string ReplayOfFinalFiles(const std::vector<std::vector<std::string>>& gone = {}) {
    std::vector<std::vector<std::string>> files = gone;
    for (const auto& e : fs::recursive_directory_iterator(projects_)) {
      if (!e.is_regular_file() || e.path().extension() != ".jsonl") continue;
      files.push_back(CompleteLines(ReadAll(e.path())));
    }
    return ReplayText(files, "dev");
  }
  // The bulk start through `env`; then the agent's line-by-line path (from the empty state when
  // the bulk start fell back, from its cursors otherwise) until every complete line of every
  // file is behind a cursor. Returns the series once settled.
  // `restart`: the process died after the table landed, before the tailer's first look (the
  // next start opens the state as any restart: no NoteLook).
  std::string StartAndCatchUp(Env* env, BulkStartResult* r, uint64_t max_history_bytes = 0,
                              bool restart = false, unsigned threads = 2) {
    std::unique_ptr<KvStore> store = NewMemStore();
    {
      std::unique_ptr<Outbox> outbox;
      EXPECT_TRUE(Outbox::Open(store.get(), OutboxOptions{}, 1, &outbox).ok());
      BulkStartOptions bo;
      bo.project_dirs = {projects_};
      bo.threads = threads;
      bo.env = env;
      if (max_history_bytes) bo.max_history_bytes = max_history_bytes;
      Status s = BulkStart(bo, Options(), store.get(), outbox.get(), now_ms_, r);
      EXPECT_TRUE(s.ok()) << s.ToString();
    }
    std::unique_ptr<Outbox> outbox;
    EXPECT_TRUE(Outbox::Open(store.get(), OutboxOptions{}, 1, &outbox).ok());
    std::unique_ptr<Engine> engine;
    EXPECT_TRUE(Engine::Open(Options(), store.get(), outbox.get(), &engine).ok());
    std::vector<TrackedFile> restored;
    EXPECT_TRUE(Ingestor::RestoredFiles(engine.get(), &restored).ok());
    TailerOptions to;
    to.project_dirs = {projects_};
    to.watch_mode = WatchMode::kPoll;
    to.poll_interval = std::chrono::milliseconds(20);
    Tailer tailer(to, std::move(restored));
    if (r->done && !restart) {  // as the agent does: the scan is the tailer's previous look
      for (const ScannedFile& f : r->scanned)
        tailer.NoteLook(f.device, f.inode, f.path, f.size_seen, f.listed_mtime_ms);
    }
    FakeClock clock(now_ms_);
    Ingestor ingest(IngestOptions{}, engine.get(), &tailer, Env::Default(), &clock, nullptr);
    uint64_t want = 0;
    for (const auto& e : fs::recursive_directory_iterator(projects_)) {
      if (!e.is_regular_file() || e.path().extension() != ".jsonl") continue;
      const std::string content = ReadAll(e.path());
      const size_t nl = content.rfind('\n');
      want += nl == std::string::npos ? 0 : nl + 1;
    }
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    // At least a few steps: the tailer's first looks decide what the cursors are worth (a file
    // replaced or rewritten since the scan is read again from its start).
    for (int steps = 0;; ++steps) {
      std::vector<TrackedFile> files;
      EXPECT_TRUE(Ingestor::RestoredFiles(engine.get(), &files).ok());
      uint64_t have = 0;
      for (const auto& f : files)
        if (fs::exists(f.path)) have += f.offset;
      if (have == want && engine->caught_up() && steps >= 3) break;
      if (std::chrono::steady_clock::now() > give_up) {
        ADD_FAILURE() << "not caught up: " << have << " of " << want << " bytes";
        return "";
      }
      EXPECT_TRUE(
          ingest.Step(std::chrono::steady_clock::now() + std::chrono::milliseconds(30), {}).ok());
    }
    // Settled: everything quiet for an hour.
    EXPECT_TRUE(engine->Commit({}, now_ms_ + 600000).ok());
    EXPECT_TRUE(engine->Commit({}, now_ms_ + 4200000).ok());
    return engine->Exposition(false, false);
  }
  // Runs `change` once, at the `nth` read of the file whose path contains `path`.
  void AtRead(FaultEnv* env, const std::string& path, int nth, std::function<void()> change) {
    auto count = std::make_shared<std::atomic<int>>(0);
    env->OnCall(FaultOp::kRead, path, [count, nth, change](const std::string&) {
      if (++*count == nth) change();
    });
  }

  TempDir dir_;
  std::string projects_;
  std::vector<std::vector<std::string>> history_;
  const int64_t now_ms_ = int64_t(1767225600000) + int64_t(400) * 86400000;
};

// Lines appended to a file while the scan reads it, complete or not (its writer is mid-line),
// and after the scan: read once, by the scan or by the tailer from the cursor; also when the
// process died after the table landed, before the tailer's first look (a restart).
TEST_F(BulkStartHostile, AFileAppendedToDuringTheScanIsCountedOnce) {
  const auto more = MakeHistory(32, 3);
  for (int nth : {1, 2, 3}) {  // before the head is read, before the lines, after the first chunk
    for (bool newline : {true, false}) {
      for (bool restart : {false, true}) {
        SetUp();
        FaultEnv env(Env::Default());
        const std::string target = Path(2);
        std::string cut = more[0].back();
        AtRead(&env, "/f2.jsonl", nth,
               [&] { Write(target, more[1], true, newline ? "" : cut.substr(0, cut.size() / 2)); });
        BulkStartResult r;
        std::string got = StartAndCatchUp(&env, &r, 0, restart);
        EXPECT_TRUE(r.done) << r.why_not;
        EXPECT_EQ(got, ReplayOfFinalFiles()) << nth << newline << restart;
      }
    }
  }
}

// A file truncated while it is read (the scan sees it shrink) sends the start down the
// line-by-line path, which counts what the file holds then.
TEST_F(BulkStartHostile, AFileTruncatedDuringTheScanFallsBackAndIsExact) {
  for (int nth : {2, 3}) {
    SetUp();
    FaultEnv env(Env::Default());
    const std::string target = Path(4);
    AtRead(&env, "/f4.jsonl", nth, [&] {
      std::vector<std::string> half(history_[4].begin(),
                                    history_[4].begin() + history_[4].size() / 2);
      Write(target, half, /*append=*/false);
    });
    BulkStartResult r;
    std::string got = StartAndCatchUp(&env, &r);
    // Cut before its lines were read (nth 2): the scan sees it shrink and falls back. Cut once
    // they were (nth 3, the read that finds the end): the old lines were in the file and are
    // counted, as the line-by-line path would have; the tailer then reads the rest again.
    std::vector<std::vector<std::string>> gone;
    if (nth == 3) gone.push_back(history_[4]);
    EXPECT_EQ(got, ReplayOfFinalFiles(gone)) << nth << " done " << r.done << " " << r.why_not;
    EXPECT_EQ(r.done, nth == 3);
  }
}

// Truncated and written again longer with other lines while the scan reads it (a rewrite in
// place): whatever the scan read of either, the requests are counted once each.
TEST_F(BulkStartHostile, AFileRewrittenLongerDuringTheScanIsExact) {
  const auto other = MakeHistory(33, 6);
  std::vector<std::string> longer;
  for (const auto& f : other)
    for (const auto& l : f) longer.push_back(l);
  for (int nth : {2, 3}) {
    SetUp();
    FaultEnv env(Env::Default());
    const std::string target = Path(4);
    AtRead(&env, "/f4.jsonl", nth, [&] { Write(target, longer, /*append=*/false); });
    BulkStartResult r;
    std::string got = StartAndCatchUp(&env, &r);
    // Rewritten after its head was read, before its lines (nth 2): only the new lines were read.
    // After (nth 3): the old lines were read, and stay counted (they were in the file).
    std::vector<std::vector<std::string>> gone;
    if (nth == 3) gone.push_back(history_[4]);
    EXPECT_EQ(got, ReplayOfFinalFiles(gone)) << nth << " done " << r.done;
  }
}

// Replaced by a rename (an editor's save, rsync) while it is read: the scan read the old file
// through its descriptor, the tailer finds a new file at the path and reads it whole.
TEST_F(BulkStartHostile, AFileReplacedByRenameDuringTheScanIsExact) {
  const auto other = MakeHistory(34, 2);
  for (int nth : {1, 2, 3}) {
    SetUp();
    FaultEnv env(Env::Default());
    const std::string target = Path(6);
    AtRead(&env, "/f6.jsonl", nth, [&] {
      const std::string tmp = projects_ + "/p/.f6.tmp";
      Write(tmp, other[0], false);
      fs::rename(tmp, target);
    });
    BulkStartResult r;
    std::string got = StartAndCatchUp(&env, &r);
    // The replaced file's lines were read before it was replaced (nth 1 reads the new file).
    // The scan opened the old file before it was replaced: its lines are read (and counted).
    EXPECT_EQ(got, ReplayOfFinalFiles({history_[6]})) << nth << " done " << r.done;
  }
}

// Deleted while it is read (its descriptor still reads it whole), or before it is opened (the
// open fails: line by line), a new file appearing during the scan (no cursor: the tailer reads
// it from its start), a directory removed during the scan.
TEST_F(BulkStartHostile, FilesDeletedOrCreatedAndDirsRemovedDuringTheScanAreExact) {
  const auto other = MakeHistory(35, 2);
  {
    FaultEnv env(Env::Default());
    AtRead(&env, "/f8.jsonl", 2, [&] { fs::remove(Path(8)); });
    BulkStartResult r;
    std::string got = StartAndCatchUp(&env, &r);
    EXPECT_TRUE(r.done) << r.why_not;
    EXPECT_EQ(got, ReplayOfFinalFiles({history_[8]}));
  }
  {
    SetUp();
    FaultEnv env(Env::Default());
    env.OnCall(FaultOp::kNewSequentialFile, "/f8.jsonl",
               [&](const std::string&) { fs::remove(Path(8)); });
    BulkStartResult r;
    std::string got = StartAndCatchUp(&env, &r);
    EXPECT_FALSE(r.done);
    EXPECT_EQ(got, ReplayOfFinalFiles());
  }
  {
    SetUp();
    FaultEnv env(Env::Default());
    AtRead(&env, "/f3.jsonl", 2, [&] { Write(projects_ + "/p/new.jsonl", other[0], false); });
    BulkStartResult r;
    std::string got = StartAndCatchUp(&env, &r);
    EXPECT_TRUE(r.done) << r.why_not;
    EXPECT_EQ(got, ReplayOfFinalFiles());
  }
  {
    SetUp();
    FaultEnv env(Env::Default());
    AtRead(&env, "/p/f0.jsonl", 2, [&] { fs::remove_all(projects_ + "/q"); });
    BulkStartResult r;
    // One scan thread: q's files come after p's, so none is read before the removal (with two,
    // the other thread could read some first, and the agent rightly keeps what it read).
    std::string got = StartAndCatchUp(&env, &r, 0, false, 1);
    EXPECT_EQ(got, ReplayOfFinalFiles()) << r.done << " " << r.why_not;
  }
}

// The size cap is decided on the bytes read too: a history listed under the cap that grows past
// it while it is read (the scan's ledger would hold it all) is counted line by line.
TEST_F(BulkStartHostile, AHistoryGrowingPastTheCapDuringTheScanFallsBack) {
  uint64_t listed = 0;
  for (const auto& e : fs::recursive_directory_iterator(projects_))
    if (e.is_regular_file()) listed += e.file_size();
  std::vector<std::string> big;
  for (const auto& f : MakeHistory(36, 40))
    for (const auto& l : f) big.push_back(l);
  FaultEnv env(Env::Default());
  AtRead(&env, "/f2.jsonl", 2, [&] { Write(Path(2), big, true); });
  BulkStartResult r;
  std::string got = StartAndCatchUp(&env, &r, listed + 100);
  EXPECT_FALSE(r.done);
  EXPECT_NE(r.why_not.find("read"), std::string::npos) << r.why_not;
  EXPECT_EQ(got, ReplayOfFinalFiles());
}

}  // namespace
}  // namespace ccmon::agent
