// Tailer: which transcript files have bytes to read, and how far each has been read.
//
// The agent's reader thread asks Next() for work, reads complete lines from each TailWork's start
// offset (transcript/line_reader.h; open the file with OpenIfSameFile, tail/file_identity.h) and
// reports how far it got with Consumed(). The tailer watches the project directories
// (tail/watcher.h: inotify, or a stat poller), finds files with discovery's rules
// (transcript/discovery.h: every *.jsonl below projects/, subagent files included) and keeps per
// file a TrackedFile (tail/tracked_file.h): its identity (device, inode, head fingerprint), the
// offset consumed and the bytes seen. The caller persists Snapshot() with what the lines
// produced, and hands the states back to the next process.
//
// What happens to a file:
//   new file                 offered from offset 0 once it has bytes
//   append                   offered from its offset once it is larger than the bytes seen; an
//                            incomplete last line stays unconsumed and is offered again only when
//                            more bytes arrive (not before)
//   rename (same device,     the same state under the new path (kRenamed): nothing read twice
//   inode and head)
//   replaced under its name  another inode at the path, the same inode with a different head, or
//                            a file shorter than its offset: the old state is forgotten
//                            (kReplaced / kTruncated, with it) and the file read from 0
//   deleted                  forgotten (kDeleted, with its last state); the caller keeps its
//                            counters: a deleted transcript never lowers one
//   unreadable dir or file   kProblem, once (again only after it was fixed and broke again)
//   gone between the offer   handed back by the caller (Recheck): looked for at the next Next,
//   and the read             offered again once found moved or changed, or at the next rescan
// A full rescan every rescan_interval (default 5 min) is the safety net for anything the watcher
// missed; it is the only timer in inotify mode, so an idle tailer uses no CPU.
//
// Threading: one thread calls Next, Consumed and Snapshot. bytes_behind() and files_tracked()
// may be read from any thread. A stop requested on Next's token (from any thread) ends it at once.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stop_token>
#include <string>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "base/env.h"
#include "base/status.h"
#include "tail/file_identity.h"
#include "tail/tracked_file.h"
#include "tail/watcher.h"
#include "transcript/discovery.h"

namespace ccmon {

enum class WatchMode : uint8_t { kInotify, kPoll };

struct TailerOptions {
  // The projects/ directories to watch (ProjectDirs / ProjectDirsFrom, plus the projects/ dirs of
  // config dirs that do not exist yet, so that they are picked up when they appear). Absolute,
  // without trailing '/'.
  std::vector<std::string> project_dirs;
  WatchMode watch_mode = WatchMode::kInotify;  // kInotify falls back to kPoll when unavailable
  std::chrono::milliseconds rescan_interval = std::chrono::minutes(5);
  std::chrono::milliseconds poll_interval = std::chrono::seconds(1);  // kPoll, and watch limits
  Env* env = Env::Default();                                          // borrowed
  Clock* clock = Clock::Real();  // borrowed; all deadlines are on its steady time
  // Next offers files (in path order) only until their unread bytes reach this much (the file
  // that crosses it included); the others wait for a later Next and held_back() says so. A
  // reader that reads at most N bytes per Next needs no more (0: every waiting file): a step of
  // the catch-up then builds a few work items, not one per waiting file.
  uint64_t max_offer_bytes = 0;
};

// A file with bytes to read.
struct TailWork {
  std::string path;
  FileIdentity identity;
  uint64_t start_offset = 0;  // read complete lines from here
  uint64_t size = 0;          // the file's size when offered (it may have grown since)
  uint64_t generation = 0;    // which tracking of this inode (for Consumed)
};

// Something the caller may log or must persist (a forgotten state's record is deleted).
struct TailEvent {
  enum class Kind : uint8_t {
    kRenamed,    // `previous` (at old_path) is now at `path`, same offsets
    kReplaced,   // another file is at `path`; `previous` forgotten, the new one read from 0
    kTruncated,  // the file at `path` shrank below its offset; `previous` forgotten, read from 0
    kDeleted,    // `previous` (at `path`) is gone and forgotten
    kProblem,    // `message`: a directory or file that cannot be read, a watcher fallback
  };
  Kind kind = Kind::kProblem;
  std::string path;
  std::string old_path;
  TrackedFile previous;
  std::string message;  // one printable line, for every kind
};
const char* TailEventKindName(TailEvent::Kind kind);

class Tailer {
 public:
  // `restored`: the states a previous process persisted (Snapshot()). They are checked against
  // the files at the first Next: a file still there resumes at its offset, one renamed meanwhile
  // follows its inode, one replaced or gone is reported. No I/O happens here except setting up the
  // watcher (inotify watches, or the poller's first listing): changes from then on are seen.
  Tailer(TailerOptions options, std::vector<TrackedFile> restored);
  // With a watcher of the caller's (tests inject events through it).
  Tailer(TailerOptions options, std::vector<TrackedFile> restored,
         std::unique_ptr<Watcher> watcher);
  ~Tailer();
  Tailer(const Tailer&) = delete;
  Tailer& operator=(const Tailer&) = delete;

