// Tailer (tail/tailer.h): real temp dirs under both watchers (parametrised), a caller that reads
// lines as the agent will (OpenIfSameFile + LineReader + Consumed) and counts every line it reads,
// so that "read once" is checked line by line; MemEnv + FakeClock + a scripted watcher for the
// exact rules; thread CPU time while idle.
#include "tail/tailer.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <deque>
#include <filesystem>
#include <functional>
#include <map>

#include "testing/fake_clock.h"
#include "testing/fault_env.h"
#include "testing/mem_env.h"
#include "testing/temp_dir.h"
#include "transcript/line_reader.h"

namespace ccmon {
namespace {

using std::chrono::milliseconds;
using testing_util::FakeClock;
using testing_util::Fault;
using testing_util::FaultEnv;
using testing_util::FaultOp;
using testing_util::MemEnv;
using testing_util::TempDir;
using Kind = TailEvent::Kind;
namespace fs = std::filesystem;

void Append(const std::string& path, const std::string& data) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  ASSERT_GE(fd, 0) << path;
  ASSERT_EQ(::write(fd, data.data(), data.size()), ssize_t(data.size()));
  ::close(fd);
}

void WriteNew(const std::string& path, const std::string& data) {
  fs::create_directories(fs::path(path).parent_path());
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_GE(fd, 0) << path;
  ASSERT_EQ(::write(fd, data.data(), data.size()), ssize_t(data.size()));
  ::close(fd);
}

// Plays the agent: reads every offered file's complete lines and reports them consumed.
class Caller {
 public:
  Caller(Tailer* tailer, Env* env) : tailer_(tailer), env_(env) {}

  // One Next (up to `wait`); reads all work. Returns the number of work items.
  size_t Step(milliseconds wait) {
    std::vector<TailWork> work;
    std::vector<TailEvent> events;
    Status s = tailer_->Next(std::chrono::steady_clock::now() + wait, {}, &work, &events);
    EXPECT_TRUE(s.ok()) << s.message();
    for (TailEvent& e : events) this->events.push_back(std::move(e));
    for (const TailWork& w : work) Read(w);
    return work.size();
  }
  // Steps until `done()` (true) or 10 s (false).
  bool RunUntil(const std::function<bool()>& done) {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!done()) {
      if (std::chrono::steady_clock::now() >= give_up) return false;
      Step(milliseconds(200));
    }
    return true;
  }
  void Read(const TailWork& w) {
    ++offers[w.path];
    std::unique_ptr<SequentialFile> file;
    bool same = false;
    Status s = OpenIfSameFile(env_, w.path, w.identity, w.start_offset, &file, &same);
    if (!s.ok() || !same) {
      EXPECT_TRUE(tailer_->Recheck(w).ok());
      return;
    }
    if (before_read) before_read(w);
    LineReader reader(file.get(), w.start_offset, {});
    std::string_view line;
    size_t readable;
    while (reader.Next(&line, &readable) == LineReader::Result::kLine) ++lines[std::string(line)];
    EXPECT_TRUE(tailer_->Consumed(w, reader.consumed_offset(), reader.at_eof()).ok());
  }
  int Count(const std::string& line) const {
    auto it = lines.find(line);
    return it == lines.end() ? 0 : it->second;
  }
  bool Saw(std::initializer_list<const char*> want) const {
    for (const char* l : want) {
      if (Count(l) == 0) return false;
    }
    return true;
  }
  bool HasEvent(Kind kind, const std::string& path) const {
    for (const TailEvent& e : events) {
      if (e.kind == kind && e.path == path) return true;
    }
    return false;
  }
  // Every line read at most once.
  void ExpectNothingReadTwice() const {
    for (const auto& [line, n] : lines) EXPECT_EQ(n, 1) << line;
  }

  std::map<std::string, int> lines;
  std::map<std::string, int> offers;
  std::vector<TailEvent> events;
  std::function<void(const TailWork&)> before_read;

 private:
  Tailer* tailer_;
  Env* env_;
};

class TailerTest : public ::testing::TestWithParam<WatchMode> {
 protected:
  TailerOptions Options(Env* env = Env::Default()) {
    TailerOptions o;
    o.project_dirs = {root_};
    o.watch_mode = GetParam();
    o.poll_interval = milliseconds(20);
    o.env = env;
    return o;
  }
  TempDir tmp_;
  std::string root_ = tmp_ / "projects";
};

TEST_P(TailerTest, NewFilesAndSubagentFilesThatAppearLater) {
  WriteNew(root_ + "/p1/s1.jsonl", "s1-a\ns1-b\n");
  Tailer tailer(Options(), {});
  EXPECT_STREQ(tailer.watch_mode(), GetParam() == WatchMode::kInotify ? "inotify" : "poll");
  Caller c(&tailer, Env::Default());
  ASSERT_TRUE(c.RunUntil([&] { return c.Saw({"s1-a", "s1-b"}); }));
  WriteNew(root_ + "/p1/s1/subagents/agent-1.jsonl", "agent-1\n");
  WriteNew(root_ + "/p2/s2.jsonl", "s2\n");
  ASSERT_TRUE(c.RunUntil([&] { return c.Saw({"agent-1", "s2"}); }));
  EXPECT_EQ(tailer.files_tracked(), 3u);
  EXPECT_EQ(tailer.bytes_behind(), 0u);
  c.ExpectNothingReadTwice();
}

TEST_P(TailerTest, AnIncompleteLineIsReadOnceItsNewlineArrives) {
  WriteNew(root_ + "/p/s.jsonl", "one\n{\"two\"");
  Tailer tailer(Options(), {});
  Caller c(&tailer, Env::Default());
  ASSERT_TRUE(c.RunUntil([&] { return c.Saw({"one"}); }));
  EXPECT_EQ(tailer.bytes_behind(), 0u);  // the pending piece was read: held back, not behind
  // Nothing new: the pending piece is not offered again.
  EXPECT_EQ(c.Step(milliseconds(300)), 0u);
  Append(root_ + "/p/s.jsonl", ":2");
  ASSERT_TRUE(c.RunUntil([&] { return c.offers[root_ + "/p/s.jsonl"] >= 2; }));
  EXPECT_EQ(c.lines.size(), 1u);
  Append(root_ + "/p/s.jsonl", "}\nthree\n");
  ASSERT_TRUE(c.RunUntil([&] { return c.Saw({"{\"two\":2}", "three"}); }));
  EXPECT_EQ(tailer.bytes_behind(), 0u);
  c.ExpectNothingReadTwice();
}

