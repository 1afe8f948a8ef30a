#include "core/line_reader.h"

#include <algorithm>
#include <cstring>

namespace ccmon {

LineReader::LineReader(SequentialFile* file, uint64_t start_offset, Options options)
    : file_(file), options_(options), consumed_(start_offset) {
  capacity_ = options_.chunk_bytes;
  buf_.reset(new char[capacity_ + kPadding]);
}

bool LineReader::Fill() {
  if (eof_ || !status_.ok()) return false;
  // Compact: move the unconsumed bytes to the front.
  if (begin_ > 0) {
    std::memmove(buf_.get(), buf_.get() + begin_, end_ - begin_);
    end_ -= begin_;
    scan_ -= begin_;
    begin_ = 0;
  }
  size_t new_capacity = capacity_;
  if (end_ == capacity_) {
    // Grow for a long line, up to the cap (+1 to see that it is over the cap).
    new_capacity = std::max(std::min(capacity_ * 2, options_.max_line_bytes + 1), capacity_ + 1);
  } else if (capacity_ > 4 * options_.chunk_bytes && end_ < options_.chunk_bytes) {
    new_capacity = options_.chunk_bytes;  // a long line is behind us: give the memory back
  }
  if (new_capacity != capacity_) {
    std::unique_ptr<char[]> grown(new char[new_capacity + kPadding]);
    std::memcpy(grown.get(), buf_.get(), end_);
    buf_ = std::move(grown);
    capacity_ = new_capacity;
  }
  size_t got = 0;
  status_ = file_->Read(buf_.get() + end_, capacity_ - end_, &got);
  if (!status_.ok()) return false;
  if (got == 0) {
    eof_ = true;
    return false;
  }
  end_ += got;
  return true;
}

LineReader::Result LineReader::Next(std::string_view* line, size_t* readable) {
  if (consumed_ >= options_.end_offset && !discarding_) return Result::kEnd;
  for (;;) {
    const char* nl = scan_ < end_ ? static_cast<const char*>(
                                        std::memchr(buf_.get() + scan_, '\n', end_ - scan_))
                                  : nullptr;
    if (nl != nullptr) {
      size_t pos = size_t(nl - buf_.get());
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
      *line = std::string_view(buf_.get() + begin_, len);
      *readable = capacity_ + kPadding - begin_;
      consumed_ += len + 1;
      begin_ = scan_ = pos + 1;
      return Result::kLine;
    }
    scan_ = end_;
    if (end_ - begin_ > options_.max_line_bytes) {
      // Over the cap: drop what we have and keep scanning for the end of the line.
      discarding_ = true;
      discarded_ += end_ - begin_;
      begin_ = scan_ = end_ = 0;
    }
    if (!Fill()) return status_.ok() ? Result::kEnd : Result::kError;
  }
}

}  // namespace ccmon
