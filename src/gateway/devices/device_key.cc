#include "gateway/devices/device_key.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <memory>

#include "base/base64.h"

namespace ccmon::gateway {
namespace {

int ValueOf(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

}  // namespace

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
  // OpenSSL 3's one-shot SHA256() fetches the digest from its providers and allocates a context
  // on every call (EVP_Q_digest: ~2 % of the gateway's CPU under the issue-8 load, a hash per
  // write request; BENCHMARKS.md "Session 20"). The digest is fetched once, and each thread
  // reuses its context. Should either fail, the one-shot gives the same bytes.
  static EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  thread_local const std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx(EVP_MD_CTX_new(),
                                                                            EVP_MD_CTX_free);
  DeviceKeyHash h;
  unsigned int written = 0;
  if (sha256 == nullptr || ctx == nullptr || EVP_DigestInit_ex2(ctx.get(), sha256, nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), key.data(), key.size()) != 1 ||
      EVP_DigestFinal_ex(ctx.get(), h.data(), &written) != 1 || written != h.size()) {
    SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(), h.data());
  }
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
