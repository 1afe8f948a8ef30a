// DeviceRegistry: the gateway's devices and their keys, durable on the gateway's KvStore
// (docs/store-format.md "Gateway": one `D` + name record per device).
//
// A device has a name (IsValidDeviceName), a creation time, a last use and at most one live
// key, of which only the SHA-256 is kept (device_key.h). Add and Rotate return the key: it is
// never stored, so it is shown once. Revoke forgets the hash (the key stops working at once);
// Rotate replaces it (the old key stops working at once) and also brings a revoked device back
// with a new key. Names are never reused for another device: a revoked device keeps its name.
//
// Authentication hashes whatever token it is given (well-formed or not), finds the hash in an
// in-memory index and confirms it with a constant-time compare (HashesEqual). The index lookup
// compares SHA-256 outputs of the client's input, which tells an attacker nothing about any
// stored hash's preimage; no branch depends on which part of a malformed token was wrong.
//
// Last use: Authenticate records the time in memory, and writes it to the store (unsynced: a
// crash may lose the last minute of it) at most once per device per kLastSeenWriteInterval;
// a failed write is retried at the next use and never fails the authentication.
//
// Threading: thread-safe (one mutex; the store writes of Add, Rotate and Revoke are synced and
// happen under it, which serializes admin changes; Authenticate holds it only for the lookup and
// for the rare last-use write).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "gateway/devices/device_key.h"
#include "store/kv_store.h"

namespace ccmon::gateway {

inline constexpr char kDeviceKeyPrefixByte = 'D';  // the store key: 'D' + device name
inline constexpr std::chrono::milliseconds kLastSeenWriteInterval{60'000};
inline constexpr size_t kMaxDeviceNameLength = 64;

// 1..64 characters of [A-Za-z0-9._-].
bool IsValidDeviceName(std::string_view name);
// A name a new device may take: IsValidDeviceName, and not "." or "..", which URL clients and
// proxies normalise away (/api/v1/devices/.. is /api/v1/devices/), so that the device could not
// be revoked or rotated over the admin API. Devices added under those names before keep them.
bool IsValidNewDeviceName(std::string_view name);
inline constexpr const char kDeviceNameRule[] =
    "a device name is 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' and '-', and not '.' or "
    "'..'";

struct DeviceInfo {
  std::string name;
  int64_t created_ms = 0;    // unix ms
  int64_t last_seen_ms = 0;  // unix ms of the last authenticated write; 0: never
  bool revoked = false;
};

class DeviceRegistry {
 public:
  // Loads every device from `kv` (borrowed; must outlive the registry). `clock` (borrowed;
  // nullptr: Clock::Real()) dates creations and uses. kCorruption for a record that does not
  // decode; the KvStore's errors as they are.
  static Status Open(KvStore* kv, Clock* clock, std::unique_ptr<DeviceRegistry>* out);

  // Registers `name` with a new key, returned in *key. Errors: kInvalidArgument for an invalid
  // name (message says so) or a name already registered (revoked ones included: message
  // "device NAME already exists"); kIoError from the random generator or the store (nothing
  // registered).
  Status Add(std::string_view name, std::string* key);
  // A new key for `name` (revoked or not); the old one stops working. kNotFound for an unknown
  // device; kIoError as Add (then the old key still works).
  Status Rotate(std::string_view name, std::string* key);
  // Revokes `name`'s key. Revoking a revoked device is OK (nothing changes). kNotFound for an
  // unknown device; kIoError from the store (then the key still works).
  Status Revoke(std::string_view name);
  // Every device, by name.
  std::vector<DeviceInfo> List() const;

  // The device whose live key is `token` into *device; false for any other token (empty,
  // malformed, unknown, revoked, rotated away). Records the use (see above).
  bool Authenticate(std::string_view token, std::string* device);

  // Record codec (exposed for tests).
  struct Record {
    int64_t created_ms = 0;
    int64_t last_seen_ms = 0;
    bool revoked = false;
    DeviceKeyHash hash{};  // all zero when revoked
  };
  static std::string EncodeRecord(const Record& r);
  static Status DecodeRecord(std::string_view value, Record* r);

 private:
  DeviceRegistry(KvStore* kv, Clock* clock) : kv_(kv), clock_(clock) {}
  struct Device {
    Record record;
    int64_t persisted_last_seen_ms = 0;
  };
  Status WriteLocked(std::string_view name, const Record& r, bool sync);

  KvStore* kv_;
  Clock* clock_;
  mutable std::mutex mu_;
  std::map<std::string, Device, std::less<>> devices_;
  std::unordered_map<std::string, std::string> by_hash_;  // hash bytes -> name (live keys only)
};

}  // namespace ccmon::gateway
