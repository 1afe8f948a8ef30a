#include "testing/mem_env.h"

#include <errno.h>

#include <algorithm>
#include <cstring>
#include <deque>

namespace ccmon {
namespace testing_util {

struct MemEnv::Inode {
  std::mutex mu;  // guards the content fields below (readers and writers share the inode)
  FileType type = FileType::kRegular;
  std::string data;
  // A generated file: `prefix` then `fill` bytes, `generated_size` bytes in all.
  bool generated = false;
  uint64_t generated_size = 0;
  char fill = '\0';
  std::string link_target;
  int64_t mtime_ms = 0;
  uint64_t inode = 0;
  bool readable = true;

  uint64_t SizeLocked() const { return generated ? generated_size : data.size(); }
};

namespace {

constexpr uint64_t kDevice = 77;

Status Error(const std::string& context, int err) {
  std::string message = context + ": " + std::strerror(err);
  if (err == ENOENT || err == ENOTDIR) return Status::NotFound(std::move(message));
  return Status::IoError(std::move(message));
}

std::vector<std::string> Components(const std::string& path) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    if (j > i) out.push_back(path.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

std::string Join(const std::string& dir, const std::string& name) {
  return dir == "/" ? "/" + name : dir + "/" + name;
}

std::string Parent(const std::string& normalized) {
  size_t cut = normalized.find_last_of('/');
  return cut == 0 ? "/" : normalized.substr(0, cut);
}

class MemSequentialFile final : public SequentialFile {
 public:
  MemSequentialFile(std::shared_ptr<MemEnv::Inode> node, uint64_t pos)
      : node_(std::move(node)), pos_(pos) {}
  Status Read(char* buf, size_t n, size_t* got) override {
    std::lock_guard<std::mutex> lock(node_->mu);
    const uint64_t size = node_->SizeLocked();
    *got = 0;
    if (pos_ >= size) return Status::Ok();
    size_t k = size_t(std::min<uint64_t>(n, size - pos_));
    if (!node_->generated) {
      std::memcpy(buf, node_->data.data() + pos_, k);
    } else {
      size_t from_prefix = 0;
      if (pos_ < node_->data.size()) {
        from_prefix = std::min<size_t>(k, node_->data.size() - size_t(pos_));
        std::memcpy(buf, node_->data.data() + pos_, from_prefix);
      }
      std::memset(buf + from_prefix, node_->fill, k - from_prefix);
    }
    pos_ += k;
    *got = k;
    return Status::Ok();
  }
  // What MemEnv::Stat reports for the entry, from the open inode (it may have been renamed,
  // replaced or removed since).
  Status Stat(FileInfo* out) override {
    std::lock_guard<std::mutex> lock(node_->mu);
    out->type = node_->type;
    out->size = node_->SizeLocked();
    out->mtime_ms = node_->mtime_ms;
    out->device = kDevice;
    out->inode = node_->inode;
    return Status::Ok();
  }
  Status Seek(uint64_t offset) override {
    pos_ = offset;
    return Status::Ok();
  }

 private:
  std::shared_ptr<MemEnv::Inode> node_;
  uint64_t pos_;
};

class MemWritableFile final : public WritableFile {
 public:
  MemWritableFile(std::shared_ptr<MemEnv::Inode> node, std::string path, int64_t mtime_ms)
      : node_(std::move(node)), path_(std::move(path)), mtime_ms_(mtime_ms) {}
  Status Append(std::string_view data) override {
    if (closed_) return Status::IoError(path_ + ": append after close");
    std::lock_guard<std::mutex> lock(node_->mu);
    node_->data.append(data);
    node_->mtime_ms = mtime_ms_;
    return Status::Ok();
  }
  Status Sync() override {
    if (closed_) return Status::IoError(path_ + ": sync after close");
    return Status::Ok();
  }
  Status Close() override {
    closed_ = true;
    return Status::Ok();
  }

 private:
  std::shared_ptr<MemEnv::Inode> node_;
  std::string path_;
  int64_t mtime_ms_;
  bool closed_ = false;
};

}  // namespace

MemEnv::MemEnv() {
  auto root = std::make_shared<Inode>();
  root->type = FileType::kDirectory;
  root->inode = 1;
  entries_["/"] = root;
}

MemEnv::~MemEnv() = default;

std::string MemEnv::Normalize(const std::string& path) {
  std::vector<std::string> out;
  for (const std::string& c : Components(path)) {
    if (c == ".") continue;
    if (c == "..") {
      if (!out.empty()) out.pop_back();
      continue;
    }
    out.push_back(c);
  }
  std::string s;
  for (const std::string& c : out) s += "/" + c;
  return s.empty() ? "/" : s;
}

std::shared_ptr<MemEnv::Inode> MemEnv::Lookup(const std::string& normalized) {
  auto it = entries_.find(normalized);
  return it == entries_.end() ? nullptr : it->second;
}

Status MemEnv::Resolve(const std::string& path, bool follow_last, bool must_exist, const char* call,
                       std::string* resolved) {
  std::deque<std::string> todo;
  for (std::string& c : Components(path)) todo.push_back(std::move(c));
  std::string cur = "/";
  int hops = 0;
  while (!todo.empty()) {
    std::string c = std::move(todo.front());
    todo.pop_front();
    if (c == ".") continue;
    if (c == "..") {
      cur = Parent(cur);
      continue;
    }
    const std::string next = Join(cur, c);
    const bool last = todo.empty();
    std::shared_ptr<Inode> node = Lookup(next);
    if (node == nullptr) {
      if (last && !must_exist) {
        *resolved = next;
        return Status::Ok();
      }
      return Error(path + ": " + call, ENOENT);
    }
    if (node->type == FileType::kSymlink && (!last || follow_last)) {
      if (++hops > 40) return Error(path + ": " + call, ELOOP);
      std::vector<std::string> target = Components(node->link_target);
      if (!node->link_target.empty() && node->link_target[0] == '/') cur = "/";
      todo.insert(todo.begin(), target.begin(), target.end());
      continue;
    }
    if (!last && node->type != FileType::kDirectory) return Error(path + ": " + call, ENOTDIR);
    cur = next;
  }
  *resolved = cur;
  return Status::Ok();
}

void MemEnv::MakeParentsLocked(const std::string& normalized) {
  std::string cur = "/";
  std::vector<std::string> comps = Components(normalized);
  for (size_t i = 0; i + 1 < comps.size(); ++i) {
    cur = Join(cur, comps[i]);
    if (Lookup(cur) == nullptr) {
      auto dir = std::make_shared<Inode>();
      dir->type = FileType::kDirectory;
      dir->inode = next_inode_++;
      dir->mtime_ms = now_ms_;
      entries_[cur] = dir;
    }
  }
}

void MemEnv::AddFile(const std::string& path, std::string content, int64_t mtime_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string p = Normalize(path);
  MakeParentsLocked(p);
  auto node = std::make_shared<Inode>();
  node->data = std::move(content);
  node->mtime_ms = mtime_ms;
  node->inode = next_inode_++;
  entries_[p] = node;
}

void MemEnv::AddGeneratedFile(const std::string& path, std::string prefix, uint64_t size, char fill,
                              int64_t mtime_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string p = Normalize(path);
  MakeParentsLocked(p);
  auto node = std::make_shared<Inode>();
  node->generated = true;
  node->generated_size = size;
  if (prefix.size() > size) prefix.resize(size_t(size));
  node->data = std::move(prefix);
  node->fill = fill;
  node->mtime_ms = mtime_ms;
  node->inode = next_inode_++;
  entries_[p] = node;
}

void MemEnv::AddDir(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string p = Normalize(path);
  MakeParentsLocked(p);
  if (Lookup(p) != nullptr) return;
  auto dir = std::make_shared<Inode>();
  dir->type = FileType::kDirectory;
  dir->inode = next_inode_++;
  dir->mtime_ms = now_ms_;
  entries_[p] = dir;
}

void MemEnv::AddSymlink(const std::string& target, const std::string& link_path) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string p = Normalize(link_path);
  MakeParentsLocked(p);
  auto link = std::make_shared<Inode>();
  link->type = FileType::kSymlink;
  link->link_target = target;
  link->inode = next_inode_++;
  entries_[p] = link;
}

Status MemEnv::AddHardLink(const std::string& existing, const std::string& new_path) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string from;
  Status s = Resolve(existing, /*follow_last=*/false, /*must_exist=*/true, "link", &from);
  if (!s.ok()) return s;
  const std::string p = Normalize(new_path);
  MakeParentsLocked(p);
  entries_[p] = Lookup(from);
  return Status::Ok();
}

Status MemEnv::Truncate(const std::string& path, uint64_t size) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string p;
  Status s = Resolve(path, true, true, "truncate", &p);
  if (!s.ok()) return s;
  std::shared_ptr<Inode> node = Lookup(p);
  std::lock_guard<std::mutex> node_lock(node->mu);
  if (node->generated) {
    node->generated_size = std::min(node->generated_size, size);
    if (node->data.size() > size) node->data.resize(size_t(size));
  } else {
    node->data.resize(size_t(size), '\0');
  }
  return Status::Ok();
}

