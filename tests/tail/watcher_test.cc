// Watchers (tail/watcher.h) on real directories: inotify events, roots that appear later, the
// watch limit (injected), a real queue overflow, stop and deadline; the stat poller on MemEnv
// with a fake clock.
#include "tail/watcher.h"

#include <errno.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <thread>

#include "testing/fake_clock.h"
#include "testing/mem_env.h"
#include "testing/temp_dir.h"

namespace ccmon {
namespace {

using std::chrono::milliseconds;
using testing_util::FakeClock;
using testing_util::MemEnv;
using testing_util::TempDir;
using Kind = DirtyPath::Kind;

void Append(const std::string& path, const std::string& data) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  ASSERT_GE(fd, 0) << path;
  ASSERT_EQ(::write(fd, data.data(), data.size()), ssize_t(data.size()));
  ::close(fd);
}

bool Has(const std::vector<DirtyPath>& v, Kind kind, const std::string& path) {
  return std::find(v.begin(), v.end(), DirtyPath{kind, path}) != v.end();
}

// Waits (up to 10 s) until the accumulated entries satisfy `done`.
template <typename Done>
std::vector<DirtyPath> WaitUntil(Watcher& w, Done done) {
  std::vector<DirtyPath> all, batch;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!done(all) && std::chrono::steady_clock::now() < give_up) {
    batch.clear();
    EXPECT_TRUE(w.Wait(give_up, {}, &batch).ok());
    all.insert(all.end(), batch.begin(), batch.end());
  }
  return all;
}

std::unique_ptr<InotifyWatcher> MakeInotify(const std::vector<std::string>& roots,
                                            InotifyHooks hooks = {}) {
  WatcherOptions o;
  o.roots = roots;
  o.poll_interval = milliseconds(20);
  std::unique_ptr<InotifyWatcher> w;
  Status s = InotifyWatcher::Create(o, &w, std::move(hooks));
  EXPECT_TRUE(s.ok()) << s.message();
  return w;
}

TEST(InotifyWatcher, ReportsFilesAndWatchesNewDirectories) {
  TempDir tmp;
  const std::string root = tmp / "projects";
  std::filesystem::create_directories(root + "/p1");
  auto w = MakeInotify({root});
  EXPECT_EQ(w->watched_dirs(), 2u);

  Append(root + "/p1/s.jsonl", "{}\n");
  auto got = WaitUntil(*w, [&](auto& v) { return Has(v, Kind::kFile, root + "/p1/s.jsonl"); });
  EXPECT_TRUE(Has(got, Kind::kFile, root + "/p1/s.jsonl"));

  // A session's subagents/ directory appears later; files in it are seen.
  std::filesystem::create_directories(root + "/p1/s/subagents");
  got = WaitUntil(*w, [&](auto& v) { return Has(v, Kind::kTree, root + "/p1/s"); });
  EXPECT_TRUE(Has(got, Kind::kTree, root + "/p1/s"));
  // The subagents/ dir may have been created before the watch on s/ existed: the walk that added
  // the watches found it, so it is watched either way.
  Append(root + "/p1/s/subagents/agent-1.jsonl", "{}\n");
  got = WaitUntil(
      *w, [&](auto& v) { return Has(v, Kind::kFile, root + "/p1/s/subagents/agent-1.jsonl"); });
  EXPECT_TRUE(Has(got, Kind::kFile, root + "/p1/s/subagents/agent-1.jsonl"));
  EXPECT_EQ(w->watched_dirs(), 4u);

  // A directory moved out is no longer watched; moved back in, it is again.
  std::filesystem::rename(root + "/p1/s", tmp / "away");
  got = WaitUntil(*w, [&](auto& v) { return Has(v, Kind::kTree, root + "/p1/s"); });
  EXPECT_EQ(w->watched_dirs(), 2u);
  std::filesystem::rename(tmp / "away", root + "/p1/t");
  got = WaitUntil(*w, [&](auto& v) { return Has(v, Kind::kTree, root + "/p1/t"); });
  EXPECT_EQ(w->watched_dirs(), 4u);
}

