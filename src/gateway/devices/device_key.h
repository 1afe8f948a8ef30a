// Device keys: the credential a device (an agent) sends as "Authorization: Bearer dk_…".
//
// A key is "dk_" followed by 32 random bytes from OpenSSL's RAND_bytes in base64url without
// padding (43 characters): 46 ASCII characters in all. The gateway never stores a key, only
// its SHA-256 (DeviceKeyHash); a key is shown once, when it is made.
//
// Timing: nothing here branches on the bytes of a stored hash. Callers compare hashes with
// HashesEqual (CRYPTO_memcmp), and hash whatever the client sent, well-formed or not, so that
// a malformed key and an unknown one take the same path.
//
// Thread-safe: free functions with no shared state (RAND_bytes is thread-safe in OpenSSL 3).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"

namespace ccmon::gateway {

inline constexpr std::string_view kDeviceKeyPrefix = "dk_";
inline constexpr size_t kDeviceKeyRandomBytes = 32;
inline constexpr size_t kDeviceKeyLength = 3 + 43;  // prefix + base64url(32 bytes), unpadded

using DeviceKeyHash = std::array<uint8_t, 32>;  // SHA-256

// A fresh key into *key. kIoError when the random generator fails (then *key is unchanged).
Status GenerateDeviceKey(std::string* key);

// SHA-256 of the bytes as given (any bytes, any length).
DeviceKeyHash HashDeviceKey(std::string_view key);

// Whether `key` has the form of a key: the prefix and exactly 43 base64url characters whose
// last one carries no stray bits. Says nothing about whether the key is registered.
bool IsWellFormedDeviceKey(std::string_view key);

// The credential of an Authorization header value: the text after "Bearer " (the scheme
// matched ASCII case-insensitively, spaces around trimmed). "" when the header is empty, of
// another scheme, or has nothing after the scheme.
std::string_view BearerToken(std::string_view authorization);

// Constant-time equality of two hashes (CRYPTO_memcmp).
bool HashesEqual(const DeviceKeyHash& a, const DeviceKeyHash& b);

}  // namespace ccmon::gateway
