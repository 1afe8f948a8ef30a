#include "transcript/line_reader.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace ccmon {

LineReader::LineReader(SequentialFile* file, uint64_t start_offset, Options options,
                       LineBuffer* buffer)
    : file_(file), options_(options), buffer_(buffer ? buffer : &own_), consumed_(start_offset) {
  if (buffer_->data == nullptr || buffer_->capacity < options_.chunk_bytes) {
    buffer_->data.reset(static_cast<char*>(std::malloc(options_.chunk_bytes + kPadding)));
    if (buffer_->data == nullptr) std::abort();  // as new[] would throw: out of memory
    buffer_->capacity = options_.chunk_bytes;
  }
}

bool LineReader::Fill() {
  if (eof_ || !status_.ok()) return false;
  size_t capacity = buffer_->capacity;
  // Inside a dropped line the buffer is empty (DropScanned): it is refilled as it is, never grown
  // or shrunk, so that a long tail costs no allocation and no copy.
  if (!discarding_) {
    // Compact: move the unconsumed bytes (a part of one line) to the front.
    if (begin_ > 0) {
      std::memmove(buffer_->data.get(), buffer_->data.get() + begin_, end_ - begin_);
      stats_.bytes_copied += end_ - begin_;
      end_ -= begin_;
      scan_ -= begin_;
      begin_ = 0;
    }
    size_t new_capacity = capacity;
    if (end_ == capacity) {
      // Grow for a long line, up to the cap (+1 to see that it is over the cap).
      new_capacity = std::max(std::min(capacity * 2, options_.max_line_bytes + 1), capacity + 1);
    } else if (capacity > 4 * options_.chunk_bytes && end_ < options_.chunk_bytes) {
      new_capacity = options_.chunk_bytes;  // a long line is behind us: give the memory back
    }
    if (new_capacity != capacity) {
      char* grown = static_cast<char*>(std::realloc(buffer_->data.get(), new_capacity + kPadding));
      if (grown == nullptr) std::abort();  // as new[] would throw: out of memory
      (void)buffer_->data.release();       // realloc took it
      buffer_->data.reset(grown);
      stats_.bytes_copied += end_;  // at most (realloc may move the bytes)
      buffer_->capacity = capacity = new_capacity;
    }
  }
  // A dropped line is read in chunks even when the buffer is large (a borrowed buffer grown by an
  // earlier file): a reader that stops at end_offset then reads at most a chunk past it.
  const size_t want = discarding_ ? std::min(capacity, options_.chunk_bytes) : capacity - end_;
  size_t got = 0;
  ++stats_.reads;
  status_ = file_->Read(buffer_->data.get() + end_, want, &got);
  if (!status_.ok()) return false;
  if (got == 0) {
    eof_ = true;
    return false;
  }
  stats_.bytes_read += got;
  end_ += got;
  return true;
}

void LineReader::DropScanned() {
  discarding_ = true;
  discarded_ += end_ - begin_;
  begin_ = scan_ = end_ = 0;
}

LineReader::Result LineReader::Next(std::string_view* line, size_t* readable) {
  if (stopped_ || (consumed_ >= options_.end_offset && !discarding_)) {
    return status_.ok() ? Result::kEnd : Result::kError;
  }
  for (;;) {
    char* const buf = buffer_->data.get();
    const char* nl = scan_ < end_
                         ? static_cast<const char*>(std::memchr(buf + scan_, '\n', end_ - scan_))
                         : nullptr;
    if (nl != nullptr) {
      size_t pos = size_t(nl - buf);
      size_t len = pos - begin_;
      if (discarding_) {
        consumed_ += discarded_ + len + 1;
        discarding_ = false;
        discarded_ = 0;
        begin_ = scan_ = pos + 1;
        return Result::kTooLong;
      }
      if (len > options_.max_line_bytes) {
        consumed_ += len + 1;
        begin_ = scan_ = pos + 1;
        return Result::kTooLong;
      }
      *line = std::string_view(buf + begin_, len);
      *readable = buffer_->capacity + kPadding - begin_;
      consumed_ += len + 1;
      begin_ = scan_ = pos + 1;
      return Result::kLine;
    }
    scan_ = end_;  // scanned: never again
    // Over the cap, or already known to be: drop what we have and keep looking for the end.
    if (discarding_ || end_ - begin_ > options_.max_line_bytes) DropScanned();
    if (!Fill()) return status_.ok() ? Result::kEnd : Result::kError;
  }
}

bool LineReader::SkipPartialLine() {
  for (;;) {
    char* const buf = buffer_->data.get();
    const char* nl = scan_ < end_
                         ? static_cast<const char*>(std::memchr(buf + scan_, '\n', end_ - scan_))
                         : nullptr;
    if (nl != nullptr) {
      size_t pos = size_t(nl - buf);
      consumed_ += discarded_ + (pos - begin_) + 1;
      discarding_ = false;
      discarded_ = 0;
      begin_ = scan_ = pos + 1;
      return consumed_ < options_.end_offset;
    }
    scan_ = end_;
    DropScanned();
    // Every byte up to end_offset is part of the earlier piece's line: no line starts here.
    if (consumed_ + discarded_ >= options_.end_offset || !Fill()) {
      stopped_ = true;
      return false;
    }
  }
}

}  // namespace ccmon
