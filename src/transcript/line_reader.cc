#include "transcript/line_reader.h"

#include <algorithm>
#include <cstring>

namespace ccmon {

LineReader::LineReader(SequentialFile* file, uint64_t start_offset, Options options,
                       LineBuffer* buffer)
    : file_(file), options_(options), buffer_(buffer ? buffer : &own_), consumed_(start_offset) {
  if (buffer_->data == nullptr || buffer_->capacity < options_.chunk_bytes) {
    buffer_->data.reset(new char[options_.chunk_bytes + kPadding]);
    buffer_->capacity = options_.chunk_bytes;
  }
}

bool LineReader::Fill() {
  if (eof_ || !status_.ok()) return false;
  // Compact: move the unconsumed bytes to the front.
  if (begin_ > 0) {
    std::memmove(buffer_->data.get(), buffer_->data.get() + begin_, end_ - begin_);
    end_ -= begin_;
    scan_ -= begin_;
    begin_ = 0;
  }
  const size_t capacity = buffer_->capacity;
  size_t new_capacity = capacity;
  if (end_ == capacity) {
    // Grow for a long line, up to the cap (+1 to see that it is over the cap).
    new_capacity = std::max(std::min(capacity * 2, options_.max_line_bytes + 1), capacity + 1);
  } else if (capacity > 4 * options_.chunk_bytes && end_ < options_.chunk_bytes) {
    new_capacity = options_.chunk_bytes;  // a long line is behind us: give the memory back
  }
  if (new_capacity != capacity) {
    std::unique_ptr<char[]> grown(new char[new_capacity + kPadding]);
    std::memcpy(grown.get(), buffer_->data.get(), end_);
    buffer_->data = std::move(grown);
    buffer_->capacity = new_capacity;
  }
  size_t got = 0;
  status_ = file_->Read(buffer_->data.get() + end_, new_capacity - end_, &got);
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
