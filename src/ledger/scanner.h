// Scanner: reads transcript files in parallel into one Ledger (batch mode, used by replay).
//
// Each worker thread owns a LineParser and a small batch Ledger that it merges into the one result
// Ledger under a lock (the rules are order-independent, so the result does not depend on
// scheduling). Files over 2 x piece_bytes (default: over 32 MiB) are cut into pieces of
// piece_bytes at line boundaries, so that one big file uses every core.
//
// For the agent's bulk first start (docs/agent-design.md "Bulk first start") it also reports,
// with ScanOptions::file_cursors, where each file was read to and which file that was: the
// offset just after its last complete line and the file's identity (device, inode, a hash of its
// head), both from the descriptor the lines were read through, so that the agent's tailer can
// continue each file exactly there (lines after the cursor are read later, never twice).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "base/env.h"
#include "ledger/ledger.h"
#include "transcript/discovery.h"
#include "transcript/usage.h"

namespace ccmon {

struct ScanOptions {
  unsigned threads = 0;  // 0: hardware concurrency
  size_t max_line_bytes = size_t(64) << 20;
  // Files over twice this size are read as pieces of this size, in parallel (tests make it tiny).
  uint64_t piece_bytes = uint64_t(16) << 20;
  // Files last modified before this instant are not opened (replay: a margin before --since).
  // Every line of the files that are read goes into the ledger, whatever its time: a time window
  // applies to deduplicated requests (metrics/accounting.h), never to the copies of one.
  int64_t skip_modified_before_ms = std::numeric_limits<int64_t>::min();
  // Files are opened through it (borrowed; thread-safe as every Env is).
  Env* env = Env::Default();
  // Report each file read in ScanResult::cursors, its head hashed over at most this many bytes
  // (the agent: tail's kFingerprintBytes). 0: no cursors.
  uint32_t file_cursors_head_bytes = 0;
  // The ledger keeps the requests' newest copy times and the sessions' spans (LedgerOptions).
  bool spans = false;
};

// Where a file was read to, from the same open as its lines (ScanOptions::file_cursors_head_bytes).
struct ScannedFile {
  std::string path;
  uint64_t device = 0, inode = 0;  // fstat of the descriptor read
  // Fnv1a64 (base/fnv1a.h) of the first head_bytes bytes read through that descriptor, before
  // its lines (fewer when the file was shorter then).
  uint64_t head_hash = 0;
  uint32_t head_bytes = 0;
  // Just past the last complete line read (every line before it is in the result).
  uint64_t offset = 0;
  // offset + the unfinished last line found after it (0 bytes when the file ends with '\n').
  uint64_t size_seen = 0;
  // The file's mtime when it was listed, when the read ended exactly at the size it was listed
  // with (it did not grow or shrink while read), else -1: a later look that finds the same path,
  // size and mtime may take it as unchanged since (the tailer's rule between two looks).
  int64_t listed_mtime_ms = -1;
};

struct ScanProgress {
  std::atomic<uint64_t> files_done{0};
  std::atomic<uint64_t> bytes_done{0};
};

struct ScanResult {
  Ledger ledger;
  SkipCounts skipped;          // kIncomplete counts final lines without '\n'
  uint64_t files = 0;          // files read
  uint64_t files_skipped = 0;  // not opened (mtime before skip_modified_before_ms)
  uint64_t bytes = 0;
  uint64_t lines = 0;        // complete lines
  uint64_t usage_lines = 0;  // usage records (before dedup)
  // Files that could not be read, or not whole, one printable line each, naming the file (sorted):
  // a failed open or read, or a file that shrank while it was read ("<path>: shrank from X to Y
  // bytes while being read"; its cut last line is not counted as `incomplete`).
  std::vector<std::string> errors;
  uint64_t files_shrunk = 0;
  // With ScanOptions::file_cursors_head_bytes: every file read whole, sorted by path. A file cut
  // into pieces whose pieces saw different files (replaced between their opens), or that shrank,
  // or could not be read, has no cursor: it is named in `errors` or `unstable`.
  std::vector<ScannedFile> cursors;
  // Files whose pieces did not all read the same file (a file replaced during the scan), one
  // printable line each (file_cursors only; their lines are in the ledger as read).
  std::vector<std::string> unstable;
  // Some transcripts were not read whole: the figures are incomplete.
  bool incomplete() const { return !errors.empty(); }
};

ScanResult ScanFiles(const std::vector<TranscriptFile>& files, const ScanOptions& options,
                     ScanProgress* progress);

}  // namespace ccmon
