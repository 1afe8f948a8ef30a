#include "gateway/computed/computed.h"

#include <array>
#include <map>
#include <utility>

#include "base/record_codec.h"
#include "gateway/store/exposition.h"

namespace ccmon::gateway {
namespace {

constexpr std::string_view kOnline = "claude_device_online";
constexpr std::string_view kLastSeen = "claude_device_last_seen_timestamp_seconds";
constexpr std::string_view kAgentInfo = "claude_device_agent_info";
constexpr std::string_view kHourly = "claude_hourly_spend_usd";
constexpr std::string_view kDaily = "claude_daily_spend_usd";
constexpr std::string_view kCacheHit = "claude_cache_hit_ratio";
constexpr std::string_view kEfficiency = "claude_cache_efficiency_percent";
constexpr std::string_view kInputOutput = "claude_input_output_ratio";
constexpr std::array<std::string_view, 8> kComputedFamilies = {
    kOnline, kLastSeen, kAgentInfo, kHourly, kDaily, kCacheHit, kEfficiency, kInputOutput};

constexpr std::string_view kTokens = "claude_tokens_total";
constexpr std::string_view kSavings = "claude_cache_savings_usd_total";

// Token sums of one (device, model), by type.
struct TokenSums {
  unsigned __int128 input = 0, output = 0, cache_read = 0, cache_creation = 0;
  unsigned __int128 InputSide() const { return input + cache_read + cache_creation; }
};

struct MoneySums {
  PicoSum cost = 0, savings = 0;
  bool any = false;
};

// Calls fn(labels, value) for every stored series named `name` (keys of one name are adjacent
// and start with the name's bytes), skipping staleness markers. Labels come without __name__.
template <typename Fn>
void ForEachSeries(const SeriesTable& table, std::string_view name, Fn fn) {
  std::string prefix;
  PutBytes(&prefix, name);
  std::vector<std::pair<std::string_view, std::string_view>> labels;
  for (auto it = table.series().lower_bound(prefix);
       it != table.series().end() && std::string_view(it->first).starts_with(prefix); ++it) {
    if (IsStaleMarker(it->second.value)) continue;
    Reader rest(std::string_view(it->first).substr(prefix.size()));
    labels.clear();
    bool ok = true;
    while (!rest.done() && ok) {
      std::string_view n, v;
      ok = rest.Bytes(&n) && rest.Bytes(&v);
      labels.emplace_back(n, v);
    }
    if (ok) fn(labels, it->second.value);
  }
}

std::string_view Get(const std::vector<std::pair<std::string_view, std::string_view>>& labels,
                     std::string_view name) {
  for (const auto& [n, v] : labels) {
    if (n == name) return v;
  }
  return {};
}

// A token counter's value as an exact count; false for anything else.
bool AsCount(double v, uint64_t* out) {
  if (!(v >= 0 && v < 9.2e18) || v != double(uint64_t(v))) return false;
  *out = uint64_t(v);
  return true;
}

void Header(std::string_view name, std::string_view help, std::string* out) {
  *out += "# HELP ";
  out->append(name);
  out->push_back(' ');
  out->append(help);
  *out += "\n# TYPE ";
  out->append(name);
  *out += " gauge\n";
}

void Sample(std::string_view name,
            std::initializer_list<std::pair<std::string_view, std::string_view>> labels,
            double value, std::string* out) {
  out->append(name);
  out->push_back('{');
  bool first = true;
  for (const auto& [n, v] : labels) {
    if (!first) out->push_back(',');
    first = false;
    out->append(n);
    *out += "=\"";
    AppendEscapedText(v, true, out);
    out->push_back('"');
  }
  *out += "} ";
  *out += FormatSampleValue(value);
  out->push_back('\n');
}

}  // namespace

bool IsComputedFamily(std::string_view name) {
  for (std::string_view f : kComputedFamilies) {
    if (name == f) return true;
  }
  return false;
}

Status GatewayComputed::Open(KvStore* kv, ComputedOptions options,
                             std::unique_ptr<GatewayComputed>* out) {
  if (options.clock == nullptr) options.clock = Clock::Real();
  std::unique_ptr<GatewayComputed> c(new GatewayComputed());
  c->options_ = options;
  if (Status s = DeviceActivity::Open(kv, options.clock, &c->activity_); !s.ok()) return s;
  if (Status s = SpendWindows::Open(kv, options.clock, &c->spend_); !s.ok()) return s;
  *out = std::move(c);
  return Status::Ok();
}

void GatewayComputed::Write(const SeriesTable& table, ExpositionFormat format,
                            std::string* out) const {
  (void)format;  // the same text in both formats: gauges without units
  const int64_t now = options_.clock->NowUnixMs();

  const std::vector<DeviceActivityInfo> devices = activity_->List();
  if (!devices.empty()) {
    Header(kOnline, "1 while the device has written within the gateway's --online-window, else 0.",
           out);
    for (const DeviceActivityInfo& d : devices) {
      const bool online = now - d.last_seen_ms < options_.online_window.count();
      Sample(kOnline, {{"device", d.device}}, online ? 1 : 0, out);
    }
    Header(kLastSeen, "Unix time of the device's last accepted write, in seconds.", out);
    for (const DeviceActivityInfo& d : devices) {
      Sample(kLastSeen, {{"device", d.device}}, double(d.last_seen_ms) / 1000.0, out);
    }
    Header(kAgentInfo, "The User-Agent of the device's last accepted write (value 1).", out);
    for (const DeviceActivityInfo& d : devices) {
      Sample(kAgentInfo, {{"agent", d.agent}, {"device", d.device}}, 1, out);
    }
  }

  const std::vector<DeviceSpend> spend = spend_->Spend(now);
  if (!spend.empty()) {
    Header(kHourly, "USD of claude_cost_usd_total increases stamped in the last hour (by minute).",
           out);
    for (const DeviceSpend& s : spend) {
      Sample(kHourly, {{"device", s.device}}, PicoToUsd(s.last_hour), out);
    }
    Header(kDaily,
           "USD of claude_cost_usd_total increases stamped in the last 24 hours (by minute).", out);
    for (const DeviceSpend& s : spend) {
      Sample(kDaily, {{"device", s.device}}, PicoToUsd(s.last_day), out);
    }
  }

  // Ratios from the stored counters, summed over every other label.
  // Series of one (device, model) are usually adjacent (labels sort device, model, project,
  // type): the last sums found are reused without a lookup.
  std::map<std::pair<std::string_view, std::string_view>, TokenSums> tokens;
  std::pair<std::string_view, std::string_view> last_key;
  TokenSums* last = nullptr;
  ForEachSeries(table, kTokens, [&](const auto& labels, double value) {
    const std::string_view device = Get(labels, "device"), model = Get(labels, "model"),
                           type = Get(labels, "type");
    uint64_t n = 0;
    if (device.empty() || model.empty() || !AsCount(value, &n)) return;
    if (last == nullptr || last_key.first != device || last_key.second != model) {
      last_key = {device, model};
      last = &tokens[last_key];
    }
    TokenSums& t = *last;
    if (type == "input") {
      t.input += n;
    } else if (type == "output") {
      t.output += n;
    } else if (type == "cache_read") {
      t.cache_read += n;
    } else if (type == "cache_creation_5m" || type == "cache_creation_1h") {
      t.cache_creation += n;
    }
  });
  std::map<std::string_view, MoneySums> money;
  for (std::string_view family : {kCostSeriesName, kSavings}) {
    std::string_view last_device;
    MoneySums* last_money = nullptr;
    ForEachSeries(table, family, [&](const auto& labels, double value) {
      const std::string_view device = Get(labels, "device");
      PicoSum pico = 0;
      if (device.empty() || !UsdToPicoExact(value, &pico)) return;
      if (last_money == nullptr || last_device != device) {
        last_device = device;
        last_money = &money[device];
      }
      MoneySums& m = *last_money;
      (family == kSavings ? m.savings : m.cost) += pico;
      m.any = true;
    });
  }

  bool header = false;
  for (const auto& [key, t] : tokens) {
    const unsigned __int128 denominator = t.InputSide();
    if (denominator == 0) continue;
    if (!header) {
      Header(kCacheHit,
             "Cache read tokens / all input tokens (input, cache writes and cache reads).", out);
      header = true;
    }
    Sample(kCacheHit, {{"device", key.first}, {"model", key.second}},
           double(t.cache_read) / double(denominator), out);
  }
  header = false;
  for (const auto& [key, t] : tokens) {
    if (t.output == 0) continue;
    if (!header) {
      Header(kInputOutput,
             "All input tokens (input, cache writes and cache reads) / output tokens.", out);
      header = true;
    }
    Sample(kInputOutput, {{"device", key.first}, {"model", key.second}},
           double(t.InputSide()) / double(t.output), out);
  }
  header = false;
  for (const auto& [device, m] : money) {
    const PicoSum uncached = m.cost + m.savings;
    if (uncached <= 0) continue;
    if (!header) {
      Header(kEfficiency,
             "Percent of what requests would have cost without cache reads (cost + cache "
             "savings) that cache reads saved.",
             out);
      header = true;
    }
    Sample(kEfficiency, {{"device", device}}, double(m.savings * 100) / double(uncached), out);
  }
}

}  // namespace ccmon::gateway
