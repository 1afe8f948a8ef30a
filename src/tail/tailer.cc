#include "tail/tailer.h"

#include <algorithm>

namespace ccmon {
namespace {

using SteadyTime = std::chrono::steady_clock::time_point;

std::string BaseName(const std::string& p) {
  size_t cut = p.find_last_of('/');
  return cut == std::string::npos ? p : p.substr(cut + 1);
}

// Discovery's name rule (transcript/discovery.cc: "*.jsonl" with a non-empty stem), for single
// paths a watcher reports; walks use FindTranscripts itself. tests/tail/tailer_test.cc checks
// that the two agree.
bool IsTranscriptName(const std::string& name) {
  return name.size() > 6 && name.compare(name.size() - 6, 6, ".jsonl") == 0;
}

// The watcher's options for a tailer's.
WatcherOptions WatcherOptionsOf(const TailerOptions& options) {
  WatcherOptions wo;
  wo.roots = options.project_dirs;
  wo.poll_interval = options.poll_interval;
  wo.env = options.env;
  wo.clock = options.clock;
  return wo;
}

bool IsUnder(const std::string& path, const std::string& dir) {
  return path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 &&
         (path[dir.size()] == '/' || dir == "/");
}

}  // namespace

const char* TailEventKindName(TailEvent::Kind kind) {
  switch (kind) {
    case TailEvent::Kind::kRenamed:
      return "renamed";
    case TailEvent::Kind::kReplaced:
      return "replaced";
    case TailEvent::Kind::kTruncated:
      return "truncated";
    case TailEvent::Kind::kDeleted:
      return "deleted";
    case TailEvent::Kind::kProblem:
      return "problem";
  }
  return "?";
}

Tailer::Tailer(TailerOptions options, std::vector<TrackedFile> restored)
    : Tailer(std::move(options), std::move(restored), nullptr) {}

Tailer::Tailer(TailerOptions options, std::vector<TrackedFile> restored,
               std::unique_ptr<Watcher> watcher)
    : options_(std::move(options)), watcher_(std::move(watcher)) {
  for (TrackedFile& f : restored) {
    Key key{f.identity.device, f.identity.inode};
    if (states_.count(key)) continue;  // one state per inode (a duplicate record is dropped)
    State s;
    s.size_now = f.size_seen;  // until the first scan looks
    s.generation = next_generation_++;
    s.file = std::move(f);
    states_.emplace(key, std::move(s));
  }
  if (watcher_ == nullptr) {
    std::string problem;
    watcher_ = NewWatcher(options_, &problem);
    if (!problem.empty()) Problem(problem);
  }
  UpdateGauges();
}

std::unique_ptr<Watcher> Tailer::NewWatcher(const TailerOptions& options, std::string* problem) {
  problem->clear();
  const WatcherOptions wo = WatcherOptionsOf(options);
  if (options.watch_mode == WatchMode::kInotify) {
    std::unique_ptr<InotifyWatcher> inotify;
    Status s = InotifyWatcher::Create(wo, &inotify);
    if (s.ok()) return inotify;
    *problem = "inotify unavailable (" + s.message() + "); polling every " +
               std::to_string(options.poll_interval.count()) + " ms instead";
  }
  return NewPollWatcher(wo);
}

void Tailer::FallBackToPolling(const Status& failure) {
  Problem("watcher failed (" + failure.message() + "); polling every " +
          std::to_string(options_.poll_interval.count()) + " ms instead");
  watcher_ = NewPollWatcher(WatcherOptionsOf(options_));
  FullScan();
}

Tailer::~Tailer() = default;

void Tailer::Problem(const std::string& message) {
  if (collecting_ != nullptr) {
    collecting_->insert(message);
    return;
  }
  if (problems_reported_.insert(message).second) {
    TailEvent e;
    e.kind = TailEvent::Kind::kProblem;
    e.message = message;
    events_.push_back(std::move(e));
  }
}

void Tailer::TakeWatcherWarnings() {
  for (std::string& w : watcher_->TakeWarnings()) {
    TailEvent e;
    e.kind = TailEvent::Kind::kProblem;
    e.message = std::move(w);
    events_.push_back(std::move(e));
  }
}

void Tailer::Forget(const Key& key, TailEvent::Kind kind, const std::string& path) {
  auto it = states_.find(key);
  if (it == states_.end()) return;
  TailEvent e;
  e.kind = kind;
  e.path = path;  // `path` may be the state's own path, which the move below empties: use e.path
  e.previous = std::move(it->second.file);
  const std::string progress = std::to_string(e.previous.offset) + " bytes read";
  switch (kind) {
    case TailEvent::Kind::kReplaced:
      e.message = e.path + ": replaced by another file (" + progress +
                  " of the old one); reading the new one from the start";
      break;
    case TailEvent::Kind::kTruncated:
      e.message =
          e.path + ": truncated below its offset (" + progress + "); reading it from the start";
      break;
    default:
      e.message = e.path + ": deleted (" + progress + "); forgotten, counters kept";
      break;
  }
  states_.erase(it);
  events_.push_back(std::move(e));
}

void Tailer::NoteLook(uint64_t device, uint64_t inode, const std::string& path, uint64_t size,
                      int64_t mtime_ms) {
  auto it = states_.find(Key{device, inode});
  if (it == states_.end() || it->second.file.path != path || mtime_ms < 0) return;
  it->second.size_now = size;
  it->second.mtime_ms = mtime_ms;
}

void Tailer::Look(const Found& f, std::set<Key>* seen) {
  Key key{f.info.device, f.info.inode};
  auto it = states_.find(key);
  // Unchanged since the last look: nothing to read, no need to open it.
  if (it != states_.end() && it->second.mtime_ms >= 0 && it->second.file.path == f.path &&
      it->second.size_now == f.info.size && it->second.mtime_ms == f.info.mtime_ms) {
    seen->insert(key);
    return;
  }
  FileHead head;
  Status s = ReadFileHead(options_.env, f.path, &head);
  if (!s.ok()) {
    if (s.code() == Status::Code::kNotFound) return;  // gone since it was listed
    Problem(s.message() + " (not read)");
    if (it != states_.end()) seen->insert(key);  // kept as it was: it cannot be told apart
    return;
  }
  // What was opened decides (the path may name another file than the listing said by now).
  key = {head.info.device, head.info.inode};
  seen->insert(key);
  it = states_.find(key);
  if (it != states_.end()) {
    State& st = it->second;
    if (head.Matches(st.file.identity) && head.info.size >= st.file.offset) {
      // Rechecked (it could not be read): offered again once it moved or changed since the last
      // look; as it was, it would fail the same way.
      if (st.recheck && (st.file.path != f.path || head.info.size != st.size_now ||
                         head.info.mtime_ms != st.mtime_ms)) {
        st.recheck = false;
      }
      if (st.file.path != f.path) {
        TailEvent e;
        e.kind = TailEvent::Kind::kRenamed;
        e.old_path = st.file.path;
        e.path = f.path;
        e.previous = st.file;
        e.message = e.old_path + ": renamed to " + f.path + " (" + std::to_string(st.file.offset) +
                    " bytes read, kept)";
        events_.push_back(std::move(e));
        st.file.path = f.path;
      }
      if (st.file.identity.fingerprint_bytes < head.bytes.size()) {
        st.file.identity = head.Identity();  // the head grew: fingerprint more of it
      }
      // A shorter file that still holds the offset lost only pending bytes: re-offer what
      // replaces them.
      st.file.size_seen = std::min(st.file.size_seen, std::max(head.info.size, st.file.offset));
      st.size_now = head.info.size;
      st.mtime_ms = head.info.mtime_ms;
      return;
    }
    if (st.file.path != f.path) {
      // The inode number was reused by another file: the one tracked is gone.
      Forget(key, TailEvent::Kind::kDeleted, st.file.path);
    } else {
      Forget(key,
             head.info.size < st.file.offset ? TailEvent::Kind::kTruncated
                                             : TailEvent::Kind::kReplaced,
             f.path);
    }
  }
  State st;
  st.file.path = f.path;
  st.file.identity = head.Identity();
  st.size_now = head.info.size;
  st.mtime_ms = head.info.mtime_ms;
  st.generation = next_generation_++;
  states_.emplace(key, std::move(st));
}

void Tailer::Reconcile(const std::vector<Found>& found, const std::set<std::string>& files_in_scope,
                       const std::vector<std::string>& trees_in_scope, bool all_in_scope,
                       std::vector<Key>* missing) {
  std::vector<const Found*> order;
  for (const Found& f : found) order.push_back(&f);
  std::sort(order.begin(), order.end(),
            [](const Found* a, const Found* b) { return a->path < b->path; });
  std::set<Key> seen;
  const std::string* previous = nullptr;
  for (const Found* f : order) {
    if (previous != nullptr && *previous == f->path) continue;
    previous = &f->path;
    Look(*f, &seen);
  }
  for (const auto& [key, st] : states_) {
    if (seen.count(key)) continue;
    bool in_scope = all_in_scope || files_in_scope.count(st.file.path) > 0;
    for (size_t i = 0; !in_scope && i < trees_in_scope.size(); ++i) {
      in_scope = st.file.path == trees_in_scope[i] || IsUnder(st.file.path, trees_in_scope[i]);
    }
    if (in_scope) missing->push_back(key);
  }
}

void Tailer::FullScan() {
  ++full_scans_;
  std::set<std::string> problems;
  collecting_ = &problems;
  std::vector<std::string> roots;
  for (const std::string& r : options_.project_dirs) {
    FileInfo info;
    Status s = options_.env->Stat(r, &info);
    if (s.ok() && info.type == FileType::kDirectory) {
      roots.push_back(r);
    } else if (!s.ok() && s.code() != Status::Code::kNotFound) {
      Problem(s.message() + " (not searched: transcripts below it are not counted)");
    }
  }
  DiscoveryResult listing = FindTranscripts(roots, options_.env);
  for (const std::string& p : listing.problems) Problem(p);
  std::vector<Found> found;
  found.reserve(listing.files.size());
  for (const TranscriptFile& t : listing.files) {
    Found f;
    f.path = t.path;
    f.info.type = FileType::kRegular;
    f.info.size = t.size;
    f.info.mtime_ms = t.mtime_ms;
    f.info.device = t.device;
    f.info.inode = t.inode;
    found.push_back(std::move(f));
  }
  std::vector<Key> missing;
  Reconcile(found, {}, {}, /*all_in_scope=*/true, &missing);
  for (const Key& key : missing) {
    const std::string path = states_.at(key).file.path;
    FileInfo info;
    Status s = options_.env->Stat(path, &info);
    // Still there, unlisted because its directory could not be read (a problem says so): kept.
    if (s.ok() && info.type == FileType::kRegular && info.device == key.first &&
        info.inode == key.second) {
      continue;
    }
    if (!s.ok() && s.code() != Status::Code::kNotFound) continue;  // cannot tell: kept
    bool occupied = false;
    for (const auto& [other_key, other] : states_) {
      occupied = occupied || (other_key != key && other.file.path == path);
    }
    Forget(key, occupied ? TailEvent::Kind::kReplaced : TailEvent::Kind::kDeleted, path);
  }
  collecting_ = nullptr;
  // Each problem once, until a scan no longer sees it.
  for (const std::string& p : problems) {
    if (!problems_reported_.count(p)) {
      TailEvent e;
      e.kind = TailEvent::Kind::kProblem;
      e.message = p;
      events_.push_back(std::move(e));
    }
  }
  problems_reported_ = std::move(problems);
}

bool Tailer::PartialScan(const std::vector<DirtyPath>& dirty) {
  std::vector<Found> found;
  std::set<std::string> files;
  std::vector<std::string> trees;
  for (const DirtyPath& d : dirty) {
    FileInfo info;
    Status s = options_.env->Stat(d.path, &info);
    if (d.kind == DirtyPath::Kind::kTree) {
      trees.push_back(d.path);
      if (!s.ok() || info.type != FileType::kDirectory) continue;
      DiscoveryResult listing = FindTranscripts({d.path}, options_.env);
      for (const std::string& p : listing.problems) Problem(p);
      for (TranscriptFile& t : listing.files) {
        Found f;
        f.path = std::move(t.path);
        f.info.type = FileType::kRegular;
        f.info.size = t.size;
        f.info.mtime_ms = t.mtime_ms;
        f.info.device = t.device;
        f.info.inode = t.inode;
        found.push_back(std::move(f));
      }
      continue;
    }
    if (!IsTranscriptName(BaseName(d.path))) continue;
    files.insert(d.path);
    if (s.ok() && info.type == FileType::kRegular) found.push_back({d.path, info});
  }
  std::vector<Key> missing;
  Reconcile(found, files, trees, /*all_in_scope=*/false, &missing);
  return missing.empty();
}

void Tailer::Offer(std::vector<TailWork>* work) {
  // Pointers first, sorted by path: only the files offered are copied into work items.
  waiting_.clear();
  uint64_t behind = 0;
  for (const auto& [key, st] : states_) {
    behind += BytesNotReadYet(st);
    if (st.size_now <= st.file.size_seen || st.recheck) continue;
    waiting_.push_back(&st);
  }
  bytes_behind_.store(behind, std::memory_order_relaxed);
  files_tracked_.store(states_.size(), std::memory_order_relaxed);
  std::sort(waiting_.begin(), waiting_.end(),
            [](const State* a, const State* b) { return a->file.path < b->file.path; });
  const uint64_t limit = options_.max_offer_bytes;
  uint64_t offered = 0;
  size_t n = 0;
  for (; n < waiting_.size() && (limit == 0 || offered < limit); ++n) {
    const State& st = *waiting_[n];
    TailWork w;
    w.path = st.file.path;
    w.identity = st.file.identity;
    w.start_offset = st.file.offset;
    w.size = st.size_now;
    w.generation = st.generation;
    offered += w.size - std::min(w.size, w.start_offset);
    work->push_back(std::move(w));
  }
  held_back_ = n < waiting_.size();
}

// Bytes of `st`'s file not read yet: what lies beyond size_seen, the end of what was read. An
// unterminated last line (from size_seen's offset on, read and held back until its newline) is
// not "behind": counting it kept a file whose last line a crash cut behind forever.
uint64_t Tailer::BytesNotReadYet(const State& st) {
  return st.size_now > st.file.size_seen ? st.size_now - st.file.size_seen : 0;
}

void Tailer::UpdateGauges() {
  uint64_t behind = 0;
  for (const auto& [key, st] : states_) behind += BytesNotReadYet(st);
  bytes_behind_.store(behind, std::memory_order_relaxed);
  files_tracked_.store(states_.size(), std::memory_order_relaxed);
}

Status Tailer::Next(SteadyTime deadline, std::stop_token stop, std::vector<TailWork>* work,
                    std::vector<TailEvent>* events) {
  work->clear();
  if (events != nullptr) events->clear();
  const bool first_call = !started_;
  std::vector<DirtyPath> dirty;
  if (!started_) {
    started_ = true;
    if (complete_look_noted_) {
      // The caller's look is this scan: what changed since is queued in the watcher, set up
      // before that look. Taken now, without waiting (a poller's are due at its next poll).
      Status s = watcher_->Wait(options_.clock->Now(), stop, &dirty);
      if (!s.ok()) {
        FallBackToPolling(s);
      } else if (!dirty.empty() && !PartialScan(dirty)) {
        FullScan();
      }
    } else {
      // The watcher's view starts where the first scan's does: a poller that listed the files
      // at construction would otherwise never report a file created and removed in between,
      // which this scan tracks (found by the agent's ingest tests).
      watcher_->Resync();
      FullScan();
    }
    next_rescan_ = options_.clock->Now() + options_.rescan_interval;
  }
  for (;;) {
    if (!recheck_paths_.empty()) {
      dirty.clear();
      for (std::string& p : recheck_paths_) dirty.push_back({DirtyPath::Kind::kFile, std::move(p)});
      recheck_paths_.clear();
      if (!PartialScan(dirty)) FullScan();
    }
    TakeWatcherWarnings();
    Offer(work);
    if (events != nullptr) {
      for (TailEvent& e : events_) events->push_back(std::move(e));
    }
    events_.clear();
    if (!work->empty() || (events != nullptr && !events->empty())) return Status::Ok();
    // The first scan's answer, even when empty: the caller learns at once that nothing waits (an
    // agent over an empty history is caught up now, not at its first deadline).
    if (first_call) return Status::Ok();
    if (stop.stop_requested() || options_.clock->Now() >= deadline) return Status::Ok();

    dirty.clear();
    Status s = watcher_->Wait(std::min(deadline, next_rescan_), stop, &dirty);
    if (!s.ok()) {
      FallBackToPolling(s);
      continue;
    }
    if (!dirty.empty() && !PartialScan(dirty)) FullScan();
    if (options_.clock->Now() >= next_rescan_) {
      for (auto& [key, st] : states_) st.recheck = false;  // everything is looked at anew
      watcher_->Resync();
      FullScan();
      next_rescan_ = options_.clock->Now() + options_.rescan_interval;
    }
  }
}

Status Tailer::Consumed(const TailWork& work, uint64_t new_offset, bool read_to_end) {
  if (new_offset < work.start_offset) {
    return Status::InvalidArgument(work.path + ": consumed offset " + std::to_string(new_offset) +
                                   " is below the start offset " +
                                   std::to_string(work.start_offset));
  }
  auto it = states_.find({work.identity.device, work.identity.inode});
  if (it == states_.end() || it->second.generation != work.generation) {
    return Status::NotFound(work.path +
                            ": no longer tracked (replaced, truncated or deleted since offered)");
  }
  State& st = it->second;
  const uint64_t before = BytesNotReadYet(st);
  st.file.offset = std::max(st.file.offset, new_offset);
  st.file.size_seen = std::max({st.file.size_seen, st.file.offset, read_to_end ? work.size : 0});
  st.size_now = std::max(st.size_now, new_offset);
  // This file's share only (a full UpdateGauges per file made a step over n files O(n^2)).
  const uint64_t total = bytes_behind_.load(std::memory_order_relaxed);
  bytes_behind_.store(total - std::min(total, before) + BytesNotReadYet(st),
                      std::memory_order_relaxed);
  return Status::Ok();
}

Status Tailer::Recheck(const TailWork& work) {
  auto it = states_.find({work.identity.device, work.identity.inode});
  if (it == states_.end() || it->second.generation != work.generation) {
    return Status::NotFound(work.path +
                            ": no longer tracked (replaced, truncated or deleted since offered)");
  }
  it->second.recheck = true;
  recheck_paths_.push_back(it->second.file.path);
  return Status::Ok();
}

std::vector<TrackedFile> Tailer::Snapshot() const {
  std::vector<TrackedFile> out;
  out.reserve(states_.size());
  for (const auto& [key, st] : states_) out.push_back(st.file);
  std::sort(out.begin(), out.end(),
            [](const TrackedFile& a, const TrackedFile& b) { return a.path < b.path; });
  return out;
}

}  // namespace ccmon
