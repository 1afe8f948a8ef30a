// GatewayComputed: the series the gateway computes for /metrics next to the stored ones — every
// series the seed server exported (issue 8 §4), defined exactly in docs/accounting.md
// ("Gateway-computed series"):
//
//   claude_device_online{device}                     1 while now − last seen < online_window, else
//   0 claude_device_last_seen_timestamp_seconds{device} unix seconds of its last accepted write
//   claude_device_agent_info{device,agent}           1; agent = the User-Agent of that write
//   claude_hourly_spend_usd{device}                  cost stamped in its buckets of the last hour
//   claude_daily_spend_usd{device}                   ... of the last 24 hours (spend_windows.h)
//   claude_cache_hit_ratio{device,model}             cache_read / (input + cache_creation_5m +
//                                                    cache_creation_1h + cache_read) tokens
//   claude_input_output_ratio{device,model}          those input-side tokens / output tokens
//   claude_cache_efficiency_percent{device}          100 · savings / (cost + savings)
//
// The ratios are computed at each scrape from the stored series (claude_tokens_total{type},
// claude_cost_usd_total, claude_cache_savings_usd_total; summed over every other label, in
// integers: tokens as counts, money as pico-dollars), divided once; a ratio whose denominator is
// 0 is absent, never NaN. Series without a `device` (or, for the per-model ratios, `model`)
// label take no part. All are gauges with HELP and TYPE.
//
// Threading: thread-safe (DeviceActivity and SpendWindows are).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "base/clock.h"
#include "base/status.h"
#include "exposition/negotiate.h"
#include "gateway/computed/device_activity.h"
#include "gateway/computed/spend_windows.h"
#include "gateway/store/series_table.h"
#include "store/kv_store.h"

namespace ccmon::gateway {

// The agent's default --resend-interval (src/agent/cli/config.h) times 3.
inline constexpr std::chrono::milliseconds kDefaultOnlineWindow{3 * 15'000};

// True for the names of the computed families: stored series of those names are not exposed
// (an upstream's own claude_device_online, say), so that each family appears once.
bool IsComputedFamily(std::string_view name);

struct ComputedOptions {
  std::chrono::milliseconds online_window = kDefaultOnlineWindow;
  Clock* clock = nullptr;  // borrowed; nullptr: Clock::Real()
};

class GatewayComputed {
 public:
  // Loads the device activity and the spend buckets from `kv` (borrowed; must outlive this).
  // Errors as DeviceActivity::Open and SpendWindows::Open.
  static Status Open(KvStore* kv, ComputedOptions options, std::unique_ptr<GatewayComputed>* out);

  // An accepted write (WriteHandlerOptions::on_accepted).
  void RecordWrite(std::string_view device, std::string_view user_agent) {
    activity_->RecordWrite(device, user_agent);
  }
  // For GatewayStore::set_apply_listener.
  ApplyListener* apply_listener() { return spend_.get(); }
  // Writes pending last-seen times (a clean stop).
  Status Flush() { return activity_->Flush(); }

  // Appends the computed families at the clock's now, from `table` (the caller holds its read
  // lock) and the activity and buckets. Text 0.0.4 or OpenMetrics (without "# EOF").
  void Write(const SeriesTable& table, ExpositionFormat format, std::string* out) const;

  const DeviceActivity& activity() const { return *activity_; }
  const SpendWindows& spend() const { return *spend_; }

 private:
  GatewayComputed() = default;
  ComputedOptions options_;
  std::unique_ptr<DeviceActivity> activity_;
  std::unique_ptr<SpendWindows> spend_;
};

}  // namespace ccmon::gateway