Status MemEnv::AppendInPlace(const std::string& path, std::string_view data) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string p;
  Status s = Resolve(path, true, true, "append", &p);
  if (!s.ok()) return s;
  std::shared_ptr<Inode> node = Lookup(p);
  std::lock_guard<std::mutex> node_lock(node->mu);
  if (node->generated) return Status::InvalidArgument("append: a generated file");
  node->data.append(data);
  return Status::Ok();
}

Status MemEnv::SetMtime(const std::string& path, int64_t mtime_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string p;
  Status s = Resolve(path, true, true, "utimensat", &p);
  if (!s.ok()) return s;
  std::shared_ptr<Inode> node = Lookup(p);
  std::lock_guard<std::mutex> node_lock(node->mu);
  node->mtime_ms = mtime_ms;
  return Status::Ok();
}

Status MemEnv::SetReadable(const std::string& path, bool readable) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string p;
  Status s = Resolve(path, true, true, "chmod", &p);
  if (!s.ok()) return s;
  std::shared_ptr<Inode> node = Lookup(p);
  std::lock_guard<std::mutex> node_lock(node->mu);
  node->readable = readable;
  return Status::Ok();
}

Status MemEnv::RemoveTree(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string p;
  Status s = Resolve(path, false, true, "remove", &p);
  if (!s.ok()) return s;
  if (p == "/") return Status::InvalidArgument("cannot remove /");
  entries_.erase(p);
  const std::string prefix = p + "/";
  for (auto it = entries_.lower_bound(prefix);
       it != entries_.end() && it->first.compare(0, prefix.size(), prefix) == 0;) {
    it = entries_.erase(it);
  }
  return Status::Ok();
}

