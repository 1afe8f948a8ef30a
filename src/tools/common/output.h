// Output that does not lose write errors: an std::ostream over an Env file (so the formatters,
// which write to std::ostream, can stream into an atomic file), a checked flush of standard
// output, and the rule for where `-o FILE` goes.
#pragma once

#include <functional>
#include <ostream>
#include <stop_token>
#include <streambuf>
#include <string>
#include <string_view>
#include <vector>

#include "base/env.h"
#include "base/status.h"

namespace ccmon {

// An std::streambuf over an append function (WritableFile::Append, AtomicFileWriter::Append),
// gathering writes in a buffer of `buffer_bytes`. The first failed append is kept in status()
// and fails that and every later write, so the std::ostream on top goes bad. Does not flush at
// destruction: flush the stream (pubsync) and then read status(). Not thread-safe.
class AppendStreamBuf : public std::streambuf {
 public:
  using AppendFn = std::function<Status(std::string_view)>;
  explicit AppendStreamBuf(AppendFn append, size_t buffer_bytes = size_t(64) << 10);
  AppendStreamBuf(const AppendStreamBuf&) = delete;
  AppendStreamBuf& operator=(const AppendStreamBuf&) = delete;

  const Status& status() const { return status_; }

 protected:
  int_type overflow(int_type ch) override;
  std::streamsize xsputn(const char* s, std::streamsize n) override;
  int sync() override;

 private:
  bool Drain();  // hands the buffered bytes to append_; false once an append failed

  AppendFn append_;
  std::vector<char> buffer_;
  Status status_;
};

// Flushes `out` and says whether everything written to it arrived: an IoError "write failed for
// WHAT" (with the system's reason when it is known) once the stream has failed, e.g. standard
// output on a full disk or /dev/full.
Status FlushOutput(std::ostream& out, std::string_view what);

// Writes what `produce` puts into its stream to `path`, failing if any write failed:
//  - a regular file, or a path that does not exist yet, atomically (AtomicFileWriter, permission
//    bits `mode`): PATH.tmp is written and renamed over PATH when complete, and removed when
//    anything fails, so a failed run (full disk, killed) leaves neither a truncated file nor a
//    temporary one;
//  - anything else directly, as a stream: a FIFO, a terminal, a device, and every path under
//    /dev/ or /proc/ (/dev/stdout, /dev/fd/N, /proc/self/fd/N), which name streams rather than
//    files to replace, so a temporary file next to them would be wrong.
// A stop requested on `stop` (a signal, tools/common/stop_signals.h) makes the next write fail
// with "interrupted", so that a regular file is left as it was, without PATH.tmp.
// `env` is borrowed.
Status WriteOutputFile(Env* env, const std::string& path, unsigned mode,
                       const std::function<void(std::ostream&)>& produce,
                       std::stop_token stop = {});

}  // namespace ccmon
