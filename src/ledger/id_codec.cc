#include "ledger/id_codec.h"

#include <array>

namespace ccmon {
namespace {

constexpr char kDigits[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
constexpr uint8_t kNotDigit = 0xFF;

constexpr std::array<uint8_t, 256> MakeDigitValues() {
  std::array<uint8_t, 256> v{};
  for (auto& x : v) x = kNotDigit;
  for (uint8_t i = 0; i < 62; ++i) v[static_cast<unsigned char>(kDigits[i])] = i;
  return v;
}
constexpr std::array<uint8_t, 256> kDigitValue = MakeDigitValues();

size_t PackedBytes(size_t chars) { return (chars * 6 + 7) / 8; }

bool AllDigits(std::string_view s) {
  for (char c : s) {
    if (kDigitValue[static_cast<unsigned char>(c)] == kNotDigit) return false;
  }
  return true;
}

void AppendRaw(std::string_view id, std::string* out) {
  out->push_back(char(kRawTag));
  for (size_t len = id.size();; len >>= 7) {
    out->push_back(char((len & 0x7f) | (len >= 0x80 ? 0x80 : 0)));
    if (len < 0x80) break;
  }
  out->append(id);
}

}  // namespace

void AppendEncodedId(std::string_view id, std::string* out) {
  for (size_t p = 0; p < std::size(kIdPrefixes); ++p) {
    std::string_view prefix = kIdPrefixes[p];
    if (!id.starts_with(prefix)) continue;
    std::string_view tail = id.substr(prefix.size());
    if (tail.size() >= kMaxPackedTail || !AllDigits(tail)) continue;
    // Sized once and written in place: every usage line encodes its key (no push_back per byte).
    const size_t at = out->size();
    out->resize(at + 1 + PackedBytes(tail.size()));
    char* dst = out->data() + at;
    *dst++ = char(p * kMaxPackedTail + tail.size());
    uint32_t acc = 0;
    int bits = 0;
    for (char c : tail) {
      acc |= uint32_t(kDigitValue[static_cast<unsigned char>(c)]) << bits;
      bits += 6;
      if (bits >= 8) {
        *dst++ = char(acc & 0xff);
        acc >>= 8;
        bits -= 8;
      }
    }
    if (bits > 0) *dst++ = char(acc);
    return;
  }
  AppendRaw(id, out);
}

bool DecodeId(std::string_view* in, std::string* out) {
  if (in->empty()) return false;
  const uint8_t tag = static_cast<uint8_t>((*in)[0]);
  if (tag == kRawTag) {
    size_t len = 0;
    size_t i = 1;
    for (int shift = 0;; shift += 7) {
      if (i >= in->size() || shift > 56) return false;
      const uint8_t b = static_cast<uint8_t>((*in)[i++]);
      len |= size_t(b & 0x7f) << shift;
      if (!(b & 0x80)) break;
    }
    if (in->size() - i < len) return false;
    out->append(in->substr(i, len));
    in->remove_prefix(i + len);
    return true;
  }
  if (tag >= kPackedTags) return false;
  const size_t n = tag % kMaxPackedTail;
  const size_t bytes = PackedBytes(n);
  if (in->size() < 1 + bytes) return false;
  std::string decoded(kIdPrefixes[tag / kMaxPackedTail]);
  uint32_t acc = 0;
  int bits = 0;
  size_t next = 1;
  for (size_t k = 0; k < n; ++k) {
    if (bits < 6) {
      acc |= uint32_t(static_cast<uint8_t>((*in)[next++])) << bits;
      bits += 8;
    }
    const uint32_t v = acc & 0x3f;
    if (v >= 62) return false;
    decoded.push_back(kDigits[v]);
    acc >>= 6;
    bits -= 6;
  }
  if (acc != 0) return false;  // the encoder pads with zero bits
  out->append(decoded);
  in->remove_prefix(1 + bytes);
  return true;
}

}  // namespace ccmon
