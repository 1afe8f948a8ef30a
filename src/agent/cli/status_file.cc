#include "agent/cli/status_file.h"

#include <cstdint>
#include <nlohmann/json.hpp>

#include "base/atomic_file.h"

namespace ccmon {
namespace {

// The fields, once, for both directions.
template <typename Fn>
void ForEachField(AgentStatus& s, Fn fn) {
  fn("pid", s.pid);
  fn("version", s.version);
  fn("started_unix", s.started_unix);
  fn("updated_unix", s.updated_unix);
  fn("files_tracked", s.files_tracked);
  fn("bytes_behind", s.bytes_behind);
  fn("lines_read", s.lines_read);
  fn("caught_up", s.caught_up);
  fn("outbox_requests", s.outbox_requests);
  fn("outbox_bytes", s.outbox_bytes);
  fn("last_push_unix", s.last_push_unix);
  fn("last_push_status", s.last_push_status);
  fn("consecutive_push_failures", s.consecutive_push_failures);
  fn("last_error", s.last_error);
}

constexpr size_t kMaxStatusFileBytes = size_t(1) << 20;

}  // namespace

std::string StatusToJson(const AgentStatus& status) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  AgentStatus copy = status;
  ForEachField(copy, [&](const char* name, auto& field) { j[name] = field; });
  // Invalid UTF-8 (an error message quoting a path) is replaced rather than thrown on.
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

Status StatusFromJson(std::string_view json, AgentStatus* out) {
  nlohmann::json j = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return Status::Corruption("status file: not a JSON object");
  AgentStatus s;
  Status error;
  ForEachField(s, [&](const char* name, auto& field) {
    auto it = j.find(name);
    if (it == j.end() || !error.ok()) return;
    using T = std::decay_t<decltype(field)>;
    if constexpr (std::is_same_v<T, std::string>) {
      if (!it->is_string()) {
        error = Status::Corruption(std::string("status file: ") + name + " is not a string");
        return;
      }
      field = it->get<std::string>();
    } else {
      if (!it->is_number_integer() ||
          (it->is_number_unsigned() && it->get<uint64_t>() > uint64_t(INT64_MAX))) {
        error = Status::Corruption(std::string("status file: ") + name + " is not an integer");
        return;
      }
      field = it->get<T>();
    }
  });
  if (!error.ok()) return error;
  *out = std::move(s);
  return Status::Ok();
}

Status WriteStatusFile(Env* env, const std::string& path, const AgentStatus& status) {
  return WriteFileAtomically(env, path, StatusToJson(status), 0600, CommitSync::kNone);
}

Status ReadStatusFile(Env* env, const std::string& path, AgentStatus* out) {
  std::string text;
  if (Status s = ReadFileToString(env, path, kMaxStatusFileBytes, &text); !s.ok()) return s;
  if (Status s = StatusFromJson(text, out); !s.ok())
    return Status::Corruption(path + ": " + s.message());
  return Status::Ok();
}

}  // namespace ccmon
