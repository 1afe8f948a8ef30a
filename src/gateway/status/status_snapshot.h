// GatewayStatus: what the gateway's status page shows (GET /, /status, /api/v1/status; issue 9
// §3), as plain values taken at one instant. CollectGatewayStatus (collect.h) fills it from the
// running gateway; RenderStatusHtml and RenderStatusJson (status_page.h) turn it into the page
// and its JSON twin. Nothing here is escaped or trusted: device names (an anonymous write's
// `device` label), agents (User-Agent headers), destination URLs and upstream error texts are
// the renderers' to escape.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/money.h"

namespace ccmon::gateway {

struct DeviceStatus {
  std::string name;
  // A device key is registered under this name (DeviceRegistry); false for a device seen only
  // through anonymous writes (--allow-anonymous).
  bool registered = false;
  bool revoked = false;
  int64_t created_ms = 0;    // unix ms the key was registered; 0: not registered
  int64_t last_seen_ms = 0;  // unix ms of its last accepted write; 0: never wrote
  bool online = false;       // wrote within the gateway's --online-window
  std::string agent;         // the User-Agent of that write ("" when unknown)
  uint64_t series = 0;       // stored series with this `device` label
  // Cost increases stamped (event time) in the current UTC day and month (SpendWindows'
  // calendar buckets), and the sum of its claude_cost_usd_total series' last values (every
  // cost it ever reported), in pico-dollars.
  PicoSum spend_today = 0;
  PicoSum spend_month = 0;
  PicoSum cost_total = 0;
  // The copy of its agent's state the gateway keeps for a resume (MirrorStore): whether there is
  // one, its size (keys + values) and when it last changed (unix ms). No copy: the device cannot
  // resume after losing its state dir.
  bool state_copy = false;
  uint64_t state_copy_bytes = 0;
  int64_t state_copy_updated_ms = 0;
};

struct ForwardStatus {
  std::string destination;  // URL without credentials (RedactedUrl)
  uint64_t queued_samples = 0;
  uint64_t queued_bytes = 0;
  double lag_seconds = 0;  // age of the oldest queued entry; 0 when empty
  uint64_t samples_sent = 0;
  uint64_t samples_failed = 0;   // refused for good (4xx)
  uint64_t samples_dropped = 0;  // queue limits and invalid series
  uint64_t retries = 0;
  std::string last_error;       // "" when none since start
  int64_t last_error_ms = 0;    // unix ms; 0: never
  int64_t last_success_ms = 0;  // unix ms of the last 2xx; 0: never
};

struct GatewayStatus {
  std::string version;     // ccmon-gateway's
  int64_t now_ms = 0;      // when the snapshot was taken (unix ms)
  int64_t started_ms = 0;  // when the gateway started (unix ms)
  int64_t online_window_ms = 0;
  uint64_t series = 0;  // every stored series
  bool anonymous_writes = false;
  std::vector<DeviceStatus> devices;        // by name
  std::vector<ForwardStatus> destinations;  // in --forward order
};

}  // namespace ccmon::gateway
