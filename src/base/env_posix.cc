// The POSIX Env (base/env.h).
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "base/env.h"

namespace ccmon {
namespace {

// ENOENT and ENOTDIR are kNotFound (a file or directory that is not there, or vanished, or a
// path through a file), everything else kIoError; the message names the path and the call.
Status PosixError(const std::string& context, int err) {
  std::string message = context + ": " + std::strerror(err);
  if (err == ENOENT || err == ENOTDIR) return Status::NotFound(std::move(message));
  return Status::IoError(std::move(message));
}

class PosixSequentialFile final : public SequentialFile {
 public:
  PosixSequentialFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~PosixSequentialFile() override { ::close(fd_); }

  Status Read(char* buf, size_t n, size_t* got) override {
    for (;;) {
      ssize_t r = ::read(fd_, buf, n);
      if (r >= 0) {
        *got = size_t(r);
        return Status::Ok();
      }
      if (errno == EINTR) continue;
      return PosixError(path_ + ": read", errno);
    }
  }

  Status Stat(FileInfo* out) override;  // below FillInfo
  Status Seek(uint64_t offset) override {
    if (::lseek(fd_, off_t(offset), SEEK_SET) < 0) return PosixError(path_ + ": seek", errno);
    return Status::Ok();
  }

 private:
  int fd_;
  std::string path_;
};

class PosixWritableFile final : public WritableFile {
 public:
  PosixWritableFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~PosixWritableFile() override {
    if (fd_ >= 0) ::close(fd_);
  }

  Status Append(std::string_view data) override {
    if (fd_ < 0) return Status::IoError(path_ + ": append after close");
    // Small appends are gathered so that writers of many short pieces do few syscalls.
    if (buffer_.size() + data.size() <= kBufferBytes) {
      buffer_.append(data);
      return Status::Ok();
    }
    Status s = FlushBuffer();
    if (!s.ok()) return s;
    if (data.size() <= kBufferBytes) {
      buffer_.append(data);
      return Status::Ok();
    }
    return WriteAll(data.data(), data.size());
  }

  Status Sync() override {
    Status s = FlushBuffer();
    if (!s.ok()) return s;
    if (::fsync(fd_) != 0) return PosixError(path_ + ": fsync", errno);
    return Status::Ok();
  }

  Status Close() override {
    if (fd_ < 0) return Status::Ok();
    Status s = FlushBuffer();
    if (::close(fd_) != 0 && s.ok()) s = PosixError(path_ + ": close", errno);
    fd_ = -1;
    return s;
  }

 private:
  static constexpr size_t kBufferBytes = 64 << 10;

  Status FlushBuffer() {
    if (buffer_.empty()) return Status::Ok();
    Status s = WriteAll(buffer_.data(), buffer_.size());
    buffer_.clear();
    return s;
  }
  Status WriteAll(const char* p, size_t n) {
    while (n > 0) {
      ssize_t w = ::write(fd_, p, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        return PosixError(path_ + ": write", errno);
      }
      p += w;
      n -= size_t(w);
    }
    return Status::Ok();
  }

  int fd_;
  std::string path_;
  std::string buffer_;
};

FileType TypeOfMode(mode_t m) {
  if (S_ISREG(m)) return FileType::kRegular;
  if (S_ISDIR(m)) return FileType::kDirectory;
  if (S_ISLNK(m)) return FileType::kSymlink;
  return FileType::kOther;
}

void FillInfo(const struct stat& st, FileInfo* out) {
  out->type = TypeOfMode(st.st_mode);
  out->size = uint64_t(st.st_size);
  out->mtime_ms = int64_t(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1000000;
  out->device = uint64_t(st.st_dev);
  out->inode = uint64_t(st.st_ino);
}

Status PosixSequentialFile::Stat(FileInfo* out) {
  struct stat st;
  if (::fstat(fd_, &st) != 0) return PosixError(path_ + ": fstat", errno);
  FillInfo(st, out);
  return Status::Ok();
}

class PosixEnv final : public Env {
 public:
  Status NewSequentialFile(const std::string& path, uint64_t offset,
                           std::unique_ptr<SequentialFile>* out) override {
    // Opened without waiting for a FIFO's writer (a transcript path swapped for a FIFO after it
    // was listed as a regular file blocked here for ever); reads then wait as usual, and a FIFO
    // without a writer reads as empty.
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return PosixError(path + ": open", errno);
    if (const int flags = ::fcntl(fd, F_GETFL);
        flags < 0 || ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0) {
      Status s = PosixError(path + ": fcntl", errno);
      ::close(fd);
      return s;
    }
    if (offset > 0 && ::lseek(fd, off_t(offset), SEEK_SET) < 0) {
      Status s = PosixError(path + ": seek", errno);
      ::close(fd);
      return s;
    }
    *out = std::make_unique<PosixSequentialFile>(fd, path);
    return Status::Ok();
  }

  Status NewWritableFile(const std::string& path, std::unique_ptr<WritableFile>* out,
                         unsigned mode) override {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode_t(mode));
    if (fd < 0) return PosixError(path + ": open for writing", errno);
    *out = std::make_unique<PosixWritableFile>(fd, path);
    return Status::Ok();
  }

  Status NewExclusiveFile(const std::string& path, std::unique_ptr<WritableFile>* out,
                          unsigned mode) override {
    int fd =
        ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode_t(mode));
    if (fd < 0) return PosixError(path + ": create", errno);
    *out = std::make_unique<PosixWritableFile>(fd, path);
    return Status::Ok();
  }

