#include "tools/common/output.h"

#include <cerrno>
#include <cstring>
#include <memory>

#include "base/atomic_file.h"

namespace ccmon {

AppendStreamBuf::AppendStreamBuf(AppendFn append, size_t buffer_bytes)
    : append_(std::move(append)), buffer_(buffer_bytes > 0 ? buffer_bytes : 1) {
  setp(buffer_.data(), buffer_.data() + buffer_.size());
}

bool AppendStreamBuf::Drain() {
  if (!status_.ok()) return false;
  const size_t n = size_t(pptr() - pbase());
  if (n > 0) status_ = append_(std::string_view(pbase(), n));
  setp(buffer_.data(), buffer_.data() + buffer_.size());
  return status_.ok();
}

AppendStreamBuf::int_type AppendStreamBuf::overflow(int_type ch) {
  if (!Drain()) return traits_type::eof();
  if (traits_type::eq_int_type(ch, traits_type::eof())) return traits_type::not_eof(ch);
  *pptr() = traits_type::to_char_type(ch);
  pbump(1);
  return ch;
}

std::streamsize AppendStreamBuf::xsputn(const char* s, std::streamsize n) {
  if (!status_.ok()) return 0;
  const size_t size = size_t(n);
  if (size <= size_t(epptr() - pptr())) {
    std::memcpy(pptr(), s, size);
    pbump(int(n));
    return n;
  }
  // Larger than what is left: drain the buffer, then pass big pieces on without copying.
  if (!Drain()) return 0;
  if (size >= buffer_.size()) {
    status_ = append_(std::string_view(s, size));
    return status_.ok() ? n : 0;
  }
  std::memcpy(pptr(), s, size);
  pbump(int(n));
  return n;
}

int AppendStreamBuf::sync() { return Drain() ? 0 : -1; }

Status FlushOutput(std::ostream& out, std::string_view what) {
  // errno is only meaningful if this flush is what failed; a failure of an earlier write has left
  // the stream bad already and this flush does nothing.
  errno = 0;
  out.flush();
  if (!out.fail()) return Status::Ok();
  const int err = errno;
  std::string msg = "write failed for " + std::string(what);
  if (err != 0) msg += std::string(": ") + std::strerror(err);
  return Status::IoError(msg);
}

namespace {

bool NamesAStream(Env* env, const std::string& path) {
  if (path.rfind("/dev/", 0) == 0 || path.rfind("/proc/", 0) == 0) return true;
  FileInfo info;
  // stat follows symlinks: a link to a FIFO is a stream, a link to a regular file is replaced.
  return env->Stat(path, &info).ok() && info.type != FileType::kRegular;
}

Status Produce(AppendStreamBuf::AppendFn append,
               const std::function<void(std::ostream&)>& produce) {
  AppendStreamBuf buf(std::move(append));
  std::ostream stream(&buf);
  produce(stream);
  stream.flush();
  if (!buf.status().ok()) return buf.status();
  if (stream.fail()) return Status::IoError("formatting the output failed");
  return Status::Ok();
}

}  // namespace

Status WriteOutputFile(Env* env, const std::string& path, unsigned mode,
                       const std::function<void(std::ostream&)>& produce, std::stop_token stop) {
  const auto interrupted = [&] { return Status::IoError("interrupted before the end"); };
  if (NamesAStream(env, path)) {
    std::unique_ptr<WritableFile> file;
    Status s = env->NewWritableFile(path, &file, mode);
    if (!s.ok()) return s;
    s = Produce(
        [&](std::string_view d) { return stop.stop_requested() ? interrupted() : file->Append(d); },
        produce);
    Status closed = file->Close();
    return s.ok() ? closed : s;
  }
  std::unique_ptr<AtomicFileWriter> writer;
  Status s = AtomicFileWriter::Open(env, path, mode, &writer);
  if (!s.ok()) return s;
  s = Produce(
      [&](std::string_view d) { return stop.stop_requested() ? interrupted() : writer->Append(d); },
      produce);
  if (!s.ok()) return s;  // the writer, destroyed uncommitted, removes PATH.tmp
  // The last check: a stop requested after the last write still leaves the old file.
  if (stop.stop_requested()) return interrupted();
  return writer->Commit();
}

}  // namespace ccmon
