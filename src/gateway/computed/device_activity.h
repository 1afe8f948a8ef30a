// DeviceActivity: per device, when it last wrote and with which agent, durable on the gateway's
// KvStore (docs/store-format.md "Gateway": one `A` + device name record per device).
//
// The device of a write is the device key's name (authenticated writes) or a `device` label of
// its series (anonymous writes); the write handler reports each accepted write
// (WriteHandlerOptions::on_accepted) and RunGateway passes it to RecordWrite.
//
// Last seen is kept in memory at every accepted write and written to the store (unsynced: a
// crash may lose the last minute of it) at most once per device per kActivityWriteInterval,
// unless the agent (the request's User-Agent) changed, which is written at once. A failed write
// is retried at the next write of that device and never fails the request; Flush (a clean stop)
// writes what is pending, so a restarted gateway serves the same last-seen times.
//
// Threading: thread-safe (one mutex; the rare store writes happen under it).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "store/kv_store.h"

namespace ccmon::gateway {

inline constexpr char kDeviceActivityKeyPrefix = 'A';
inline constexpr std::chrono::milliseconds kActivityWriteInterval{60'000};
// A User-Agent is kept to this many bytes; bytes outside printable ASCII become '?'.
inline constexpr size_t kMaxAgentBytes = 128;

struct DeviceActivityInfo {
  std::string device;
  int64_t last_seen_ms = 0;  // unix ms of its last accepted write
  std::string agent;         // the User-Agent of that write ("" when it sent none)
};

class DeviceActivity {
 public:
  // Loads every record from `kv` (borrowed; must outlive this). `clock` (borrowed; nullptr:
  // Clock::Real()) dates the writes. kCorruption for a record that does not decode; the
  // KvStore's errors as they are.
  static Status Open(KvStore* kv, Clock* clock, std::unique_ptr<DeviceActivity>* out);

  // An accepted write of `device` (non-empty) now, sent with `user_agent`.
  void RecordWrite(std::string_view device, std::string_view user_agent);
  // Writes every last seen not written yet (synced). The store's error, if any.
  Status Flush();
  // Every device seen, by name.
  std::vector<DeviceActivityInfo> List() const;

  // Record codec (exposed for tests): version byte 1, last seen (int64 LE), the agent (varint
  // length and bytes).
  static std::string EncodeRecord(int64_t last_seen_ms, std::string_view agent);
  static Status DecodeRecord(std::string_view value, int64_t* last_seen_ms, std::string* agent);
  // The agent text kept for a User-Agent header.
  static std::string CleanAgent(std::string_view user_agent);

 private:
  DeviceActivity(KvStore* kv, Clock* clock) : kv_(kv), clock_(clock) {}
  struct Entry {
    int64_t last_seen_ms = 0;
    std::string agent;
    int64_t persisted_last_seen_ms = 0;
    std::string persisted_agent;
    bool persisted = false;  // a record exists in the store
  };
  Status WriteLocked(const std::string& device, Entry* e, bool sync);

  KvStore* kv_;
  Clock* clock_;
  mutable std::mutex mu_;
  std::map<std::string, Entry, std::less<>> devices_;
};

}  // namespace ccmon::gateway