TEST_P(TailerTest, RenamesWithinAndAcrossDirectoriesAreNotReadTwice) {
  WriteNew(root_ + "/p1/a.jsonl", "a1\n");
  fs::create_directories(root_ + "/p2");
  Tailer tailer(Options(), {});
  Caller c(&tailer, Env::Default());
  ASSERT_TRUE(c.RunUntil([&] { return c.Saw({"a1"}); }));
  fs::rename(root_ + "/p1/a.jsonl", root_ + "/p1/b.jsonl");
  Append(root_ + "/p1/b.jsonl", "a2\n");
  ASSERT_TRUE(c.RunUntil([&] { return c.Saw({"a2"}); }));
  EXPECT_TRUE(c.HasEvent(Kind::kRenamed, root_ + "/p1/b.jsonl"));
  fs::rename(root_ + "/p1/b.jsonl", root_ + "/p2/c.jsonl");
  Append(root_ + "/p2/c.jsonl", "a3\n");
  ASSERT_TRUE(c.RunUntil([&] { return c.Saw({"a3"}); }));
  EXPECT_TRUE(c.HasEvent(Kind::kRenamed, root_ + "/p2/c.jsonl"));
  // A whole project directory renamed.
  fs::rename(root_ + "/p2", root_ + "/p3");
  Append(root_ + "/p3/c.jsonl", "a4\n");
  ASSERT_TRUE(c.RunUntil([&] { return c.Saw({"a4"}); }));
  EXPECT_EQ(tailer.files_tracked(), 1u);
  ASSERT_EQ(tailer.Snapshot().size(), 1u);
  EXPECT_EQ(tailer.Snapshot()[0].path, root_ + "/p3/c.jsonl");
  c.ExpectNothingReadTwice();
}

TEST_P(TailerTest, AFileMovedOverAnotherReplacesIt) {
  WriteNew(root_ + "/p/old.jsonl", "old1\n");
  WriteNew(root_ + "/p/x.jsonl", "x1\n");
  Tailer tailer(Options(), {});
  Caller c(&tailer, Env::Default());
  ASSERT_TRUE(c.RunUntil([&] { return c.Saw({"old1", "x1"}); }));
  // `mv new old` with an untracked new file (not *.jsonl): read from 0, the old state reported.
  WriteNew(root_ + "/p/new.tmp", "new1\nnew2\n");
  fs::rename(root_ + "/p/new.tmp", root_ + "/p/old.jsonl");
  ASSERT_TRUE(c.RunUntil([&] { return c.Saw({"new1", "new2"}); }));
  ASSERT_TRUE(c.RunUntil([&] { return c.HasEvent(Kind::kReplaced, root_ + "/p/old.jsonl"); }));
  for (const TailEvent& e : c.events) {
    if (e.kind == Kind::kReplaced) {
      EXPECT_EQ(e.previous.offset, 5u);
    }
  }
  // `mv x old` with both tracked: x keeps its state under the new name; old's is replaced.
  c.events.clear();
  fs::rename(root_ + "/p/x.jsonl", root_ + "/p/old.jsonl");
  Append(root_ + "/p/old.jsonl", "x2\n");
  ASSERT_TRUE(c.RunUntil([&] { return c.Saw({"x2"}); }));
  ASSERT_TRUE(c.RunUntil([&] { return c.HasEvent(Kind::kReplaced, root_ + "/p/old.jsonl"); }));
  EXPECT_TRUE(c.HasEvent(Kind::kRenamed, root_ + "/p/old.jsonl"));
  EXPECT_EQ(tailer.files_tracked(), 1u);
  c.ExpectNothingReadTwice();
}

TEST_P(TailerTest, TruncatedAndRewrittenFilesAreReadFromTheStart) {
  const std::string path = root_ + "/p/t.jsonl";
  WriteNew(path, "t1\nt2\n");
  Tailer tailer(Options(), {});
  Caller c(&tailer, Env::Default());
  ASSERT_TRUE(c.RunUntil([&] { return c.Saw({"t1", "t2"}); }));
  ASSERT_EQ(::truncate(path.c_str(), 0), 0);
  Append(path, "u1\n");  // shorter than the offset
  ASSERT_TRUE(c.RunUntil([&] { return c.Saw({"u1"}); }));
  EXPECT_TRUE(c.HasEvent(Kind::kTruncated, path));
  // Rewritten in place, longer than the offset, with another head.
  ASSERT_EQ(::truncate(path.c_str(), 0), 0);
  Append(path, "v1\nv2\nv3\n");
  ASSERT_TRUE(c.RunUntil([&] { return c.Saw({"v1", "v2", "v3"}); }));
  EXPECT_TRUE(c.HasEvent(Kind::kReplaced, path) || c.events.size() >= 2);
  c.ExpectNothingReadTwice();
}

TEST_P(TailerTest, DeletedFilesAndDirectoriesAreForgotten) {
  WriteNew(root_ + "/p/a.jsonl", "a\n");
  WriteNew(root_ + "/q/b.jsonl", "b\n");
  WriteNew(root_ + "/q/sub/c.jsonl", "c\n");
  Tailer tailer(Options(), {});
  Caller c(&tailer, Env::Default());
  ASSERT_TRUE(c.RunUntil([&] { return c.Saw({"a", "b", "c"}); }));
  EXPECT_EQ(tailer.files_tracked(), 3u);
  fs::remove(root_ + "/p/a.jsonl");
  ASSERT_TRUE(c.RunUntil([&] { return c.HasEvent(Kind::kDeleted, root_ + "/p/a.jsonl"); }));
  fs::remove_all(root_ + "/q");
  ASSERT_TRUE(c.RunUntil([&] { return c.HasEvent(Kind::kDeleted, root_ + "/q/sub/c.jsonl"); }));
  EXPECT_TRUE(c.HasEvent(Kind::kDeleted, root_ + "/q/b.jsonl"));
  EXPECT_EQ(tailer.files_tracked(), 0u);
  for (const TailEvent& e : c.events) {
    if (e.kind == Kind::kDeleted) {
      EXPECT_EQ(e.previous.offset, 2u) << e.message;
    }
  }
}

// Found by the agent's ingest tests: a rename to a new directory and a deletion in one go.
TEST_P(TailerTest, ARenameToANewDirectoryAndADeletionTogether) {
  WriteNew(root_ + "/p/f0.jsonl", "a\n");
  WriteNew(root_ + "/p/f1.jsonl", "b\n");
  WriteNew(root_ + "/p/f2.jsonl", "c\n");
  for (int i = 3; i < 12; ++i) WriteNew(root_ + "/p/f" + std::to_string(i) + ".jsonl", "x\n");
  Tailer tailer(Options(), {});
  Caller c(&tailer, Env::Default());
  ASSERT_TRUE(c.RunUntil([&] { return c.Saw({"a", "b", "c"}); }));
  fs::create_directories(root_ + "/q");
  fs::rename(root_ + "/p/f0.jsonl", root_ + "/q/moved.jsonl");
  ASSERT_TRUE(c.RunUntil([&] { return c.HasEvent(Kind::kRenamed, root_ + "/q/moved.jsonl"); }));
  fs::remove(root_ + "/p/f1.jsonl");  // seen by a later look than the rename
  ASSERT_TRUE(c.RunUntil([&] { return c.HasEvent(Kind::kDeleted, root_ + "/p/f1.jsonl"); }));
  EXPECT_EQ(tailer.files_tracked(), 11u);
}

