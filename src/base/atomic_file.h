// Atomic file replacement: readers see either the old file or the complete new one, never a
// part, even after a crash or a full disk. Content is written to "<path>.tmp"; Commit() fsyncs
// it, renames it over `path` and fsyncs the directory (CommitSync::kDurable), or only renames
// it (CommitSync::kNone, below). A writer destroyed (or failing) before
// Commit() removes its temporary file. Every error names `path` (or its temporary file). If only
// the final directory sync fails, Commit() reports it although the new content is in place (the
// rename cannot be undone; it may just not survive a crash). Not thread-safe.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "base/env.h"
#include "base/status.h"

namespace ccmon {

// What a commit promises beyond the atomic replacement.
enum class CommitSync {
  // The file and the rename are fsynced: the new content survives a power loss.
  kDurable,
  // No fsync (two fewer disk flushes, each 1-10 ms and more while other writes are in flight):
  // still atomic for readers and across a crash of the process, but after a power loss the old
  // content, or on file systems that do not order data before renames, an empty file may be
  // found. For files rewritten often whose loss costs nothing (a status file).
  kNone,
};

class AtomicFileWriter {
 public:
  // Creates the temporary file (and the parent directories of `path`). Whatever is at
  // "<path>.tmp" already (a temporary file of a killed run, a symlink) is removed first, and the
  // temporary file is created exclusively, never through a symlink. `path` must be a regular
  // file or absent: anything else there (a device such as /dev/full, a FIFO, a directory, or a
  // symlink to one) is kInvalidArgument, and left alone. `env` is borrowed.
  static Status Open(Env* env, const std::string& path, unsigned mode,
                     std::unique_ptr<AtomicFileWriter>* out);
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  // After a failed Append the writer is dead: Commit() fails and the temp file is removed.
  Status Append(std::string_view data);
  // Sync, close, rename, sync the directory (kNone: close and rename). At most once.
  Status Commit(CommitSync sync = CommitSync::kDurable);

  const std::string& temp_path() const { return temp_path_; }

 private:
  AtomicFileWriter(Env* env, std::string path, std::string temp_path,
                   std::unique_ptr<WritableFile> file);
  void Abandon();

  Env* env_;
  std::string path_, temp_path_;
  std::unique_ptr<WritableFile> file_;
  Status status_;
  bool done_ = false;
};

// The whole content at once.
Status WriteFileAtomically(Env* env, const std::string& path, std::string_view content,
                           unsigned mode = 0644, CommitSync sync = CommitSync::kDurable);

}  // namespace ccmon
