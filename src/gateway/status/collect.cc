#include "gateway/status/collect.h"

#include <map>
#include <utility>

#include "base/record_codec.h"
#include "gateway/computed/spend_windows.h"

namespace ccmon::gateway {
namespace {

// The metric name and the `device` label's value of a series key (SeriesKey's format: the name,
// then name/value pairs, each a varint length and bytes), as views into the key. False for a
// malformed key.
bool NameAndDeviceOfKey(std::string_view key, std::string_view* name, std::string_view* device) {
  Reader in(key);
  if (!in.Bytes(name)) return false;
  *device = {};
  while (!in.done()) {
    std::string_view n, v;
    if (!in.Bytes(&n) || !in.Bytes(&v)) return false;
    if (n == "device") *device = v;
  }
  return true;
}

}  // namespace

GatewayStatus CollectGatewayStatus(const StatusSources& src) {
  Clock* clock = src.clock != nullptr ? src.clock : Clock::Real();
  GatewayStatus out;
  out.version = src.version;
  out.now_ms = clock->NowUnixMs();
  out.started_ms = src.started_ms;
  out.online_window_ms = src.online_window.count();
  out.anonymous_writes = src.anonymous_writes;

  std::map<std::string, DeviceStatus, std::less<>> devices;
  auto device = [&devices](std::string_view name) -> DeviceStatus& {
    auto it = devices.find(name);
    if (it == devices.end()) {
      it = devices.emplace(std::string(name), DeviceStatus{}).first;
      it->second.name = std::string(name);
    }
    return it->second;
  };

  if (src.devices != nullptr) {
    for (const DeviceInfo& info : src.devices->List()) {
      DeviceStatus& d = device(info.name);
      d.registered = true;
      d.revoked = info.revoked;
      d.created_ms = info.created_ms;
      d.last_seen_ms = info.last_seen_ms;
    }
  }
  if (src.computed != nullptr) {
    for (const DeviceActivityInfo& a : src.computed->activity().List()) {
      DeviceStatus& d = device(a.device);
      // The activity's last seen (an accepted write) is claude_device_online's; the registry's
      // last use (any authenticated request) only stands in for a device without activity.
      d.last_seen_ms = a.last_seen_ms;
      d.agent = a.agent;
    }
    for (const DeviceCalendarSpend& s : src.computed->spend().CalendarSpendAt(out.now_ms)) {
      DeviceStatus& d = device(s.device);
      d.spend_today = s.utc_today;
      d.spend_month = s.utc_month;
    }
  }
  src.store->Read([&](const SeriesTable& table) {
    out.series = table.size();
    // Under the store's read lock (writers wait): no allocation per series, and consecutive
    // series of one device (the common case: keys sort by name, then labels) share a lookup.
    std::string_view last_device;
    DeviceStatus* last = nullptr;
    for (const auto& [key, state] : table.series()) {
      std::string_view name, device_label;
      if (!NameAndDeviceOfKey(key, &name, &device_label) || device_label.empty()) continue;
      if (last == nullptr || device_label != last_device) {
        last = &device(device_label);
        last_device = last->name;
      }
      ++last->series;
      PicoSum pico = 0;
      if (name == kCostSeriesName && UsdToPicoExact(state.value, &pico)) last->cost_total += pico;
    }
  });
  for (auto& [name, d] : devices) {
    // claude_device_online's rule.
    d.online = d.last_seen_ms != 0 && out.now_ms - d.last_seen_ms < src.online_window.count();
    MirrorMeta meta;
    if (src.mirror != nullptr && src.mirror->ReadMeta(name, &meta).ok()) {
      d.state_copy = true;
      d.state_copy_bytes = meta.bytes;
      d.state_copy_updated_ms = meta.updated_ms;
    }
    out.devices.push_back(std::move(d));
  }

  if (src.forwarder != nullptr) {
    for (const ForwardDestinationStats& f : src.forwarder->stats()) {
      ForwardStatus s;
      s.destination = f.destination;
      s.queued_samples = f.queued_samples;
      s.queued_bytes = f.queued_bytes;
      s.lag_seconds = f.lag_seconds;
      s.samples_sent = f.samples_sent;
      s.samples_failed = f.samples_rejected;
      s.samples_dropped = f.samples_dropped + f.samples_invalid;
      s.retries = f.retries;
      s.last_error = f.last_error;
      s.last_error_ms = f.last_error_unix_ms;
      s.last_success_ms = f.last_success_unix_ms;
      out.destinations.push_back(std::move(s));
    }
  }
  return out;
}

}  // namespace ccmon::gateway