TEST_P(TailerTest, AProjectsDirectoryCreatedAfterStartIsPickedUp) {
  root_ = tmp_ / "config/claude/projects";
  Tailer tailer(Options(), {});
  Caller c(&tailer, Env::Default());
  EXPECT_EQ(c.Step(milliseconds(50)), 0u);
  WriteNew(root_ + "/p/s.jsonl", "late\n");
  ASSERT_TRUE(c.RunUntil([&] { return c.Saw({"late"}); }));
  Append(root_ + "/p/s.jsonl", "later\n");
  ASSERT_TRUE(c.RunUntil([&] { return c.Saw({"later"}); }));
  c.ExpectNothingReadTwice();
}

TEST_P(TailerTest, AnUnreadableDirectoryIsReportedOnce) {
  WriteNew(root_ + "/ok/a.jsonl", "a\n");
  WriteNew(root_ + "/locked/b.jsonl", "b\n");
  // As root, mode 000 does not stop reads: the failure is injected.
  FaultEnv env(Env::Default());
  env.Inject(Fault(FaultOp::kGetChildren, EACCES).OnPath("/locked").Times(-1));
  Tailer tailer(Options(&env), {});
  Caller c(&tailer, &env);
  ASSERT_TRUE(c.RunUntil([&] { return c.Saw({"a"}); }));
  ASSERT_TRUE(c.RunUntil([&] { return !c.events.empty(); }));
  ASSERT_EQ(c.events.size(), 1u);
  EXPECT_EQ(c.events[0].kind, Kind::kProblem);
  EXPECT_NE(c.events[0].message.find("/locked: opendir: Permission denied"), std::string::npos)
      << c.events[0].message;
  Append(root_ + "/ok/a.jsonl", "a2\n");
  ASSERT_TRUE(c.RunUntil([&] { return c.Saw({"a2"}); }));
  EXPECT_EQ(c.events.size(), 1u);
  EXPECT_EQ(c.Count("b"), 0);
  // Readable again: its files are found at the next look at it.
  env.ClearFaults();
  Append(root_ + "/locked/b.jsonl", "b2\n");
  ASSERT_TRUE(c.RunUntil([&] { return c.Saw({"b", "b2"}); }));
  c.ExpectNothingReadTwice();
}

TEST_P(TailerTest, ARestartResumesFromTheRestoredStates) {
  WriteNew(root_ + "/p/a.jsonl", "a1\na2\na3-");
  WriteNew(root_ + "/p/b.jsonl", "b1\n");
  WriteNew(root_ + "/p/c.jsonl", "c1\n");
  WriteNew(root_ + "/p/gone.jsonl", "g1\n");
  Caller* first_caller;
  std::map<std::string, int> lines;
  std::vector<std::string> stored;
  {
    Tailer tailer(Options(), {});
    Caller c(&tailer, Env::Default());
    first_caller = &c;
    ASSERT_TRUE(c.RunUntil([&] { return c.Saw({"a1", "a2", "b1", "c1", "g1"}); }));
    for (const TrackedFile& f : tailer.Snapshot()) stored.push_back(EncodeTrackedFile(f));
    lines = c.lines;
  }
  (void)first_caller;
  // While the agent is down.
  Append(root_ + "/p/a.jsonl", "x\na4\n");
  Append(root_ + "/p/b.jsonl", "b2\n");
  fs::rename(root_ + "/p/c.jsonl", root_ + "/p/d.jsonl");
  Append(root_ + "/p/d.jsonl", "c2\n");
  fs::remove(root_ + "/p/gone.jsonl");
  WriteNew(root_ + "/p/e.jsonl", "e1\n");

  std::vector<TrackedFile> restored;
  for (const std::string& bytes : stored) {
    TrackedFile f;
    ASSERT_TRUE(DecodeTrackedFile(bytes, &f).ok());
    restored.push_back(f);
  }
  Tailer tailer(Options(), restored);
  Caller c(&tailer, Env::Default());
  c.lines = lines;
  ASSERT_TRUE(c.RunUntil([&] { return c.Saw({"a3-x", "a4", "b2", "c2", "e1"}); }));
  EXPECT_TRUE(c.HasEvent(Kind::kRenamed, root_ + "/p/d.jsonl"));
  EXPECT_TRUE(c.HasEvent(Kind::kDeleted, root_ + "/p/gone.jsonl"));
  EXPECT_EQ(tailer.files_tracked(), 4u);
  EXPECT_EQ(tailer.bytes_behind(), 0u);
  c.ExpectNothingReadTwice();
}

TEST_P(TailerTest, AFileReplacedBeforeItIsOpenedIsNotReadFromTheOldOffset) {
  const std::string path = root_ + "/p/f.jsonl";
  WriteNew(path, "f1\n");
  Tailer tailer(Options(), {});
  Caller c(&tailer, Env::Default());
  ASSERT_TRUE(c.RunUntil([&] { return c.Saw({"f1"}); }));
  Append(path, "f2\n");
  // Between the offer and the open, the file is replaced by a longer one.
  bool replaced = false;
  c.before_read = nullptr;
  std::vector<TailWork> work;
  ASSERT_TRUE(c.RunUntil([&] {
    Status s = tailer.Next(std::chrono::steady_clock::now() + milliseconds(200), {}, &work);
    EXPECT_TRUE(s.ok());
    return !work.empty();
  }));
  WriteNew(root_ + "/p/f.tmp", "g1\ng2\ng3\n");
  fs::rename(root_ + "/p/f.tmp", path);
  replaced = true;
  for (const TailWork& w : work) c.Read(w);  // OpenIfSameFile refuses it: nothing read
  EXPECT_EQ(c.Count("2\ng3"), 0);
  ASSERT_TRUE(c.RunUntil([&] { return c.Saw({"g1", "g2", "g3"}); }));
  EXPECT_TRUE(replaced);
  EXPECT_EQ(c.Count("f2"), 0);  // lost with the old file: it was replaced before it was read
  c.ExpectNothingReadTwice();
}

