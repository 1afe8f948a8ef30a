// AgentStateHandler: the gateway's /api/v1/agent/state (state_mirror/state_records.h has the
// protocol): the agents upload their state mirror here and fetch it back to resume
// (docs/agent-design.md "Resume"). A pure request -> response function over a MirrorStore.
//
//   GET   200 one page of the device's mirror (records after X-Ccmon-State-After, a hex key,
//             if given): body = state records (snappy), headers X-Ccmon-Stream (its epoch),
//             X-Ccmon-State-Seq (its state sequence) and, when more records follow,
//             X-Ccmon-State-Next (the key to ask after); 204 when there is none; 400 a bad
//             X-Ccmon-State-After.
//   POST  with X-Ccmon-Stream, X-Ccmon-State-Seq and X-Ccmon-State-Full: 1 (a full snapshot;
//             with X-Ccmon-State-Part N, one part of it, X-Ccmon-State-Last: 1 on the last):
//             204 stored (durable) or a duplicate of what is stored (same epoch, sequence not
//             above the stored one; counted, not applied); 409 for a part that does not follow
//             the staged ones (send the snapshot again from part 0).
//         without X-Ccmon-State-Full: a delta, X-Ccmon-State-Seq "FIRST-LAST": 204 applied or a
//             duplicate; 409 (a gap, an overlap, another epoch): send a full snapshot.
//   400   missing or malformed headers, a body that does not decode; 413 a mirror that would
//         exceed max_bytes_per_device (nothing stored; logged; X-Ccmon-State-Limit: device), or
//         an upload over max_raw_bytes uncompressed; 401 no valid device key (the
//         write path's rule; an anonymous gateway has no device to mirror); 405 other
//         methods; 503 the store failed.
// Thread-safe (the MirrorStore serializes changes).
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <string_view>

#include "base/clock.h"
#include "gateway/devices/device_registry.h"
#include "gateway/mirror/mirror_store.h"
#include "http/server.h"

namespace ccmon::gateway {

struct AgentStateHandlerOptions {
  DeviceRegistry* devices = nullptr;         // borrowed; nullptr: every request is 401
  Clock* clock = nullptr;                    // nullptr: Clock::Real()
  size_t max_raw_bytes = size_t(512) << 20;  // an upload's uncompressed records at most
  size_t page_bytes = size_t(4) << 20;       // a GET's records (keys + values) at most, about
  // One line per refusal worth an operator's attention (413, 503). Empty: not reported.
  std::function<void(std::string_view)> log;
};

class AgentStateHandler : public HttpHandler {
 public:
  // `mirror` is borrowed and must outlive the handler.
  AgentStateHandler(MirrorStore* mirror, AgentStateHandlerOptions options);
  ServerResponse Handle(const ServerRequest& request) override;

 private:
  ServerResponse Get(const std::string& device, const ServerRequest& request);
  ServerResponse Post(const std::string& device, const ServerRequest& request);

  MirrorStore* mirror_;
  AgentStateHandlerOptions options_;
};

}  // namespace ccmon::gateway
