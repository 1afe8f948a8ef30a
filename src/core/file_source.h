// Filesystem seam: sequential reads from a transcript file (Envoy-style injectable interface).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "core/status.h"

namespace ccmon {

class SequentialFile {
 public:
  virtual ~SequentialFile() = default;
  // Reads up to `n` bytes into `buf`; *got == 0 means end of file. Thread-compatible.
  virtual Status Read(char* buf, size_t n, size_t* got) = 0;
};

// Opens `path` for reading from byte `offset` (O_RDONLY | O_CLOEXEC).
Status OpenSequentialFile(const std::string& path, uint64_t offset,
                          std::unique_ptr<SequentialFile>* out);

// Reads a small file (a config or price file) whole. Not for transcripts: they are streamed.
Status ReadSmallFile(const std::string& path, std::string* out);

}  // namespace ccmon
