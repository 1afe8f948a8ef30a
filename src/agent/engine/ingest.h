// Ingestor: the agent's read loop — which files have new lines (tail/tailer.h), reading their
// complete lines, counting them (Engine), and one commit per step that carries the files'
// cursors with what their lines produced (agent/engine/engine.h).
//
// A step: Next() on the tailer (blocks without CPU until something changes or the deadline),
// read the offered files from their offsets up to `step_bytes` in all, parse each line, commit
// (records + cursors + outbox entries) in one batch, and only then tell the tailer what was
// consumed. A crash before the commit re-reads the same lines after a restart; a crash after it
// does not: offsets and counters move together. A file whose cursor is persisted is keyed by
// its path (f<path>); renames move the record, deletions remove it (never a counter).
//
// Catch-up: the first steps read what exists at start. The first step that reads everything it
// was offered to the end (nothing cut by step_bytes) ends the catch-up (Engine::MarkCaughtUp).
//
// After an error from Step the engine's memory is ahead of the store (see Engine): destroy the
// Ingestor, the Engine and the Tailer and rebuild them from the store (RestoredFiles()).
//
// Threads: with `parse_thread` (the default) the files are read and their lines parsed on a
// thread the Ingestor owns, which hands owned batches of parsed lines to Step's thread (the
// counting): the two overlap. Step returns only once that thread has finished the step's files,
// and a file's lines are counted only together with its new cursor: a stop or an error never
// leaves a file counted in part. With `read_ahead` (the default), when a step's budget left
// files for the next step, that thread goes on reading them (a prediction of the next step's
// work, bounded in memory) while the step commits and the tailer looks for the next work; the
// next step takes what was read ahead only if its work begins with exactly the files and offsets
// predicted, else it drops it and reads afresh: nothing is counted outside its step, in the
// order of a fresh read. The Env must be usable from that thread, concurrently with the
// Tailer's use of it. Otherwise not thread-safe: one thread calls Step.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <stop_token>
#include <string>
#include <vector>

#include "agent/engine/engine.h"
#include "base/clock.h"
#include "base/env.h"
#include "tail/tailer.h"
#include "transcript/line_parser.h"
#include "transcript/line_reader.h"

namespace ccmon::agent {

struct IngestOptions {
  size_t step_bytes = size_t(4) << 20;       // read at most this much per commit
  size_t max_line_bytes = size_t(64) << 20;  // longer lines are skipped (too_long)
  // Read and parse on a thread of the ingestor's own (see the file comment); false: on Step's.
  bool parse_thread = true;
  // With parse_thread: when a step's budget leaves files (or a file's rest) for the next step,
  // the parse thread reads them ahead while the step commits (see the file comment).
  bool read_ahead = true;
};

struct IngestStats {
  uint64_t steps = 0;
  uint64_t lines = 0;  // complete lines read
  uint64_t bytes = 0;  // bytes consumed
  std::array<uint64_t, kSkipReasonCount> skipped{};
  uint64_t files_replaced = 0, files_truncated = 0, files_deleted = 0, files_renamed = 0;
  uint64_t read_errors = 0;
  // Read-ahead jobs (IngestOptions::read_ahead) taken by the next step, and dropped because its
  // work was not the one predicted (the files were read again).
  uint64_t read_ahead_used = 0, read_ahead_dropped = 0;
};

class Ingestor {
 public:
  // Everything borrowed; must outlive the ingestor. `log` gets one printable line per event
  // worth a log line (a replaced, truncated or deleted file, an unreadable path), with
  // `problem` true for what cannot be read (its transcripts are not counted until it can be:
  // a warning) or a watcher's fallback; may be empty.
  Ingestor(const IngestOptions& options, Engine* engine, Tailer* tailer, Env* env, Clock* clock,
           std::function<void(const std::string& line, bool problem)> log);
  ~Ingestor();  // stops and joins the parse thread

  // One step (see the file comment). OK with nothing done when the deadline passed or a stop
  // was requested. An error means: rebuild (file comment).
  Status Step(std::chrono::steady_clock::time_point deadline, std::stop_token stop);

  const IngestStats& stats() const { return stats_; }

  // The file cursors persisted in the engine's store, to construct a Tailer after a restart.
  static Status RestoredFiles(Engine* engine, std::vector<TrackedFile>* out);

 private:
  // How reading one offered file ended. unreadable: it could not be opened as the file offered
  // (gone, replaced, truncated) or a read failed; the caller hands it to Tailer::Recheck.
  struct FileRead {
    uint64_t offset = 0;        // just past the last line read
    uint64_t offered_size = 0;  // the size of the file when the work read was offered
    bool to_end = false;
    bool unreadable = false;
    std::vector<std::string> log;  // lines for the log
  };
  // Reads `work` from its start offset, at most `budget` bytes (whole lines; a line may run past
  // it), parsing each line with `parser` and passing it to `sink` (whose error ends the read and
  // is returned). Counts lines, skips and read errors in *stats. Runs on the parse thread too:
  // touches nothing of the Ingestor's but options_ and env_.
  Status ReadFile(const TailWork& work, size_t budget, LineParser* parser, LineBuffer* buffer,
                  IngestStats* stats, const std::function<Status(const ParsedLine&)>& sink,
                  FileRead* out);
  // The files of one step, in order, within `budget`: *done gets each file read (the ones not
  // reached are missing). Lines are counted as they come; a file's entry is added only after
  // all its lines were counted.
  struct Done {
    const TailWork* work;
    FileRead read;
  };
  Status ReadStep(const std::vector<TailWork>& work, size_t budget, std::stop_token stop,
                  std::vector<Done>* done);

  class ParseThread;
  IngestOptions options_;
  Engine* engine_;
  Tailer* tailer_;
  Env* env_;
  Clock* clock_;
  std::function<void(const std::string&, bool)> log_;
  LineParser parser_;
  LineBuffer buffer_;
  IngestStats stats_;
  // The steps' work, in turns: the previous step's stays valid for the parse thread's
  // read-ahead while the next step's is filled.
  std::vector<TailWork> work_[2];
  uint64_t work_turn_ = 0;
  std::unique_ptr<ParseThread> parse_thread_;  // null without options_.parse_thread
};

}  // namespace ccmon::agent