  Status GetChildren(const std::string& dir, std::vector<DirEntry>* out) override {
    out->clear();
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return PosixError(dir + ": opendir", errno);
    for (;;) {
      errno = 0;
      struct dirent* e = ::readdir(d);
      if (e == nullptr) {
        int err = errno;
        ::closedir(d);
        if (err != 0) {
          out->clear();
          return PosixError(dir + ": readdir", err);
        }
        return Status::Ok();
      }
      if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
      DirEntry entry;
      entry.name = e->d_name;
      switch (e->d_type) {
        case DT_REG:
          entry.type = FileType::kRegular;
          break;
        case DT_DIR:
          entry.type = FileType::kDirectory;
          break;
        case DT_LNK:
          entry.type = FileType::kSymlink;
          break;
        case DT_UNKNOWN:
          entry.type = FileType::kUnknown;
          break;
        default:
          entry.type = FileType::kOther;
          break;
      }
      out->push_back(std::move(entry));
    }
  }

  Status Stat(const std::string& path, FileInfo* out) override {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return PosixError(path + ": stat", errno);
    FillInfo(st, out);
    return Status::Ok();
  }

  Status LinkStat(const std::string& path, FileInfo* out) override {
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) return PosixError(path + ": lstat", errno);
    FillInfo(st, out);
    return Status::Ok();
  }

  bool IsReadable(const std::string& path) override { return ::access(path.c_str(), R_OK) == 0; }

  Status RenameFile(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0)
      return PosixError("rename " + from + " to " + to, errno);
    return Status::Ok();
  }

  Status RemoveFile(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return PosixError(path + ": unlink", errno);
    return Status::Ok();
  }

  Status CreateDirs(const std::string& path) override {
    if (path.empty()) return Status::Ok();
    struct stat st;
    if (::stat(path.c_str(), &st) == 0) {
      if (S_ISDIR(st.st_mode)) return Status::Ok();
      return Status::IoError(path + ": exists and is not a directory");
    }
    const std::string parent = DirName(path);
    if (parent != path && parent != "." && parent != "/") {
      Status s = CreateDirs(parent);
      if (!s.ok()) return s;
    }
    if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST)
      return PosixError(path + ": mkdir", errno);
    return Status::Ok();
  }

  Status SyncDir(const std::string& dir) override {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return PosixError(dir + ": open directory", errno);
    Status s;
    if (::fsync(fd) != 0) s = PosixError(dir + ": fsync", errno);
    ::close(fd);
    return s;
  }

  std::optional<std::string> GetEnvVar(const std::string& name) override {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  }

  std::vector<std::string> GetEnvVarNames(std::string_view prefix) override {
    std::vector<std::string> names;
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
      const std::string_view entry(*e);
      const size_t eq = entry.find('=');
      const std::string_view name = entry.substr(0, eq);
      if (name.substr(0, prefix.size()) == prefix) names.emplace_back(name);
    }
    std::sort(names.begin(), names.end());
    return names;
  }
};

}  // namespace

Env* Env::Default() {
  static Env* env = new PosixEnv;  // never destroyed: usable from any static destructor
  return env;
}

Status ReadFileToString(Env* env, const std::string& path, size_t max_bytes, std::string* out) {
  out->clear();
  auto too_large = [&] {
    out->clear();
    return Status::InvalidArgument(path + ": larger than " + std::to_string(max_bytes) +
                                   " bytes, not read");
  };
  // A regular file's size is known: one over the cap is refused without reading. Devices and
  // pipes (/dev/zero) report no size and are cut off by the read loop below.
  FileInfo info;
  if (env->Stat(path, &info).ok() && info.type == FileType::kRegular && info.size > max_bytes) {
    return too_large();
  }
  std::unique_ptr<SequentialFile> file;
  Status s = env->NewSequentialFile(path, 0, &file);
  if (!s.ok()) return s;
  char buf[64 << 10];
  for (;;) {
    size_t got = 0;
    s = file->Read(buf, sizeof buf, &got);
    if (!s.ok()) return s;
    if (got == 0) return Status::Ok();
    if (out->size() + got > max_bytes) return too_large();
    out->append(buf, got);
  }
}

std::string DirName(const std::string& path) {
  size_t cut = path.find_last_of('/');
  if (cut == std::string::npos) return ".";
  if (cut == 0) return "/";
  return path.substr(0, cut);
}

}  // namespace ccmon
