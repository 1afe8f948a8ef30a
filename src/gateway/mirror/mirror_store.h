// MirrorStore: per device, a copy of its agent's state (the agent's keys and values without its
// outbox), kept in the gateway's KvStore so that an agent whose state directory was lost can
// resume from it (docs/agent-design.md "Resume"; docs/store-format.md "Gateway", keys `R`, `Q`).
//
// A mirror belongs to one stream epoch (a random 64-bit number the agent's state was created
// with) and carries the state sequence of the agent's last upload:
//   - Replace (a full snapshot): applied when the epoch differs from the stored one (a new agent
//     state, or none stored) or its sequence is above the stored one; otherwise kDuplicate (an
//     upload retried after a lost answer), nothing written.
//   - ApplyDelta (the ops of state sequences first..last): applied only when the epoch is the
//     stored one and first == stored + 1; last <= stored is kDuplicate; anything else
//     (another epoch, a gap, an overlap) is kGap: the agent must send a full snapshot.
//   - StagePart (one part of a snapshot sent in parts, state_mirror/state_records.h): parts are
//     kept apart (keys `P`, `p`) and the mirror is served unchanged until the last part replaces
//     it with all of them, under Replace's rule.
// Every change is ONE synced WriteBatch (records and meta together): after a crash the mirror is
// the one before or after the upload, never a mix. A change that would take the device's mirror
// over max_bytes_per_device (keys + values) is kTooLarge and writes nothing.
//
// Thread-safe: one mutex serializes changes (reads use a store snapshot and take it too, so
// that records and meta come from the same state).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "base/status.h"
#include "store/kv_store.h"

namespace ccmon::gateway {

inline constexpr char kMirrorRecordPrefix = 'R';   // 'R' + device + 0x00 + agent key -> value
inline constexpr char kMirrorMetaPrefix = 'Q';     // 'Q' + device -> MirrorMeta
inline constexpr char kMirrorStagedPrefix = 'P';   // 'P' + device + 0x00 + agent key -> value
inline constexpr char kMirrorStagingPrefix = 'p';  // 'p' + device -> StagingMeta

struct MirrorOptions {
  uint64_t max_bytes_per_device = uint64_t(256) << 20;  // keys + values; 0: no limit
};

struct MirrorMeta {
  uint64_t epoch = 0;
  uint64_t state_seq = 0;
  uint64_t bytes = 0;  // keys + values of the device's records
  uint64_t keys = 0;
  int64_t updated_ms = 0;  // unix ms of the last change
};

// The parts of a snapshot staged so far (key `p`).
struct StagingMeta {
  uint64_t epoch = 0;
  uint64_t state_seq = 0;
  uint64_t next_part = 0;  // parts 0 … next_part-1 are staged
  uint64_t bytes = 0;      // keys + values staged
  uint64_t keys = 0;
  int64_t updated_ms = 0;
};

enum class MirrorOutcome : uint8_t { kApplied, kDuplicate, kGap, kTooLarge };

struct MirrorStats {
  uint64_t applied = 0, duplicate = 0, gap = 0, too_large = 0, served = 0;
};

class MirrorStore {
 public:
  // `kv` is borrowed and must outlive the store. Each change is dated by its `now_ms`.
  MirrorStore(KvStore* kv, MirrorOptions options);

  // A full snapshot: `ops` (puts only; deletes are refused with kInvalidArgument) replace the
  // device's records. `device` is a valid device name (no NUL byte).
  Status Replace(std::string_view device, uint64_t epoch, uint64_t state_seq, const WriteBatch& ops,
                 int64_t now_ms, MirrorOutcome* outcome);
  // The ops of the agent's state sequences first_seq..last_seq (first_seq <= last_seq).
  Status ApplyDelta(std::string_view device, uint64_t epoch, uint64_t first_seq, uint64_t last_seq,
                    const WriteBatch& ops, int64_t now_ms, MirrorOutcome* outcome);
  // Part `part` (0, 1, … in order; `last` on the final one) of a full snapshot at
  // (epoch, state_seq); puts only. Outcomes:
  //   kApplied: staged; for the last part, the mirror replaced by every part's records (a key
  //     in several parts: the latest part's value) in one synced batch, and the staging gone;
  //   kDuplicate: the mirror is already at this snapshot or later in the same stream (Replace's
  //     rule: a part retried after the last one was applied), or this part is staged already
  //     (retried after a lost answer);
  //   kGap: a part other than 0 that does not follow the staged parts of the same snapshot:
  //     the agent must send the snapshot again from part 0;
  //   kTooLarge: the parts would exceed max_bytes_per_device: the staging is dropped.
  // Part 0 always starts a new staging (dropping any other of the device).
  Status StagePart(std::string_view device, uint64_t epoch, uint64_t state_seq, uint64_t part,
                   bool last, const WriteBatch& ops, int64_t now_ms, MirrorOutcome* outcome);
  // The device's mirror: its meta, and each record in key order (agent keys, without the
  // device prefix). kNotFound when there is none.
  Status Read(std::string_view device, MirrorMeta* meta,
              const std::function<void(std::string_view key, std::string_view value)>& f);
  // One page of it: the records after agent key `after` ("" from the first), in key order,
  // until their keys and values pass `max_bytes` (at least one record). *next: the last key
  // given when more records follow, else "". kNotFound when there is no mirror.
  Status ReadPage(std::string_view device, std::string_view after, size_t max_bytes,
                  MirrorMeta* meta,
                  const std::function<void(std::string_view key, std::string_view value)>& f,
                  std::string* next);
  // kNotFound when there is none.
  Status ReadMeta(std::string_view device, MirrorMeta* meta);

  MirrorStats stats() const;

  // Store keys (tests, docs).
  static std::string RecordKey(std::string_view device, std::string_view agent_key);
  static std::string MetaKey(std::string_view device);
  static std::string EncodeMeta(const MirrorMeta& meta);
  static bool DecodeMeta(std::string_view value, MirrorMeta* meta);
  static std::string StagedKey(std::string_view device, std::string_view agent_key);
  static std::string StagingKey(std::string_view device);
  static std::string EncodeStaging(const StagingMeta& meta);
  static bool DecodeStaging(std::string_view value, StagingMeta* meta);

 private:
  Status ReadMetaLocked(std::string_view device, MirrorMeta* meta);
  void Count(MirrorOutcome outcome);

  KvStore* kv_;
  MirrorOptions options_;
  mutable std::mutex mu_;
  MirrorStats stats_;
};

}  // namespace ccmon::gateway
