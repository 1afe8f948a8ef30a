#include "tail/watcher.h"

#include <errno.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstring>

#include "transcript/discovery.h"

namespace ccmon {
namespace {

using SteadyTime = std::chrono::steady_clock::time_point;

struct FileStamp {
  uint64_t device = 0, inode = 0, size = 0;
  int64_t mtime_ms = 0;
  friend bool operator==(const FileStamp&, const FileStamp&) = default;
};
using Stamps = std::map<std::string, FileStamp>;

// The transcripts below `roots` as discovery finds them (missing roots hold none; problems are
// the tailer's to report, from its own scans).
Stamps TakeStamps(Env* env, const std::vector<std::string>& roots) {
  Stamps out;
  for (const TranscriptFile& f : FindTranscripts(roots, env).files) {
    out[f.path] = FileStamp{f.device, f.inode, f.size, f.mtime_ms};
  }
  return out;
}

void AddDirty(DirtyPath d, std::vector<DirtyPath>* dirty, std::set<DirtyPath>* seen) {
  if (seen->insert(d).second) dirty->push_back(std::move(d));
}

// Every path that appeared, vanished or changed stamp between two listings.
void DiffStamps(const Stamps& before, const Stamps& after, std::vector<DirtyPath>* dirty,
                std::set<DirtyPath>* seen) {
  auto b = before.begin();
  auto a = after.begin();
  while (b != before.end() || a != after.end()) {
    if (a == after.end() || (b != before.end() && b->first < a->first)) {
      AddDirty({DirtyPath::Kind::kFile, b->first}, dirty, seen);
      ++b;
    } else if (b == before.end() || a->first < b->first) {
      AddDirty({DirtyPath::Kind::kFile, a->first}, dirty, seen);
      ++a;
    } else {
      if (!(a->second == b->second)) AddDirty({DirtyPath::Kind::kFile, a->first}, dirty, seen);
      ++a;
      ++b;
    }
  }
}

int TimeoutMs(SteadyTime now, SteadyTime until) {
  if (until <= now) return 0;
  auto ms = std::chrono::ceil<std::chrono::milliseconds>(until - now).count();
  return ms > INT_MAX ? INT_MAX : int(ms);
}

bool IsUnder(const std::string& path, const std::string& dir) {
  return path == dir || (path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 &&
                         (path[dir.size()] == '/' || dir == "/"));
}

std::string Child(const std::string& dir, const std::string& name) {
  return dir == "/" ? "/" + name : dir + "/" + name;
}

class PollWatcher final : public Watcher {
 public:
  explicit PollWatcher(const WatcherOptions& options)
      : options_(options),
        stamps_(TakeStamps(options.env, options.roots)),
        next_poll_(options.clock->Now() + options.poll_interval) {}

  Status Wait(SteadyTime deadline, std::stop_token stop, std::vector<DirtyPath>* dirty) override {
    std::set<DirtyPath> seen;
    for (;;) {
      if (stop.stop_requested()) return Status::Ok();
      SteadyTime now = options_.clock->Now();
      if (now >= next_poll_) {
        Stamps fresh = TakeStamps(options_.env, options_.roots);
        DiffStamps(stamps_, fresh, dirty, &seen);
        stamps_ = std::move(fresh);
        now = options_.clock->Now();
        next_poll_ = now + options_.poll_interval;
        if (!dirty->empty()) return Status::Ok();
      }
      if (now >= deadline) return Status::Ok();
      auto wait =
          std::chrono::ceil<std::chrono::milliseconds>(std::min(deadline, next_poll_) - now);
      if (!options_.clock->WaitFor(wait, stop)) return Status::Ok();
    }
  }
  // A fresh baseline: changes are reported relative to the listing taken now.
  void Resync() override { stamps_ = TakeStamps(options_.env, options_.roots); }
  std::vector<std::string> TakeWarnings() override { return {}; }
  const char* mode() const override { return "poll"; }