std::optional<std::string> MemEnv::Contents(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string p;
  if (!Resolve(path, true, true, "read", &p).ok()) return std::nullopt;
  std::shared_ptr<Inode> node = Lookup(p);
  std::lock_guard<std::mutex> node_lock(node->mu);
  if (node->type != FileType::kRegular) return std::nullopt;
  std::string out = node->data;
  if (node->generated) out.resize(size_t(node->generated_size), node->fill);
  return out;
}

bool MemEnv::Exists(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string p;
  return Resolve(path, false, true, "lstat", &p).ok();
}

std::vector<std::string> MemEnv::AllPaths() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out;
  for (const auto& [path, node] : entries_) out.push_back(path);
  return out;
}

void MemEnv::SetEnvVar(const std::string& name, std::string value) {
  std::lock_guard<std::mutex> lock(mu_);
  env_vars_[name] = std::move(value);
}

void MemEnv::UnsetEnvVar(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  env_vars_.erase(name);
}

void MemEnv::set_now_ms(int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  now_ms_ = now_ms;
}

void MemEnv::set_report_unknown_types(bool on) {
  std::lock_guard<std::mutex> lock(mu_);
  report_unknown_types_ = on;
}

Status MemEnv::NewSequentialFile(const std::string& path, uint64_t offset,
                                 std::unique_ptr<SequentialFile>* out) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string p;
  Status s = Resolve(path, true, true, "open", &p);
  if (!s.ok()) return s;
  std::shared_ptr<Inode> node = Lookup(p);
  {
    std::lock_guard<std::mutex> node_lock(node->mu);
    if (!node->readable) return Error(path + ": open", EACCES);
  }
  // Opening a directory for reading succeeds on Linux; reading it fails with EISDIR. Tests do
  // not need that distinction: refuse at once.
  if (node->type == FileType::kDirectory) return Error(path + ": open", EISDIR);
  *out = std::make_unique<MemSequentialFile>(node, offset);
  return Status::Ok();
}

