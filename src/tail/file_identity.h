// FileIdentity: which file a transcript path names, robust to renames and able to tell a file
// replaced under the same name (docs/store-format.md, "Tracked files").
//
// A file is its device and inode plus a fingerprint of its head: the FNV-1a 64 hash of its first
// `fingerprint_bytes` bytes (at most kFingerprintBytes). A file shorter than that is fingerprinted
// on what it has, and the fingerprint is extended as the file grows (the shorter head must still
// match first), so a transcript identifies itself by its first lines. The head tells a file
// truncated and rewritten in place, or an inode number reused after a delete, from the file that
// was there: a different head is a different file.
//
// What it cannot tell: a file rewritten with the same first bytes on the same inode (a truncate
// and rewrite of identical content is the same file to it), or two files whose first 1 KiB are
// identical moved onto each other's inode numbers. Claude Code's first line carries the session
// id and a timestamp, so two transcripts do not share a head.
//
// Functions are thread-compatible; I/O goes through the Env given.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "base/env.h"
#include "base/fnv1a.h"
#include "base/status.h"

namespace ccmon {

inline constexpr uint32_t kFingerprintBytes = 1024;

// The head's hash is Fnv1a64 (base/fnv1a.h), shared with the scanner (ledger/scanner.h), which
// fingerprints the files it reads for the agent's bulk first start.

struct FileIdentity {
  uint64_t device = 0, inode = 0;
  uint64_t fingerprint = kFnv1a64Basis;  // Fnv1a64 of the first fingerprint_bytes bytes
  uint32_t fingerprint_bytes = 0;        // 0 .. kFingerprintBytes; < it only for a shorter file

  bool SameInode(const FileIdentity& o) const { return device == o.device && inode == o.inode; }
  friend bool operator==(const FileIdentity&, const FileIdentity&) = default;
};

// What an open file is: its fstat and up to kFingerprintBytes of its head, read from the same
// descriptor (so they describe one file even while its path is being replaced).
struct FileHead {
  FileInfo info;
  std::string bytes;  // the first min(size, kFingerprintBytes) bytes

  // The identity of this file as seen now (fingerprint over all of `bytes`).
  FileIdentity Identity() const;
  // Is this the file `known` describes: same device and inode, and a head that starts with the
  // bytes `known` fingerprinted? (A head shorter than known.fingerprint_bytes, i.e. a file that
  // shrank below it, is not.)
  bool Matches(const FileIdentity& known) const;
};

// Reads the head of the file open in `file` (from offset 0; the position is left after the
// head). Errors: the file's Stat or Read; a file that is not regular is kInvalidArgument.
Status ReadFileHead(SequentialFile* file, const std::string& path, FileHead* out);

// Opens `path` and reads its head (NewSequentialFile + ReadFileHead). kNotFound when it is gone.
Status ReadFileHead(Env* env, const std::string& path, FileHead* out);

// Opens `path` for reading at `offset` if it is still the file `identity` describes. *is_same is
// false (and *out empty, status OK) when the path names another file by now: replaced, truncated
// and rewritten, shorter than the fingerprinted head, or shorter than `offset` (truncated). The
// caller of a tailer opens the files it is offered this way, so that a file replaced between the
// offer and the open is never read from the old file's offset.
Status OpenIfSameFile(Env* env, const std::string& path, const FileIdentity& identity,
                      uint64_t offset, std::unique_ptr<SequentialFile>* out, bool* is_same);

}  // namespace ccmon
