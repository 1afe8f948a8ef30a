// The agent's bulk first start (docs/agent-design.md "Bulk first start"): on an empty state,
// the history present at start is counted with replay's parallel scan (ledger/scanner.h, every
// core, the same accounting rules) instead of line by line, and the caught-up state is written
// as one table (Engine::BulkFirstStart); the tailer then continues from the files' cursors.
//
// Used only when it is exact and memory stays bounded: the store holds no agent record, the
// history is at most max_history_bytes (the scan's ledger holds every distinct request: ~100
// bytes each; larger histories are counted line by line, whose memory does not grow with
// history), every file was read whole (no read error, no file shrunk or replaced during the
// scan) and its labels fit their caps. Otherwise nothing is written and the caller counts line
// by line (`why_not` says why). A crash before the table lands leaves the state empty (the next
// start scans again); after it, the state is complete.
//
// Thread: the caller's (the scan runs on `threads` threads of its own and joins them).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "agent/engine/engine.h"
#include "base/env.h"
#include "base/status.h"
#include "ledger/scanner.h"
#include "store/kv_store.h"
#include "store/outbox.h"
#include "tail/tracked_file.h"
#include "transcript/discovery.h"

namespace ccmon::agent {

struct BulkStartOptions {
  std::vector<std::string> project_dirs;     // the dirs the agent watches (missing ones: none)
  size_t max_line_bytes = size_t(64) << 20;  // as the line-by-line path's (IngestOptions)
  // Histories larger than this (the sum of the transcripts' sizes, or the bytes the scan read)
  // are counted line by line.
  uint64_t max_history_bytes = uint64_t(256) << 20;
  unsigned threads = 0;  // the scan's; 0: every core
  Env* env = Env::Default();
  // The discovery's listing of project_dirs (FindTranscripts), when the caller took it already
  // (the agent takes it on another thread while its state opens, right after setting up the
  // tailer's watcher); borrowed. Null: BulkStart lists project_dirs itself.
  const DiscoveryResult* listed = nullptr;
};

struct BulkStartResult {
  bool done = false;                         // the table was written: open the engine and go on
  std::string why_not;                       // when not done (and no error): why, for the log
  uint64_t files = 0, bytes = 0, lines = 0;  // what the scan read
  uint64_t consumed_bytes = 0;               // up to the files' cursors (their complete lines)
  SkipCounts skipped;                        // lines skipped, by reason (kIncomplete included)
  LiveStats live;                            // the counting's (requests, observed, ...)
  // When done: the files read, with the size and mtime they were read at where known
  // (ScannedFile::listed_mtime_ms), for Tailer::NoteLook.
  std::vector<ScannedFile> scanned;
};

// The tracked-file record (Engine::kFilePrefix + path) of a file the scan read.
Record ScannedFileRecord(const ScannedFile& file);

// See the file comment. An error: nothing was written (or the store failed: as any failed
// commit, the caller reopens it).
Status BulkStart(const BulkStartOptions& options, const EngineOptions& engine_options,
                 KvStore* store, Outbox* outbox, int64_t now_ms, BulkStartResult* result);

}  // namespace ccmon::agent