Status MemEnv::NewWritableFile(const std::string& path, std::unique_ptr<WritableFile>* out,
                               unsigned /*mode*/) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string p;
  Status s = Resolve(path, true, false, "open for writing", &p);
  if (!s.ok()) return s;
  std::shared_ptr<Inode> node = Lookup(p);
  if (node == nullptr) {
    node = std::make_shared<Inode>();
    node->inode = next_inode_++;
    node->mtime_ms = now_ms_;
    entries_[p] = node;
  } else if (node->type == FileType::kDirectory) {
    return Error(path + ": open for writing", EISDIR);
  } else {
    std::lock_guard<std::mutex> node_lock(node->mu);
    node->data.clear();
    node->generated = false;
    node->mtime_ms = now_ms_;
  }
  *out = std::make_unique<MemWritableFile>(node, path, now_ms_);
  return Status::Ok();
}

Status MemEnv::NewExclusiveFile(const std::string& path, std::unique_ptr<WritableFile>* out,
                                unsigned /*mode*/) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string p;
  // The last component is not followed: a symlink there exists, as with O_EXCL.
  Status s = Resolve(path, false, false, "create", &p);
  if (!s.ok()) return s;
  if (Lookup(p) != nullptr) return Error(path + ": create", EEXIST);
  std::shared_ptr<Inode> node = std::make_shared<Inode>();
  node->inode = next_inode_++;
  node->mtime_ms = now_ms_;
  entries_[p] = node;
  *out = std::make_unique<MemWritableFile>(node, path, now_ms_);
  return Status::Ok();
}

Status MemEnv::GetChildren(const std::string& dir, std::vector<DirEntry>* out) {
  out->clear();
  std::lock_guard<std::mutex> lock(mu_);
  std::string p;
  Status s = Resolve(dir, true, true, "opendir", &p);
  if (!s.ok()) return s;
  std::shared_ptr<Inode> node = Lookup(p);
  if (node->type != FileType::kDirectory) return Error(dir + ": opendir", ENOTDIR);
  {
    std::lock_guard<std::mutex> node_lock(node->mu);
    if (!node->readable) return Error(dir + ": opendir", EACCES);
  }
  const std::string prefix = p == "/" ? "/" : p + "/";
  for (auto it = entries_.lower_bound(prefix);
       it != entries_.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
    std::string name = it->first.substr(prefix.size());
    if (name.empty() || name.find('/') != std::string::npos) continue;
    DirEntry e;
    e.name = std::move(name);
    e.type = report_unknown_types_ ? FileType::kUnknown : it->second->type;
    out->push_back(std::move(e));
  }
  return Status::Ok();
}

void MemEnv::StatLocked(const Inode& node, FileInfo* out) {
  out->type = node.type;
  out->size = node.type == FileType::kSymlink ? node.link_target.size() : node.SizeLocked();
  out->mtime_ms = node.mtime_ms;
  out->device = kDevice;
  out->inode = node.inode;
}

Status MemEnv::Stat(const std::string& path, FileInfo* out) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string p;
  Status s = Resolve(path, true, true, "stat", &p);
  if (!s.ok()) return s;
  std::shared_ptr<Inode> node = Lookup(p);
  std::lock_guard<std::mutex> node_lock(node->mu);
  StatLocked(*node, out);
  return Status::Ok();
}

