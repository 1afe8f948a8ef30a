// State records: the bytes in which an agent's state (the keys and values of its KvStore,
// without the outbox) travels to a ccmon-gateway and back (docs/store-format.md "State
// mirror"; docs/agent-design.md "Resume").
//
// A body is the snappy (raw block) compression of:
//   version byte (kStateRecordsVersion = 1), then records, each
//     op     1 byte: 1 put, 2 delete
//     key    varint (LEB128) length, 1 … kMaxKvKeyBytes, then the bytes
//     value  (put only) varint length, 0 … kMaxKvValueBytes, then the bytes
// Records apply in order (a later record of the same key wins), like a WriteBatch's ops.
// A full snapshot holds puts only; a delta may hold deletes.
//
// Thread-safety: plain functions and a value type; no shared state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"
#include "store/kv_store.h"

namespace ccmon::state_mirror {

inline constexpr uint8_t kStateRecordsVersion = 1;

// The protocol between an agent and a ccmon-gateway (README "Gateway", docs/agent-design.md
// "Resume"). All on one path, authenticated by the device key (Authorization: Bearer dk_…):
//   GET  kAgentStatePath  -> 200 body (records of the device's mirror) with kStreamHeader and
//                            kStateSeqHeader; 204 when the gateway holds no mirror for it.
//   POST kAgentStatePath  body (records) with kStreamHeader, kStateSeqHeader and
//                            kStateFullHeader: "1" (a full snapshot, replaces the mirror).
// Neither side holds a big state in one body (a gateway's --max-body-bytes is 16 MiB by
// default; a mirror may be 256 MiB):
//   - a snapshot goes in parts: kStatePartHeader "0", "1", … in order, kStateLastHeader "1" on
//     the last one; the gateway stages them and replaces the mirror only with the last. A 409
//     for a part means "send the snapshot again from part 0". A snapshot without
//     kStatePartHeader is one part, the last;
//   - a GET answers one page of records; kStateNextHeader (when more follow) is the key to ask
//     for next, as kStateAfterHeader of the next GET; every page of one mirror carries the same
//     stream and sequence (a change between pages shows as another sequence: start again);
//   - a 413 with kStateLimitHeader "device" means the device's mirror would exceed the
//     gateway's per-device limit (smaller parts do not help); a 413 without it is a body limit.
inline constexpr std::string_view kAgentStatePath = "/api/v1/agent/state";
inline constexpr std::string_view kStreamHeader = "X-Ccmon-Stream";       // epoch, 16 hex digits
inline constexpr std::string_view kStateSeqHeader = "X-Ccmon-State-Seq";  // decimal uint64
inline constexpr std::string_view kStateFullHeader = "X-Ccmon-State-Full";
inline constexpr std::string_view kStatePartHeader = "X-Ccmon-State-Part";    // decimal, from 0
inline constexpr std::string_view kStateLastHeader = "X-Ccmon-State-Last";    // "1"
inline constexpr std::string_view kStateAfterHeader = "X-Ccmon-State-After";  // a key, hex
inline constexpr std::string_view kStateNextHeader = "X-Ccmon-State-Next";    // a key, hex
inline constexpr std::string_view kStateLimitHeader = "X-Ccmon-State-Limit";  // "device"
inline constexpr std::string_view kStateContentType = "application/x-ccmon-state";

// "00000000deadbeef": 16 lowercase hex digits.
std::string FormatEpoch(uint64_t epoch);
// Exactly 16 hex digits (either case); false otherwise.
bool ParseEpoch(std::string_view text, uint64_t* epoch);
// Decimal digits only, no sign, at most UINT64_MAX; false otherwise.
bool ParseSequence(std::string_view text, uint64_t* seq);

// A key as lowercase hex (agent keys are binary; headers carry them so), and back: an even
// number of hex digits (either case), 2 … 2 * kMaxKvKeyBytes of them; false otherwise.
std::string FormatKeyHex(std::string_view key);
bool ParseKeyHex(std::string_view text, std::string* key);

// Appends one record to `records` (the part of a body after its version byte): what an agent
// stages per commit as a state delta, so that several deltas concatenated are one body's
// records (CompressRecords).
void AppendPutRecord(std::string* records, std::string_view key, std::string_view value);
void AppendDeleteRecord(std::string* records, std::string_view key);
// The body of `records` (the version byte, then them; snappy).
std::string CompressRecords(std::string_view records);

// Builds the uncompressed records of one body; Finish() compresses them.
class StateRecordWriter {
 public:
  StateRecordWriter();
  void Put(std::string_view key, std::string_view value);
  void Delete(std::string_view key);
  // Records written so far.
  uint64_t count() const { return count_; }
  // Uncompressed bytes so far (version byte included).
  size_t raw_bytes() const { return raw_.size(); }
  // The body (snappy of the records). The writer is empty afterwards (a new body).
  std::string Finish();

 private:
  std::string raw_;
  uint64_t count_ = 0;
};

// Decodes a body into `out` (appended, in order). A body whose declared uncompressed length is
// over `max_raw_bytes` is refused before it is decompressed (kInvalidArgument, "too large").
// kCorruption: not snappy, an unknown version or op, an empty or over-long key, an over-long
// value, or a truncated record. After an error `out` may hold the records before the bad one:
// callers apply nothing of a body that failed.
Status DecodeStateBody(std::string_view body, size_t max_raw_bytes, WriteBatch* out);

}  // namespace ccmon::state_mirror