 private:
  WatcherOptions options_;
  Stamps stamps_;
  SteadyTime next_poll_;
};

constexpr uint32_t kTreeMask = IN_CREATE | IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_FROM |
                               IN_MOVED_TO | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF | IN_ATTRIB |
                               IN_ONLYDIR | IN_DONT_FOLLOW | IN_EXCL_UNLINK;
// On the nearest existing ancestor of a missing root: something appeared or the ancestor went.
// IN_MASK_ADD: the ancestor may also be a watched tree directory (nested roots).
constexpr uint32_t kAncestorMask =
    IN_CREATE | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_MASK_ADD;

}  // namespace

std::unique_ptr<Watcher> NewPollWatcher(const WatcherOptions& options) {
  return std::make_unique<PollWatcher>(options);
}

struct InotifyWatcher::Root {
  std::string path;
  bool armed = false;   // exists, and its directories are watched
  bool polled = false;  // the watch limit was hit in its tree: polled instead
  int wd = -1;          // the root directory's watch while armed
  uint64_t device = 0, inode = 0;
};

// The stat poller for roots that could not be watched.
class InotifyWatcher::PollState {
 public:
  std::vector<std::string> roots;
  Stamps stamps;
  SteadyTime next_poll{};
};

InotifyWatcher::InotifyWatcher(const WatcherOptions& options, InotifyHooks hooks, int inotify_fd,
                               int wake_fd)
    : options_(options),
      hooks_(std::move(hooks)),
      fd_(inotify_fd),
      wake_fd_(wake_fd),
      poll_(std::make_unique<PollState>()) {
  if (!hooks_.add_watch)
    hooks_.add_watch = [](int fd, const char* path, uint32_t mask) {
      return ::inotify_add_watch(fd, path, mask);
    };
}

InotifyWatcher::~InotifyWatcher() {
  ::close(fd_);
  ::close(wake_fd_);
}

Status InotifyWatcher::Create(const WatcherOptions& options, std::unique_ptr<InotifyWatcher>* out,
                              InotifyHooks hooks) {
  int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) return Status::IoError(std::string("inotify_init1: ") + std::strerror(errno));
  int wake = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake < 0) {
    Status s = Status::IoError(std::string("eventfd: ") + std::strerror(errno));
    ::close(fd);
    return s;
  }
  std::unique_ptr<InotifyWatcher> w(new InotifyWatcher(options, std::move(hooks), fd, wake));
  for (const std::string& r : options.roots) {
    auto root = std::make_unique<Root>();
    root->path = r;
    w->roots_.push_back(std::move(root));
  }
  for (auto& root : w->roots_) w->ArmRoot(*root, nullptr);
  *out = std::move(w);
  return Status::Ok();
}

size_t InotifyWatcher::polled_roots() const {
  return size_t(std::count_if(roots_.begin(), roots_.end(),
                              [](const std::unique_ptr<Root>& r) { return r->polled; }));
}

void InotifyWatcher::StartPolling(Root& root) {
  if (root.polled) return;
  root.polled = true;
  warnings_.push_back(root.path +
                      ": inotify watch limit reached (fs.inotify.max_user_watches); polling this "
                      "tree every " +
                      std::to_string(options_.poll_interval.count()) + " ms instead");
  poll_->roots.push_back(root.path);
  Stamps mine = TakeStamps(options_.env, {root.path});
  poll_->stamps.insert(mine.begin(), mine.end());
  if (poll_->roots.size() == 1) poll_->next_poll = options_.clock->Now() + options_.poll_interval;
}

void InotifyWatcher::StopPolling(Root& root) {
  if (!root.polled) return;
  root.polled = false;
  warnings_.push_back(root.path + ": watched with inotify again");
  std::erase(poll_->roots, root.path);
  std::erase_if(poll_->stamps, [&](const auto& kv) { return IsUnder(kv.first, root.path); });
}

bool InotifyWatcher::WatchTree(const std::string& dir, Root& root) {
  std::vector<std::string> todo{dir};
  std::vector<DirEntry> entries;
  bool complete = true;
  while (!todo.empty()) {
    std::string d = std::move(todo.back());
    todo.pop_back();
    int wd = hooks_.add_watch(fd_, d.c_str(), kTreeMask);
    if (wd < 0) {
      if (errno == ENOSPC) {
        complete = false;
        break;
      }
      continue;  // vanished, not a directory, unreadable: the tailer's scans report problems
    }
    auto old = dir_of_wd_.find(wd);
    if (old != dir_of_wd_.end() && old->second != d) wd_of_dir_.erase(old->second);
    dir_of_wd_[wd] = d;
    wd_of_dir_[d] = wd;
    if (d == root.path) root.wd = wd;
    if (!options_.env->GetChildren(d, &entries).ok()) continue;
    for (const DirEntry& e : entries) {
      std::string path = Child(d, e.name);
      FileType type = e.type;
      if (type == FileType::kUnknown) {
        FileInfo info;
        if (!options_.env->LinkStat(path, &info).ok()) continue;
        type = info.type;
      }
      if (type == FileType::kDirectory) todo.push_back(std::move(path));  // never a symlink
    }
  }
  return complete;
}

