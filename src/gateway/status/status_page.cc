#include "gateway/status/status_page.h"

#include <array>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <utility>

#include "base/base64.h"
#include "base/markup.h"
#include "base/timeutil.h"
#include "base/utf8.h"
#include "gateway/devices/device_key.h"

namespace ccmon::gateway {
namespace {

// One column of a table: its heading, the key of its text in a row's `display` object (JSON),
// and the class of its cells (what the page's CSS and the tests select).
struct Column {
  std::string_view heading;
  std::string_view key;
  std::string_view css_class;
};

constexpr std::array<Column, 9> kDeviceColumns = {{
    {"Device", "name", "device"},
    {"State", "state", "state"},
    {"Last seen", "last_seen", "last-seen"},
    {"Agent", "agent", "agent"},
    {"State copy", "state_copy", "state-copy"},
    {"Series", "series", "series"},
    {"Today (UTC)", "spend_today", "spend-today"},
    {"This month (UTC)", "spend_month", "spend-month"},
    {"All reported", "cost_total", "cost-total"},
}};

constexpr std::array<Column, 10> kForwardColumns = {{
    {"Destination", "destination", "destination"},
    {"Queued samples", "queued_samples", "queued-samples"},
    {"Queued bytes", "queued_bytes", "queued-bytes"},
    {"Lag", "lag", "lag"},
    {"Sent", "samples_sent", "sent"},
    {"Failed", "samples_failed", "failed"},
    {"Dropped", "samples_dropped", "dropped"},
    {"Last success", "last_success", "last-success"},
    {"Last error", "last_error", "last-error"},
    {"Last error at", "last_error_at", "last-error-at"},
}};

// The header's facts: the element id is "gw-" + key.
constexpr std::array<std::pair<std::string_view, std::string_view>, 7> kGatewayFacts = {{
    {"version", "Version"},
    {"started", "Started"},
    {"uptime", "Uptime"},
    {"devices", "Devices online"},
    {"series", "Series stored"},
    {"online_window", "Online window"},
    {"now", "As of"},
}};

constexpr std::string_view kNoDevices =
    "No device yet. Register one with: ccmon-gateway device add NAME --server URL "
    "--admin-token-file F";
constexpr std::string_view kNoDestinations =
    "No forward destination (ccmon-gateway serve --forward URL).";

// Text from outside (names, agents, URLs, errors) as the page shows it: no control characters,
// no invalid UTF-8 (those become \xNN), and no bidirectional overrides or isolates (U+202A-U+202E,
// U+2066-U+2069: they would let a name reorder the text around it), shown as \u202E.
std::string Shown(std::string_view s) {
  std::string safe = TerminalSafe(s);
  // Those code points are E2 80 AA..AE and E2 81 A6..A9 in UTF-8.
  std::string out;
  out.reserve(safe.size());
  for (size_t i = 0; i < safe.size(); ++i) {
    if (i + 2 < safe.size() && uint8_t(safe[i]) == 0xE2) {
      const uint8_t b1 = uint8_t(safe[i + 1]), b2 = uint8_t(safe[i + 2]);
      if ((b1 == 0x80 && b2 >= 0xAA && b2 <= 0xAE) || (b1 == 0x81 && b2 >= 0xA6 && b2 <= 0xA9)) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\u%04X",
                      unsigned(0x2000 | (b1 & 0x3F) << 6 | (b2 & 0x3F)));
        out += buf;
        i += 2;
        continue;
      }
    }
    out.push_back(safe[i]);
  }
  return out;
}

using Display = std::vector<std::pair<std::string_view, std::string>>;

const char* DeviceState(const DeviceStatus& d) {
  if (d.revoked) return "revoked";
  if (d.last_seen_ms == 0) return "never seen";
  return d.online ? "online" : "offline";
}

const char* DeviceRowClass(const DeviceStatus& d) {
  if (d.revoked) return "state-revoked";
  if (d.last_seen_ms == 0) return "state-never";
  return d.online ? "state-online" : "state-offline";
}

