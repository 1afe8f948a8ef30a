// The status file: what the running agent says about itself, for `ccmon-agent status`.
//
// The agent (the CLI's publish_status hook, agent/cli/run_hooks.h) writes it as JSON to
// <state dir>/status.json, atomically (base/atomic_file.h: a reader sees the old or the new
// file, never a part), every second or on change; `status` reads it while the agent runs. The
// JSON object has exactly the AgentStatus fields below under the same names (integers as JSON
// integers, text as JSON strings); a reader ignores fields it does not know, so fields may be
// added. Not thread-safe: one writer (the CLI serialises the engine's calls).
#pragma once

#include <cstdint>
#include <string>

#include "base/env.h"
#include "base/status.h"

namespace ccmon {

struct AgentStatus {
  int64_t pid = 0;           // the agent process
  std::string version;       // ccmon-agent's version
  int64_t started_unix = 0;  // when the agent started (Unix seconds)
  // When this status was written (Unix seconds). The agent writes a change at once and an
  // unchanged status again once a minute, so while it runs this is at most ~65 s old.
  int64_t updated_unix = 0;

  int64_t files_tracked = 0;  // transcript files being followed
  int64_t bytes_behind = 0;   // bytes appended to them and not read yet
  int64_t lines_read = 0;     // since the agent started
  // 1 once the history present at start has been read (live from then on), else 0.
  int64_t caught_up = 0;
  int64_t outbox_requests = 0;  // encoded requests waiting for a 2xx
  int64_t outbox_bytes = 0;

  int64_t last_push_unix = 0;  // the last push attempt's end (Unix seconds); 0: none yet
  // The last push's result: "ok", "http 503", "network error: …"; "" before the first push.
  std::string last_push_status;
  int64_t consecutive_push_failures = 0;  // failed pushes since the last successful one
  std::string last_error;                 // the last error worth a user's attention, or ""

  bool operator==(const AgentStatus&) const = default;
};

// The file's name inside the state directory.
inline constexpr const char kStatusFileName[] = "status.json";

// The JSON text of `status` (one object, one line, ending in "\n").
std::string StatusToJson(const AgentStatus& status);
// Parses StatusToJson's output. A missing field keeps its default; a field of the wrong JSON
// type, or text that is not a JSON object, is kCorruption.
Status StatusFromJson(std::string_view json, AgentStatus* out);

// Writes `status` to `path` atomically, mode 0600, without fsync (CommitSync::kNone): the
// running agent rewrites it every few seconds and at each start, so a power loss costs nothing,
// while two fsyncs per write (on the counting thread, behind RocksDB's flushes on a busy disk:
// up to tens of ms each) slowed the first start. Errors name the path.
Status WriteStatusFile(Env* env, const std::string& path, const AgentStatus& status);
// Reads `path` (at most 1 MiB). kNotFound when there is no file.
Status ReadStatusFile(Env* env, const std::string& path, AgentStatus* out);

}  // namespace ccmon
