#include "gateway/devices/device_key.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

namespace ccmon::gateway {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int ValueOf(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

}  // namespace

std::string Base64UrlEncode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() * 4 + 2) / 3);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t v = uint32_t(uint8_t(bytes[i])) << 16 | uint32_t(uint8_t(bytes[i + 1])) << 8 |
                       uint8_t(bytes[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  const size_t rest = bytes.size() - i;
  if (rest == 1) {
    const uint32_t v = uint32_t(uint8_t(bytes[i])) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
  } else if (rest == 2) {
    const uint32_t v = uint32_t(uint8_t(bytes[i])) << 16 | uint32_t(uint8_t(bytes[i + 1])) << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
  }
  return out;
}

Status GenerateDeviceKey(std::string* key) {
  unsigned char random[kDeviceKeyRandomBytes];
  if (RAND_bytes(random, int(sizeof(random))) != 1) {
    return Status::IoError("cannot make a device key: the random generator failed");
  }
  std::string k(kDeviceKeyPrefix);
  k += Base64UrlEncode(std::string_view(reinterpret_cast<const char*>(random), sizeof(random)));
  OPENSSL_cleanse(random, sizeof(random));
  *key = std::move(k);
  return Status::Ok();
}

DeviceKeyHash HashDeviceKey(std::string_view key) {
  DeviceKeyHash h;
  SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(), h.data());
  return h;
}

bool IsWellFormedDeviceKey(std::string_view key) {
  if (key.size() != kDeviceKeyLength || !key.starts_with(kDeviceKeyPrefix)) return false;
  key.remove_prefix(kDeviceKeyPrefix.size());
  for (char c : key) {
    if (ValueOf(c) < 0) return false;
  }
  // 32 bytes = 256 bits in 43 characters (258 bits): the last character's low 2 bits are 0.
  return (ValueOf(key.back()) & 3) == 0;
}

std::string_view BearerToken(std::string_view authorization) {
  auto trim = [](std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
  };
  authorization = trim(authorization);
  constexpr std::string_view kScheme = "bearer";
  if (authorization.size() <= kScheme.size()) return "";
  for (size_t i = 0; i < kScheme.size(); ++i) {
    char c = authorization[i];
    if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
    if (c != kScheme[i]) return "";
  }
  const char sep = authorization[kScheme.size()];
  if (sep != ' ' && sep != '\t') return "";
  return trim(authorization.substr(kScheme.size()));
}

bool HashesEqual(const DeviceKeyHash& a, const DeviceKeyHash& b) {
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace ccmon::gateway