TEST_P(TailerTest, AFileReplacedWhileBeingReadIsReadToItsEndThenTheNewOneFromZero) {
  const std::string path = root_ + "/p/f.jsonl";
  WriteNew(path, "f1\n");
  FaultEnv env(Env::Default());
  Tailer tailer(Options(&env), {});
  Caller c(&tailer, &env);
  ASSERT_TRUE(c.RunUntil([&] { return c.Saw({"f1"}); }));
  Append(path, "f2\nf3\n");
  // The caller's first read of lines (after it opened and checked the file) replaces it under
  // its name.
  bool armed = false, once = false;
  c.before_read = [&](const TailWork&) { armed = true; };
  env.OnCall(FaultOp::kRead, "f.jsonl", [&](const std::string&) {
    if (!armed || once) return;
    once = true;
    WriteNew(root_ + "/p/f.tmp", "n1\nn2\n");
    fs::rename(root_ + "/p/f.tmp", path);
  });
  ASSERT_TRUE(c.RunUntil([&] { return c.Saw({"f2", "f3", "n1", "n2"}); }));
  EXPECT_TRUE(once);
  ASSERT_TRUE(c.RunUntil([&] { return c.HasEvent(Kind::kReplaced, path); }));
  c.ExpectNothingReadTwice();
}

TEST_P(TailerTest, ConsumedChecksWhatItIsGiven) {
  const std::string path = root_ + "/p/f.jsonl";
  WriteNew(path, "f1\nf2\n");
  Tailer tailer(Options(), {});
  std::vector<TailWork> work;
  ASSERT_TRUE(
      tailer.Next(std::chrono::steady_clock::now() + std::chrono::seconds(10), {}, &work).ok());
  ASSERT_EQ(work.size(), 1u);
  EXPECT_EQ(work[0].start_offset, 0u);
  EXPECT_EQ(work[0].size, 6u);
  // Not consumed: offered again.
  std::vector<TailWork> again;
  ASSERT_TRUE(tailer.Next(std::chrono::steady_clock::now(), {}, &again).ok());
  ASSERT_EQ(again.size(), 1u);
  // A read that stopped midway: offered again from where it stopped.
  ASSERT_TRUE(tailer.Consumed(work[0], 3, /*read_to_end=*/false).ok());
  ASSERT_TRUE(tailer.Next(std::chrono::steady_clock::now(), {}, &again).ok());
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].start_offset, 3u);
  EXPECT_EQ(tailer.Consumed(again[0], 2).code(), Status::Code::kInvalidArgument);
  TailWork stale = again[0];
  stale.generation += 100;
  EXPECT_EQ(tailer.Consumed(stale, 6).code(), Status::Code::kNotFound);
  ASSERT_TRUE(tailer.Consumed(again[0], 6).ok());
  ASSERT_TRUE(tailer.Next(std::chrono::steady_clock::now(), {}, &again).ok());
  EXPECT_TRUE(again.empty());
  ASSERT_EQ(tailer.Snapshot().size(), 1u);
  EXPECT_EQ(tailer.Snapshot()[0].offset, 6u);
  EXPECT_EQ(tailer.Snapshot()[0].size_seen, 6u);
}

INSTANTIATE_TEST_SUITE_P(Watchers, TailerTest,
                         ::testing::Values(WatchMode::kInotify, WatchMode::kPoll),
                         [](const ::testing::TestParamInfo<WatchMode>& info) {
                           return info.param == WatchMode::kInotify ? "inotify" : "poll";
                         });

// --- inotify only

TEST(TailerInotify, AQueueOverflowLosesNothing) {
  TempDir tmp;
  const std::string root = tmp / "projects";
  fs::create_directories(root + "/p");
  WatcherOptions wo;
  wo.roots = {root};
  std::unique_ptr<InotifyWatcher> watcher;
  ASSERT_TRUE(InotifyWatcher::Create(wo, &watcher).ok());
  TailerOptions o;
  o.project_dirs = {root};
  Tailer tailer(o, {}, std::move(watcher));
  Caller c(&tailer, Env::Default());
  EXPECT_EQ(c.Step(milliseconds(10)), 0u);
  // Flood the queue past max_queued_events without reading it; meanwhile a new directory and
  // file appear (their events are lost in the overflow).
  int fds[2] = {::open((root + "/p/a.jsonl").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644),
                ::open((root + "/p/b.jsonl").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644)};
  const int writes = 17000;
  for (int i = 0; i < writes; ++i) ASSERT_EQ(::write(fds[i % 2], "x\n", 2), 2);
  ::close(fds[0]);
  ::close(fds[1]);
  WriteNew(root + "/q/late/lost.jsonl", "lost\n");
  ASSERT_TRUE(c.RunUntil([&] { return c.Count("x") == writes && c.Saw({"lost"}); }));
  EXPECT_EQ(c.Count("x"), writes);
  // And the new directory is watched.
  Append(root + "/q/late/lost.jsonl", "found\n");
  ASSERT_TRUE(c.RunUntil([&] { return c.Saw({"found"}); }));
}

TEST(TailerInotify, ASimulatedOverflowRescans) {
  TempDir tmp;
  const std::string root = tmp / "projects";
  fs::create_directories(root);
  WatcherOptions wo;
  wo.roots = {root};
  std::unique_ptr<InotifyWatcher> watcher;
  ASSERT_TRUE(InotifyWatcher::Create(wo, &watcher).ok());
  InotifyWatcher* raw = watcher.get();
  TailerOptions o;
  o.project_dirs = {root};
  Tailer tailer(o, {}, std::move(watcher));
  Caller c(&tailer, Env::Default());
  EXPECT_EQ(c.Step(milliseconds(10)), 0u);
  const uint64_t scans = tailer.full_scans();
  raw->SimulateOverflow();
  EXPECT_EQ(c.Step(milliseconds(200)), 0u);
  // The overflow's kTree for the root walked it (a partial scan of everything), no full scan
  // needed: nothing vanished.
  EXPECT_EQ(tailer.full_scans(), scans);
}

