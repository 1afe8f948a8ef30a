// The agent's batch identity (issue 8 §3) and the gateway's high-water marks over it.
//
// ccmon-agent labels each remote-write request from its outbox (remote_write/outbox/
// outbox_source.h, SetBatchIdentity) with `X-Ccmon-Stream: EPOCH` (its state's epoch, 16 hex
// digits) and `X-Ccmon-Batch: RUN/SHARD/FIRST-LAST` (RUN: 16 hex digits drawn at random at each
// agent start; SHARD, FIRST, LAST: decimal, the outbox shard and the sequences the request
// covers, FIRST <= LAST). Within one run and shard the sequences only grow, and a run is never
// reused, so a request whose LAST is at or below the highest LAST already applied for the same
// device, stream, run and shard was applied before (a retry after a lost answer, a duplicate):
// the gateway acknowledges it without applying it again.
//
// The marks are kept in memory, per device, for its newest (stream, run) only: after a gateway
// restart, or when an agent restarts, the first retries of older batches are applied again,
// which is harmless — their samples are at or before their series' stored timestamps and are
// dropped as duplicates one by one (SeriesStore). A mark is raised only after the request was
// stored (never ahead of the data), so a request is never skipped that was not applied. Requests
// without the headers, or with malformed ones, are applied as before (plain remote-write).
//
// Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

namespace ccmon::gateway {

inline constexpr std::string_view kStreamHeaderName = "X-Ccmon-Stream";
inline constexpr std::string_view kBatchHeaderName = "X-Ccmon-Batch";

struct BatchIdentity {
  std::string stream;  // 16 hex digits
  std::string run;     // 16 hex digits
  uint32_t shard = 0;  // 0..255
  uint64_t first = 0, last = 0;
};

// Parses the two header values; false (a request to apply as plain remote-write) when either is
// absent or malformed: a stream or run that is not 16 lowercase hex digits, a shard over 255, a
// sequence that is not a canonical decimal uint64, FIRST > LAST.
bool ParseBatchIdentity(std::string_view stream_header, std::string_view batch_header,
                        BatchIdentity* out);

class BatchHighWater {
 public:
  // Whether `device` already had a batch of the same stream, run and shard applied whose LAST
  // is >= id.last.
  bool AlreadyApplied(const std::string& device, const BatchIdentity& id) const;
  // Records that `id` was stored for `device`. Another stream or run than the device's current
  // one replaces its marks (the agent restarted).
  void Applied(const std::string& device, const BatchIdentity& id);
  size_t devices() const;

 private:
  struct Marks {
    std::string stream, run;
    std::map<uint32_t, uint64_t> last_by_shard;
  };
  mutable std::mutex mu_;
  std::map<std::string, Marks, std::less<>> by_device_;
};

}  // namespace ccmon::gateway
