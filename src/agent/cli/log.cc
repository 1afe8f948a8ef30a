#include "agent/cli/log.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "base/timeutil.h"
#include "base/utf8.h"

namespace ccmon {
namespace {

std::string FormatTimestamp(int64_t unix_ms) {
  const int64_t day = FloorDiv(unix_ms, 86400000);
  const int64_t ms_of_day = unix_ms - day * 86400000;
  int y = 0;
  unsigned m = 0, d = 0;
  CivilFromDays(day, &y, &m, &d);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", y, m, d,
                int(ms_of_day / 3600000), int(ms_of_day / 60000 % 60), int(ms_of_day / 1000 % 60),
                int(ms_of_day % 1000));
  return buf;
}

bool IsKeyChar(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; }

bool IsBare(std::string_view v) {
  if (v.empty()) return false;
  for (char c : v) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f || c == '"' || c == '=' || c == '\\') return false;
  }
  return true;
}

// Length of the valid UTF-8 sequence at the start of `s`, 0 if it is not one.
size_t Utf8SequenceLength(std::string_view s) {
  const auto b = static_cast<unsigned char>(s[0]);
  const size_t n = b < 0xc0 ? 0 : b < 0xe0 ? 2 : b < 0xf0 ? 3 : b < 0xf8 ? 4 : 0;
  if (n == 0 || s.size() < n) return 0;
  return IsValidUtf8(s.substr(0, n)) ? n : 0;
}

}  // namespace

const char* LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

std::string LogfmtValue(std::string_view v) {
  if (IsBare(v)) return std::string(v);
  std::string out = "\"";
  for (size_t i = 0; i < v.size();) {
    const char c = v[i];
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      out += buf;
    } else if (u >= 0x80) {
      const size_t n = Utf8SequenceLength(v.substr(i));
      // C1 controls (U+0080..U+009F: 0xc2 0x80..0x9f) are escaped like C0 ones.
      const bool c1 = n == 2 && u == 0xc2 && static_cast<unsigned char>(v[i + 1]) < 0xa0;
      if (n == 0 || c1) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\x%02x", u);
        out += buf;
      } else {
        out.append(v.substr(i, n));
        i += n;
        continue;
      }
    } else {
      out += c;
    }
    ++i;
  }
  out += '"';
  return out;
}

std::string FormatLogLine(int64_t unix_ms, LogLevel level, std::string_view msg,
                          std::initializer_list<LogField> fields) {
  std::string line = "ts=" + FormatTimestamp(unix_ms) + " level=" + LogLevelName(level) +
                     " msg=" + LogfmtValue(msg);
  for (const LogField& f : fields) {
    const bool key_ok = !f.key.empty() && std::all_of(f.key.begin(), f.key.end(), IsKeyChar);
    line += ' ';
    line += key_ok ? f.key : std::string_view("_");
    line += '=';
    line += LogfmtValue(f.value);
  }
  line += '\n';
  return line;
}

bool ParseLogLevel(std::string_view line, LogLevel* out) {
  // The level field follows ts=…, before any user-supplied text.
  const size_t at = line.find(" level=");
  if (at == std::string_view::npos || line.substr(0, 3) != "ts=") return false;
  std::string_view rest = line.substr(at + 7);
  rest = rest.substr(0, rest.find(' '));
  for (LogLevel l : {LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarn, LogLevel::kError}) {
    if (rest == LogLevelName(l)) {
      *out = l;
      return true;
    }
  }
  return false;
}

FileLogger::FileLogger(FileLoggerOptions options)
    : options_(std::move(options)), clock_(options_.clock ? options_.clock : Clock::Real()) {
  if (options_.keep < 1) options_.keep = 1;
  if (options_.max_bytes < 4096) options_.max_bytes = 4096;
}

FileLogger::~FileLogger() {
  if (fd_ >= 0) ::close(fd_);
}

Status FileLogger::Open(FileLoggerOptions options, std::unique_ptr<FileLogger>* out) {
  std::unique_ptr<FileLogger> logger(new FileLogger(std::move(options)));
  {
    std::lock_guard<std::mutex> lock(logger->mu_);
    if (Status s = logger->OpenFileLocked(); !s.ok()) return s;
  }
  *out = std::move(logger);
  return Status::Ok();
}

Status FileLogger::OpenFileLocked() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = ::open(options_.path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd_ < 0) return Status::IoError(options_.path + ": open: " + std::strerror(errno));
  struct stat st;
  if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd_);
    fd_ = -1;
    return Status::IoError(options_.path + ": not a regular file");
  }
  size_ = uint64_t(st.st_size);
  return Status::Ok();
}

Status FileLogger::RotateLocked() {
  const std::string& p = options_.path;
  for (int i = options_.keep - 1; i >= 1; --i) {
    const std::string from = p + "." + std::to_string(i), to = p + "." + std::to_string(i + 1);
    if (::rename(from.c_str(), to.c_str()) != 0 && errno != ENOENT)
      return Status::IoError(from + ": rename: " + std::strerror(errno));
  }
  if (::rename(p.c_str(), (p + ".1").c_str()) != 0 && errno != ENOENT)
    return Status::IoError(p + ": rename: " + std::strerror(errno));
  return OpenFileLocked();
}

Status FileLogger::WriteLocked(std::string_view line) {
  // Reopen when the file was renamed or removed by someone else (or an earlier open failed).
  struct stat by_path, by_fd;
  if (fd_ < 0 || ::stat(options_.path.c_str(), &by_path) != 0 || ::fstat(fd_, &by_fd) != 0 ||
      by_path.st_ino != by_fd.st_ino || by_path.st_dev != by_fd.st_dev) {
    if (Status s = OpenFileLocked(); !s.ok()) return s;
  } else {
    size_ = uint64_t(by_fd.st_size);  // other writers (a second logger) append too
  }
  if (size_ > 0 && size_ + line.size() > options_.max_bytes) {
    if (Status s = RotateLocked(); !s.ok()) return s;
  }
  while (!line.empty()) {
    const ssize_t n = ::write(fd_, line.data(), line.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::IoError(options_.path + ": write: " + std::strerror(errno));
    }
    line.remove_prefix(size_t(n));
    size_ += uint64_t(n);
  }
  return Status::Ok();
}

void FileLogger::Log(LogLevel level, std::string_view msg, std::initializer_list<LogField> fields) {
  if (level < options_.min_level) return;
  const std::string line = FormatLogLine(clock_->NowUnixMs(), level, msg, fields);
  std::lock_guard<std::mutex> lock(mu_);
  if (Status s = WriteLocked(line); !s.ok()) {
    ++dropped_;
    last_error_ = s;
  }
  if (options_.also_to != nullptr) {
    *options_.also_to << line;
    options_.also_to->flush();
  }
}

uint64_t FileLogger::dropped_lines() const {
  std::lock_guard<std::mutex> lock(mu_);
  return dropped_;
}

Status FileLogger::last_error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_error_;
}

MemoryLogger::MemoryLogger(Clock* clock) : clock_(clock ? clock : Clock::Real()) {}

void MemoryLogger::Log(LogLevel level, std::string_view msg,
                       std::initializer_list<LogField> fields) {
  std::string line = FormatLogLine(clock_->NowUnixMs(), level, msg, fields);
  std::lock_guard<std::mutex> lock(mu_);
  lines_.push_back(std::move(line));
}

std::vector<std::string> MemoryLogger::lines() const {
  std::lock_guard<std::mutex> lock(mu_);
  return lines_;
}

}  // namespace ccmon
