// Helpers of the tools' tests: a temporary directory, and an Env over the real file system
// (Env::Default()) that can be told to fail the way a full disk or a broken rename does, for the
// tests of the tools' output files. Files are real, so a test can check what is left in a
// directory after a failure.
#pragma once

#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/env.h"

namespace ccmon {
namespace testing_tools {

// A fresh directory under /tmp, removed recursively at destruction.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = "/tmp/ccmon_tools_test_XXXXXX";
    if (::mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }

 private:
  std::string path_;
};

// Writes `content` to `path` (creating parent directories).
inline void WriteFile(const std::string& path, const std::string& content) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << content;
}

class FailingEnv : public Env {
 public:
  // Appends fail (as ENOSPC) once this many bytes have been appended to files opened for
  // writing through this Env; nullopt: never.
  std::optional<uint64_t> disk_bytes;
  bool fail_rename = false;
  std::vector<std::string> renamed;  // "from -> to" of the renames that succeeded

  Status NewSequentialFile(const std::string& path, uint64_t offset,
                           std::unique_ptr<SequentialFile>* out) override {
    return base_->NewSequentialFile(path, offset, out);
  }
  Status NewWritableFile(const std::string& path, std::unique_ptr<WritableFile>* out,
                         unsigned mode) override {
    std::unique_ptr<WritableFile> file;
    Status s = base_->NewWritableFile(path, &file, mode);
    if (!s.ok()) return s;
    *out = std::make_unique<File>(this, path, std::move(file));
    return Status::Ok();
  }
  Status GetChildren(const std::string& dir, std::vector<DirEntry>* out) override {
    return base_->GetChildren(dir, out);
  }
  Status Stat(const std::string& path, FileInfo* out) override { return base_->Stat(path, out); }
  Status LinkStat(const std::string& path, FileInfo* out) override {
    return base_->LinkStat(path, out);
  }
  bool IsReadable(const std::string& path) override { return base_->IsReadable(path); }
  Status RenameFile(const std::string& from, const std::string& to) override {
    if (fail_rename) return Status::IoError("rename " + from + " to " + to + ": injected failure");
    Status s = base_->RenameFile(from, to);
    if (s.ok()) renamed.push_back(from + " -> " + to);
    return s;
  }
  Status RemoveFile(const std::string& path) override { return base_->RemoveFile(path); }
  Status CreateDirs(const std::string& path) override { return base_->CreateDirs(path); }
  Status SyncDir(const std::string& dir) override { return base_->SyncDir(dir); }
  std::optional<std::string> GetEnvVar(const std::string& name) override {
    return base_->GetEnvVar(name);
  }

 private:
  class File : public WritableFile {
   public:
    File(FailingEnv* env, std::string path, std::unique_ptr<WritableFile> file)
        : env_(env), path_(std::move(path)), file_(std::move(file)) {}
    Status Append(std::string_view data) override {
      if (env_->disk_bytes) {
        if (*env_->disk_bytes < data.size()) {
          // A full disk takes what fits, then refuses.
          Status s = file_->Append(data.substr(0, *env_->disk_bytes));
          env_->disk_bytes = 0;
          if (!s.ok()) return s;
          return Status::IoError(path_ + ": write: No space left on device");
        }
        *env_->disk_bytes -= data.size();
      }
      return file_->Append(data);
    }
    Status Sync() override { return file_->Sync(); }
    Status Close() override { return file_->Close(); }

   private:
    FailingEnv* env_;
    std::string path_;
    std::unique_ptr<WritableFile> file_;
  };

  Env* base_ = Env::Default();
};

}  // namespace testing_tools
}  // namespace ccmon
