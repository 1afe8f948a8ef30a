#include "state_mirror/state_records.h"

#include <snappy.h>

#include <utility>

#include "base/record_codec.h"

namespace ccmon::state_mirror {
namespace {

constexpr uint8_t kOpPut = 1;
constexpr uint8_t kOpDelete = 2;

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string FormatEpoch(uint64_t epoch) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, epoch >>= 4) out[size_t(i)] = kDigits[epoch & 0xf];
  return out;
}

bool ParseEpoch(std::string_view text, uint64_t* epoch) {
  if (text.size() != 16) return false;
  uint64_t v = 0;
  for (char c : text) {
    const int d = HexValue(c);
    if (d < 0) return false;
    v = v << 4 | uint64_t(d);
  }
  *epoch = v;
  return true;
}

bool ParseSequence(std::string_view text, uint64_t* seq) {
  if (text.empty() || text.size() > 20) return false;
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    const uint64_t d = uint64_t(c - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  *seq = v;
  return true;
}

void AppendPutRecord(std::string* records, std::string_view key, std::string_view value) {
  records->push_back(char(kOpPut));
  PutBytes(records, key);
  PutBytes(records, value);
}

void AppendDeleteRecord(std::string* records, std::string_view key) {
  records->push_back(char(kOpDelete));
  PutBytes(records, key);
}

std::string CompressRecords(std::string_view records) {
  std::string raw;
  raw.reserve(records.size() + 1);
  raw.push_back(char(kStateRecordsVersion));
  raw.append(records);
  std::string body;
  snappy::Compress(raw.data(), raw.size(), &body);
  return body;
}

StateRecordWriter::StateRecordWriter() { raw_.push_back(char(kStateRecordsVersion)); }

void StateRecordWriter::Put(std::string_view key, std::string_view value) {
  AppendPutRecord(&raw_, key, value);
  ++count_;
}

std::string FormatKeyHex(std::string_view key) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(key.size() * 2);
  for (unsigned char c : key) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

bool ParseKeyHex(std::string_view text, std::string* key) {
  if (text.empty() || text.size() % 2 != 0 || text.size() > 2 * kMaxKvKeyBytes) return false;
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(text.size() / 2);
  for (size_t i = 0; i < text.size(); i += 2) {
    const int hi = digit(text[i]), lo = digit(text[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out.push_back(char(hi << 4 | lo));
  }
  *key = std::move(out);
  return true;
}

void StateRecordWriter::Delete(std::string_view key) {
  AppendDeleteRecord(&raw_, key);
  ++count_;
}

std::string StateRecordWriter::Finish() {
  std::string body;
  snappy::Compress(raw_.data(), raw_.size(), &body);
  raw_.assign(1, char(kStateRecordsVersion));
  count_ = 0;
  return body;
}

Status DecodeStateBody(std::string_view body, size_t max_raw_bytes, WriteBatch* out) {
  size_t raw_len = 0;
  if (!snappy::GetUncompressedLength(body.data(), body.size(), &raw_len))
    return Status::Corruption("state records: not snappy block data");
  if (raw_len > max_raw_bytes) {
    return Status::InvalidArgument("state records: too large (" + std::to_string(raw_len) +
                                   " bytes uncompressed, limit " + std::to_string(max_raw_bytes) +
                                   ")");
  }
  std::string raw;
  if (!snappy::Uncompress(body.data(), body.size(), &raw))
    return Status::Corruption("state records: corrupt snappy data");
  Reader r(raw);
  uint8_t version = 0;
  if (!r.Byte(&version) || version != kStateRecordsVersion)
    return Status::Corruption("state records: unknown version");
  uint64_t index = 0;
  while (!r.done()) {
    const std::string at = " (record " + std::to_string(index) + ")";
    uint8_t op = 0;
    std::string_view key, value;
    r.Byte(&op);
    if (op != kOpPut && op != kOpDelete) return Status::Corruption("state records: bad op" + at);
    if (!r.Bytes(&key)) return Status::Corruption("state records: truncated key" + at);
    if (key.empty() || key.size() > kMaxKvKeyBytes)
      return Status::Corruption("state records: empty or over-long key" + at);
    if (op == kOpPut) {
      if (!r.Bytes(&value)) return Status::Corruption("state records: truncated value" + at);
      if (value.size() > kMaxKvValueBytes)
        return Status::Corruption("state records: over-long value" + at);
      out->Put(key, value);
    } else {
      out->Delete(key);
    }
    ++index;
  }
  return Status::Ok();
}

}  // namespace ccmon::state_mirror