TEST(InotifyWatcher, ARootThatAppearsLaterIsWatchedFromThen) {
  TempDir tmp;
  const std::string root = tmp / "config/claude/projects";  // nothing of it exists yet
  auto w = MakeInotify({root});
  EXPECT_EQ(w->watched_dirs(), 0u);
  std::filesystem::create_directories(tmp / "config/claude");
  std::filesystem::create_directories(root + "/p");
  auto got = WaitUntil(*w, [&](auto& v) { return Has(v, Kind::kTree, root); });
  ASSERT_TRUE(Has(got, Kind::kTree, root));
  Append(root + "/p/a.jsonl", "{}\n");
  got = WaitUntil(*w, [&](auto& v) { return Has(v, Kind::kFile, root + "/p/a.jsonl"); });
  EXPECT_TRUE(Has(got, Kind::kFile, root + "/p/a.jsonl"));

  // Removed and created again: reported, and watched again.
  std::filesystem::remove_all(root);
  got = WaitUntil(*w, [&](auto& v) { return Has(v, Kind::kTree, root); });
  ASSERT_TRUE(Has(got, Kind::kTree, root));
  std::filesystem::create_directories(root);
  got = WaitUntil(*w, [&](auto& v) { return Has(v, Kind::kTree, root); });
  ASSERT_TRUE(Has(got, Kind::kTree, root));
  Append(root + "/b.jsonl", "{}\n");
  got = WaitUntil(*w, [&](auto& v) { return Has(v, Kind::kFile, root + "/b.jsonl"); });
  EXPECT_TRUE(Has(got, Kind::kFile, root + "/b.jsonl"));
}

TEST(InotifyWatcher, ARootReplacedByAnotherDirectoryIsWatchedAnew) {
  TempDir tmp;
  const std::string root = tmp / "projects";
  std::filesystem::create_directories(root);
  auto w = MakeInotify({root});
  std::filesystem::rename(root, tmp / "projects.old");
  std::filesystem::create_directories(root + "/p");
  auto got = WaitUntil(*w, [&](auto& v) { return Has(v, Kind::kTree, root); });
  ASSERT_TRUE(Has(got, Kind::kTree, root));
  Append(root + "/p/x.jsonl", "{}\n");
  got = WaitUntil(*w, [&](auto& v) { return Has(v, Kind::kFile, root + "/p/x.jsonl"); });
  EXPECT_TRUE(Has(got, Kind::kFile, root + "/p/x.jsonl"));
  // The old directory's events are not reported under the root's name.
  Append(tmp / "projects.old/y.jsonl", "{}\n");
  Append(root + "/p/z.jsonl", "{}\n");
  got = WaitUntil(*w, [&](auto& v) { return Has(v, Kind::kFile, root + "/p/z.jsonl"); });
  EXPECT_FALSE(Has(got, Kind::kFile, root + "/y.jsonl"));
}

TEST(InotifyWatcher, DeadlineAndStopEndAWaitWithNothing) {
  TempDir tmp;
  auto w = MakeInotify({tmp.path()});
  std::vector<DirtyPath> dirty;
  auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(w->Wait(start + milliseconds(100), {}, &dirty).ok());
  EXPECT_TRUE(dirty.empty());
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(100));

  std::stop_source stop;
  std::thread stopper([&] {
    // Stop only once the wait has begun (or will begin: a stop before it is seen at once).
    stop.request_stop();
  });
  start = std::chrono::steady_clock::now();
  ASSERT_TRUE(w->Wait(start + std::chrono::hours(1), stop.get_token(), &dirty).ok());
  stopper.join();
  EXPECT_TRUE(dirty.empty());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

// A deadline already passed still takes what the kernel queued by then, without blocking: the
// tailer's first step after a complete look (Tailer::NoteCompleteLook) relies on it. Before
// this, such a Wait returned at once with nothing, leaving the queued changes to the next Wait.
TEST(InotifyWatcher, APassedDeadlineStillTakesTheQueuedEvents) {
  TempDir tmp;
  const std::string file = tmp.path() + "/s.jsonl";
  Append(file, "a\n");
  auto w = MakeInotify({tmp.path()});
  Append(file, "b\n");  // queued by the kernel before Wait is called: write(2) has returned
  std::vector<DirtyPath> dirty;
  const auto before = std::chrono::steady_clock::now();
  ASSERT_TRUE(w->Wait(before - milliseconds(1), {}, &dirty).ok());
  EXPECT_TRUE(Has(dirty, Kind::kFile, file));
  // Nothing queued: it returns at once, empty.
  dirty.clear();
  ASSERT_TRUE(w->Wait(std::chrono::steady_clock::now(), {}, &dirty).ok());
  EXPECT_TRUE(dirty.empty());
  EXPECT_LT(std::chrono::steady_clock::now() - before, std::chrono::seconds(5));
}

TEST(InotifyWatcher, TheWatchLimitFallsBackToPollingThatTree) {
  TempDir tmp;
  const std::string root = tmp / "projects";
  std::filesystem::create_directories(root + "/deep/er");
  InotifyHooks hooks;
  hooks.add_watch = [](int fd, const char* path, uint32_t mask) {
    if (std::string(path).find("deep") != std::string::npos) {
      errno = ENOSPC;
      return -1;
    }
    return ::inotify_add_watch(fd, path, mask);
  };
  auto w = MakeInotify({root}, hooks);
  EXPECT_EQ(w->polled_roots(), 1u);
  auto warnings = w->TakeWarnings();
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("watch limit"), std::string::npos) << warnings[0];
  Append(root + "/deep/er/x.jsonl", "{}\n");
  auto got = WaitUntil(*w, [&](auto& v) { return Has(v, Kind::kFile, root + "/deep/er/x.jsonl"); });
  EXPECT_TRUE(Has(got, Kind::kFile, root + "/deep/er/x.jsonl"));
}

