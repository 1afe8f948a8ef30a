// CollectGatewayStatus: a GatewayStatus snapshot of the running gateway, for the status page.
//
// Devices are the union of the registered devices (DeviceRegistry: keys, revoked included), the
// devices seen writing (DeviceActivity: last seen and agent; anonymous writes included) and the
// `device` labels of the stored series, by name. Per device: online as claude_device_online
// (now − last seen < online window), the stored series with its `device` label, today's and this
// month's spend from SpendWindows' UTC day buckets, and the sum of its claude_cost_usd_total
// series' last values (exact pico-dollars; stale markers and invalid values skipped), and its
// agent state copy's size and age (MirrorStore meta; a device whose meta cannot be read shows
// none). Forward destinations come from Forwarder::stats().
//
// Cost: one pass over the stored series under the store's read lock (label decoding per series),
// so a page load costs about what a /metrics scrape does.
//
// Threading: thread-safe when the sources are (they all are); the pointers are borrowed.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "base/clock.h"
#include "gateway/computed/computed.h"
#include "gateway/devices/device_registry.h"
#include "gateway/forward/forwarder.h"
#include "gateway/mirror/mirror_store.h"
#include "gateway/status/status_snapshot.h"
#include "gateway/store/series_store.h"

namespace ccmon::gateway {

struct StatusSources {
  const SeriesStore* store = nullptr;         // required
  const DeviceRegistry* devices = nullptr;    // null: no registered devices shown
  const GatewayComputed* computed = nullptr;  // null: no last seen, agent or spend
  const Forwarder* forwarder = nullptr;       // null: no forward destinations
  MirrorStore* mirror = nullptr;              // null: no state copies shown
  Clock* clock = nullptr;                     // nullptr: Clock::Real()
  std::string version;
  int64_t started_ms = 0;
  std::chrono::milliseconds online_window = kDefaultOnlineWindow;
  bool anonymous_writes = false;
};

GatewayStatus CollectGatewayStatus(const StatusSources& sources);

}  // namespace ccmon::gateway
