#include "agent/cli/daemon.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "testing/temp_dir.h"
#include "testing/test_util.h"

namespace ccmon {
namespace {

// A child process that takes the flock on `path` (as an agent does), writes its pid there, tells
// the parent through a pipe and then waits for signals. ignore_term: it survives SIGTERM.
pid_t LockingChild(const std::string& path, bool ignore_term) {
  int fds[2];
  if (::pipe(fds) != 0) return -1;
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    if (ignore_term) ::signal(SIGTERM, SIG_IGN);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);  // gtest threads may have blocked some
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT, 0600);
    if (fd < 0 || ::flock(fd, LOCK_EX) != 0) ::_exit(2);
    char buf[32];
    const int n = std::snprintf(buf, sizeof buf, "%d\n", int(::getpid()));
    if (::ftruncate(fd, 0) != 0 || ::write(fd, buf, size_t(n)) != n) ::_exit(3);
    if (::write(fds[1], "L", 1) != 1) ::_exit(4);
    while (true) ::pause();
  }
  ::close(fds[1]);
  char c = 0;
  const bool ok = pid > 0 && ::read(fds[0], &c, 1) == 1;  // blocks until the lock is held
  ::close(fds[0]);
  return ok ? pid : -1;
}

// A probe between the holder's lock and its pid write (PidFileLock::Acquire writes right after
// locking) names the holder once it has written, not pid 0 (a status --json right after start
// printed "pid": 0). The writer's delay stands in for that gap; the result does not depend on it.
TEST(DaemonTest, AProbeBeforeTheHolderWroteItsPidWaitsForIt) {
  testing_util::TempDir dir;
  const std::string path = dir / "agent.pid";
  const int holder = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  ASSERT_GE(holder, 0);
  ASSERT_EQ(::flock(holder, LOCK_EX | LOCK_NB), 0);  // locked, nothing written yet
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    ASSERT_EQ(::pwrite(holder, "4242\n", 5, 0), 5);
  });
  AgentProcess p;
  ASSERT_TRUE(ProbeAgent(path, &p).ok());
  writer.join();
  EXPECT_TRUE(p.running);
  EXPECT_EQ(p.pid, 4242);
  ::close(holder);
}

TEST(DaemonTest, OneHolderAtATime) {
  testing_util::TempDir dir;
  const std::string path = dir / "agent.pid";
  AgentProcess p;
  ASSERT_TRUE(ProbeAgent(path, &p).ok());
  EXPECT_FALSE(p.running);
  EXPECT_EQ(p.stale_pid, 0);
  {
    std::unique_ptr<PidFileLock> lock;
    ASSERT_TRUE(PidFileLock::Acquire(path, 777, &lock).ok());
    ASSERT_TRUE(ProbeAgent(path, &p).ok());
    EXPECT_TRUE(p.running);
    EXPECT_EQ(p.pid, 777);
    std::unique_ptr<PidFileLock> second;
    int64_t holder = 0;
    Status s = PidFileLock::Acquire(path, 888, &second, &holder);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(holder, 777);
    EXPECT_NE(s.message().find("pid 777"), std::string::npos) << s.message();
    // The probe did not disturb the holder.
    ASSERT_TRUE(ProbeAgent(path, &p).ok());
    EXPECT_TRUE(p.running);
  }
  ASSERT_TRUE(ProbeAgent(path, &p).ok());
  EXPECT_FALSE(p.running);
  EXPECT_EQ(testing_util::Listing(dir.path()), std::vector<std::string>{});  // file removed
}

// An agent that ends (its PidFileLock removes the file, then releases the lock) while a new one
// waits for the lock (Acquire retries for a few milliseconds) must not leave the new one holding
// the lock of the removed file: that agent ran unseen by status and stop, and a later start
// could start another (found with three concurrent `restart`s, hostile19). The new one locks the
// file the path names.
TEST(DaemonTest, APidFileRemovedWhileItWasBeingLockedIsNotTheOneLocked) {
  testing_util::TempDir dir;
  const std::string path = dir / "agent.pid";
  int raced = 0;
  for (int round = 0; round < 40 && raced < 10; ++round) {
    std::unique_ptr<PidFileLock> first;
    ASSERT_TRUE(PidFileLock::Acquire(path, 111, &first).ok());
    std::thread ender([&first] {
      std::this_thread::sleep_for(std::chrono::milliseconds(15));
      first.reset();  // unlink, then release
    });
    std::unique_ptr<PidFileLock> second;
    const Status s = PidFileLock::Acquire(path, 222, &second);
    ender.join();
    if (!s.ok()) continue;  // the first outlived the retries: not this race
    ++raced;
    AgentProcess p;
    ASSERT_TRUE(ProbeAgent(path, &p).ok());
    EXPECT_TRUE(p.running) << "round " << round << ": the lock is held on a removed file";
    EXPECT_EQ(p.pid, 222);
    second.reset();
  }
  EXPECT_GT(raced, 0) << "the race never happened";
}