Display DeviceDisplay(const DeviceStatus& d, int64_t now_ms) {
  return {
      {"name", Shown(d.name)},
      {"state", DeviceState(d)},
      {"last_seen", FormatWhen(d.last_seen_ms, now_ms)},
      {"agent", d.agent.empty() ? "-" : Shown(d.agent)},
      {"state_copy", d.state_copy ? FormatCount(d.state_copy_bytes) + " B, " +
                                        FormatWhen(d.state_copy_updated_ms, now_ms)
                                  : "none"},
      {"series", FormatCount(d.series)},
      {"spend_today", FormatMoney(d.spend_today)},
      {"spend_month", FormatMoney(d.spend_month)},
      {"cost_total", FormatMoney(d.cost_total)},
  };
}

const char* ForwardRowClass(const ForwardStatus& f) {
  return f.last_error_ms > f.last_success_ms ? "forward-failing" : "forward-ok";
}

Display ForwardDisplay(const ForwardStatus& f, int64_t now_ms) {
  return {
      {"destination", Shown(f.destination)},
      {"queued_samples", FormatCount(f.queued_samples)},
      {"queued_bytes", FormatCount(f.queued_bytes) + " B"},
      {"lag", FormatDuration(int64_t(std::llround(f.lag_seconds * 1000)))},
      {"samples_sent", FormatCount(f.samples_sent)},
      {"samples_failed", FormatCount(f.samples_failed)},
      {"samples_dropped", FormatCount(f.samples_dropped)},
      {"last_success", FormatWhen(f.last_success_ms, now_ms)},
      {"last_error", f.last_error.empty() ? "none" : Shown(f.last_error)},
      {"last_error_at", FormatWhen(f.last_error_ms, now_ms)},
  };
}

Display GatewayDisplay(const GatewayStatus& s) {
  uint64_t online = 0;
  for (const DeviceStatus& d : s.devices) online += d.online ? 1 : 0;
  return {
      {"version", Shown(s.version)},
      {"started", FormatWhen(s.started_ms, s.now_ms)},
      {"uptime", FormatDuration(s.now_ms - s.started_ms)},
      {"devices", FormatCount(online) + " of " + FormatCount(s.devices.size())},
      {"series", FormatCount(s.series)},
      {"online_window", FormatDuration(s.online_window_ms)},
      {"now", FormatUtcSeconds(s.now_ms)},
  };
}

std::string_view Find(const Display& d, std::string_view key) {
  for (const auto& [k, v] : d) {
    if (k == key) return v;
  }
  return {};
}

nlohmann::json DisplayJson(const Display& d) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : d) j[std::string(k)] = v;
  return j;
}

template <size_t N>
std::string ColumnsJs(const std::array<Column, N>& columns) {
  nlohmann::json j = nlohmann::json::array();
  for (const Column& c : columns) j.push_back({std::string(c.key), std::string(c.css_class)});
  return j.dump();
}

