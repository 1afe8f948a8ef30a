// The agent as a process: the pid file and its lock (one agent per state directory), finding a
// running agent, starting one in the background and hearing that it is up.
//
// <state dir>/agent.pid holds the running agent's pid (decimal, "\n") and is flock()ed
// exclusively by that agent for its whole life. The lock, not the file, says whether an agent
// runs: the kernel releases it when the process dies however it dies, so a pid file left by a
// SIGKILLed agent is recognised as stale (and a pid reused by an unrelated process is never
// signalled). Linux and macOS (flock is per open file description, so the probes below work in
// the agent's own process too).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"

namespace ccmon {

inline constexpr const char kPidFileName[] = "agent.pid";

// Holds the lock while it lives; removes the pid file and releases the lock at destruction.
class PidFileLock {
 public:
  // Creates/opens `path` (mode 0600, never through a symlink), takes the exclusive lock without
  // waiting and writes `pid` into it. When another process holds it: kInvalidArgument
  // "another ccmon-agent (pid N) is running with this state directory", *holder_pid = N.
  static Status Acquire(const std::string& path, int64_t pid, std::unique_ptr<PidFileLock>* out,
                        int64_t* holder_pid = nullptr);
  ~PidFileLock();
  PidFileLock(const PidFileLock&) = delete;
  PidFileLock& operator=(const PidFileLock&) = delete;

 private:
  PidFileLock(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  std::string path_;
  int fd_;
};

struct AgentProcess {
  bool running = false;
  int64_t pid = 0;        // running: the agent's pid
  int64_t stale_pid = 0;  // not running, but a pid file names this pid (a killed agent)
};

// Looks at `pid_path` without disturbing a running agent. A missing file is "not running".
Status ProbeAgent(const std::string& pid_path, AgentProcess* out);

// Sends SIGTERM to the agent holding `pid_path` and waits up to `timeout` for its lock to be
// released. *was_running says whether there was one; kIoError when it is still running at the
// deadline ("pid N did not stop within 5 s").
Status StopAgent(const std::string& pid_path, std::chrono::milliseconds timeout, bool* was_running,
                 int64_t* pid);

// Deletes the state directory `dir` under the agent's own lock, so that no agent runs in it
// meanwhile: takes <dir>/agent.pid's lock (creating the file), moves `dir` aside to a sibling of
// its own name (`dir`.removing.PID), deletes that, and only then releases the lock. A `start`
// racing with it fails on the lock or the moved path, or starts afresh in a new `dir`; it never
// runs in a directory being deleted (before, `reset` probed, then deleted: an agent starting in
// between lost its state under it and its pid file, so a second one could start). When an
// agent holds the lock: Ok with agent->running and agent->pid set, nothing touched. The caller
// checks first that `dir` is the agent's (the state marker). *removed: the files and
// directories deleted.
Status RemoveStateDir(const std::string& dir, AgentProcess* agent, uint64_t* removed);

// Readiness: the background child reports through a pipe whose write end it finds in
// $CCMON_AGENT_READY_FD. "ok\n" means up; anything else is the reason it is not (then EOF).
inline constexpr const char kReadyFdEnvVar[] = "CCMON_AGENT_READY_FD";

// The pipe end given in $CCMON_AGENT_READY_FD (taken out of the environment, so grandchildren
// do not inherit it), or -1.
int TakeReadyFd();
// Writes `message` (without a newline: "ok" or a reason) to the ready fd and closes it.
void ReportReady(int fd, const std::string& message);

struct BackgroundStart {
  int64_t pid = 0;
  bool ready = false;   // the child said "ok"
  std::string message;  // otherwise: the child's reason, or what went wrong
};

// Starts `argv` (argv[0] an absolute path) in a new session (setsid), standard input and output
// on /dev/null, with a readiness pipe, and waits up to `timeout` for its report.
Status StartInBackground(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                         BackgroundStart* out);

// Facts about the host: the host name (gethostname), the kernel name (uname: "Linux",
// "Darwin"), this executable's absolute path (/proc/self/exe; "" when unknown).
std::string HostName();
std::string OsName();
std::string SelfExePath();

}  // namespace ccmon