  // Replaces *work and *events (if given; without it events are dropped) with files that have
  // bytes to read and what happened since the previous call. Blocks (without CPU in inotify mode)
  // until there is either, `deadline` (on options.clock's steady time) passes or `stop` is
  // requested; empty results then. The first call scans everything (after NoteCompleteLook: takes
  // the watcher's changes since the caller's look) and returns what it found without waiting,
  // empty or not. A work item neither Consumed()
  // nor Recheck()ed before the next call is offered again. Errors: none today for file problems
  // (they are kProblem events); a watcher that fails is replaced by a poller (kProblem).
  // A look at a restored file taken by the caller since its record was written (the agent's
  // bulk first start reads every file once before the tailer starts): the first scan then
  // treats it as it treats a file it looked at itself, so one found at the same path, size and
  // mtime is not opened again. Ignored unless a restored state has this device, inode and path.
  // Call before the first Next().
  void NoteLook(uint64_t device, uint64_t inode, const std::string& path, uint64_t size,
                int64_t mtime_ms);
  // The caller vouches that the restored states, with its NoteLook calls, are a complete look at
  // every transcript below the roots (no directory it could not list), taken AFTER the watcher
  // given to the constructor was set up: every change since is then queued in that watcher. The
  // first Next takes those changes instead of re-walking and re-listing the trees (the periodic
  // rescan stays the safety net). The agent's bulk first start sets up the tailer's watcher
  // before its listing and scan, and calls this (the first scan's walk and listing were ~25 ms
  // of its first start over 2000 files). Call before the first Next.
  void NoteCompleteLook() { complete_look_noted_ = true; }
  // The watcher the two-argument constructor sets up for `options` (inotify, or the poller where
  // inotify is unavailable: *problem then says so, for the caller to report). For a caller that
  // sets it up before its own look (NoteCompleteLook).
  static std::unique_ptr<Watcher> NewWatcher(const TailerOptions& options, std::string* problem);

  Status Next(std::chrono::steady_clock::time_point deadline, std::stop_token stop,
              std::vector<TailWork>* work, std::vector<TailEvent>* events = nullptr);
  // Whether the last Next left waiting files out of *work (TailerOptions::max_offer_bytes):
  // reading all of *work to its end is then not reading everything there is.
  bool held_back() const { return held_back_; }

  // The caller read `work`'s file up to `new_offset` (LineReader::consumed_offset()): every
  // complete line before it is counted. `read_to_end`: the reader reached the end of the file, so
  // whatever follows new_offset up to work.size is an incomplete line, offered again only once
  // the file grows past both; false (a stop midway, a step's budget spent): offered again at the
  // next Next from new_offset. Call it or Recheck() for every work item (a file that could not be
  // opened as the one offered, or not read: Recheck), or the item is offered again at once.
  // kNotFound: the file was replaced, truncated or deleted since the offer (nothing recorded).
  // kInvalidArgument: new_offset below work.start_offset.
  Status Consumed(const TailWork& work, uint64_t new_offset, bool read_to_end = true);

