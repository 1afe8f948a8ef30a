// Watchers: what may have changed below a set of transcript roots (the projects/ directories of
// transcript/discovery.h), blocking without CPU until then. A watcher says where to look, not what
// happened: the tailer (tail/tailer.h) stats and fingerprints what it is pointed at, and a
// periodic full rescan there is the safety net for anything a watcher misses.
//
//   InotifyWatcher  Linux inotify on every directory of every root (IN_CREATE, IN_MODIFY,
//                   IN_CLOSE_WRITE, IN_MOVED_FROM/TO, IN_DELETE, IN_DELETE_SELF, IN_MOVE_SELF,
//                   IN_ATTRIB): new directories are watched as they appear, a root that does not
//                   exist yet is waited for through its nearest existing ancestor, and a queue
//                   overflow (IN_Q_OVERFLOW) means "everything may have changed". Idle, it sleeps
//                   in poll(2) until an event, the deadline or a stop: no timer of its own. When
//                   the kernel's watch limit is reached (inotify_add_watch: ENOSPC), the root
//                   whose directory could not be watched is polled instead, at the poll interval,
//                   with a warning.
//   PollWatcher     stat-based: lists the roots (FindTranscripts) every poll interval and reports
//                   the files whose device, inode, size or mtime changed, appeared or vanished.
//                   For systems without inotify, and forced by `--watch poll`.
//
// Threading: a watcher is used by one thread (Wait, Resync, TakeWarnings); the stop token may be
// requested from any thread and ends a Wait at once. Not copyable.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <stop_token>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/env.h"
#include "base/status.h"

namespace ccmon {

// A place where something may have changed.
struct DirtyPath {
  enum class Kind : uint8_t {
    kFile,  // this path: a file created, written, truncated, renamed from or to, or removed
    kTree,  // anything below this directory: created, moved in or out, removed, its permissions
            // changed; a root that appeared or vanished; every root after an overflow
  };
  Kind kind = Kind::kFile;
  std::string path;
  friend bool operator==(const DirtyPath&, const DirtyPath&) = default;
  friend auto operator<=>(const DirtyPath&, const DirtyPath&) = default;
};

struct WatcherOptions {
  // The roots (projects/ directories), absolute paths without trailing '/'. They need not exist
  // yet: a root that appears later is reported as a kTree and watched from then on.
  std::vector<std::string> roots;
  // PollWatcher's period, and InotifyWatcher's for roots it could not watch (watch limit).
  std::chrono::milliseconds poll_interval{1000};
  Env* env = Env::Default();     // borrowed; directory walks and stats
  Clock* clock = Clock::Real();  // borrowed; deadlines (and PollWatcher's waits)
};

class Watcher {
 public:
  virtual ~Watcher() = default;

  // Blocks until something may have changed below the roots, `deadline` (on options.clock's
  // steady time) passes, or `stop` is requested; then appends to *dirty what may have changed
  // since the previous call (each entry once). An empty *dirty means the deadline passed or a stop
  // was requested. Events that arrive while nobody waits are kept for the next call; with a
  // deadline already passed, InotifyWatcher still takes those queued by then (without blocking),
  // while PollWatcher looks only when its poll interval is due. An error
  // means the watcher cannot go on (e.g. the inotify descriptor failed); the caller may replace it
  // with a PollWatcher.
  virtual Status Wait(std::chrono::steady_clock::time_point deadline, std::stop_token stop,
                      std::vector<DirtyPath>* dirty) = 0;

  // Re-checks what is watched against the file system (roots that appeared, vanished or were
  // replaced by another directory, directories a lost event left unwatched, roots polled after
  // the watch limit that can now be watched); a PollWatcher takes a fresh baseline listing. The
  // tailer calls it before its first scan and at each full rescan. Cost: a walk of the
  // directories (not the files) for InotifyWatcher; a listing of the files for PollWatcher.
  virtual void Resync() = 0;

  // Warnings since the previous call, one printable line each (a root polled because the
  // inotify watch limit was reached, and when it is watched again).
  virtual std::vector<std::string> TakeWarnings() = 0;

  // "inotify" or "poll" (for status output).
  virtual const char* mode() const = 0;
};

std::unique_ptr<Watcher> NewPollWatcher(const WatcherOptions& options);

// Seams for tests, so that the kernel's limits can be hit without changing them for the machine.
struct InotifyHooks {
  // inotify_add_watch(2); a test returns -1 with errno ENOSPC to play the watch limit.
  std::function<int(int fd, const char* path, uint32_t mask)> add_watch;
};

class InotifyWatcher final : public Watcher {
 public:
  // Fails (kIoError) when inotify or the eventfd cannot be created (inotify_init1: EMFILE at
  // max_user_instances, ENOSYS): fall back to NewPollWatcher.
  static Status Create(const WatcherOptions& options, std::unique_ptr<InotifyWatcher>* out,
                       InotifyHooks hooks = {});
  ~InotifyWatcher() override;

  Status Wait(std::chrono::steady_clock::time_point deadline, std::stop_token stop,
              std::vector<DirtyPath>* dirty) override;
  void Resync() override;
  std::vector<std::string> TakeWarnings() override;
  const char* mode() const override { return "inotify"; }

  // Makes the current or next Wait behave as after IN_Q_OVERFLOW (every root reported as a kTree,
  // every directory watched again). Thread-safe. For tests: the kernel's overflow needs a queue
  // of max_queued_events (16384) unread events.
  void SimulateOverflow();

  // Directories watched now, and roots polled for lack of watches (tests and status).
  size_t watched_dirs() const { return dir_of_wd_.size(); }
  size_t polled_roots() const;

 private:
  struct Root;
  class PollState;
  InotifyWatcher(const WatcherOptions& options, InotifyHooks hooks, int inotify_fd, int wake_fd);

  void ArmRoot(Root& root, std::vector<DirtyPath>* dirty);
  // Watches `dir` and every directory below it (not through symlinks). False when the watch limit
  // was hit (the root is then polled).
  bool WatchTree(const std::string& dir, Root& root);
  void ForgetTree(const std::string& dir);
  void HandleEvents(const char* buf, size_t len, std::vector<DirtyPath>* dirty,
                    std::set<DirtyPath>* seen);
  void Overflowed(std::vector<DirtyPath>* dirty, std::set<DirtyPath>* seen);
  Root* RootOfWd(int wd);
  Root* RootContaining(const std::string& path);
  void StartPolling(Root& root);
  void StopPolling(Root& root);

  WatcherOptions options_;
  InotifyHooks hooks_;
  int fd_ = -1;       // inotify
  int wake_fd_ = -1;  // eventfd: a stop or SimulateOverflow ends poll(2)
  std::vector<std::unique_ptr<Root>> roots_;
  std::map<int, std::string> dir_of_wd_;  // directories of the trees
  std::map<std::string, int> wd_of_dir_;
  std::map<int, std::vector<Root*>> ancestor_wds_;  // where missing roots are waited for
  std::unique_ptr<PollState> poll_;                 // roots polled for lack of watches
  std::vector<std::string> warnings_;
  std::atomic<bool> overflow_requested_{false};
};

}  // namespace ccmon