// Idle means no CPU: a 2 s Next with nothing happening costs (almost) no CPU time on its thread.
TEST(TailerInotify, IdleUsesNoCpu) {
  TempDir tmp;
  const std::string root = tmp / "projects";
  for (int i = 0; i < 200; ++i) {
    WriteNew(root + "/p" + std::to_string(i % 10) + "/s" + std::to_string(i) + ".jsonl", "l\n");
  }
  TailerOptions o;
  o.project_dirs = {root};
  Tailer tailer(o, {});
  Caller c(&tailer, Env::Default());
  ASSERT_TRUE(c.RunUntil([&] { return c.Count("l") == 200; }));
  auto cpu_us = [] {
    rusage ru;
    ::getrusage(RUSAGE_THREAD, &ru);
    return (int64_t(ru.ru_utime.tv_sec) + ru.ru_stime.tv_sec) * 1000000 + ru.ru_utime.tv_usec +
           ru.ru_stime.tv_usec;
  };
  const int64_t cpu_before = cpu_us();
  const auto start = std::chrono::steady_clock::now();
  std::vector<TailWork> work;
  ASSERT_TRUE(tailer.Next(start + std::chrono::seconds(2), {}, &work).ok());
  const auto waited = std::chrono::steady_clock::now() - start;
  const int64_t cpu = cpu_us() - cpu_before;
  EXPECT_TRUE(work.empty());
  EXPECT_GE(waited, std::chrono::seconds(2));
  EXPECT_LT(cpu, 20000) << "CPU time while idle: " << cpu << " us";
  RecordProperty("idle_cpu_us", std::to_string(cpu));
}

// --- exact rules, on MemEnv with a fake clock and a scripted watcher

// Returns the scripted batches one per Wait; with none left, waits on the clock to the deadline.
class ScriptedWatcher : public Watcher {
 public:
  explicit ScriptedWatcher(Clock* clock) : clock_(clock) {}
  Status Wait(std::chrono::steady_clock::time_point deadline, std::stop_token stop,
              std::vector<DirtyPath>* dirty) override {
    ++waits;
    if (!batches.empty()) {
      *dirty = std::move(batches.front());
      batches.pop_front();
      return Status::Ok();
    }
    auto now = clock_->Now();
    if (deadline > now) {
      clock_->WaitFor(std::chrono::ceil<milliseconds>(deadline - now), stop);
    }
    return Status::Ok();
  }
  void Resync() override { ++resyncs; }
  std::vector<std::string> TakeWarnings() override { return {}; }
  const char* mode() const override { return "scripted"; }

  std::deque<std::vector<DirtyPath>> batches;
  int waits = 0, resyncs = 0;

 private:
  Clock* clock_;
};

struct Scripted {
  MemEnv env;
  FakeClock clock;
  ScriptedWatcher* watcher = nullptr;
  std::unique_ptr<Tailer> tailer;
  explicit Scripted(std::vector<TrackedFile> restored = {}, uint64_t max_offer_bytes = 0) {
    TailerOptions o;
    o.max_offer_bytes = max_offer_bytes;
    o.project_dirs = {"/c/projects"};
    o.env = &env;
    o.clock = &clock;
    auto w = std::make_unique<ScriptedWatcher>(&clock);
    watcher = w.get();
    tailer = std::make_unique<Tailer>(o, std::move(restored), std::move(w));
  }
  std::vector<TailWork> Next(std::chrono::milliseconds wait,
                             std::vector<TailEvent>* events = nullptr) {
    std::vector<TailWork> work;
    EXPECT_TRUE(tailer->Next(clock.Now() + wait, {}, &work, events).ok());
    return work;
  }
};

// The first Next answers once it has scanned, even with nothing found: an agent over an empty
// history is caught up at once, not at its first deadline (5 s).
TEST(TailerRules, TheFirstNextDoesNotWaitWhenThereIsNothing) {
  Scripted t;
  const auto before = t.clock.Now();
  EXPECT_TRUE(t.Next(std::chrono::minutes(1)).empty());
  EXPECT_EQ(t.clock.Now(), before);
  EXPECT_EQ(t.watcher->waits, 0);
  EXPECT_EQ(t.tailer->full_scans(), 1u);
  // Later calls wait for the watcher or the deadline, as before.
  EXPECT_TRUE(t.Next(milliseconds(1000)).empty());
  EXPECT_EQ(t.clock.Now() - before, milliseconds(1000));
  EXPECT_EQ(t.watcher->waits, 1);
}

TEST(TailerRules, TheRescanIsTheSafetyNet) {
  Scripted t;
  EXPECT_TRUE(t.Next(milliseconds(1000)).empty());  // the first scan: no wait
  EXPECT_EQ(t.tailer->full_scans(), 1u);
  t.env.AddFile("/c/projects/p/s.jsonl", "unseen by the watcher\n");
  const auto before = t.clock.Now();
  auto work = t.Next(std::chrono::minutes(30));
  ASSERT_EQ(work.size(), 1u);
  EXPECT_EQ(t.clock.Now() - before, std::chrono::minutes(5));
  EXPECT_EQ(t.tailer->full_scans(), 2u);
  EXPECT_EQ(t.watcher->resyncs, 2);  // at the first scan and at the rescan
}

TEST(TailerRules, APendingLineIsNotOfferedAgainUntilTheFileGrows) {
  Scripted t;
  t.env.AddFile("/c/projects/p/s.jsonl", "a\nb");
  auto work = t.Next(milliseconds(10));
  ASSERT_EQ(work.size(), 1u);
  ASSERT_TRUE(t.tailer->Consumed(work[0], 2).ok());
  // Events without growth (a touch, a close): nothing offered.
  t.watcher->batches.push_back({{DirtyPath::Kind::kFile, "/c/projects/p/s.jsonl"}});
  t.watcher->batches.push_back({{DirtyPath::Kind::kTree, "/c/projects/p"}});
  EXPECT_TRUE(t.Next(milliseconds(10)).empty());
  EXPECT_EQ(t.watcher->waits, 3);
  t.env.AddFile("/c/projects/p/s.jsonl", "a\nbc\n");  // new inode: replaced
  std::vector<TailEvent> events;
  t.watcher->batches.push_back({{DirtyPath::Kind::kFile, "/c/projects/p/s.jsonl"}});
  work = t.Next(milliseconds(10), &events);
  ASSERT_EQ(work.size(), 1u);
  EXPECT_EQ(work[0].start_offset, 0u);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, Kind::kReplaced);
  EXPECT_EQ(events[0].previous.offset, 2u);
  EXPECT_EQ(events[0].previous.size_seen, 3u);
}