void InotifyWatcher::ForgetTree(const std::string& dir) {
  auto forget = [&](std::map<std::string, int>::iterator it) {
    const int wd = it->second;
    dir_of_wd_.erase(wd);
    if (!ancestor_wds_.count(wd)) ::inotify_rm_watch(fd_, wd);
    for (auto& root : roots_) {
      if (root->wd == wd) root->wd = -1;
    }
    return wd_of_dir_.erase(it);
  };
  if (auto it = wd_of_dir_.find(dir); it != wd_of_dir_.end()) forget(it);
  // "dir/…" sort together (unlike "dir" and "dir/…", which "dir-x" may separate).
  const std::string prefix = dir == "/" ? "/" : dir + "/";
  for (auto it = wd_of_dir_.lower_bound(prefix);
       it != wd_of_dir_.end() && it->first.compare(0, prefix.size(), prefix) == 0;) {
    it = forget(it);
  }
}

void InotifyWatcher::ArmRoot(Root& root, std::vector<DirtyPath>* dirty) {
  FileInfo info;
  if (options_.env->Stat(root.path, &info).ok() && info.type == FileType::kDirectory) {
    const bool was_armed = root.armed;
    root.armed = true;
    root.device = info.device;
    root.inode = info.inode;
    if (WatchTree(root.path, root)) {
      StopPolling(root);
    } else {
      StartPolling(root);
    }
    if (dirty != nullptr && !was_armed) dirty->push_back({DirtyPath::Kind::kTree, root.path});
    return;
  }
  root.armed = false;
  // Wait for it through the nearest ancestor that exists.
  std::string p = root.path;
  for (;;) {
    std::string parent = DirName(p);
    if (parent == p) break;
    p = parent;
    if (options_.env->Stat(p, &info).ok() && info.type == FileType::kDirectory) break;
  }
  int wd = hooks_.add_watch(fd_, p.c_str(), kAncestorMask);
  if (wd < 0) {
    if (errno == ENOSPC) StartPolling(root);
    return;
  }
  std::vector<Root*>& waiting = ancestor_wds_[wd];
  if (std::find(waiting.begin(), waiting.end(), &root) == waiting.end()) waiting.push_back(&root);
}

InotifyWatcher::Root* InotifyWatcher::RootOfWd(int wd) {
  for (auto& root : roots_) {
    if (root->armed && root->wd == wd) return root.get();
  }
  return nullptr;
}

InotifyWatcher::Root* InotifyWatcher::RootContaining(const std::string& path) {
  Root* best = nullptr;
  for (auto& root : roots_) {
    if (IsUnder(path, root->path) && (best == nullptr || root->path.size() > best->path.size()))
      best = root.get();
  }
  return best;
}

void InotifyWatcher::Overflowed(std::vector<DirtyPath>* dirty, std::set<DirtyPath>* seen) {
  // Events were lost, directories created meanwhile among them: watch everything again and let
  // the tailer rescan every root.
  Resync();
  for (auto& root : roots_) AddDirty({DirtyPath::Kind::kTree, root->path}, dirty, seen);
}

void InotifyWatcher::Resync() {
  for (auto& root : roots_) {
    if (root->armed) {
      FileInfo info;
      Status s = options_.env->Stat(root->path, &info);
      if (!s.ok() || info.type != FileType::kDirectory || info.device != root->device ||
          info.inode != root->inode) {
        ForgetTree(root->path);
        root->armed = false;
      }
    }
    ArmRoot(*root, nullptr);  // armed: adds watches a lost event left out; else waits for it
  }
}

void InotifyWatcher::SimulateOverflow() {
  overflow_requested_.store(true);
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);
}

std::vector<std::string> InotifyWatcher::TakeWarnings() {
  std::vector<std::string> out;
  out.swap(warnings_);
  return out;
}

