// Ingestor: real files in a temp dir, the real tailer (inotify and the poller), an in-memory
// store. Whatever happens to the files — history present at start, lines appended in pieces,
// restarts, renames, replaced and deleted files — the series end equal to replay's over the same
// lines, and nothing is read twice.
#include "agent/engine/ingest.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <stop_token>
#include <tuple>
#include <utility>
#include <vector>

#include "engine_test_util.h"
#include "store/mem_store.h"
#include "store/outbox.h"
#include "testing/fault_env.h"
#include "testing/temp_dir.h"

namespace ccmon::agent {
namespace {

using namespace ccmon::agent::testing;
using ccmon::testing_util::FaultEnv;
using ccmon::testing_util::FaultOp;
using ccmon::testing_util::TempDir;

constexpr int64_t kFarFuture = 1767225600000 + 800LL * 86400000;

// Parameters: the watcher, and whether the Ingestor parses on its own thread (then the engine
// also writes the catch-up's commits on its own: the agent's configuration).
class IngestTest : public ::testing::TestWithParam<std::tuple<WatchMode, bool>> {
 protected:
  void SetUp() override {
    projects_ = dir_.path() + "/claude/projects";
    std::filesystem::create_directories(projects_ + "/p");
    Start();
  }
  void Start() {
    ingest_.reset();
    tailer_.reset();
    engine_.reset();
    outbox_.reset();
    ASSERT_TRUE(Outbox::Open(store_.get(), OutboxOptions{}, 1, &outbox_).ok());
    EngineOptions eo;
    eo.live.device = "dev";
    eo.live.prices = &PriceTable::Embedded();
    eo.write_thread = std::get<1>(GetParam());
    ASSERT_TRUE(Engine::Open(eo, store_.get(), outbox_.get(), &engine_).ok());
    std::vector<TrackedFile> restored;
    ASSERT_TRUE(Ingestor::RestoredFiles(engine_.get(), &restored).ok());
    TailerOptions to;
    to.project_dirs = {projects_};
    to.watch_mode = std::get<0>(GetParam());
    to.poll_interval = std::chrono::milliseconds(20);
    to.max_offer_bytes = 2 * 4096;  // as the agent: two steps' worth, the others held back
    if (tail_env_ != nullptr) to.env = tail_env_;
    tailer_ = std::make_unique<Tailer>(to, std::move(restored));
    IngestOptions io;
    io.step_bytes = 4096;  // small steps: files are cut between commits
    io.parse_thread = std::get<1>(GetParam());
    io.read_ahead = read_ahead_;
    ingest_ = std::make_unique<Ingestor>(io, engine_.get(), tailer_.get(), read_env_, Clock::Real(),
                                         [this](const std::string& m, bool problem) {
                                           if (getenv("INGEST_LOG"))
                                             fprintf(stderr, "log: %s\n", m.c_str());
                                           std::lock_guard<std::mutex> lock(logged_mu_);
                                           logged_.emplace_back(m, problem);
                                         });
  }
  // Steps until the committed cursors cover every complete line written (a condition on the
  // store, with a deadline).
  void Drain() {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (CommittedBytes() != complete_bytes_) {
      ASSERT_LT(std::chrono::steady_clock::now(), give_up)
          << "committed " << CommittedBytes() << " of " << complete_bytes_ << " bytes";
      ASSERT_TRUE(
          ingest_->Step(std::chrono::steady_clock::now() + std::chrono::milliseconds(200), {})
              .ok());
    }
  }
  uint64_t CommittedBytes() {
    std::vector<TrackedFile> files;
    EXPECT_TRUE(Ingestor::RestoredFiles(engine_.get(), &files).ok());
    uint64_t sum = 0;
    for (const auto& f : files) sum += f.offset;
    return sum;
  }
  std::string Live() {
    // Settle everything, as at the end of a catch-up, then read the series.
    EXPECT_TRUE(engine_->Commit({}, kFarFuture).ok());
    EXPECT_TRUE(engine_->Commit({}, kFarFuture + 3600000).ok());
    return engine_->Exposition(false, /*agent_families=*/false);  // replay's families
  }
  // Appends `text`; complete_bytes_ counts the bytes up to each file's last newline.
  void Write(const std::string& rel, const std::string& text) {
    std::ofstream f(projects_ + "/" + rel, std::ios::app);
    f << text;
    std::string& pending = partial_[rel];
    pending += text;
    const size_t nl = pending.rfind('\n');
    if (nl != std::string::npos) {
      complete_bytes_ += nl + 1;
      pending.erase(0, nl + 1);
    }
  }
  uint64_t complete_bytes_ = 0;
  std::map<std::string, std::string> partial_;