// The watcher's single paths are judged by discovery's rules, as a walk would.
TEST(TailerRules, SinglePathsFollowDiscoveryRules) {
  Scripted t;
  EXPECT_TRUE(t.Next(milliseconds(10)).empty());
  const std::vector<std::string> names = {"a.jsonl", ".jsonl",  "x.JSONL", "b.jsonl.tmp",
                                          "c.json",  "d.jsonl", "e.jsonl"};
  std::vector<DirtyPath> batch;
  for (const std::string& n : names) {
    t.env.AddFile("/c/projects/p/" + n, "line\n");
    batch.push_back({DirtyPath::Kind::kFile, "/c/projects/p/" + n});
  }
  t.env.AddDir("/c/projects/p/dir.jsonl");
  batch.push_back({DirtyPath::Kind::kFile, "/c/projects/p/dir.jsonl"});
  t.env.AddSymlink("/elsewhere/f.jsonl", "/c/projects/p/dangling.jsonl");
  batch.push_back({DirtyPath::Kind::kFile, "/c/projects/p/dangling.jsonl"});
  t.env.AddFile("/elsewhere/g.jsonl", "g\n");
  t.env.AddSymlink("/elsewhere/g.jsonl", "/c/projects/p/link.jsonl");
  batch.push_back({DirtyPath::Kind::kFile, "/c/projects/p/link.jsonl"});
  t.watcher->batches.push_back(batch);
  auto work = t.Next(milliseconds(10));
  std::vector<std::string> offered;
  for (const TailWork& w : work) offered.push_back(w.path);
  std::vector<std::string> discovered;
  for (const TranscriptFile& f : FindTranscripts({"/c/projects"}, &t.env).files)
    discovered.push_back(f.path);
  EXPECT_EQ(offered, discovered);
  EXPECT_EQ(offered.size(), 4u);  // a, d, e, link
}

TEST(TailerRules, BytesBehindAndFilesTracked) {
  Scripted t;
  t.env.AddFile("/c/projects/p/a.jsonl", std::string(100, 'a') + "\n");
  t.env.AddFile("/c/projects/p/b.jsonl", std::string(50, 'b'));
  auto work = t.Next(milliseconds(10));
  ASSERT_EQ(work.size(), 2u);
  EXPECT_EQ(t.tailer->files_tracked(), 2u);
  EXPECT_EQ(t.tailer->bytes_behind(), 151u);
  ASSERT_TRUE(t.tailer->Consumed(work[0], 101).ok());
  ASSERT_TRUE(t.tailer->Consumed(work[1], 0).ok());
  EXPECT_EQ(t.tailer->bytes_behind(), 0u);  // b's unterminated line was read to the end
}

// max_offer_bytes: files are offered in path order until their unread bytes reach the limit
// (the one that crosses it included); the rest wait, held_back() says so, and each is offered
// by a later Next once the ones before it are consumed. The gauges still count every file.
TEST(TailerRules, OffersStopAtMaxOfferBytesAndSayTheRestIsHeldBack) {
  Scripted t({}, /*max_offer_bytes=*/250);
  for (char c : std::string("dcba"))  // 100 bytes each, created out of path order
    t.env.AddFile(std::string("/c/projects/p/") + c + ".jsonl", std::string(99, c) + "\n");
  auto work = t.Next(milliseconds(10));
  ASSERT_EQ(work.size(), 3u);  // 100, 200, then 300 >= 250
  EXPECT_EQ(work[0].path, "/c/projects/p/a.jsonl");
  EXPECT_EQ(work[2].path, "/c/projects/p/c.jsonl");
  EXPECT_TRUE(t.tailer->held_back());
  EXPECT_EQ(t.tailer->bytes_behind(), 400u);
  EXPECT_EQ(t.tailer->files_tracked(), 4u);
  // a read to its end, b half-way (a step's budget): b is offered again from there, before d.
  ASSERT_TRUE(t.tailer->Consumed(work[0], 100).ok());
  ASSERT_TRUE(t.tailer->Consumed(work[1], 50, false).ok());
  work = t.Next(milliseconds(10));
  ASSERT_EQ(work.size(), 3u);
  EXPECT_EQ(work[0].path, "/c/projects/p/b.jsonl");
  EXPECT_EQ(work[0].start_offset, 50u);
  EXPECT_EQ(work[2].path, "/c/projects/p/d.jsonl");
  EXPECT_FALSE(t.tailer->held_back());
  EXPECT_EQ(t.tailer->bytes_behind(), 250u);
  for (const TailWork& w : work) ASSERT_TRUE(t.tailer->Consumed(w, w.size).ok());
  EXPECT_TRUE(t.Next(milliseconds(10)).empty());
  EXPECT_FALSE(t.tailer->held_back());
  EXPECT_EQ(t.tailer->bytes_behind(), 0u);
}

// A transcript whose last line a crash cut: read to its end, it is not behind (it was, forever,
// before ccmon_agent_bytes_behind counted only bytes not read yet). Bytes appended after it are
// behind until they are read, and a read stopped midway leaves the rest behind.
TEST(TailerRules, BytesBehindCountsOnlyBytesNotReadYet) {
  Scripted t;
  const std::string path = "/c/projects/p/cut.jsonl";
  t.env.AddFile(path, "{\"a\":1}\n{\"b\":");  // 8 + 5 bytes, no final newline
  auto work = t.Next(milliseconds(10));
  ASSERT_EQ(work.size(), 1u);
  EXPECT_EQ(t.tailer->bytes_behind(), 13u);
  ASSERT_TRUE(t.tailer->Consumed(work[0], 8, /*read_to_end=*/true).ok());
  EXPECT_EQ(t.tailer->bytes_behind(), 0u);
  EXPECT_TRUE(t.Next(milliseconds(10)).empty());
  EXPECT_EQ(t.tailer->bytes_behind(), 0u);  // and stays so: nothing to read

  // Appended in place: the same inode rewritten with the old bytes and 14 more (MemEnv has no
  // append; its writable file keeps the inode).
  {
    std::unique_ptr<WritableFile> f;
    ASSERT_TRUE(t.env.NewWritableFile(path, &f).ok());
    ASSERT_TRUE(f->Append("{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n{\"d").ok());
    ASSERT_TRUE(f->Close().ok());
  }
  t.watcher->batches.push_back({{DirtyPath::Kind::kFile, path}});
  work = t.Next(milliseconds(10));
  ASSERT_EQ(work.size(), 1u);
  EXPECT_EQ(work[0].start_offset, 8u);
  EXPECT_EQ(t.tailer->bytes_behind(), 14u);  // the 14 appended bytes, not the 5 already read
  // A read stopped after one line (a step's budget): the rest is still behind.
  ASSERT_TRUE(t.tailer->Consumed(work[0], 16, /*read_to_end=*/false).ok());
  EXPECT_EQ(t.tailer->bytes_behind(), 11u);
  work = t.Next(milliseconds(10));
  ASSERT_EQ(work.size(), 1u);
  ASSERT_TRUE(t.tailer->Consumed(work[0], 24, /*read_to_end=*/true).ok());
  EXPECT_EQ(t.tailer->bytes_behind(), 0u);  // {"d is held back until its newline
}