Status MemEnv::LinkStat(const std::string& path, FileInfo* out) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string p;
  Status s = Resolve(path, false, true, "lstat", &p);
  if (!s.ok()) return s;
  std::shared_ptr<Inode> node = Lookup(p);
  std::lock_guard<std::mutex> node_lock(node->mu);
  StatLocked(*node, out);
  return Status::Ok();
}

bool MemEnv::IsReadable(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string p;
  if (!Resolve(path, true, true, "access", &p).ok()) return false;
  std::shared_ptr<Inode> node = Lookup(p);
  std::lock_guard<std::mutex> node_lock(node->mu);
  return node->readable;
}

Status MemEnv::RenameFile(const std::string& from, const std::string& to) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string context = "rename " + from + " to " + to;
  std::string src, dst;
  Status s = Resolve(from, false, true, "rename", &src);
  if (!s.ok()) return Error(context, s.code() == Status::Code::kNotFound ? ENOENT : ENOTDIR);
  s = Resolve(to, false, false, "rename", &dst);
  if (!s.ok()) return Error(context, s.code() == Status::Code::kNotFound ? ENOENT : ENOTDIR);
  if (src == dst) return Status::Ok();
  std::shared_ptr<Inode> node = Lookup(src);
  std::shared_ptr<Inode> old = Lookup(dst);
  if (old != nullptr && old->type == FileType::kDirectory && node->type != FileType::kDirectory) {
    return Error(context, EISDIR);
  }
  // Move the entry and, for a directory, everything below it.
  std::vector<std::pair<std::string, std::shared_ptr<Inode>>> moved;
  const std::string prefix = src + "/";
  for (auto it = entries_.lower_bound(prefix);
       it != entries_.end() && it->first.compare(0, prefix.size(), prefix) == 0;) {
    moved.emplace_back(dst + it->first.substr(src.size()), it->second);
    it = entries_.erase(it);
  }
  entries_.erase(src);
  entries_[dst] = node;
  for (auto& [p, n] : moved) entries_[p] = n;
  return Status::Ok();
}

Status MemEnv::RemoveFile(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string p;
  Status s = Resolve(path, false, true, "unlink", &p);
  if (!s.ok()) return s;
  if (Lookup(p)->type == FileType::kDirectory) return Error(path + ": unlink", EISDIR);
  entries_.erase(p);
  return Status::Ok();
}

Status MemEnv::CreateDirs(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string cur;
  for (const std::string& c : Components(Normalize(path))) {
    cur += "/" + c;
    std::string p;
    Status s = Resolve(cur, true, false, "mkdir", &p);
    if (!s.ok()) return s;
    std::shared_ptr<Inode> node = Lookup(p);
    if (node == nullptr) {
      auto dir = std::make_shared<Inode>();
      dir->type = FileType::kDirectory;
      dir->inode = next_inode_++;
      dir->mtime_ms = now_ms_;
      entries_[p] = dir;
    } else if (node->type != FileType::kDirectory) {
      return Status::IoError(cur + ": exists and is not a directory");
    }
  }
  return Status::Ok();
}

Status MemEnv::SyncDir(const std::string& dir) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string p;
  Status s = Resolve(dir, true, true, "open directory", &p);
  if (!s.ok()) return s;
  if (Lookup(p)->type != FileType::kDirectory) return Error(dir + ": open directory", ENOTDIR);
  return Status::Ok();
}

std::vector<std::string> MemEnv::GetEnvVarNames(std::string_view prefix) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> names;
  for (const auto& [name, value] : env_vars_) {
    if (std::string_view(name).substr(0, prefix.size()) == prefix) names.push_back(name);
  }
  return names;
}

std::optional<std::string> MemEnv::GetEnvVar(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = env_vars_.find(name);
  if (it == env_vars_.end()) return std::nullopt;
  return it->second;
}

}  // namespace testing_util
}  // namespace ccmon