TEST(DaemonTest, StalePidFileOfAKilledAgent) {
  testing_util::TempDir dir;
  const std::string path = dir / "agent.pid";
  const pid_t child = LockingChild(path, false);
  ASSERT_GT(child, 0);
  AgentProcess p;
  ASSERT_TRUE(ProbeAgent(path, &p).ok());
  EXPECT_TRUE(p.running);
  EXPECT_EQ(p.pid, child);
  ASSERT_EQ(::kill(child, SIGKILL), 0);
  ASSERT_EQ(::waitpid(child, nullptr, 0), child);
  ASSERT_TRUE(ProbeAgent(path, &p).ok());
  EXPECT_FALSE(p.running);
  EXPECT_EQ(p.stale_pid, child);
  std::unique_ptr<PidFileLock> lock;
  ASSERT_TRUE(PidFileLock::Acquire(path, 999, &lock).ok());
  ASSERT_TRUE(ProbeAgent(path, &p).ok());
  EXPECT_EQ(p.pid, 999);
}

TEST(DaemonTest, GarbageAndHostilePidFiles) {
  testing_util::TempDir dir;
  testing_util::WriteFile(dir / "agent.pid", "99999999999999999999999\n");
  AgentProcess p;
  ASSERT_TRUE(ProbeAgent(dir / "agent.pid", &p).ok());
  EXPECT_FALSE(p.running);
  EXPECT_EQ(p.stale_pid, 0);
  // A symlink planted at the pid file is not followed.
  testing_util::WriteFile(dir / "victim", "keep");
  ASSERT_EQ(::symlink((dir / "victim").c_str(), (dir / "link.pid").c_str()), 0);
  std::unique_ptr<PidFileLock> lock;
  EXPECT_FALSE(PidFileLock::Acquire(dir / "link.pid", 1, &lock).ok());
  EXPECT_FALSE(ProbeAgent(dir / "link.pid", &p).ok());
  // A directory that does not exist.
  EXPECT_FALSE(PidFileLock::Acquire(dir / "missing/agent.pid", 1, &lock).ok());
}

TEST(DaemonTest, StopSignalsTheHolderAndWaitsForIt) {
  testing_util::TempDir dir;
  const std::string path = dir / "agent.pid";
  bool was_running = true;
  int64_t pid = 0;
  ASSERT_TRUE(StopAgent(path, std::chrono::seconds(5), &was_running, &pid).ok());
  EXPECT_FALSE(was_running);

  const pid_t child = LockingChild(path, false);
  ASSERT_GT(child, 0);
  // The child ends by SIGTERM but stays a zombie until reaped; its lock goes with its files.
  ASSERT_TRUE(StopAgent(path, std::chrono::seconds(5), &was_running, &pid).ok());
  EXPECT_TRUE(was_running);
  EXPECT_EQ(pid, child);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
}

TEST(DaemonTest, StopReportsAnAgentThatDoesNotStop) {
  testing_util::TempDir dir;
  const std::string path = dir / "agent.pid";
  const pid_t child = LockingChild(path, true);
  ASSERT_GT(child, 0);
  bool was_running = false;
  int64_t pid = 0;
  Status s = StopAgent(path, std::chrono::milliseconds(300), &was_running, &pid);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("did not stop"), std::string::npos) << s.message();
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
}

