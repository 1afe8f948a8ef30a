#include "gateway/mirror/state_handler.h"

#include <string>
#include <utility>

#include "gateway/devices/device_key.h"
#include "state_mirror/state_records.h"

namespace ccmon::gateway {
namespace {

namespace sm = state_mirror;

ServerResponse Refuse(unsigned status, std::string why) {
  return ServerResponse::Text(status, std::move(why) + "\n");
}

// "N" -> (N, N); "A-B" -> (A, B).
bool ParseSeqRange(std::string_view text, uint64_t* first, uint64_t* last) {
  const size_t dash = text.find('-');
  if (dash == std::string_view::npos) {
    if (!sm::ParseSequence(text, first)) return false;
    *last = *first;
    return true;
  }
  return sm::ParseSequence(text.substr(0, dash), first) &&
         sm::ParseSequence(text.substr(dash + 1), last) && *first <= *last;
}

}  // namespace

AgentStateHandler::AgentStateHandler(MirrorStore* mirror, AgentStateHandlerOptions options)
    : mirror_(mirror), options_(std::move(options)) {
  if (options_.clock == nullptr) options_.clock = Clock::Real();
}

ServerResponse AgentStateHandler::Handle(const ServerRequest& request) {
  if (request.method != "GET" && request.method != "POST") {
    ServerResponse r = Refuse(405, "use GET or POST");
    r.headers.emplace_back("Allow", "GET, POST");
    return r;
  }
  std::string device;
  if (options_.devices == nullptr ||
      !options_.devices->Authenticate(BearerToken(request.Header("Authorization")), &device)) {
    ServerResponse r = Refuse(401, "a valid device key is required: Authorization: Bearer dk_...");
    r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"ccmon-gateway\"");
    return r;
  }
  return request.method == "GET" ? Get(device, request) : Post(device, request);
}

ServerResponse AgentStateHandler::Get(const std::string& device, const ServerRequest& request) {
  std::string after;
  const std::string_view after_text = request.Header(sm::kStateAfterHeader);
  if (!after_text.empty() && !sm::ParseKeyHex(after_text, &after))
    return Refuse(400, std::string(sm::kStateAfterHeader) + " wants a key in hex");
  MirrorMeta meta;
  sm::StateRecordWriter w;
  std::string next;
  const Status s = mirror_->ReadPage(
      device, after, options_.page_bytes, &meta,
      [&w](std::string_view k, std::string_view v) { w.Put(k, v); }, &next);
  if (s.code() == Status::Code::kNotFound) return ServerResponse::Text(204, "");
  if (!s.ok()) {
    if (options_.log) options_.log("agent state of " + device + ": cannot read: " + s.message());
    ServerResponse r = Refuse(503, "storage unavailable");
    r.headers.emplace_back("Retry-After", "5");
    return r;
  }
  ServerResponse r;
  r.status = 200;
  r.body = w.Finish();
  r.headers.emplace_back("Content-Type", std::string(sm::kStateContentType));
  r.headers.emplace_back(std::string(sm::kStreamHeader), sm::FormatEpoch(meta.epoch));
  r.headers.emplace_back(std::string(sm::kStateSeqHeader), std::to_string(meta.state_seq));
  if (!next.empty())
    r.headers.emplace_back(std::string(sm::kStateNextHeader), sm::FormatKeyHex(next));
  return r;
}

ServerResponse AgentStateHandler::Post(const std::string& device, const ServerRequest& request) {
  uint64_t epoch = 0, first = 0, last = 0;
  if (!sm::ParseEpoch(request.Header(sm::kStreamHeader), &epoch))
    return Refuse(400, std::string(sm::kStreamHeader) + " wants 16 hex digits");
  const bool full = request.Header(sm::kStateFullHeader) == "1";
  if (!ParseSeqRange(request.Header(sm::kStateSeqHeader), &first, &last) ||
      (full && first != last)) {
    return Refuse(
        400, std::string(sm::kStateSeqHeader) + " wants a sequence (full) or FIRST-LAST (delta)");
  }
  uint64_t part = 0;
  const std::string_view part_text = request.Header(sm::kStatePartHeader);
  const bool in_parts = !part_text.empty();
  if (in_parts && (!full || !sm::ParseSequence(part_text, &part))) {
    return Refuse(400, std::string(sm::kStatePartHeader) +
                           " wants a part number (0, 1, ...) of a full snapshot");
  }
  const std::string_view last_text = request.Header(sm::kStateLastHeader);
  if (!last_text.empty() && (!in_parts || last_text != "1"))
    return Refuse(400, std::string(sm::kStateLastHeader) + " wants 1, on a snapshot's part");
  const bool last_part = !in_parts || last_text == "1";
  WriteBatch ops;
  if (Status s = sm::DecodeStateBody(request.body, options_.max_raw_bytes, &ops); !s.ok()) {
    if (s.code() == Status::Code::kInvalidArgument) {
      if (options_.log) options_.log("agent state of " + device + " refused: " + s.message());
      return Refuse(413, s.message());
    }
    return Refuse(400, s.message());
  }
  MirrorOutcome outcome = MirrorOutcome::kApplied;
  const int64_t now_ms = options_.clock->NowUnixMs();
  Status s = !full ? mirror_->ApplyDelta(device, epoch, first, last, ops, now_ms, &outcome)
             : in_parts
                 ? mirror_->StagePart(device, epoch, last, part, last_part, ops, now_ms, &outcome)
                 : mirror_->Replace(device, epoch, last, ops, now_ms, &outcome);
  if (s.code() == Status::Code::kInvalidArgument) return Refuse(400, s.message());
  if (!s.ok()) {
    if (options_.log) options_.log("agent state of " + device + ": cannot store: " + s.message());
    ServerResponse r = Refuse(503, "storage unavailable");
    r.headers.emplace_back("Retry-After", "5");
    return r;
  }
  switch (outcome) {
    case MirrorOutcome::kApplied:
    case MirrorOutcome::kDuplicate:
      return ServerResponse::Text(204, "");
    case MirrorOutcome::kGap:
      return Refuse(409, in_parts ? "snapshot part out of order: send the snapshot from part 0"
                                  : "state sequence gap: send a full snapshot");
    case MirrorOutcome::kTooLarge: {
      if (options_.log) {
        options_.log("agent state of " + device +
                     " refused: over the per-device mirror limit (--max-agent-state-bytes)");
      }
      ServerResponse r = Refuse(413, "agent state over the gateway's per-device limit");
      r.headers.emplace_back(std::string(sm::kStateLimitHeader), "device");
      return r;
    }
  }
  return Refuse(500, "unreachable");
}

}  // namespace ccmon::gateway