TEST(TailerRules, RestoredStatesOfReplacedFilesAreReported) {
  MemEnv probe;
  Scripted first;
  first.env.AddFile("/c/projects/p/a.jsonl", "a1\n");
  auto work = first.Next(milliseconds(10));
  ASSERT_EQ(work.size(), 1u);
  ASSERT_TRUE(first.tailer->Consumed(work[0], 3).ok());
  std::vector<TrackedFile> saved = first.tailer->Snapshot();

  Scripted second(saved);
  // The same path now holds another file (MemEnv numbers inodes from 2 in each instance: the
  // first file there got the same inode, with another head).
  second.env.AddFile("/c/projects/p/a.jsonl", "zz\nzz\n");
  std::vector<TailEvent> events;
  work = second.Next(milliseconds(10), &events);
  ASSERT_EQ(work.size(), 1u);
  EXPECT_EQ(work[0].start_offset, 0u);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, Kind::kReplaced);
  EXPECT_EQ(events[0].previous, saved[0]);
}

// NoteLook (the agent's bulk first start read every file just before the tailer starts): the
// first scan treats a noted file as one it looked at itself. Found at the same path, size and
// mtime it is not opened (here a same-size rewrite with the same mtime goes unseen, exactly as
// between two looks of one tailer); with another mtime it is opened and its head checked.
TEST(TailerRules, ANotedLookSparesOpeningAnUnchangedFileAtTheFirstScan) {
  Scripted first;
  first.env.AddFile("/c/projects/p/a.jsonl", "a1\n", 5000);
  auto work = first.Next(milliseconds(10));
  ASSERT_EQ(work.size(), 1u);
  ASSERT_TRUE(first.tailer->Consumed(work[0], 3).ok());
  const std::vector<TrackedFile> saved = first.tailer->Snapshot();
  ASSERT_EQ(saved.size(), 1u);
  for (int64_t noted_mtime : {int64_t(5000), int64_t(4000), int64_t(-1)}) {
    Scripted second(saved);
    // MemEnv numbers inodes from 2 in each instance: the same inode, another head, same size.
    second.env.AddFile("/c/projects/p/a.jsonl", "zz\n", 5000);
    second.tailer->NoteLook(saved[0].identity.device, saved[0].identity.inode, saved[0].path, 3,
                            noted_mtime);
    std::vector<TailEvent> events;
    work = second.Next(milliseconds(10), &events);
    if (noted_mtime == 5000) {  // unchanged by size and mtime: not opened
      EXPECT_TRUE(work.empty());
      EXPECT_TRUE(events.empty());
    } else {  // looked at: the other head is found
      ASSERT_EQ(work.size(), 1u) << noted_mtime;
      EXPECT_EQ(work[0].start_offset, 0u);
      ASSERT_EQ(events.size(), 1u) << noted_mtime;
      EXPECT_EQ(events[0].kind, Kind::kReplaced);
    }
  }
  // A note for another path is ignored.
  Scripted third(saved);
  third.env.AddFile("/c/projects/p/a.jsonl", "zz\n", 5000);
  third.tailer->NoteLook(saved[0].identity.device, saved[0].identity.inode, "/c/projects/p/b.jsonl",
                         3, 5000);
  std::vector<TailEvent> events;
  EXPECT_EQ(third.Next(milliseconds(10), &events).size(), 1u);
  EXPECT_EQ(events.size(), 1u);
}

// NoteCompleteLook (the agent's bulk first start: the watcher set up before its listing): the
// first Next takes the watcher's changes instead of walking and listing the trees. A change the
// watcher reports is looked at and offered; one it does not report waits for the rescan, which
// shows that nothing was listed (and the rescan stays the safety net).
TEST(TailerRules, AfterACompleteLookTheFirstNextTakesTheWatchersChangesInsteadOfListing) {
  Scripted first;
  first.env.AddFile("/c/projects/p/a.jsonl", "a1\n", 5000);
  first.env.AddFile("/c/projects/p/b.jsonl", "b1\n", 5000);
  auto work = first.Next(milliseconds(10));
  ASSERT_EQ(work.size(), 2u);
  for (const TailWork& w : work) ASSERT_TRUE(first.tailer->Consumed(w, 3).ok());
  const std::vector<TrackedFile> saved = first.tailer->Snapshot();
  ASSERT_EQ(saved.size(), 2u);

  Scripted second(saved);
  second.env.AddFile("/c/projects/p/a.jsonl", "a1\na2\n", 6000);  // reported below
  second.env.AddFile("/c/projects/p/b.jsonl", "b1\nb2\n", 6000);  // not reported
  for (const TrackedFile& f : saved)
    second.tailer->NoteLook(f.identity.device, f.identity.inode, f.path, 3, 5000);
  second.tailer->NoteCompleteLook();
  second.watcher->batches.push_back({{DirtyPath::Kind::kFile, "/c/projects/p/a.jsonl"}});
  const auto before = second.clock.Now();
  work = second.Next(std::chrono::minutes(30));
  EXPECT_EQ(second.clock.Now(), before);  // the first Next does not wait
  EXPECT_EQ(second.tailer->full_scans(), 0u);
  EXPECT_EQ(second.watcher->resyncs, 0);
  EXPECT_EQ(second.watcher->waits, 1);
  ASSERT_EQ(work.size(), 1u);
  EXPECT_EQ(work[0].path, "/c/projects/p/a.jsonl");
  EXPECT_EQ(work[0].start_offset, 3u);
  ASSERT_TRUE(second.tailer->Consumed(work[0], 6).ok());
  // b.jsonl's change, unreported, is found by the rescan.
  work = second.Next(std::chrono::minutes(30));
  ASSERT_EQ(work.size(), 1u);
  EXPECT_EQ(work[0].path, "/c/projects/p/b.jsonl");
  EXPECT_EQ(work[0].start_offset, 3u);
  EXPECT_EQ(second.clock.Now() - before, std::chrono::minutes(5));
  EXPECT_EQ(second.tailer->full_scans(), 1u);

  // Without the note, the first Next walks and lists as always.
  Scripted third(saved);
  third.env.AddFile("/c/projects/p/a.jsonl", "a1\na2\n", 6000);
  third.env.AddFile("/c/projects/p/b.jsonl", "b1\nb2\n", 6000);
  EXPECT_EQ(third.Next(milliseconds(10)).size(), 2u);
  EXPECT_EQ(third.tailer->full_scans(), 1u);
  EXPECT_EQ(third.watcher->resyncs, 1);
}