  // The caller could not read `work` as the file it was offered as: OpenIfSameFile found it gone
  // from its path (renamed, deleted), replaced or truncated, or opening or reading it failed.
  // Call it instead of Consumed(work, work.start_offset, false) (after Consumed, for a read
  // error midway). The file is not offered again until the tailer has looked at it anew: its
  // path is looked at by the next Next (a rename or a replacement is then found and reported),
  // and a file still there as it was is offered again only once it changes or at the next full
  // rescan. Without this, an item that cannot be read would be offered at once again, forever,
  // and the watcher never consulted (found by integration.agent_faults_files: a file renamed
  // between an offer and its read stopped every other file's reading).
  // kNotFound: the file is no longer tracked as offered (nothing to do).
  Status Recheck(const TailWork& work);

  // Every tracked file, sorted by path: what to persist.
  std::vector<TrackedFile> Snapshot() const;
  // Sum over tracked files of the bytes not read yet: each file's size at the last look beyond
  // what was read to its end (TrackedFile::size_seen). A last line without its newline, read and
  // held back, is not counted: a file whose last line was cut by a crash is not behind. Bytes
  // appended since count until they are read. Thread-safe.
  uint64_t bytes_behind() const { return bytes_behind_.load(std::memory_order_relaxed); }
  size_t files_tracked() const { return files_tracked_.load(std::memory_order_relaxed); }
  // "inotify" or "poll" (after a fallback: "poll").
  const char* watch_mode() const { return watcher_->mode(); }
  // Full rescans done (the first scan included), for tests and self-metrics.
  uint64_t full_scans() const { return full_scans_; }

 private:
  using Key = std::pair<uint64_t, uint64_t>;  // device, inode
  struct State {
    TrackedFile file;
    uint64_t size_now = 0;  // at the last look
    int64_t mtime_ms = -1;  // at the last look (-1: never looked: a restored state)
    uint64_t generation = 0;
    // Recheck()ed: not offered until a look finds it renamed or changed, or a periodic rescan.
    bool recheck = false;
  };
  struct Found {
    std::string path;
    FileInfo info;
  };

  void FullScan();
  // Returns false when a full scan must decide (a tracked file vanished from its path).
  bool PartialScan(const std::vector<DirtyPath>& dirty);
  // Matches what was found to the states by inode and head. States that should have been found
  // (all, or those at one of files_in_scope or below one of trees_in_scope) and were not are
  // returned in *missing.
  void Reconcile(const std::vector<Found>& found, const std::set<std::string>& files_in_scope,
                 const std::vector<std::string>& trees_in_scope, bool all_in_scope,
                 std::vector<Key>* missing);
  void Look(const Found& f, std::set<Key>* seen);
  void Forget(const Key& key, TailEvent::Kind kind, const std::string& path);
  void Problem(const std::string& message);
  // The waiting files into *work (see max_offer_bytes), and the gauges (one walk for both).
  void Offer(std::vector<TailWork>* work);
  static uint64_t BytesNotReadYet(const State& st);
  void UpdateGauges();
  void TakeWatcherWarnings();
  // The watcher failed (Wait's error): a poller replaces it, and a full scan looks at everything.
  void FallBackToPolling(const Status& failure);

  TailerOptions options_;
  std::unique_ptr<Watcher> watcher_;
  std::map<Key, State> states_;
  std::vector<TailEvent> events_;           // not yet returned
  std::vector<std::string> recheck_paths_;  // Recheck()ed paths the next Next looks at
  std::set<std::string> problems_reported_;
  std::set<std::string>* collecting_ = nullptr;  // during a full scan: its problems
  bool started_ = false;
  bool complete_look_noted_ = false;  // NoteCompleteLook
  uint64_t next_generation_ = 1;
  uint64_t full_scans_ = 0;
  std::chrono::steady_clock::time_point next_rescan_{};
  bool held_back_ = false;
  std::vector<const State*> waiting_;  // Offer's, reused
  std::atomic<uint64_t> bytes_behind_{0};
  std::atomic<size_t> files_tracked_{0};
};

}  // namespace ccmon
