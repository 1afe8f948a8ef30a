// Shared by the agent_cli tests: the real POSIX Env with a private environment (so tests never
// read or change the process environment), and a fake CommandRunner.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "agent/cli/notify.h"
#include "base/env.h"

namespace ccmon {
namespace testing_util {

class PosixEnvWithVars : public Env {
 public:
  explicit PosixEnvWithVars(std::map<std::string, std::string> vars = {})
      : base_(Env::Default()), vars_(std::move(vars)) {}
  void Set(const std::string& k, const std::string& v) { vars_[k] = v; }
  Status NewSequentialFile(const std::string& p, uint64_t o,
                           std::unique_ptr<SequentialFile>* out) override {
    return base_->NewSequentialFile(p, o, out);
  }
  Status NewWritableFile(const std::string& p, std::unique_ptr<WritableFile>* out,
                         unsigned mode) override {
    return base_->NewWritableFile(p, out, mode);
  }
  Status NewExclusiveFile(const std::string& p, std::unique_ptr<WritableFile>* out,
                          unsigned mode) override {
    return base_->NewExclusiveFile(p, out, mode);
  }
  Status GetChildren(const std::string& d, std::vector<DirEntry>* out) override {
    return base_->GetChildren(d, out);
  }
  Status Stat(const std::string& p, FileInfo* out) override { return base_->Stat(p, out); }
  Status LinkStat(const std::string& p, FileInfo* out) override { return base_->LinkStat(p, out); }
  bool IsReadable(const std::string& p) override { return base_->IsReadable(p); }
  Status RenameFile(const std::string& f, const std::string& t) override {
    return base_->RenameFile(f, t);
  }
  Status RemoveFile(const std::string& p) override { return base_->RemoveFile(p); }
  Status CreateDirs(const std::string& p) override { return base_->CreateDirs(p); }
  Status SyncDir(const std::string& d) override { return base_->SyncDir(d); }
  std::optional<std::string> GetEnvVar(const std::string& name) override {
    auto it = vars_.find(name);
    if (it == vars_.end()) return std::nullopt;
    return it->second;
  }
  std::vector<std::string> GetEnvVarNames(std::string_view prefix) override {
    std::vector<std::string> names;
    for (const auto& [name, value] : vars_) {
      if (std::string_view(name).substr(0, prefix.size()) == prefix) names.push_back(name);
    }
    return names;
  }

 private:
  Env* base_;
  std::map<std::string, std::string> vars_;
};

class FakeCommandRunner : public CommandRunner {
 public:
  bool InPath(const std::string& program) override {
    std::lock_guard<std::mutex> lock(mu_);
    return installed.count(program) > 0;
  }
  Status Start(const std::vector<std::string>& argv) override {
    std::lock_guard<std::mutex> lock(mu_);
    started.push_back(argv);
    return fail_start ? Status::IoError("spawn failed") : Status::Ok();
  }
  std::vector<std::vector<std::string>> Started() {
    std::lock_guard<std::mutex> lock(mu_);
    return started;
  }
  std::set<std::string> installed;
  bool fail_start = false;

 private:
  std::mutex mu_;
  std::vector<std::vector<std::string>> started;
};

}  // namespace testing_util
}  // namespace ccmon