// The inline script: refreshes the page from the JSON twin. Built once from the column tables,
// so the page and its refresh cannot disagree about what goes where.
const std::string& PageScript() {
  static const std::string script = [] {
    std::string s = "\n\"use strict\";\n(function () {\n";
    s += "  var DEVICE_COLUMNS = " + ColumnsJs(kDeviceColumns) + ";\n";
    s += "  var FORWARD_COLUMNS = " + ColumnsJs(kForwardColumns) + ";\n";
    s += "  var NO_DEVICES = " + nlohmann::json(std::string(kNoDevices)).dump() + ";\n";
    s += "  var NO_DESTINATIONS = " + nlohmann::json(std::string(kNoDestinations)).dump() + ";\n";
    s += "  var INTERVAL_MS = " + std::to_string(kStatusRefreshSeconds * 1000) + ";\n";
    s += R"js(  var refreshes = 0;
  function setText(id, text) {
    var e = document.getElementById(id);
    if (e) e.textContent = text;
  }
  function fill(tableId, rows, columns, emptyText, keyAttribute) {
    var body = document.querySelector("#" + tableId + " tbody");
    if (!body) return;
    while (body.firstChild) body.removeChild(body.firstChild);
    if (rows.length === 0) {
      var tr = document.createElement("tr");
      tr.className = "empty";
      var td = document.createElement("td");
      td.colSpan = columns.length;
      td.textContent = emptyText;
      tr.appendChild(td);
      body.appendChild(tr);
      return;
    }
    rows.forEach(function (row) {
      var tr = document.createElement("tr");
      tr.className = row.row_class;
      tr.setAttribute(keyAttribute, row.key);
      columns.forEach(function (c) {
        var td = document.createElement("td");
        td.className = c[1];
        td.textContent = row.display[c[0]];
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
  }
  function render(s) {
    Object.keys(s.gateway.display).forEach(function (k) {
      setText("gw-" + k, s.gateway.display[k]);
    });
    fill("devices", s.devices, DEVICE_COLUMNS, NO_DEVICES, "data-device");
    fill("destinations", s.destinations, FORWARD_COLUMNS, NO_DESTINATIONS, "data-destination");
  }
  // Relative to the page (a proxy's path prefix stays), without user:password@ of the page's
  // URL (fetch refuses URLs with credentials; the browser's auth cache supplies them).
  var statusUrl = new URL("api/v1/status", document.baseURI);
  statusUrl.username = "";
  statusUrl.password = "";
  function refresh() {
    fetch(statusUrl.href, {credentials: "same-origin", cache: "no-store",
                           headers: {"Accept": "application/json"}})
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      })
      .then(function (s) {
        render(s);
        refreshes += 1;
        document.body.setAttribute("data-refreshes", String(refreshes));
        setText("refresh-state", "Live: refreshed every " + INTERVAL_MS / 1000 + " s.");
      })
      .catch(function (e) {
        setText("refresh-state", "Refresh failed (" + e.message + "); showing the values as of " +
                document.getElementById("gw-now").textContent + ". Retrying.");
      })
      .then(function () { window.setTimeout(refresh, INTERVAL_MS); });
  }
  window.setTimeout(refresh, INTERVAL_MS);
})();
)js";
    return s;
  }();
  return script;
}

