#include "tail/file_identity.h"

#include <algorithm>

namespace ccmon {

FileIdentity FileHead::Identity() const {
  FileIdentity id;
  id.device = info.device;
  id.inode = info.inode;
  id.fingerprint_bytes = uint32_t(bytes.size());
  id.fingerprint = Fnv1a64(bytes);
  return id;
}

bool FileHead::Matches(const FileIdentity& known) const {
  if (info.device != known.device || info.inode != known.inode) return false;
  if (bytes.size() < known.fingerprint_bytes) return false;
  return Fnv1a64(std::string_view(bytes).substr(0, known.fingerprint_bytes)) == known.fingerprint;
}

Status ReadFileHead(SequentialFile* file, const std::string& path, FileHead* out) {
  out->bytes.clear();
  Status s = file->Stat(&out->info);
  if (!s.ok()) return s;
  if (out->info.type != FileType::kRegular) {
    return Status::InvalidArgument(path + ": not a regular file");
  }
  s = file->Seek(0);
  if (!s.ok()) return s;
  // The head is read to kFingerprintBytes or end of file, whatever the size said: the file may
  // have grown or shrunk since the fstat.
  out->bytes.resize(kFingerprintBytes);
  size_t have = 0;
  while (have < kFingerprintBytes) {
    size_t got = 0;
    s = file->Read(out->bytes.data() + have, kFingerprintBytes - have, &got);
    if (!s.ok()) {
      out->bytes.clear();
      return s;
    }
    if (got == 0) break;
    have += got;
  }
  out->bytes.resize(have);
  return Status::Ok();
}

Status ReadFileHead(Env* env, const std::string& path, FileHead* out) {
  std::unique_ptr<SequentialFile> file;
  Status s = env->NewSequentialFile(path, 0, &file);
  if (!s.ok()) return s;
  return ReadFileHead(file.get(), path, out);
}

Status OpenIfSameFile(Env* env, const std::string& path, const FileIdentity& identity,
                      uint64_t offset, std::unique_ptr<SequentialFile>* out, bool* is_same) {
  out->reset();
  *is_same = false;
  std::unique_ptr<SequentialFile> file;
  Status s = env->NewSequentialFile(path, 0, &file);
  if (!s.ok()) return s;
  FileHead head;
  s = ReadFileHead(file.get(), path, &head);
  if (!s.ok()) return s;
  // A file shorter than the offset was truncated: by the tailer's rules a new file.
  if (!head.Matches(identity) || head.info.size < offset) return Status::Ok();
  s = file->Seek(offset);
  if (!s.ok()) return s;
  *is_same = true;
  *out = std::move(file);
  return Status::Ok();
}

}  // namespace ccmon
