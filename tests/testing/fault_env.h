// FaultEnv: wraps another Env and makes chosen calls fail, as a full disk, a failing disk, a
// process out of file descriptors or a directory removed by someone else would. Everything else
// is forwarded to the wrapped Env; files it opens are wrapped too, so that their reads, appends,
// syncs and closes can fail.
//
//   FaultEnv env(&mem);
//   env.Inject(Fault(FaultOp::kAppend, ENOSPC));                  // the first Append fails
//   env.Inject(Fault(FaultOp::kGetChildren, EMFILE).Nth(3).OnPath("/sess-2"));
//   env.OnCall(FaultOp::kRead, "big.jsonl", [&](const std::string&) { mem.Truncate(...); });
//
// A fault matches calls of its operation whose path contains `path_contains`; the `nth` matching
// call fails, and the `times - 1` matching calls after it (times < 0: every later one). The
// error is `error` (an errno: ENOENT and ENOTDIR give kNotFound, others kIoError) with the POSIX
// Env's message shape "<path>: <call>: <strerror>". Calls are counted per operation (calls()),
// and bytes delivered by reads are summed (bytes_read()), so tests can bound the work done.
//
// Thread-safe. The wrapped Env is borrowed.
#pragma once

#include <cerrno>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <ostream>
#include <string>
#include <vector>

#include "base/env.h"

namespace ccmon {
namespace testing_util {

enum class FaultOp {
  kNewSequentialFile,
  kNewWritableFile,  // NewWritableFile and NewExclusiveFile
  kRead,
  kAppend,
  kSync,
  kClose,
  kGetChildren,
  kStat,
  kLinkStat,
  kRename,  // matched against both names
  kRemoveFile,
  kCreateDirs,
  kSyncDir,
  kFileStat,  // SequentialFile::Stat (fstat of an open file)
  kSeek,      // SequentialFile::Seek
};
const char* FaultOpName(FaultOp op);
// gtest prints parameters with it.
inline void PrintTo(FaultOp op, std::ostream* os) { *os << FaultOpName(op); }

struct Fault {
  explicit Fault(FaultOp fault_op, int errno_value = EIO) : op(fault_op), error(errno_value) {}
  Fault& Nth(int n) {
    nth = n;
    return *this;
  }
  Fault& Times(int n) {
    times = n;
    return *this;
  }
  Fault& OnPath(std::string substring) {
    path_contains = std::move(substring);
    return *this;
  }

  FaultOp op;
  int error;
  int nth = 1;
  int times = 1;
  std::string path_contains;
};

class FaultEnv final : public Env {
 public:
  explicit FaultEnv(Env* base);
  ~FaultEnv() override;

  void Inject(Fault fault);
  // Runs `hook(path)` before every matching call is forwarded (or fails), e.g. to remove a
  // directory in the wrapped Env while a walk is under way. Hooks run without FaultEnv's lock.
  void OnCall(FaultOp op, std::string path_contains, std::function<void(const std::string&)> hook);
  void ClearFaults();

  int calls(FaultOp op);
  int failures(FaultOp op);
  uint64_t bytes_read();
  // The largest single Read() request seen (the reader's buffer size).
  size_t max_read_request();

  // --- Env
  Status NewSequentialFile(const std::string& path, uint64_t offset,
                           std::unique_ptr<SequentialFile>* out) override;
  Status NewExclusiveFile(const std::string& path, std::unique_ptr<WritableFile>* out,
                          unsigned mode = 0644) override;
  Status NewWritableFile(const std::string& path, std::unique_ptr<WritableFile>* out,
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

  // Called by the wrapped files. Returns the injected error for this call, or OK.
  Status Check(FaultOp op, const std::string& path, const std::string& path2 = "");
  void CountRead(size_t requested, size_t got);

 private:
  struct Hook {
    FaultOp op;
    std::string path_contains;
    std::function<void(const std::string&)> fn;
  };
  struct ActiveFault {
    Fault fault;
    int matched = 0;
  };

  Env* base_;
  std::mutex mu_;
  std::vector<ActiveFault> faults_;
  std::vector<Hook> hooks_;
  std::map<FaultOp, int> calls_, failures_;
  uint64_t bytes_read_ = 0;
  size_t max_read_request_ = 0;
};

}  // namespace testing_util
}  // namespace ccmon
