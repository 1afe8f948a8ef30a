// TrackedFile: what a tailer knows of one transcript file, and its stable encoding (the agent
// stores it in RocksDB in the same batch as the counters the file's lines produced, so that the
// offset advances only together with them). Layout: docs/store-format.md, "Tracked files".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"
#include "tail/file_identity.h"

namespace ccmon {

struct TrackedFile {
  std::string path;       // where the file was last seen (it follows renames)
  FileIdentity identity;  // device, inode, head fingerprint
  // Bytes consumed: every complete line before this offset has been read and counted.
  uint64_t offset = 0;
  // Bytes examined: offset + the incomplete last line seen after it. The file is offered again
  // only once it is larger than this. Always >= offset.
  uint64_t size_seen = 0;

  friend bool operator==(const TrackedFile&, const TrackedFile&) = default;
};

// The encoded form (version 1): deterministic, so equal states encode to equal bytes.
std::string EncodeTrackedFile(const TrackedFile& file);
// Parses what EncodeTrackedFile wrote. kCorruption, with *out untouched, for anything else:
// an unknown version, truncated or trailing bytes, an over-long varint, fingerprint_bytes above
// kFingerprintBytes, size_seen below offset, an empty path or one over kMaxTrackedPathBytes.
Status DecodeTrackedFile(std::string_view bytes, TrackedFile* out);

inline constexpr uint8_t kTrackedFileVersion = 1;
inline constexpr size_t kMaxTrackedPathBytes = 64 << 10;

}  // namespace ccmon
