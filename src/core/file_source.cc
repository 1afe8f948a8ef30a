#include "core/file_source.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstring>

namespace ccmon {
namespace {

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
      return Status::IoError(path_ + ": read: " + std::strerror(errno));
    }
  }

 private:
  int fd_;
  std::string path_;
};

}  // namespace

Status OpenSequentialFile(const std::string& path, uint64_t offset,
                          std::unique_ptr<SequentialFile>* out) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::IoError(path + ": open: " + std::strerror(errno));
  if (offset > 0 && ::lseek(fd, off_t(offset), SEEK_SET) < 0) {
    Status s = Status::IoError(path + ": seek: " + std::strerror(errno));
    ::close(fd);
    return s;
  }
  *out = std::make_unique<PosixSequentialFile>(fd, path);
  return Status::Ok();
}

Status ReadSmallFile(const std::string& path, std::string* out) {
  std::unique_ptr<SequentialFile> file;
  Status s = OpenSequentialFile(path, 0, &file);
  if (!s.ok()) return s;
  out->clear();
  char buf[64 << 10];
  for (;;) {
    size_t got = 0;
    s = file->Read(buf, sizeof buf, &got);
    if (!s.ok()) return s;
    if (got == 0) return Status::Ok();
    out->append(buf, got);
  }
}

}  // namespace ccmon