// A file deleted while the agent was down whose inode number another file now has (common after
// a delete on ext4 and tmpfs): the event and its message name the deleted file.
TEST(TailerRules, AFileWhoseInodeAnotherPathReusedIsReportedDeletedByName) {
  Scripted first;
  first.env.AddFile("/c/projects/p/a.jsonl", "a1\n");
  auto work = first.Next(milliseconds(10));
  ASSERT_EQ(work.size(), 1u);
  ASSERT_TRUE(first.tailer->Consumed(work[0], 3).ok());
  std::vector<TrackedFile> saved = first.tailer->Snapshot();

  Scripted second(saved);
  // MemEnv numbers inodes from 2 in each instance: b.jsonl gets a.jsonl's inode.
  second.env.AddFile("/c/projects/p/b.jsonl", "bb\n");
  std::vector<TailEvent> events;
  work = second.Next(milliseconds(10), &events);
  ASSERT_EQ(work.size(), 1u);
  EXPECT_EQ(work[0].path, "/c/projects/p/b.jsonl");
  EXPECT_EQ(work[0].start_offset, 0u);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, Kind::kDeleted);
  EXPECT_EQ(events[0].path, "/c/projects/p/a.jsonl");
  EXPECT_EQ(events[0].previous, saved[0]);
  EXPECT_EQ(events[0].message,
            "/c/projects/p/a.jsonl: deleted (3 bytes read); forgotten, counters kept");
}

TEST(TailerRules, AnUnreadableFileIsReportedOnceAndReadWhenItCanBe) {
  MemEnv mem;
  FakeClock clock;
  FaultEnv env(&mem);
  env.Inject(Fault(FaultOp::kNewSequentialFile, EACCES).OnPath("secret").Times(-1));
  mem.AddFile("/c/projects/p/secret.jsonl", "s1\n");
  TailerOptions o;
  o.project_dirs = {"/c/projects"};
  o.env = &env;
  o.clock = &clock;
  auto owned = std::make_unique<ScriptedWatcher>(&clock);
  ScriptedWatcher* watcher = owned.get();
  Tailer tailer(o, {}, std::move(owned));
  std::vector<TailWork> work;
  std::vector<TailEvent> events;
  ASSERT_TRUE(tailer.Next(clock.Now() + milliseconds(10), {}, &work, &events).ok());
  EXPECT_TRUE(work.empty());
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].message, "/c/projects/p/secret.jsonl: open: Permission denied (not read)");
  watcher->batches.push_back({{DirtyPath::Kind::kFile, "/c/projects/p/secret.jsonl"}});
  ASSERT_TRUE(tailer.Next(clock.Now() + milliseconds(10), {}, &work, &events).ok());
  EXPECT_TRUE(events.empty());
  env.ClearFaults();
  watcher->batches.push_back({{DirtyPath::Kind::kFile, "/c/projects/p/secret.jsonl"}});
  ASSERT_TRUE(tailer.Next(clock.Now() + milliseconds(10), {}, &work, &events).ok());
  ASSERT_EQ(work.size(), 1u);
  EXPECT_EQ(work[0].size, 3u);
}

// Rewrites `path` in place (same inode) with `content` (MemEnv's open for writing truncates).
void Rewrite(MemEnv* env, const std::string& path, const std::string& content) {
  std::unique_ptr<WritableFile> f;
  ASSERT_TRUE(env->NewWritableFile(path, &f).ok());
  ASSERT_TRUE(f->Append(content).ok());
  ASSERT_TRUE(f->Close().ok());
}

// Found by integration.agent_faults_files: a file renamed after it was offered and before it was
// opened was offered again at once under its old name (the reader could not open it and gave
// back its start offset), forever; Next never reached the watcher, so no other file was read
// again. Recheck makes the next Next look for it: found renamed, offered under the new name.
TEST(TailerRules, AFileRenamedBetweenItsOfferAndItsReadIsFollowedByTheNextNext) {
  Scripted t;
  t.env.AddFile("/c/projects/p/a.jsonl", "a1\na2\n");
  auto work = t.Next(milliseconds(10));
  ASSERT_EQ(work.size(), 1u);
  ASSERT_TRUE(t.env.RenameFile("/c/projects/p/a.jsonl", "/c/projects/p/b.jsonl").ok());
  std::unique_ptr<SequentialFile> file;
  bool same = true;
  ASSERT_EQ(OpenIfSameFile(&t.env, work[0].path, work[0].identity, 0, &file, &same).code(),
            Status::Code::kNotFound);
  ASSERT_TRUE(t.tailer->Recheck(work[0]).ok());
  // No watcher event: the recheck alone finds it.
  std::vector<TailEvent> events;
  auto again = t.Next(milliseconds(10), &events);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].path, "/c/projects/p/b.jsonl");
  EXPECT_EQ(again[0].start_offset, 0u);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, Kind::kRenamed);
  EXPECT_EQ(events[0].old_path, "/c/projects/p/a.jsonl");
  EXPECT_EQ(t.tailer->full_scans(), 2u);  // the old path is gone: only a scan can find it
  // A stale item (another generation) is refused.
  TailWork stale = work[0];
  stale.generation += 100;
  EXPECT_EQ(t.tailer->Recheck(stale).code(), Status::Code::kNotFound);
}

TEST(TailerRules, AFileThatCannotBeReadIsOfferedAgainOnlyOnceItChangesOrAtTheRescan) {
  Scripted t;
  t.env.AddFile("/c/projects/p/a.jsonl", "a1\n");
  auto work = t.Next(milliseconds(10));
  ASSERT_EQ(work.size(), 1u);
  ASSERT_TRUE(t.tailer->Recheck(work[0]).ok());  // e.g. EIO while reading it
  // Still there as it was: not offered (it would fail the same way), even on events.
  t.watcher->batches.push_back({{DirtyPath::Kind::kFile, "/c/projects/p/a.jsonl"}});
  t.watcher->batches.push_back({{DirtyPath::Kind::kTree, "/c/projects/p"}});
  EXPECT_TRUE(t.Next(milliseconds(10)).empty());
  EXPECT_EQ(t.tailer->full_scans(), 1u);
  // It changed: offered again from where it was.
  t.env.set_now_ms(5000);
  Rewrite(&t.env, "/c/projects/p/a.jsonl", "a1\na2\n");
  t.watcher->batches.push_back({{DirtyPath::Kind::kFile, "/c/projects/p/a.jsonl"}});
  work = t.Next(milliseconds(10));
  ASSERT_EQ(work.size(), 1u);
  EXPECT_EQ(work[0].start_offset, 0u);
  EXPECT_EQ(work[0].size, 6u);
  // Rechecked again and unchanged: the periodic rescan offers it once more.
  ASSERT_TRUE(t.tailer->Recheck(work[0]).ok());
  EXPECT_TRUE(t.Next(milliseconds(10)).empty());
  const auto before = t.clock.Now();
  work = t.Next(std::chrono::minutes(30));
  ASSERT_EQ(work.size(), 1u);
  EXPECT_GE(t.clock.Now() - before, std::chrono::minutes(4));
  EXPECT_EQ(t.tailer->full_scans(), 2u);
}

}  // namespace
}  // namespace ccmon