TEST(DaemonTest, BackgroundStartReadiness) {
  BackgroundStart bs;
  ASSERT_TRUE(StartInBackground({"/bin/sh", "-c",
                                 // fd 3 announced, and a session of its own (field 6 of stat)
                                 "[ \"$CCMON_AGENT_READY_FD\" = 3 ] && set -- $(cat /proc/$$/stat) "
                                 "&& [ \"$6\" = $$ ] && printf ok >&3"},
                                std::chrono::seconds(10), &bs)
                  .ok());
  EXPECT_TRUE(bs.ready) << bs.message;
  EXPECT_GT(bs.pid, 0);

  ASSERT_TRUE(StartInBackground({"/bin/sh", "-c", "printf 'bad config: x' >&3; exit 2"},
                                std::chrono::seconds(10), &bs)
                  .ok());
  EXPECT_FALSE(bs.ready);
  EXPECT_EQ(bs.message, "bad config: x");

  ASSERT_TRUE(StartInBackground({"/bin/sh", "-c", "exit 1"}, std::chrono::seconds(10), &bs).ok());
  EXPECT_FALSE(bs.ready);
  EXPECT_EQ(bs.message, "it exited before it was ready");

  ASSERT_TRUE(
      StartInBackground({"/bin/sh", "-c", "exec sleep 30"}, std::chrono::milliseconds(200), &bs)
          .ok());
  EXPECT_FALSE(bs.ready);
  EXPECT_NE(bs.message.find("no answer"), std::string::npos) << bs.message;
  ::kill(pid_t(bs.pid), SIGKILL);
  ::waitpid(pid_t(bs.pid), nullptr, 0);

  EXPECT_FALSE(StartInBackground({"/nonexistent/ccmon-agent"}, std::chrono::seconds(1), &bs).ok());
}

// reset's removal happens under the agent's lock: while an agent holds it nothing is touched;
// otherwise the directory is gone, with nothing left beside it, and a start that opened the pid
// file before the removal finds, once it gets the lock, a removed file in a removed directory
// (its open of the state by path fails) instead of a directory being deleted under it.
TEST(DaemonTest, RemoveStateDirUnderTheAgentsLock) {
  testing_util::TempDir tmp;
  const std::string dir = tmp / "state";
  testing_util::WriteFile(dir + "/CCMON_AGENT_STATE", "x");
  testing_util::WriteFile(dir + "/db/CURRENT", "MANIFEST-1");
  AgentProcess agent;
  uint64_t removed = 0;
  {
    std::unique_ptr<PidFileLock> lock;
    ASSERT_TRUE(PidFileLock::Acquire(dir + "/agent.pid", 777, &lock).ok());
    ASSERT_TRUE(RemoveStateDir(dir, &agent, &removed).ok());
    EXPECT_TRUE(agent.running);
    EXPECT_EQ(agent.pid, 777);
    EXPECT_EQ(removed, 0u);
    EXPECT_TRUE(std::filesystem::exists(dir + "/db/CURRENT"));
    EXPECT_TRUE(std::filesystem::exists(dir + "/agent.pid"));
  }
  // A starting agent's descriptor on the pid file, opened before the removal.
  const int early = ::open((dir + "/agent.pid").c_str(), O_RDWR | O_CREAT, 0600);
  ASSERT_GE(early, 0);
  ASSERT_TRUE(RemoveStateDir(dir + "/", &agent, &removed).ok());
  EXPECT_FALSE(agent.running);
  EXPECT_EQ(removed, 5u);  // the directory, the marker, agent.pid, db/ and db/CURRENT
  EXPECT_FALSE(std::filesystem::exists(dir));
  for (const auto& e : std::filesystem::directory_iterator(tmp.path()))
    ADD_FAILURE() << "left behind: " << e.path();
  EXPECT_EQ(::flock(early, LOCK_EX | LOCK_NB), 0);  // released only after the removal
  struct stat st;
  ASSERT_EQ(::fstat(early, &st), 0);
  EXPECT_EQ(st.st_nlink, 0u);  // its file is gone with the directory
  ::close(early);
  // Nothing there: an error naming the path, nothing created.
  EXPECT_FALSE(RemoveStateDir(dir, &agent, &removed).ok());
  EXPECT_FALSE(std::filesystem::exists(dir));
}

TEST(DaemonTest, HostFacts) {
  EXPECT_FALSE(HostName().empty());
  EXPECT_EQ(OsName(), "Linux");
  EXPECT_EQ(SelfExePath().front(), '/');
}

}  // namespace
}  // namespace ccmon
