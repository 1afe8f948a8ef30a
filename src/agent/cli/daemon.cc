#include "agent/cli/daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>

extern char** environ;

namespace ccmon {
namespace {

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

int64_t ReadPid(int fd) {
  char buf[32] = {};
  const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return 0;
  int64_t pid = 0;
  for (ssize_t i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; ++i) {
    pid = pid * 10 + (buf[i] - '0');
    if (pid > (int64_t(1) << 40)) return 0;
  }
  return pid;
}

// Whether `fd` is the file `path` names now (not one removed or replaced since it was opened).
bool IsTheFileAt(int fd, const std::string& path) {
  struct stat opened, named;
  return ::fstat(fd, &opened) == 0 && ::lstat(path.c_str(), &named) == 0 &&
         opened.st_dev == named.st_dev && opened.st_ino == named.st_ino;
}

// Opens (creating it, mode 0600) the pid file at `path` and takes its exclusive lock without
// blocking. A probe (status, stop) holds a shared lock for microseconds, so a busy lock is
// retried briefly before another agent is taken to hold it. Ok with *fd the locked descriptor
// (the caller closes it, which releases the lock); Ok with *fd -1 when another process holds the
// lock (*holder: the pid the file names, 0 if none); an IoError otherwise.
Status OpenLockedPidFile(const std::string& path, int* fd, int64_t* holder) {
  *fd = -1;
  *holder = 0;
  int f = -1, rc = -1;
  // The lock counts only on the file the path still names: an agent that ends removes its pid
  // file and then releases the lock (~PidFileLock), so a lock won during the retries below can
  // be the removed file's; then the new file is opened and locked instead.
  for (int reopen = 0;; ++reopen) {
    f = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (f < 0) return Status::IoError(Errno(path + ": open"));
    rc = ::flock(f, LOCK_EX | LOCK_NB);
    for (int i = 0; rc != 0 && errno == EWOULDBLOCK && i < 5; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      rc = ::flock(f, LOCK_EX | LOCK_NB);
    }
    if (rc != 0 || IsTheFileAt(f, path)) break;
    ::close(f);
    if (reopen == 5) return Status::IoError(path + ": removed each time it was locked");
  }
  if (rc == 0) {
    *fd = f;
    return Status::Ok();
  }
  const int e = errno;
  const int64_t pid = ReadPid(f);
  ::close(f);
  if (e == EWOULDBLOCK) {
    *holder = pid;
    return Status::Ok();
  }
  errno = e;
  return Status::IoError(Errno(path + ": flock"));
}

}  // namespace

Status PidFileLock::Acquire(const std::string& path, int64_t pid, std::unique_ptr<PidFileLock>* out,
                            int64_t* holder_pid) {
  int fd = -1;
  int64_t holder = 0;
  if (Status s = OpenLockedPidFile(path, &fd, &holder); !s.ok()) return s;
  if (fd < 0) {
    if (holder_pid) *holder_pid = holder;
    return Status::InvalidArgument("another ccmon-agent (pid " + std::to_string(holder) +
                                   ") is running with this state directory");
  }
  const std::string text = std::to_string(pid) + "\n";
  if (::ftruncate(fd, 0) != 0 ||
      ::pwrite(fd, text.data(), text.size(), 0) != ssize_t(text.size())) {
    const Status s = Status::IoError(Errno(path + ": write"));
    ::close(fd);
    return s;
  }
  out->reset(new PidFileLock(path, fd));
  return Status::Ok();
}

PidFileLock::~PidFileLock() {
  // Remove first, then release: a new agent that opened the old file before the unlink fails
  // its non-blocking lock (and is told an agent runs) rather than locking a removed file.
  ::unlink(path_.c_str());
  ::close(fd_);
}

Status ProbeAgent(const std::string& pid_path, AgentProcess* out) {
  *out = AgentProcess();
  const int fd = ::open(pid_path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR) return Status::Ok();
    return Status::IoError(Errno(pid_path + ": open"));
  }
  int64_t pid = ReadPid(fd);
  if (::flock(fd, LOCK_SH | LOCK_NB) == 0) {
    ::close(fd);  // releases the probe's lock at once
    out->stale_pid = pid;
    return Status::Ok();
  }
  const int e = errno;
  if (e != EWOULDBLOCK) {
    ::close(fd);
    errno = e;
    return Status::IoError(Errno(pid_path + ": flock"));
  }
  // The holder writes its pid right after it takes the lock (PidFileLock::Acquire): a probe in
  // between reads an empty file. Read again until the pid is there, for at most ~1 s (the
  // holder is microseconds from writing it).
  for (int attempt = 0; attempt < 500; ++attempt) {
    pid = ReadPid(fd);
    if (pid > 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ::close(fd);
  out->running = true;
  out->pid = pid;
  return Status::Ok();
}

Status RemoveStateDir(const std::string& dir, AgentProcess* agent, uint64_t* removed) {
  *agent = AgentProcess();
  *removed = 0;
  std::string path = dir;
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  if (path.empty() || path == "/") return Status::InvalidArgument("refusing to remove '/'");
  const std::string pid_path = path + "/" + kPidFileName;
  int fd = -1;
  int64_t holder = 0;
  if (Status s = OpenLockedPidFile(pid_path, &fd, &holder); !s.ok()) return s;
  if (fd < 0) {
    agent->running = true;
    agent->pid = holder;
    return Status::Ok();
  }
  const std::string aside = path + ".removing." + std::to_string(::getpid());
  if (::rename(path.c_str(), aside.c_str()) != 0) {
    const Status s = Status::IoError(Errno("moving " + path + " aside to " + aside));
    ::close(fd);
    return s;
  }
  std::error_code ec;
  const std::uintmax_t n = std::filesystem::remove_all(aside, ec);
  ::close(fd);  // the lock goes only now: a start that waited for it finds no directory
  if (ec) return Status::IoError("removing " + aside + ": " + ec.message());
  *removed = uint64_t(n);
  return Status::Ok();
}

Status StopAgent(const std::string& pid_path, std::chrono::milliseconds timeout, bool* was_running,
                 int64_t* pid) {
  AgentProcess p;
  if (Status s = ProbeAgent(pid_path, &p); !s.ok()) return s;
  *was_running = p.running;
  *pid = p.pid;
  if (!p.running) return Status::Ok();
  if (p.pid <= 1) return Status::IoError(pid_path + ": the running agent's pid is unreadable");
  if (::kill(pid_t(p.pid), SIGTERM) != 0 && errno != ESRCH)
    return Status::IoError(Errno("kill " + std::to_string(p.pid)));
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (Status s = ProbeAgent(pid_path, &p); !s.ok()) return s;
    if (!p.running) return Status::Ok();
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // a process's exit has no fd
  }
  return Status::IoError("pid " + std::to_string(*pid) + " did not stop within " +
                         std::to_string(timeout.count() / 1000) + " s");
}

int TakeReadyFd() {
  const char* v = ::getenv(kReadyFdEnvVar);
  if (v == nullptr) return -1;
  char* end = nullptr;
  const long fd = std::strtol(v, &end, 10);
  ::unsetenv(kReadyFdEnvVar);
  if (end == v || *end != '\0' || fd < 3 || fd > 1 << 20) return -1;
  if (::fcntl(int(fd), F_GETFD) < 0) return -1;
  ::fcntl(int(fd), F_SETFD, FD_CLOEXEC);
  return int(fd);
}

void ReportReady(int fd, const std::string& message) {
  if (fd < 0) return;
  std::string_view rest = message;
  while (!rest.empty()) {
    const ssize_t n = ::write(fd, rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    rest.remove_prefix(size_t(n));
  }
  ::close(fd);
}

Status StartInBackground(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                         BackgroundStart* out) {
  *out = BackgroundStart();
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return Status::IoError(Errno("pipe"));
  constexpr int kChildFd = 3;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  // The copy at fd 3 is inherited (dup2 clears FD_CLOEXEC; glibc >= 2.29 also when the numbers
  // are equal); the pipe's own descriptors are close-on-exec.
  posix_spawn_file_actions_adddup2(&actions, fds[1], kChildFd);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  sigset_t none, defaults;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  sigemptyset(&defaults);
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGPIPE}) sigaddset(&defaults, sig);
  posix_spawnattr_setsigdefault(&attr, &defaults);

  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e)
    if (std::strncmp(*e, kReadyFdEnvVar, std::strlen(kReadyFdEnvVar)) != 0)
      env_strings.push_back(*e);
  env_strings.push_back(std::string(kReadyFdEnvVar) + "=" + std::to_string(kChildFd));
  std::vector<char*> envp, args;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_copy = argv;
  for (auto& s : argv_copy) args.push_back(s.data());
  args.push_back(nullptr);

  pid_t pid = 0;
  const int rc = ::posix_spawn(&pid, args[0], &actions, &attr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  ::close(fds[1]);
  if (rc != 0) {
    ::close(fds[0]);
    return Status::IoError(argv[0] + ": " + std::strerror(rc));
  }
  out->pid = pid;

  std::string got;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool eof = false;
  while (!eof) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{fds[0], POLLIN, 0};
    const int n = ::poll(&p, 1, int(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    char buf[512];
    const ssize_t r = ::read(fds[0], buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      eof = true;
    } else {
      got.append(buf, size_t(r));
      if (got.size() > 4096) eof = true;
    }
    if (got == "ok") break;
  }
  ::close(fds[0]);
  if (got == "ok") {
    out->ready = true;
    // The child lives on in its own session; reap it if it ends while we still run.
    std::thread([pid] {
      int status = 0;
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
    }).detach();
    return Status::Ok();
  }
  int status = 0;
  if (!eof) {
    out->message = "no answer within " + std::to_string(timeout.count() / 1000) + " s (pid " +
                   std::to_string(pid) + " still starting?)";
    return Status::Ok();
  }
  // Collect the exit status when it has ended (it closes the pipe just before exiting).
  for (int i = 0; i < 100 && ::waitpid(pid, &status, WNOHANG) == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  out->message = got.empty() ? "it exited before it was ready" : got;
  return Status::Ok();
}

std::string HostName() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "";
  return buf;
}

std::string OsName() {
  struct utsname u;
  if (::uname(&u) != 0) return "";
  return u.sysname;
}

std::string SelfExePath() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "";
  return std::string(buf, size_t(n));
}

}  // namespace ccmon