constexpr std::string_view kStyle = R"css(
body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5em; color: #1d2330; background: #fff; }
h1 { font-size: 1.4em; margin: 0 0 .4em; }
h2 { font-size: 1.1em; margin: 1.6em 0 .4em; }
dl.facts { display: grid; grid-template-columns: max-content auto; gap: .15em 1em; margin: 0; }
dl.facts dt { color: #5b6270; }
dl.facts dd { margin: 0; font-variant-numeric: tabular-nums; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .35em .7em; border-bottom: 1px solid #e3e6ea; white-space: nowrap; }
th { background: #f4f6f8; font-weight: 600; }
td.series, td.spend-today, td.spend-month, td.cost-total, td.queued-samples, td.queued-bytes,
td.lag, td.sent, td.failed, td.dropped { text-align: right; font-variant-numeric: tabular-nums; }
td.device, td.destination, td.agent, td.last-error { white-space: normal; overflow-wrap: anywhere; }
tr.state-online td.state { color: #1a7f37; font-weight: 600; }
tr.state-offline td.state { color: #9a6700; }
tr.state-revoked td.state, tr.state-never td.state { color: #6e7781; }
tr.forward-failing td.last-error { color: #cf222e; }
tr.empty td { color: #6e7781; font-style: italic; }
p.note { color: #5b6270; font-size: .9em; }
)css";

template <size_t N>
void AppendHead(const std::array<Column, N>& columns, std::string* out) {
  *out += "<thead><tr>";
  for (const Column& c : columns) {
    *out += "<th>";
    *out += EscapeMarkup(c.heading);
    *out += "</th>";
  }
  *out += "</tr></thead>";
}

template <size_t N>
void AppendRow(const std::array<Column, N>& columns, std::string_view row_class,
               std::string_view key_attribute, std::string_view key, const Display& display,
               std::string* out) {
  *out += "<tr class=\"";
  *out += row_class;
  *out += "\" ";
  *out += key_attribute;
  *out += "=\"";
  *out += EscapeMarkup(key);
  *out += "\">";
  for (const Column& c : columns) {
    *out += "<td class=\"";
    *out += c.css_class;
    *out += "\">";
    *out += EscapeMarkup(Find(display, c.key));
    *out += "</td>";
  }
  *out += "</tr>\n";
}

void AppendEmpty(size_t columns, std::string_view text, std::string* out) {
  *out += "<tr class=\"empty\"><td colspan=\"" + std::to_string(columns) + "\">";
  *out += EscapeMarkup(text);
  *out += "</td></tr>\n";
}

// A CSP source for an inline element's text: its SHA-256 (HashDeviceKey is SHA-256 of the bytes
// as given), base64.
std::string Sha256Source(std::string_view text) {
  const DeviceKeyHash h = HashDeviceKey(text);
  return "'sha256-" +
         Base64Encode(std::string_view(reinterpret_cast<const char*>(h.data()), h.size())) + "'";
}

}  // namespace

std::string FormatDuration(int64_t ms) {
  if (ms < 0) ms = 0;
  const int64_t s = ms / 1000;
  auto two = [](int64_t a, const char* ua, int64_t b, const char* ub) {
    std::string out = std::to_string(a) + " " + ua;
    if (b != 0) out += " " + std::to_string(b) + " " + ub;
    return out;
  };
  if (s < 60) return std::to_string(s) + " s";
  if (s < 3600) return two(s / 60, "min", s % 60, "s");
  if (s < 86400) return two(s / 3600, "h", s / 60 % 60, "min");
  return two(s / 86400, "d", s / 3600 % 24, "h");
}

std::string FormatWhen(int64_t at_ms, int64_t now_ms) {
  if (at_ms == 0) return "never";
  const int64_t age = now_ms - at_ms;
  return FormatUtcSeconds(at_ms) +
         (age >= 0 ? " (" + FormatDuration(age) + " ago)" : " (in " + FormatDuration(-age) + ")");
}

std::string FormatMoney(PicoSum pico) {
  const bool negative = pico < 0;
  std::string usd = FormatUsd(negative ? -pico : pico);
  const size_t dot = usd.find('.');
  if (dot == std::string::npos) {
    usd += ".00";
  } else if (usd.size() - dot - 1 < 2) {
    usd.append(2 - (usd.size() - dot - 1), '0');
  }
  return (negative ? "-$" : "$") + usd;
}

std::string FormatCount(uint64_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

const std::string& StatusContentSecurityPolicy() {
  static const std::string csp = "default-src 'none'; script-src " + Sha256Source(PageScript()) +
                                 "; style-src " + Sha256Source(kStyle) +
                                 "; connect-src 'self'; img-src 'self'; base-uri 'none'; "
                                 "form-action 'none'; frame-ancestors 'none'";
  return csp;
}

std::string RenderStatusHtml(const GatewayStatus& s) {
  std::string out;
  out.reserve(4096 + s.devices.size() * 600 + s.destinations.size() * 600);
  out +=
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
      "<title>ccmon-gateway status</title>\n<style>";
  out += kStyle;
  out += "</style>\n</head>\n<body>\n<h1>ccmon-gateway</h1>\n<dl class=\"facts\">\n";
  const Display facts = GatewayDisplay(s);
  for (const auto& [key, label] : kGatewayFacts) {
    out += "<dt>";
    out += EscapeMarkup(label);
    out += "</dt><dd id=\"gw-";
    out += key;
    out += "\">";
    out += EscapeMarkup(Find(facts, key));
    out += "</dd>\n";
  }
  out += "</dl>\n";
  out +=
      "<p class=\"note\" id=\"refresh-state\">Rendered by the gateway; reload for new values "
      "(with JavaScript the page refreshes itself every " +
      std::to_string(kStatusRefreshSeconds) + " s).</p>\n";

  out += "<h2>Devices</h2>\n<table id=\"devices\">";
  AppendHead(kDeviceColumns, &out);
  out += "<tbody>\n";
  for (const DeviceStatus& d : s.devices) {
    AppendRow(kDeviceColumns, DeviceRowClass(d), "data-device", Shown(d.name),
              DeviceDisplay(d, s.now_ms), &out);
  }
  if (s.devices.empty()) AppendEmpty(kDeviceColumns.size(), kNoDevices, &out);
  out += "</tbody></table>\n";
  out +=
      "<p class=\"note\">Today and this month: cost stamped (by its samples' time) in the "
      "current UTC day and month. All reported: the sum of the device's "
      "claude_cost_usd_total series.</p>\n";

  out += "<h2>Forward destinations</h2>\n<table id=\"destinations\">";
  AppendHead(kForwardColumns, &out);
  out += "<tbody>\n";
  for (const ForwardStatus& f : s.destinations) {
    AppendRow(kForwardColumns, ForwardRowClass(f), "data-destination", Shown(f.destination),
              ForwardDisplay(f, s.now_ms), &out);
  }
  if (s.destinations.empty()) AppendEmpty(kForwardColumns.size(), kNoDestinations, &out);
  out += "</tbody></table>\n";
  // No link to /metrics: it takes its token as Bearer only, which a browser cannot send.
  out += "<p class=\"note\">The same as JSON: <a href=\"api/v1/status\">api/v1/status</a>.</p>\n";
  out += "<script>";
  out += PageScript();
  out += "</script>\n</body>\n</html>\n";
  return out;
}

std::string RenderStatusJson(const GatewayStatus& s) {
  nlohmann::json gw;
  gw["version"] = Shown(s.version);
  gw["now_ms"] = s.now_ms;
  gw["started_ms"] = s.started_ms;
  gw["uptime_seconds"] = (s.now_ms - s.started_ms) / 1000;
  gw["online_window_seconds"] = s.online_window_ms / 1000.0;
  gw["series"] = s.series;
  gw["anonymous_writes"] = s.anonymous_writes;
  gw["display"] = DisplayJson(GatewayDisplay(s));

  nlohmann::json devices = nlohmann::json::array();
  for (const DeviceStatus& d : s.devices) {
    nlohmann::json j;
    j["key"] = Shown(d.name);
    j["name"] = Shown(d.name);
    j["registered"] = d.registered;
    j["revoked"] = d.revoked;
    j["online"] = d.online;
    j["state"] = DeviceState(d);
    j["created_ms"] = d.created_ms;
    j["last_seen_ms"] = d.last_seen_ms;
    j["agent"] = Shown(d.agent);
    j["state_copy"] = d.state_copy;
    j["state_copy_bytes"] = d.state_copy_bytes;
    j["state_copy_updated_ms"] = d.state_copy_updated_ms;
    j["series"] = d.series;
    // Exact amounts as decimal strings of pico-dollars (as ccmon-replay's --json cost_pusd).
    j["spend_today_pusd"] = FormatInt(d.spend_today);
    j["spend_month_pusd"] = FormatInt(d.spend_month);
    j["cost_total_pusd"] = FormatInt(d.cost_total);
    j["row_class"] = DeviceRowClass(d);
    j["display"] = DisplayJson(DeviceDisplay(d, s.now_ms));
    devices.push_back(std::move(j));
  }
  nlohmann::json destinations = nlohmann::json::array();
  for (const ForwardStatus& f : s.destinations) {
    nlohmann::json j;
    j["key"] = Shown(f.destination);
    j["destination"] = Shown(f.destination);
    j["queued_samples"] = f.queued_samples;
    j["queued_bytes"] = f.queued_bytes;
    j["lag_seconds"] = f.lag_seconds;
    j["samples_sent"] = f.samples_sent;
    j["samples_failed"] = f.samples_failed;
    j["samples_dropped"] = f.samples_dropped;
    j["retries"] = f.retries;
    j["last_error"] = Shown(f.last_error);
    j["last_error_ms"] = f.last_error_ms;
    j["last_success_ms"] = f.last_success_ms;
    j["row_class"] = ForwardRowClass(f);
    j["display"] = DisplayJson(ForwardDisplay(f, s.now_ms));
    destinations.push_back(std::move(j));
  }
  nlohmann::json root;
  root["gateway"] = std::move(gw);
  root["devices"] = std::move(devices);
  root["destinations"] = std::move(destinations);
  // Everything shown went through TerminalSafe (valid UTF-8); replace guards the rest anyway.
  return root.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace ccmon::gateway
