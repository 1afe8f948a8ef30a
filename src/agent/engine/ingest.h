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
// Not thread-safe: one thread runs it.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
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
};

struct IngestStats {
  uint64_t steps = 0;
  uint64_t lines = 0;  // complete lines read
  uint64_t bytes = 0;  // bytes consumed
  std::array<uint64_t, kSkipReasonCount> skipped{};
  uint64_t files_replaced = 0, files_truncated = 0, files_deleted = 0, files_renamed = 0;
  uint64_t read_errors = 0;
};

class Ingestor {
 public:
  // Everything borrowed; must outlive the ingestor. `log` gets one printable line per event
  // worth a log line (a replaced, truncated or deleted file, an unreadable path); may be empty.
  Ingestor(const IngestOptions& options, Engine* engine, Tailer* tailer, Env* env, Clock* clock,
           std::function<void(const std::string&)> log);

  // One step (see the file comment). OK with nothing done when the deadline passed or a stop
  // was requested. An error means: rebuild (file comment).
  Status Step(std::chrono::steady_clock::time_point deadline, std::stop_token stop);

  const IngestStats& stats() const { return stats_; }

  // The file cursors persisted in the engine's store, to construct a Tailer after a restart.
  static Status RestoredFiles(Engine* engine, std::vector<TrackedFile>* out);

 private:
  // Reads `work` from its start offset, at most `budget` bytes (whole lines; a line may run past
  // it). *unreadable: it could not be opened as the file offered (gone, replaced, truncated) or a
  // read failed; the caller hands it to Tailer::Recheck.
  Status ReadOne(const TailWork& work, size_t budget, uint64_t* new_offset, bool* to_end,
                 bool* unreadable);

  IngestOptions options_;
  Engine* engine_;
  Tailer* tailer_;
  Env* env_;
  Clock* clock_;
  std::function<void(const std::string&)> log_;
  LineParser parser_;
  ParsedLine line_;
  LineBuffer buffer_;
  IngestStats stats_;
};

}  // namespace ccmon::agent