void InotifyWatcher::HandleEvents(const char* buf, size_t len, std::vector<DirtyPath>* dirty,
                                  std::set<DirtyPath>* seen) {
  size_t pos = 0;
  while (pos + sizeof(inotify_event) <= len) {
    inotify_event ev;
    std::memcpy(&ev, buf + pos, sizeof ev);
    std::string name;
    if (ev.len > 0) {
      const char* n = buf + pos + sizeof(inotify_event);
      name.assign(n, strnlen(n, ev.len));
    }
    pos += sizeof(inotify_event) + ev.len;

    if (ev.mask & IN_Q_OVERFLOW) {
      Overflowed(dirty, seen);
      continue;
    }
    if (auto waiting = ancestor_wds_.find(ev.wd); waiting != ancestor_wds_.end()) {
      std::vector<Root*> roots = std::move(waiting->second);
      ancestor_wds_.erase(waiting);
      std::vector<DirtyPath> appeared;
      for (Root* r : roots) {
        if (!r->armed) ArmRoot(*r, &appeared);
      }
      for (DirtyPath& d : appeared) AddDirty(std::move(d), dirty, seen);
      if (!ancestor_wds_.count(ev.wd) && !dir_of_wd_.count(ev.wd) && !(ev.mask & IN_IGNORED)) {
        ::inotify_rm_watch(fd_, ev.wd);
      }
    }
    auto it = dir_of_wd_.find(ev.wd);
    if (it == dir_of_wd_.end()) continue;
    const std::string dir = it->second;
    if (ev.mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) {
      if (ev.mask & IN_IGNORED) {  // the kernel dropped the watch (directory gone, unmounted)
        dir_of_wd_.erase(ev.wd);
        if (auto w = wd_of_dir_.find(dir); w != wd_of_dir_.end() && w->second == ev.wd)
          wd_of_dir_.erase(w);
      }
      // A root that went: wait for it again. Below a root, the parent's event says it.
      if (Root* root = RootOfWd(ev.wd); root != nullptr) {
        ForgetTree(root->path);
        root->armed = false;
        root->wd = -1;
        ArmRoot(*root, nullptr);
        AddDirty({DirtyPath::Kind::kTree, root->path}, dirty, seen);
      }
      continue;
    }
    if (name.empty()) {  // the directory itself (IN_ATTRIB: maybe readable now)
      if (ev.mask & IN_ATTRIB) AddDirty({DirtyPath::Kind::kTree, dir}, dirty, seen);
      continue;
    }
    std::string path = Child(dir, name);
    if (ev.mask & IN_ISDIR) {
      if (ev.mask & (IN_MOVED_FROM | IN_DELETE)) ForgetTree(path);
      if (ev.mask & (IN_CREATE | IN_MOVED_TO)) {
        if (Root* root = RootContaining(path); root != nullptr && !WatchTree(path, *root)) {
          StartPolling(*root);
        }
      }
      AddDirty({DirtyPath::Kind::kTree, std::move(path)}, dirty, seen);
    } else {
      AddDirty({DirtyPath::Kind::kFile, std::move(path)}, dirty, seen);
    }
  }
}

Status InotifyWatcher::Wait(SteadyTime deadline, std::stop_token stop,
                            std::vector<DirtyPath>* dirty) {
  std::set<DirtyPath> seen;
  std::stop_callback wake_on_stop(stop, [this] {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);
  });
  alignas(inotify_event) char buf[64 << 10];
  // A deadline already passed still takes the events queued by then (one poll without waiting).
  bool looked = false;
  for (;;) {
    if (stop.stop_requested()) return Status::Ok();
    if (overflow_requested_.exchange(false)) Overflowed(dirty, &seen);
    SteadyTime now = options_.clock->Now();
    if (!poll_->roots.empty() && now >= poll_->next_poll) {
      Stamps fresh = TakeStamps(options_.env, poll_->roots);
      DiffStamps(poll_->stamps, fresh, dirty, &seen);
      poll_->stamps = std::move(fresh);
      now = options_.clock->Now();
      poll_->next_poll = now + options_.poll_interval;
    }
    if (!dirty->empty() || (now >= deadline && looked)) return Status::Ok();
    looked = true;

    SteadyTime until = deadline;
    if (!poll_->roots.empty()) until = std::min(until, poll_->next_poll);
    pollfd fds[2] = {{fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    int r = ::poll(fds, 2, TimeoutMs(now, until));
    if (r < 0) {
      if (errno == EINTR) continue;
      return Status::IoError(std::string("poll on inotify: ") + std::strerror(errno));
    }
    if (fds[1].revents & POLLIN) {
      uint64_t count;
      [[maybe_unused]] ssize_t n = ::read(wake_fd_, &count, sizeof count);
    }
    if (fds[0].revents & (POLLERR | POLLNVAL)) return Status::IoError("inotify descriptor failed");
    if (fds[0].revents & POLLIN) {
      for (;;) {
        ssize_t n = ::read(fd_, buf, sizeof buf);
        if (n < 0) {
          if (errno == EINTR) continue;
          if (errno == EAGAIN) break;
          return Status::IoError(std::string("read inotify: ") + std::strerror(errno));
        }
        if (n == 0) break;
        HandleEvents(buf, size_t(n), dirty, &seen);
      }
    }
  }
}

}  // namespace ccmon
