#include "tail/tracked_file.h"

namespace ccmon {
namespace {

void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(char(uint8_t(v) | 0x80));
    v >>= 7;
  }
  out->push_back(char(uint8_t(v)));
}

void PutFixed64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(char(uint8_t(v >> (8 * i))));
}

// A cursor over the encoded bytes; every Get fails (false) past the end.
class Input {
 public:
  explicit Input(std::string_view bytes) : in_(bytes) {}
  bool GetByte(uint8_t* v) {
    if (in_.empty()) return false;
    *v = uint8_t(in_[0]);
    in_.remove_prefix(1);
    return true;
  }
  // LEB128, at most 10 bytes; the 10th may only carry the top bit, and no byte after the
  // first may be a redundant zero group (so each value has exactly one encoding).
  bool GetVarint(uint64_t* v) {
    uint64_t result = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      uint8_t b;
      if (!GetByte(&b)) return false;
      if (shift == 63 && b > 1) return false;
      result |= uint64_t(b & 0x7f) << shift;
      if ((b & 0x80) == 0) {
        if (b == 0 && shift > 0) return false;
        *v = result;
        return true;
      }
    }
    return false;
  }
  bool GetFixed64(uint64_t* v) {
    if (in_.size() < 8) return false;
    uint64_t r = 0;
    for (int i = 0; i < 8; ++i) r |= uint64_t(uint8_t(in_[size_t(i)])) << (8 * i);
    in_.remove_prefix(8);
    *v = r;
    return true;
  }
  bool GetBytes(size_t n, std::string_view* v) {
    if (in_.size() < n) return false;
    *v = in_.substr(0, n);
    in_.remove_prefix(n);
    return true;
  }
  bool empty() const { return in_.empty(); }

 private:
  std::string_view in_;
};

}  // namespace

std::string EncodeTrackedFile(const TrackedFile& file) {
  std::string out;
  out.reserve(40 + file.path.size());
  out.push_back(char(kTrackedFileVersion));
  PutVarint(&out, file.identity.device);
  PutVarint(&out, file.identity.inode);
  PutFixed64(&out, file.identity.fingerprint);
  PutVarint(&out, file.identity.fingerprint_bytes);
  PutVarint(&out, file.offset);
  PutVarint(&out, file.size_seen);
  PutVarint(&out, file.path.size());
  out.append(file.path);
  return out;
}

Status DecodeTrackedFile(std::string_view bytes, TrackedFile* out) {
  auto corrupt = [](const std::string& why) {
    return Status::Corruption("tracked file record: " + why);
  };
  Input in(bytes);
  uint8_t version;
  if (!in.GetByte(&version)) return corrupt("empty");
  if (version != kTrackedFileVersion) {
    return corrupt("unknown version " + std::to_string(version));
  }
  TrackedFile f;
  uint64_t fingerprint_bytes, path_size;
  if (!in.GetVarint(&f.identity.device) || !in.GetVarint(&f.identity.inode) ||
      !in.GetFixed64(&f.identity.fingerprint) || !in.GetVarint(&fingerprint_bytes) ||
      !in.GetVarint(&f.offset) || !in.GetVarint(&f.size_seen) || !in.GetVarint(&path_size)) {
    return corrupt("truncated or malformed number");
  }
  if (fingerprint_bytes > kFingerprintBytes) {
    return corrupt("fingerprint over " + std::to_string(fingerprint_bytes) + " bytes");
  }
  f.identity.fingerprint_bytes = uint32_t(fingerprint_bytes);
  if (f.size_seen < f.offset) return corrupt("size seen below the offset");
  if (path_size == 0 || path_size > kMaxTrackedPathBytes) {
    return corrupt("path length " + std::to_string(path_size));
  }
  std::string_view path;
  if (!in.GetBytes(size_t(path_size), &path)) return corrupt("truncated path");
  if (!in.empty()) return corrupt("trailing bytes");
  f.path = std::string(path);
  *out = std::move(f);
  return Status::Ok();
}

}  // namespace ccmon
