// Env: every operating-system call ccmon makes on files, directories and the process
// environment goes through this interface (as in leveldb), so that tests can substitute an
// in-memory or fault-injecting implementation (tests/testing/) and the daemons can be tested
// against full disks, vanishing directories and failing reads without root or real faults.
//
// Env::Default() is the POSIX implementation: process-wide, never destroyed, thread-safe.
// Files returned by an Env are used by one thread at a time. Errors are Status values that name
// the path and the failing call ("<path>: open: Permission denied"); a path that does not exist
// (ENOENT, or ENOTDIR: a component of it is a file) is kNotFound, every other failure kIoError.
// No method throws.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace ccmon {

struct FileInfo;

// Sequential reads from one open file.
class SequentialFile {
 public:
  virtual ~SequentialFile() = default;
  // Reads up to `n` bytes into `buf`; *got == 0 means end of file.
  virtual Status Read(char* buf, size_t n, size_t* got) = 0;
  // fstat(2) of the open file: the type, size, mtime, device and inode of what was opened,
  // whatever its path names by now (a tailer checks that the file it opened is the one it
  // listed, not one that replaced it since). Implementations that cannot tell return kIoError
  // (the default).
  virtual Status Stat(FileInfo* out) { return Status::IoError("fstat: not supported"); }
  // Moves the read position to byte `offset` from the start (lseek(2) SEEK_SET); a position
  // past the end is allowed, and reads there return end of file. Default: kIoError.
  virtual Status Seek(uint64_t offset) { return Status::IoError("lseek: not supported"); }
};

// Appends to a newly created file. Nothing is durable before Sync() returns OK; Close() is
// implied by destruction (errors there are lost: call Close() to see them).
class WritableFile {
 public:
  virtual ~WritableFile() = default;
  virtual Status Append(std::string_view data) = 0;
  virtual Status Sync() = 0;  // flushes buffered data and fsyncs the file
  virtual Status Close() = 0;
};

enum class FileType : uint8_t { kUnknown, kRegular, kDirectory, kSymlink, kOther };

struct FileInfo {
  FileType type = FileType::kUnknown;
  uint64_t size = 0;
  int64_t mtime_ms = 0;
  uint64_t device = 0, inode = 0;
};

struct DirEntry {
  std::string name;                    // without the directory; never "." or ".."
  FileType type = FileType::kUnknown;  // from readdir; kUnknown: the caller must stat
};

class Env {
 public:
  virtual ~Env() = default;
  // The POSIX Env. Not owned by the caller.
  static Env* Default();

  // Opens `path` for reading, positioned at byte `offset`.
  virtual Status NewSequentialFile(const std::string& path, uint64_t offset,
                                   std::unique_ptr<SequentialFile>* out) = 0;
  // Creates or truncates `path` for writing with permission bits `mode` (before the umask).
  virtual Status NewWritableFile(const std::string& path, std::unique_ptr<WritableFile>* out,
                                 unsigned mode = 0644) = 0;
  // Creates `path`, which must not exist yet (O_CREAT | O_EXCL): an existing entry of any kind is
  // an error, and a symlink at `path` is never followed, so a link planted where a temporary file
  // is about to be written cannot redirect the write to its target.
  virtual Status NewExclusiveFile(const std::string& path, std::unique_ptr<WritableFile>* out,
                                  unsigned mode = 0644) = 0;
  // The entries of a directory, in no particular order. A directory that cannot be opened or
  // read is an error (partial results are discarded).
  virtual Status GetChildren(const std::string& dir, std::vector<DirEntry>* out) = 0;
  // stat(2) (follows symlinks) and lstat(2).
  virtual Status Stat(const std::string& path, FileInfo* out) = 0;
  virtual Status LinkStat(const std::string& path, FileInfo* out) = 0;
  // True when `path` exists and this process may read it.
  virtual bool IsReadable(const std::string& path) = 0;
  // rename(2): atomic replacement of `to` on one file system.
  virtual Status RenameFile(const std::string& from, const std::string& to) = 0;
  virtual Status RemoveFile(const std::string& path) = 0;
  // mkdir -p with mode 0755 (existing directories are fine).
  virtual Status CreateDirs(const std::string& path) = 0;
  // fsync of a directory, so that a rename or a new entry in it survives a crash.
  virtual Status SyncDir(const std::string& dir) = 0;

  // A process environment variable; nullopt when unset.
  virtual std::optional<std::string> GetEnvVar(const std::string& name) = 0;
  // The names of the set environment variables that start with `prefix` (so that a daemon can
  // point out a misspelled CCMON_… variable instead of ignoring it), sorted.
  virtual std::vector<std::string> GetEnvVarNames(std::string_view prefix) = 0;
};

// Reads a small file (a config, price or token file) whole. Fails with kInvalidArgument, without
// reading further, when the file holds more than `max_bytes` (so /dev/zero cannot exhaust memory).
Status ReadFileToString(Env* env, const std::string& path, size_t max_bytes, std::string* out);
inline constexpr size_t kMaxSmallFileBytes = size_t(64) << 20;

// The directory part of a path ("." for a bare file name).
std::string DirName(const std::string& path);

}  // namespace ccmon
