// LineReader: streams complete '\n'-terminated lines out of a SequentialFile.
//
// Memory is bounded by max(chunk size, longest line kept) + padding: a file is never held whole.
// Only '\n' ends a line (U+2028, U+2029, U+0085 and '\r' are ordinary bytes). A final line without
// '\n' is not consumed: it is reported through pending_bytes() so that a tailer can re-read it
// once it is complete. Lines longer than max_line_bytes are skipped without being buffered.
//
// Work is linear in the bytes read: every byte is read once and scanned once; a line is copied
// only while it is assembled (compaction, and growth of the buffer by doubling up to the cap), and
// a line over the cap is dropped chunk by chunk into the same buffer, without growing or
// shrinking it again (a 1 GiB crash-zeroed tail costs one pass). stats() counts the work.
// Not thread-safe.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string_view>
#include <vector>

#include "base/env.h"

namespace ccmon {

// Memory for LineReaders, reusable from one reader to the next (a scanner worker keeps one for
// all its files, so that a file costs no allocation and no fresh pages). Owned by the caller;
// used by one reader at a time.
struct LineBuffer {
  // malloc'd, so that growing it for a long line is a realloc: glibc moves a large block with
  // mremap, without a second copy alive (a 3 MB line peaked at 6 MB with new[] + memcpy).
  struct Free {
    void operator()(char* p) const { std::free(p); }
  };
  std::unique_ptr<char, Free> data;  // uninitialised: capacity + LineReader::kPadding bytes
  size_t capacity = 0;

  // Frees the memory when it holds more than `keep_bytes` (a long line grew it): for a
  // long-lived owner between reads, which would otherwise keep up to a line's cap (64 MiB) until
  // its next read. Not while a reader uses the buffer.
  void ReleaseIfOver(size_t keep_bytes) {
    if (capacity > keep_bytes) {
      data.reset();
      capacity = 0;
    }
  }
};

class LineReader {
 public:
  struct Options {
    size_t max_line_bytes = size_t(64) << 20;  // longer lines are skipped (kTooLong)
    size_t chunk_bytes = size_t(256) << 10;
    // Stop (kEnd) before a line that starts at or after this file offset: a reader of one piece
    // of a file owns the lines that start inside the piece.
    uint64_t end_offset = UINT64_MAX;
  };
  enum class Result { kLine, kTooLong, kEnd, kError };

  // `file` is borrowed and must outlive the reader; `start_offset` is the file position it is at.
  // `buffer`, if given, is borrowed and must outlive the reader; the reader keeps its own
  // otherwise. A borrowed buffer keeps its size when the reader ends (at most 4 chunks more than
  // a chunk are given back by the next reader's first read).
  LineReader(SequentialFile* file, uint64_t start_offset, Options options,
             LineBuffer* buffer = nullptr);

  // kLine: *line is the next line without its '\n'; at least line->size() + kPadding bytes are
  // readable from line->data() (reported in *readable). The view is valid until the next call.
  // kTooLong: a line over the cap was consumed and dropped. kEnd: no complete line is left.
  Result Next(std::string_view* line, size_t* readable);

  // For a reader of a later piece of a file, started inside a line that belongs to the previous
  // piece: drops the bytes up to and including the next '\n'. Returns true when a line starts
  // there, before end_offset; false when none does: no '\n' before end_offset (the reader stops
  // looking there, so that a long last line is not read once per piece), end of file, or an
  // error. Call before the first Next(); after false, Next() returns kEnd (or kError).
  bool SkipPartialLine();

  // File offset just past the last consumed line (the resume point for a tailer).
  uint64_t consumed_offset() const { return consumed_; }
  // Bytes after consumed_offset() that form an incomplete last line (valid after kEnd).
  uint64_t pending_bytes() const { return uint64_t(end_ - begin_) + discarded_; }
  // True once a read returned end of file; the file ended at consumed_offset() + pending_bytes()
  // (a tailer compares that with the size it expected, to see a file that shrank).
  bool at_eof() const { return eof_; }
  const Status& status() const { return status_; }

  // The work done so far, for tests that bound it.
  struct Stats {
    uint64_t reads = 0;  // SequentialFile::Read calls
    uint64_t bytes_read = 0;
    uint64_t bytes_copied = 0;  // moved within the buffer or into a grown one
  };
  const Stats& stats() const { return stats_; }

  static constexpr size_t kPadding = 64;

 private:
  bool Fill();         // reads more data; false on EOF or error
  void DropScanned();  // inside a dropped line: forget the buffered bytes, keep counting them

  SequentialFile* file_;
  Options options_;
  LineBuffer own_;
  LineBuffer* buffer_;  // own_ or the caller's
  size_t begin_ = 0, end_ = 0, scan_ = 0;
  uint64_t consumed_;
  bool eof_ = false;
  bool discarding_ = false;  // inside a line over the cap
  bool stopped_ = false;     // SkipPartialLine found no line start
  uint64_t discarded_ = 0;   // bytes of that line dropped so far
  Status status_;
  Stats stats_;
};

}  // namespace ccmon
