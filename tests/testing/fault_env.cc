#include "testing/fault_env.h"

#include <cstring>

namespace ccmon {
namespace testing_util {

const char* FaultOpName(FaultOp op) {
  switch (op) {
    case FaultOp::kNewSequentialFile:
      return "open";
    case FaultOp::kNewWritableFile:
      return "open for writing";
    case FaultOp::kRead:
      return "read";
    case FaultOp::kAppend:
      return "write";
    case FaultOp::kSync:
      return "fsync";
    case FaultOp::kClose:
      return "close";
    case FaultOp::kGetChildren:
      return "opendir";
    case FaultOp::kStat:
      return "stat";
    case FaultOp::kLinkStat:
      return "lstat";
    case FaultOp::kRename:
      return "rename";
    case FaultOp::kRemoveFile:
      return "unlink";
    case FaultOp::kCreateDirs:
      return "mkdir";
    case FaultOp::kSyncDir:
      return "fsync directory";
    case FaultOp::kFileStat:
      return "fstat";
    case FaultOp::kSeek:
      return "seek";
  }
  return "?";
}

namespace {

class FaultSequentialFile final : public SequentialFile {
 public:
  FaultSequentialFile(FaultEnv* env, std::string path, std::unique_ptr<SequentialFile> base)
      : env_(env), path_(std::move(path)), base_(std::move(base)) {}
  Status Read(char* buf, size_t n, size_t* got) override {
    *got = 0;
    Status s = env_->Check(FaultOp::kRead, path_);
    if (!s.ok()) return s;
    s = base_->Read(buf, n, got);
    if (s.ok()) env_->CountRead(n, *got);
    return s;
  }
  Status Stat(FileInfo* out) override {
    Status s = env_->Check(FaultOp::kFileStat, path_);
    return s.ok() ? base_->Stat(out) : s;
  }
  Status Seek(uint64_t offset) override {
    Status s = env_->Check(FaultOp::kSeek, path_);
    return s.ok() ? base_->Seek(offset) : s;
  }

 private:
  FaultEnv* env_;
  std::string path_;
  std::unique_ptr<SequentialFile> base_;
};

class FaultWritableFile final : public WritableFile {
 public:
  FaultWritableFile(FaultEnv* env, std::string path, std::unique_ptr<WritableFile> base)
      : env_(env), path_(std::move(path)), base_(std::move(base)) {}
  Status Append(std::string_view data) override {
    Status s = env_->Check(FaultOp::kAppend, path_);
    return s.ok() ? base_->Append(data) : s;
  }
  Status Sync() override {
    Status s = env_->Check(FaultOp::kSync, path_);
    return s.ok() ? base_->Sync() : s;
  }
  Status Close() override {
    Status s = env_->Check(FaultOp::kClose, path_);
    Status closed = base_->Close();  // a failed close(2) still releases the descriptor
    return s.ok() ? closed : s;
  }