  Env* read_env_ = Env::Default();  // the ingestor's (its reads), not the tailer's
  Env* tail_env_ = nullptr;         // the tailer's, when not the default
  std::mutex logged_mu_;
  std::vector<std::pair<std::string, bool>> logged_;  // the ingestor's log: (line, problem)
  bool read_ahead_ = true;
  TempDir dir_;
  std::string projects_;
  std::unique_ptr<KvStore> store_ = NewMemStore();
  std::unique_ptr<Outbox> outbox_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<Tailer> tailer_;
  std::unique_ptr<Ingestor> ingest_;
};

std::string Join(const std::vector<std::string>& lines, size_t from, size_t to) {
  std::string s;
  for (size_t i = from; i < to; ++i) s += lines[i] + "\n";
  return s;
}

TEST_P(IngestTest, A40_HistoryThenAppendsInPiecesWithRestartsEqualReplay) {
  const auto files = MakeHistory(41, 24);
  const size_t half = files.size() / 2;
  // The first half exists before the agent starts.
  for (size_t i = 0; i < half; ++i)
    Write("p/f" + std::to_string(i) + ".jsonl", Join(files[i], 0, files[i].size()));
  Drain();
  EXPECT_TRUE(engine_->caught_up());
  // The second half arrives line by line, each line in two pieces (a partial line first), with
  // restarts in between.
  std::mt19937 rng(41);
  for (size_t i = half; i < files.size(); ++i) {
    const std::string name = "p/f" + std::to_string(i) + ".jsonl";
    for (const std::string& l : files[i]) {
      const size_t cut = rng() % l.size();
      Write(name, l.substr(0, cut));
      if (rng() % 3 == 0) Drain();
      Write(name, l.substr(cut) + "\n");
    }
    Drain();
    if (rng() % 2) Start();  // a restart: everything rebuilt from the store
  }
  Drain();
  EXPECT_EQ(engine_->live_stats().conflicts, 0u);
  EXPECT_EQ(Live(), ReplayText(files, "dev"));
}

TEST_P(IngestTest, A40_RenamedFilesAreNotReadTwiceAndDeletedOnesLowerNothing) {
  const auto files = MakeHistory(42, 10);
  for (size_t i = 0; i < files.size(); ++i)
    Write("p/f" + std::to_string(i) + ".jsonl", Join(files[i], 0, files[i].size()));
  Drain();
  const std::string before = Live();
  EXPECT_EQ(before, ReplayText(files, "dev"));
  // Rename one file into a new dir, delete another: the totals stay.
  std::filesystem::create_directories(projects_ + "/q");
  std::filesystem::rename(projects_ + "/p/f0.jsonl", projects_ + "/q/moved.jsonl");
  std::filesystem::remove(projects_ + "/p/f1.jsonl");
  complete_bytes_ -= Join(files[1], 0, files[1].size()).size();  // its cursor is gone
  Drain();
  Start();
  Drain();
  EXPECT_EQ(Live(), before);
  EXPECT_EQ(ingest_->stats().lines, 0u);  // nothing re-read after the restart
}

TEST_P(IngestTest, A40_AReplacedFileIsReadFromItsStart) {
  const auto files = MakeHistory(43, 6);
  Write("p/a.jsonl", Join(files[0], 0, files[0].size()));
  Drain();
  // Replaced under the same name by another session's lines (e.g. a rewrite by an editor).
  const std::string tmp = projects_ + "/p/a.tmp";
  {
    std::ofstream f(tmp);
    f << Join(files[1], 0, files[1].size());
  }
  std::filesystem::rename(tmp, projects_ + "/p/a.jsonl");
  complete_bytes_ = Join(files[1], 0, files[1].size()).size();
  Drain();
  EXPECT_EQ(Live(), ReplayText({files[0], files[1]}, "dev"));
}

// Read-ahead (IngestOptions::read_ahead): with steps of 4 KiB, every step but the last leaves
// files for the next one, which the parse thread reads while the step commits. Taken by the
// next step, it counts exactly what a fresh read would: the series equal replay's and those of
// an Ingestor without read-ahead over the same files.
TEST_P(IngestTest, A40_LinesReadAheadOfTheirStepCountAsAFreshRead) {
  const auto files = MakeHistory(46, 16);
  for (size_t i = 0; i < files.size(); ++i)
    Write("p/f" + std::to_string(i) + ".jsonl", Join(files[i], 0, files[i].size()));
  Drain();
  EXPECT_TRUE(engine_->caught_up());
  if (std::get<1>(GetParam())) {
    EXPECT_GT(ingest_->stats().read_ahead_used, 2u);
  } else {
    EXPECT_EQ(ingest_->stats().read_ahead_used, 0u);  // no parse thread, no read-ahead
  }
  EXPECT_GT(ingest_->stats().steps, 3u);
  const std::string with = Live();
  EXPECT_EQ(with, ReplayText(files, "dev"));

  // The same files into a new store without read-ahead.
  store_ = NewMemStore();
  read_ahead_ = false;
  Start();
  Drain();
  EXPECT_EQ(ingest_->stats().read_ahead_used, 0u);
  EXPECT_EQ(Live(), with);
}

// Files change while they are read ahead (a file not reached yet is renamed, another grows
// after its read): whether the next step takes what was read ahead (its work began as
// predicted: the file's new end is left for a later step) or drops it (it did not: read
// afresh), nothing is counted twice or lost, and a line appended after the read is still read.
// (The tailer offers what is waiting before it looks at the watcher's news, so during a
// catch-up the prediction nearly always holds: read_ahead_dropped is not asserted here.)
TEST_P(IngestTest, A40_ReadAheadOfWorkThatChangedIsDroppedOrLeavesTheRestForLater) {
  const auto files = MakeHistory(47, 12);
  const size_t g = files.size() - 2, h = files.size() - 1;
  for (size_t i = 0; i < g; ++i)
    Write("p/f" + std::to_string(i) + ".jsonl", Join(files[i], 0, files[i].size()));
  const size_t half = files[g].size() / 2;
  Write("p/g.jsonl", Join(files[g], 0, half));             // read after the f files (path order)
  Write("p/h.jsonl", Join(files[h], 0, files[h].size()));  // and h after g
  // One more line of g.jsonl is appended when h.jsonl is opened, after g's read (often read
  // ahead: then the next step is offered g at a size its read did not see, from the offset it
  // was read from). On the parse thread: the hook touches only the file and atomics.
  complete_bytes_ += files[g][half].size() + 1;
  FaultEnv fault(Env::Default());
  std::atomic<int> opened = 0;
  std::atomic<bool> renamed = false, appended = false;
  fault.OnCall(FaultOp::kNewSequentialFile, "/p/", [&](const std::string& path) {
    if (++opened == 2) {
      // A file further on changes name: the predicted work holds the old one.
      std::filesystem::rename(projects_ + "/p/f9.jsonl", projects_ + "/p/f9-moved.jsonl");
      renamed = true;
    }
    if (path.ends_with("/p/h.jsonl") && !appended.exchange(true)) {
      std::ofstream f(projects_ + "/p/g.jsonl", std::ios::app);
      f << files[g][half] << "\n";
    }
  });
  read_env_ = &fault;
  Start();
  Drain();  // times out if the appended line is never offered
  ASSERT_TRUE(renamed);
  ASSERT_TRUE(appended);
  Write("p/g.jsonl", Join(files[g], half + 1, files[g].size()));
  Drain();
  EXPECT_EQ(ingest_->stats().files_renamed, 1u);
  EXPECT_EQ(engine_->live_stats().conflicts, 0u);
  EXPECT_EQ(Live(), ReplayText(files, "dev"));
  ingest_.reset();  // its parse thread reads through `fault`
}

// A transcript that cannot be opened (EACCES) is logged as a problem, a warning in the agent's
// log (`logs --errors`), not as information: its requests are not counted until it can be read
// (it was level=info, so `logs --errors` never showed that the figures were short). The other
// files are counted.
TEST_P(IngestTest, AnUnreadableTranscriptIsLoggedAsAProblem) {
  const auto files = MakeHistory(48, 2);
  Write("p/ok.jsonl", Join(files[0], 0, files[0].size()));
  FaultEnv fault(Env::Default());
  fault.Inject(testing_util::Fault(FaultOp::kNewSequentialFile, EACCES)
                   .OnPath("/p/locked.jsonl")
                   .Times(1000));
  tail_env_ = &fault;
  Start();
  std::ofstream(projects_ + "/p/locked.jsonl") << Join(files[1], 0, files[1].size());
  Drain();  // ok.jsonl: complete_bytes_ does not count locked.jsonl
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  auto problem_logged = [&] {
    std::lock_guard<std::mutex> lock(logged_mu_);
    for (const auto& [line, problem] : logged_)
      if (line.find("locked.jsonl") != std::string::npos) return problem;
    return false;
  };
  while (!problem_logged()) {
    ASSERT_LT(std::chrono::steady_clock::now(), give_up) << "no problem logged";
    ASSERT_TRUE(
        ingest_->Step(std::chrono::steady_clock::now() + std::chrono::milliseconds(200), {}).ok());
  }
  {
    std::lock_guard<std::mutex> lock(logged_mu_);
    for (const auto& [line, problem] : logged_) {
      if (line.find("locked.jsonl") != std::string::npos) {
        EXPECT_NE(line.find("Permission denied"), std::string::npos) << line;
      }
    }
  }
  ingest_.reset();
  tailer_.reset();  // it reads through `fault`
}

INSTANTIATE_TEST_SUITE_P(
    Watchers, IngestTest,
    ::testing::Combine(::testing::Values(WatchMode::kInotify, WatchMode::kPoll), ::testing::Bool()),
    [](const auto& info) {
      return std::string(std::get<0>(info.param) == WatchMode::kInotify ? "inotify" : "poll") +
             (std::get<1>(info.param) ? "_parse_thread" : "_one_thread");
    });

// Found by integration.agent_faults_files: a file renamed after the tailer offered it and before
// the reader opened it was offered again under its old name at once, forever, and no other file
// was read again (the tailer never got back to its watcher). Each Drain below would time out.
TEST_P(IngestTest, A40_AFileRenamedBetweenItsOfferAndItsReadIsFollowedAndOthersStillRead) {
  const auto files = MakeHistory(44, 4);
  const size_t half = files[0].size() / 2, half_b = files[1].size() / 2;
  Write("p/a.jsonl", Join(files[0], 0, half));
  Write("p/b.jsonl", Join(files[1], 0, half_b));
  Drain();
  // From now on the reader's first open of a.jsonl finds it renamed a moment before.
  FaultEnv fault(Env::Default());
  bool renamed = false;
  fault.OnCall(FaultOp::kNewSequentialFile, "/p/a.jsonl", [&](const std::string&) {
    if (renamed) return;
    renamed = true;
    std::filesystem::rename(projects_ + "/p/a.jsonl", projects_ + "/p/a-moved.jsonl");
  });
  read_env_ = &fault;
  Start();
  Write("p/a.jsonl", files[0][half] + "\n");
  Drain();
  ASSERT_TRUE(renamed);
  EXPECT_EQ(ingest_->stats().files_renamed, 1u);
  // Both files go on being read: the moved one under its new name.
  Write("p/a-moved.jsonl", Join(files[0], half + 1, files[0].size()));
  Write("p/b.jsonl", Join(files[1], half_b, files[1].size()));
  Drain();
  for (size_t i = 2; i < files.size(); ++i)
    Write("p/f" + std::to_string(i) + ".jsonl", Join(files[i], 0, files[i].size()));
  Drain();
  EXPECT_EQ(Live(), ReplayText(files, "dev"));
  ingest_.reset();  // its parse thread reads through `fault`
}

// The read-ahead's rule "a file read ahead before it was offered at a larger size is offered
// again rather than taken as read to its end" (Ingestor::Step), set up deterministically:
// step 1 is offered a.jsonl, g.jsonl and h.jsonl (all the catch-up, nothing held back); a.jsonl
// is renamed to z.jsonl as it is opened (unreadable: Recheck), the budget cuts g.jsonl, and the
// parse thread reads g's rest ahead to its end, then opens h.jsonl, where one more line is
// appended to g.jsonl (after g's read ahead saw its end). Step 2's tailer looks again for the
// renamed file (a full scan: it also sees g's new size) and offers g, h, then z: the prediction
// holds, the read-ahead is taken, and g comes with an offered size larger than the one its read
// ahead saw. Taken as read to its end, g's appended line would be left unread (not offered
// again before g grows once more) and that step would end the catch-up without it; offered
// again, the next step reads it and only then is the catch-up over.
TEST_P(IngestTest, A40_AFileReadAheadThenOfferedAtALargerSizeIsReadAgainBeforeTheCatchUpEnds) {
  if (!std::get<1>(GetParam())) GTEST_SKIP() << "no parse thread, no read-ahead";
  // The history's lines in order, cut into three small files and one line more.
  const auto history = MakeHistory(48, 4);
  std::vector<std::string> lines;
  for (const auto& f : history) lines.insert(lines.end(), f.begin(), f.end());
  size_t next = 0;
  auto take = [&](size_t bytes) {
    std::vector<std::string> out;
    size_t size = 0;
    while (next < lines.size() && (out.empty() || size + lines[next].size() + 1 <= bytes)) {
      size += lines[next].size() + 1;
      out.push_back(lines[next++]);
    }
    return out;
  };
  std::vector<std::string> a = take(1000), g = take(5800), h = take(1000);
  ASSERT_LT(next, lines.size());
  const std::string extra = lines[next];  // appended to g.jsonl during the read-ahead
  const std::string a_text = Join(a, 0, a.size()), g_text = Join(g, 0, g.size()),
                    h_text = Join(h, 0, h.size());
  // Step 1 offers all three (below max_offer_bytes, 8 KiB) and its budget (4 KiB) cuts g.
  ASSERT_GT(g_text.size(), 4096u + 1024);
  ASSERT_LT(a_text.size() + g_text.size() + h_text.size(), 8192u);
  Write("p/a.jsonl", a_text);
  Write("p/g.jsonl", g_text);
  Write("p/h.jsonl", h_text);
  complete_bytes_ += extra.size() + 1;
  FaultEnv fault(Env::Default());
  std::atomic<bool> renamed = false, appended = false;
  fault.OnCall(FaultOp::kNewSequentialFile, "/p/a.jsonl", [&](const std::string&) {
    if (!renamed.exchange(true))
      std::filesystem::rename(projects_ + "/p/a.jsonl", projects_ + "/p/z.jsonl");
  });
  fault.OnCall(FaultOp::kNewSequentialFile, "/p/h.jsonl", [&](const std::string&) {
    if (appended) return;
    std::ofstream(projects_ + "/p/g.jsonl", std::ios::app) << extra << "\n";
    appended = true;
    appended.notify_all();
  });
  read_env_ = &fault;
  Start();
  auto step = [&] {
    ASSERT_TRUE(
        ingest_->Step(std::chrono::steady_clock::now() + std::chrono::milliseconds(200), {}).ok());
  };
  step();
  ASSERT_TRUE(renamed);
  ASSERT_FALSE(engine_->caught_up());
  appended.wait(false);  // the read-ahead read g to its end, then opened h
  for (int i = 0; i < 10 && !engine_->caught_up(); ++i) step();
  ASSERT_TRUE(engine_->caught_up());
  EXPECT_EQ(ingest_->stats().read_ahead_used, 1u);
  EXPECT_EQ(ingest_->stats().files_renamed, 1u);
  // The catch-up ended only once every complete line present was read.
  EXPECT_EQ(CommittedBytes(), complete_bytes_);
  g.push_back(extra);
  EXPECT_EQ(Live(), ReplayText({a, g, h}, "dev"));
  ingest_.reset();  // its parse thread reads through `fault`
}

// A stop requested while a step reads its files: the step ends after the file being read
// (never inside it: with the parse thread, lines of the next files may already be parsed and
// must not be counted), commits what it counted with those files' cursors, and a restart
// reads the rest once.
TEST_P(IngestTest, A40_AStopDuringAStepCountsWholeFilesOnlyAndARestartReadsTheRest) {
  const auto files = MakeHistory(45, 12);
  for (size_t i = 0; i < files.size(); ++i)
    Write("p/f" + std::to_string(i) + ".jsonl", Join(files[i], 0, files[i].size()));
  FaultEnv fault(Env::Default());
  std::stop_source stop;
  int opened = 0;
  fault.OnCall(FaultOp::kNewSequentialFile, "/p/f", [&](const std::string&) {
    if (++opened == 3) stop.request_stop();  // while reading the third file of the step
  });
  read_env_ = &fault;
  IngestOptions io;
  io.parse_thread = std::get<1>(GetParam());  // one step holds every file
  ingest_ = std::make_unique<Ingestor>(io, engine_.get(), tailer_.get(), read_env_, Clock::Real(),
                                       nullptr);
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (opened < 3) {
    ASSERT_LT(std::chrono::steady_clock::now(), give_up);
    ASSERT_TRUE(ingest_
                    ->Step(std::chrono::steady_clock::now() + std::chrono::milliseconds(200),
                           stop.get_token())
                    .ok());
  }
  // Some files, not all, were committed, each whole; the lines counted are theirs alone.
  const uint64_t committed = CommittedBytes();
  EXPECT_GT(committed, 0u);
  EXPECT_LT(committed, complete_bytes_);
  EXPECT_FALSE(engine_->caught_up());
  uint64_t whole_files = 0, lines = 0;
  std::vector<TrackedFile> tracked;
  ASSERT_TRUE(Ingestor::RestoredFiles(engine_.get(), &tracked).ok());
  for (const TrackedFile& f : tracked) {
    const size_t i = std::stoul(f.path.substr(f.path.rfind("/f") + 2));
    EXPECT_EQ(f.offset, Join(files[i], 0, files[i].size()).size()) << f.path;
    whole_files += 1;
    lines += files[i].size();
  }
  EXPECT_GE(whole_files, 1u);
  EXPECT_EQ(engine_->stats().lines, lines);
  read_env_ = Env::Default();
  Start();
  Drain();
  EXPECT_EQ(Live(), ReplayText(files, "dev"));
}

}  // namespace
}  // namespace ccmon::agent
