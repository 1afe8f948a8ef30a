// Structured log lines for the agent (logfmt):
//
//   ts=2026-11-26T12:36:00.123Z level=info msg="push failed" status="http 503" attempt=3
//
// ts is UTC with milliseconds; level is debug|info|warn|error; msg and each field follow. A value
// is written bare when it is non-empty and holds only printable ASCII other than space, '"' and
// '='; otherwise it is quoted, with '"' and '\' escaped as \" and \\, \n \r \t as such and every
// other control character or byte of invalid UTF-8 as \xNN, so one log entry is always exactly
// one line and a hostile file name cannot forge entries or drive a terminal. Field keys must be
// logfmt identifiers ([a-z0-9_]+); others are written as "_" (a programming error, not data).
//
// Logger is the interface the engine takes (`Logger&`); FileLogger is the agent's: appends to
// <state dir>/agent.log and, in --foreground, also to standard error. Every implementation is
// thread-safe and never throws; a logger that cannot write drops the line and counts it.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/status.h"

namespace ccmon {

enum class LogLevel : uint8_t { kDebug, kInfo, kWarn, kError };
const char* LogLevelName(LogLevel level);

struct LogField {
  LogField(std::string_view k, std::string_view v) : key(k), value(v) {}
  LogField(std::string_view k, const std::string& v) : key(k), value(v) {}
  LogField(std::string_view k, const char* v) : key(k), value(v) {}
  LogField(std::string_view k, int64_t v) : key(k), value(std::to_string(v)) {}
  LogField(std::string_view k, int v) : key(k), value(std::to_string(v)) {}
  LogField(std::string_view k, uint64_t v) : key(k), value(std::to_string(v)) {}
  std::string_view key;
  std::string value;
};

class Logger {
 public:
  virtual ~Logger() = default;
  // Writes one entry. Thread-safe.
  virtual void Log(LogLevel level, std::string_view msg,
                   std::initializer_list<LogField> fields) = 0;

  void Debug(std::string_view msg, std::initializer_list<LogField> fields = {}) {
    Log(LogLevel::kDebug, msg, fields);
  }
  void Info(std::string_view msg, std::initializer_list<LogField> fields = {}) {
    Log(LogLevel::kInfo, msg, fields);
  }
  void Warn(std::string_view msg, std::initializer_list<LogField> fields = {}) {
    Log(LogLevel::kWarn, msg, fields);
  }
  void Error(std::string_view msg, std::initializer_list<LogField> fields = {}) {
    Log(LogLevel::kError, msg, fields);
  }
};

// One logfmt line (with its "\n") for an entry at `unix_ms`.
std::string FormatLogLine(int64_t unix_ms, LogLevel level, std::string_view msg,
                          std::initializer_list<LogField> fields);
// A logfmt value as FormatLogLine writes it (bare or quoted).
std::string LogfmtValue(std::string_view value);
// The level of a line FormatLogLine wrote; false when the line has no level=… field.
bool ParseLogLevel(std::string_view line, LogLevel* out);

// The log file's name inside the state directory, and its rotated predecessors agent.log.1 …
inline constexpr const char kLogFileName[] = "agent.log";

struct FileLoggerOptions {
  std::string path;                         // appended to (created 0600 if absent)
  uint64_t max_bytes = uint64_t(10) << 20;  // rotate before a line would pass this size
  int keep = 3;                             // rotated files kept: path.1 (newest) … path.N
  LogLevel min_level = LogLevel::kInfo;     // lower levels are dropped
  std::ostream* also_to = nullptr;          // e.g. &std::cerr in --foreground; borrowed
  Clock* clock = nullptr;                   // nullptr: Clock::Real()
};

// Appends with O_APPEND (several writers' lines never interleave within a line). Rotation:
// when the file would grow past max_bytes, path.(keep-1) -> path.keep, …, path -> path.1, and a
// new path is created. A write or rotation failure (full disk, removed directory) drops the
// line, counts it in dropped_lines() and keeps the reason in last_error(); the next line tries
// again (reopening the file if it was rotated or removed).
class FileLogger : public Logger {
 public:
  // Opens (creates) the file; fails with the reason when it cannot.
  static Status Open(FileLoggerOptions options, std::unique_ptr<FileLogger>* out);
  ~FileLogger() override;
  FileLogger(const FileLogger&) = delete;
  FileLogger& operator=(const FileLogger&) = delete;

  void Log(LogLevel level, std::string_view msg, std::initializer_list<LogField> fields) override;

  uint64_t dropped_lines() const;
  Status last_error() const;

 private:
  explicit FileLogger(FileLoggerOptions options);
  Status OpenFileLocked();
  Status RotateLocked();
  Status WriteLocked(std::string_view line);

  FileLoggerOptions options_;
  Clock* clock_;
  mutable std::mutex mu_;
  int fd_ = -1;
  uint64_t size_ = 0;
  uint64_t dropped_ = 0;
  Status last_error_;
};

// Collects formatted lines in memory (tests, and the CLI before the log file is open).
class MemoryLogger : public Logger {
 public:
  explicit MemoryLogger(Clock* clock = nullptr);
  void Log(LogLevel level, std::string_view msg, std::initializer_list<LogField> fields) override;
  std::vector<std::string> lines() const;

 private:
  Clock* clock_;
  mutable std::mutex mu_;
  std::vector<std::string> lines_;
};

}  // namespace ccmon