// A real IN_Q_OVERFLOW: more unread events than the queue holds (max_queued_events, 16384 by
// default). The kernel merges an event identical to the last one queued, so two files alternate.
TEST(InotifyWatcher, AQueueOverflowMeansRescanEverything) {
  TempDir tmp;
  const std::string root = tmp / "projects";
  std::filesystem::create_directories(root);
  auto w = MakeInotify({root, tmp / "other"});
  int max_events = 16384;
  if (FILE* f = std::fopen("/proc/sys/fs/inotify/max_queued_events", "r")) {
    if (std::fscanf(f, "%d", &max_events) != 1) max_events = 16384;
    std::fclose(f);
  }
  if (max_events > 200000) GTEST_SKIP() << "max_queued_events " << max_events << " is too large";
  int fds[2] = {::open((root + "/a.jsonl").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644),
                ::open((root + "/b.jsonl").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644)};
  ASSERT_GE(fds[0], 0);
  ASSERT_GE(fds[1], 0);
  for (int i = 0; i < max_events + 100; ++i) ASSERT_EQ(::write(fds[i % 2], "x", 1), 1);
  ::close(fds[0]);
  ::close(fds[1]);
  auto got = WaitUntil(*w, [&](auto& v) { return Has(v, Kind::kTree, root); });
  EXPECT_TRUE(Has(got, Kind::kTree, root));
  EXPECT_TRUE(Has(got, Kind::kTree, tmp / "other"));  // every root, existing or not
}

TEST(InotifyWatcher, ASimulatedOverflowMeansRescanEverything) {
  TempDir tmp;
  auto w = MakeInotify({tmp / "a", tmp / "b"});
  w->SimulateOverflow();
  std::vector<DirtyPath> dirty;
  ASSERT_TRUE(
      w->Wait(std::chrono::steady_clock::now() + std::chrono::seconds(10), {}, &dirty).ok());
  EXPECT_EQ(dirty, (std::vector<DirtyPath>{{Kind::kTree, tmp / "a"}, {Kind::kTree, tmp / "b"}}));
}

TEST(PollWatcher, ReportsChangedAppearedAndVanishedFilesEachInterval) {
  MemEnv env;
  FakeClock clock;
  env.AddFile("/c/projects/p/a.jsonl", "{}\n", 1);
  env.AddFile("/c/projects/p/b.jsonl", "{}\n", 1);
  env.AddFile("/c/projects/p/notes.txt", "x", 1);
  WatcherOptions o;
  o.roots = {"/c/projects", "/missing/projects"};
  o.poll_interval = milliseconds(500);
  o.env = &env;
  o.clock = &clock;
  auto w = NewPollWatcher(o);
  EXPECT_STREQ(w->mode(), "poll");

  std::vector<DirtyPath> dirty;
  ASSERT_TRUE(w->Wait(clock.Now() + milliseconds(2000), {}, &dirty).ok());
  EXPECT_TRUE(dirty.empty());  // nothing changed: waited to the deadline, in poll intervals
  EXPECT_EQ(clock.waits(), (std::vector<milliseconds>{milliseconds(500), milliseconds(500),
                                                      milliseconds(500), milliseconds(500)}));

  ASSERT_TRUE(env.SetMtime("/c/projects/p/a.jsonl", 2).ok());
  ASSERT_TRUE(env.RemoveTree("/c/projects/p/b.jsonl").ok());
  env.AddFile("/c/projects/p/sub/c.jsonl", "", 1);
  env.AddFile("/c/projects/p/notes2.txt", "", 1);
  env.AddFile("/missing/projects/d.jsonl", "", 1);  // a root that appeared
  ASSERT_TRUE(w->Wait(clock.Now() + milliseconds(2000), {}, &dirty).ok());
  std::sort(dirty.begin(), dirty.end());
  EXPECT_EQ(dirty, (std::vector<DirtyPath>{{Kind::kFile, "/c/projects/p/a.jsonl"},
                                           {Kind::kFile, "/c/projects/p/b.jsonl"},
                                           {Kind::kFile, "/c/projects/p/sub/c.jsonl"},
                                           {Kind::kFile, "/missing/projects/d.jsonl"}}));

  std::stop_source stop;
  stop.request_stop();
  dirty.clear();
  ASSERT_TRUE(w->Wait(clock.Now() + std::chrono::hours(1), stop.get_token(), &dirty).ok());
  EXPECT_TRUE(dirty.empty());
}

}  // namespace
}  // namespace ccmon