 private:
  FaultEnv* env_;
  std::string path_;
  std::unique_ptr<WritableFile> base_;
};

}  // namespace

FaultEnv::FaultEnv(Env* base) : base_(base) {}
FaultEnv::~FaultEnv() = default;

void FaultEnv::Inject(Fault fault) {
  std::lock_guard<std::mutex> lock(mu_);
  faults_.push_back({std::move(fault), 0});
}

void FaultEnv::OnCall(FaultOp op, std::string path_contains,
                      std::function<void(const std::string&)> hook) {
  std::lock_guard<std::mutex> lock(mu_);
  hooks_.push_back({op, std::move(path_contains), std::move(hook)});
}

void FaultEnv::ClearFaults() {
  std::lock_guard<std::mutex> lock(mu_);
  faults_.clear();
  hooks_.clear();
}

int FaultEnv::calls(FaultOp op) {
  std::lock_guard<std::mutex> lock(mu_);
  return calls_[op];
}

int FaultEnv::failures(FaultOp op) {
  std::lock_guard<std::mutex> lock(mu_);
  return failures_[op];
}

uint64_t FaultEnv::bytes_read() {
  std::lock_guard<std::mutex> lock(mu_);
  return bytes_read_;
}

size_t FaultEnv::max_read_request() {
  std::lock_guard<std::mutex> lock(mu_);
  return max_read_request_;
}

void FaultEnv::CountRead(size_t requested, size_t got) {
  std::lock_guard<std::mutex> lock(mu_);
  bytes_read_ += got;
  max_read_request_ = std::max(max_read_request_, requested);
}

Status FaultEnv::Check(FaultOp op, const std::string& path, const std::string& path2) {
  auto matches = [&](const std::string& needle) {
    return path.find(needle) != std::string::npos ||
           (!path2.empty() && path2.find(needle) != std::string::npos);
  };
  std::vector<std::function<void(const std::string&)>> to_run;
  int error = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++calls_[op];
    for (const Hook& h : hooks_) {
      if (h.op == op && matches(h.path_contains)) to_run.push_back(h.fn);
    }
    for (ActiveFault& f : faults_) {
      if (f.fault.op != op || !matches(f.fault.path_contains)) continue;
      const int n = ++f.matched;
      const bool hit = n >= f.fault.nth && (f.fault.times < 0 || n < f.fault.nth + f.fault.times);
      if (hit && error == 0) error = f.fault.error;
    }
    if (error != 0) ++failures_[op];
  }
  for (auto& fn : to_run) fn(path);
  if (error == 0) return Status::Ok();
  const std::string context =
      op == FaultOp::kRename ? "rename " + path + " to " + path2 : path + ": " + FaultOpName(op);
  std::string message = context + ": " + std::strerror(error);
  if (error == ENOENT || error == ENOTDIR) return Status::NotFound(std::move(message));
  return Status::IoError(std::move(message));
}

Status FaultEnv::NewSequentialFile(const std::string& path, uint64_t offset,
                                   std::unique_ptr<SequentialFile>* out) {
  Status s = Check(FaultOp::kNewSequentialFile, path);
  if (!s.ok()) return s;
  std::unique_ptr<SequentialFile> base;
  s = base_->NewSequentialFile(path, offset, &base);
  if (!s.ok()) return s;
  *out = std::make_unique<FaultSequentialFile>(this, path, std::move(base));
  return Status::Ok();
}

Status FaultEnv::NewWritableFile(const std::string& path, std::unique_ptr<WritableFile>* out,
                                 unsigned mode) {
  Status s = Check(FaultOp::kNewWritableFile, path);
  if (!s.ok()) return s;
  std::unique_ptr<WritableFile> base;
  s = base_->NewWritableFile(path, &base, mode);
  if (!s.ok()) return s;
  *out = std::make_unique<FaultWritableFile>(this, path, std::move(base));
  return Status::Ok();
}

// Faults of FaultOp::kNewWritableFile apply to both ways of creating a file.
Status FaultEnv::NewExclusiveFile(const std::string& path, std::unique_ptr<WritableFile>* out,
                                  unsigned mode) {
  Status s = Check(FaultOp::kNewWritableFile, path);
  if (!s.ok()) return s;
  std::unique_ptr<WritableFile> base;
  s = base_->NewExclusiveFile(path, &base, mode);
  if (!s.ok()) return s;
  *out = std::make_unique<FaultWritableFile>(this, path, std::move(base));
  return Status::Ok();
}

Status FaultEnv::GetChildren(const std::string& dir, std::vector<DirEntry>* out) {
  out->clear();
  Status s = Check(FaultOp::kGetChildren, dir);
  return s.ok() ? base_->GetChildren(dir, out) : s;
}

Status FaultEnv::Stat(const std::string& path, FileInfo* out) {
  Status s = Check(FaultOp::kStat, path);
  return s.ok() ? base_->Stat(path, out) : s;
}

Status FaultEnv::LinkStat(const std::string& path, FileInfo* out) {
  Status s = Check(FaultOp::kLinkStat, path);
  return s.ok() ? base_->LinkStat(path, out) : s;
}

bool FaultEnv::IsReadable(const std::string& path) { return base_->IsReadable(path); }

Status FaultEnv::RenameFile(const std::string& from, const std::string& to) {
  Status s = Check(FaultOp::kRename, from, to);
  return s.ok() ? base_->RenameFile(from, to) : s;
}

Status FaultEnv::RemoveFile(const std::string& path) {
  Status s = Check(FaultOp::kRemoveFile, path);
  return s.ok() ? base_->RemoveFile(path) : s;
}

Status FaultEnv::CreateDirs(const std::string& path) {
  Status s = Check(FaultOp::kCreateDirs, path);
  return s.ok() ? base_->CreateDirs(path) : s;
}

Status FaultEnv::SyncDir(const std::string& dir) {
  Status s = Check(FaultOp::kSyncDir, dir);
  return s.ok() ? base_->SyncDir(dir) : s;
}

std::vector<std::string> FaultEnv::GetEnvVarNames(std::string_view prefix) {
  return base_->GetEnvVarNames(prefix);
}

std::optional<std::string> FaultEnv::GetEnvVar(const std::string& name) {
  return base_->GetEnvVar(name);
}

}  // namespace testing_util
}  // namespace ccmon
