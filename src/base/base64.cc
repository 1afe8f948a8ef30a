#include "base/base64.h"

#include <cstdint>

namespace ccmon {

namespace {

constexpr std::string_view kBase64Alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr std::string_view kBase64UrlAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

// Every group of 3 bytes as 4 characters of `alphabet`; the last 1 or 2 bytes as 2 or 3, then
// '=' up to 4 when `pad`.
std::string Encode(std::string_view bytes, std::string_view alphabet, bool pad) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t v = uint32_t(uint8_t(bytes[i])) << 16 | uint32_t(uint8_t(bytes[i + 1])) << 8 |
                       uint8_t(bytes[i + 2]);
    for (int shift = 18; shift >= 0; shift -= 6) out.push_back(alphabet[(v >> shift) & 63]);
  }
  const size_t rest = bytes.size() - i;
  if (rest > 0) {
    uint32_t v = uint32_t(uint8_t(bytes[i])) << 16;
    if (rest == 2) v |= uint32_t(uint8_t(bytes[i + 1])) << 8;
    out.push_back(alphabet[(v >> 18) & 63]);
    out.push_back(alphabet[(v >> 12) & 63]);
    if (rest == 2) out.push_back(alphabet[(v >> 6) & 63]);
    if (pad) out.append(rest == 2 ? 1 : 2, '=');
  }
  return out;
}

}  // namespace

std::string Base64Encode(std::string_view bytes) { return Encode(bytes, kBase64Alphabet, true); }

std::string Base64UrlEncode(std::string_view bytes) {
  return Encode(bytes, kBase64UrlAlphabet, false);
}

bool Base64Decode(std::string_view text, std::string* bytes) {
  if (text.size() % 4 != 0) return false;
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    uint32_t v = 0;
    int pad = 0;
    for (size_t j = 0; j < 4; ++j) {
      const char c = text[i + j];
      if (c == '=') {
        // Only at the end of the last group, and at most two.
        if (!last || j < 2) return false;
        ++pad;
        v <<= 6;
        continue;
      }
      if (pad > 0) return false;
      const size_t k = kBase64Alphabet.find(c);
      if (k == std::string_view::npos) return false;
      v = v << 6 | uint32_t(k);
    }
    out.push_back(char(v >> 16));
    if (pad < 2) out.push_back(char(v >> 8 & 0xff));
    if (pad < 1) out.push_back(char(v & 0xff));
    // Canonical: the bits under the padding are zero.
    if ((pad == 1 && (v & 0xff) != 0) || (pad == 2 && (v & 0xffff) != 0)) return false;
  }
  *bytes = std::move(out);
  return true;
}

}  // namespace ccmon
