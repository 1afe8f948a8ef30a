// MemEnv: an in-memory file system behind the Env interface, for unit tests that need files,
// directories, symlinks, mtimes and dev/inode identities without touching the disk.
//
// Paths are absolute ("/a/b"; a relative path is taken from "/"); "." and ".." are resolved
// lexically. Symlinks are followed like the kernel does (Stat, NewSequentialFile, GetChildren and
// every directory on the way; LinkStat does not follow the last one), with ELOOP after 40 hops.
// Errors carry the POSIX Env's messages ("<path>: open: No such file or directory") and codes
// (ENOENT and ENOTDIR are kNotFound). A file opened for reading shares its bytes with the entry, so
// a Truncate() or a writer after the open is seen by the reader, as on a real file system; removing
// the entry leaves open files readable.
//
// Thread-safe (one mutex), so that the scanner's worker threads can use it.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/env.h"

namespace ccmon {
namespace testing_util {

class MemEnv final : public Env {
 public:
  MemEnv();
  ~MemEnv() override;

  // --- Setup and inspection (parents are created as needed; mtimes in epoch ms).
  void AddFile(const std::string& path, std::string content, int64_t mtime_ms = 0);
  // A file of `size` bytes that is `prefix` followed by `fill` bytes, generated as it is read
  // (a 1 GiB crash-zeroed tail costs no memory). Reads stop at the current size.
  void AddGeneratedFile(const std::string& path, std::string prefix, uint64_t size,
                        char fill = '\0', int64_t mtime_ms = 0);
  void AddDir(const std::string& path);
  void AddSymlink(const std::string& target, const std::string& link_path);
  // A second name for an existing file (same inode).
  Status AddHardLink(const std::string& existing, const std::string& new_path);
  Status Truncate(const std::string& path, uint64_t size);
  // Appends to an existing file (same inode: a writer appending while others read).
  Status AppendInPlace(const std::string& path, std::string_view data);
  Status SetMtime(const std::string& path, int64_t mtime_ms);
  // An unreadable file or directory (mode 000 for a non-root user): opening or listing it fails
  // with EACCES; Stat and LinkStat still work.
  Status SetReadable(const std::string& path, bool readable);
  // Removes a directory with everything below it (or a file, or a symlink itself).
  Status RemoveTree(const std::string& path);
  std::optional<std::string> Contents(const std::string& path);
  bool Exists(const std::string& path);
  // Every path of the tree (files, directories, symlinks), sorted.
  std::vector<std::string> AllPaths();

  void SetEnvVar(const std::string& name, std::string value);
  void UnsetEnvVar(const std::string& name);
  // Stamped on files written through NewWritableFile.
  void set_now_ms(int64_t now_ms);
  // GetChildren reports every entry as FileType::kUnknown (as some file systems do), so that the
  // caller must stat.
  void set_report_unknown_types(bool on);

  // --- Env
  Status NewSequentialFile(const std::string& path, uint64_t offset,
                           std::unique_ptr<SequentialFile>* out) override;
  Status NewWritableFile(const std::string& path, std::unique_ptr<WritableFile>* out,
                         unsigned mode = 0644) override;
  Status NewExclusiveFile(const std::string& path, std::unique_ptr<WritableFile>* out,
                          unsigned mode = 0644) override;
  Status GetChildren(const std::string& dir, std::vector<DirEntry>* out) override;
  Status Stat(const std::string& path, FileInfo* out) override;
  Status LinkStat(const std::string& path, FileInfo* out) override;
  bool IsReadable(const std::string& path) override;
  Status RenameFile(const std::string& from, const std::string& to) override;
  Status RemoveFile(const std::string& path) override;
  Status CreateDirs(const std::string& path) override;
  Status SyncDir(const std::string& dir) override;
  std::optional<std::string> GetEnvVar(const std::string& name) override;
  std::vector<std::string> GetEnvVarNames(std::string_view prefix) override;

  struct Inode;  // public for the file classes in mem_env.cc

 private:
  // The absolute, lexically normalised form of `path` ("/" for the root).
  static std::string Normalize(const std::string& path);
  // Resolves symlinks along `path`; *resolved is the normalised path of the final entry (which
  // need not exist when `must_exist` is false, but its directory must).
  Status Resolve(const std::string& path, bool follow_last, bool must_exist, const char* call,
                 std::string* resolved);
  std::shared_ptr<Inode> Lookup(const std::string& normalized);
  void MakeParentsLocked(const std::string& normalized);
  void StatLocked(const Inode& node, FileInfo* out);

  std::mutex mu_;
  std::map<std::string, std::shared_ptr<Inode>> entries_;  // normalised path -> inode
  std::map<std::string, std::string> env_vars_;
  uint64_t next_inode_ = 2;
  int64_t now_ms_ = 0;
  bool report_unknown_types_ = false;
};

}  // namespace testing_util
}  // namespace ccmon
