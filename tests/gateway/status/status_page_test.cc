// The status page's renderer: escaping of every outside text (device names, agents, URLs, upstream
// errors), empty states, many devices, the value formats, the JSON twin, and that the page's
// Content-Security-Policy allows exactly its own inline script and style.
#include "gateway/status/status_page.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "base/base64.h"
#include "base/markup.h"
#include "base/timeutil.h"
#include "gateway/devices/device_key.h"

namespace ccmon::gateway {
namespace {

// 2026-01-01T00:00:00Z.
constexpr int64_t kT0 = 1767225600000;
constexpr std::string_view kHostile = "<script>alert(\"x\")</script>&'\"><img src=x onerror=1>";
constexpr std::string_view kHostileEscaped =
    "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;&quot;&gt;&lt;img src=x "
    "onerror=1&gt;";

size_t Count(std::string_view hay, std::string_view needle) {
  size_t n = 0;
  for (size_t p = hay.find(needle); p != std::string_view::npos; p = hay.find(needle, p + 1)) ++n;
  return n;
}

std::string Between(std::string_view s, std::string_view open, std::string_view close) {
  const size_t a = s.find(open);
  if (a == std::string_view::npos) return "";
  const size_t b = s.find(close, a + open.size());
  if (b == std::string_view::npos) return "";
  return std::string(s.substr(a + open.size(), b - a - open.size()));
}

std::string Sha256Base64(std::string_view text) {
  const DeviceKeyHash h = HashDeviceKey(text);
  return Base64Encode(std::string_view(reinterpret_cast<const char*>(h.data()), h.size()));
}

GatewayStatus Snapshot() {
  GatewayStatus s;
  s.version = "0.1.0";
  s.now_ms = kT0 + 3'725'000;  // 01:02:05
  s.started_ms = kT0;
  s.online_window_ms = 45'000;
  s.series = 42;
  DeviceStatus d;
  d.name = "laptop";
  d.registered = true;
  d.last_seen_ms = s.now_ms - 5'000;
  d.online = true;
  d.agent = "ccmon-agent/0.1.0";
  d.series = 1234;
  d.state_copy = true;
  d.state_copy_bytes = 845'312;
  d.state_copy_updated_ms = s.now_ms - 65'000;
  d.spend_today = PicoSum(1'500'000'000'000);       // $1.50
  d.spend_month = PicoSum(12'345'678'901'234);      // $12.345678901234
  d.cost_total = PicoSum(1'000'000) * kPicoPerUsd;  // $1000000.00
  s.devices.push_back(d);
  ForwardStatus f;
  f.destination = "http://prometheus:9090/api/v1/write";
  f.queued_samples = 2500;
  f.queued_bytes = 1'048'576;
  f.lag_seconds = 61.4;
  f.samples_sent = 1'000'000;
  f.last_error = "HTTP 503: down";
  f.last_error_ms = s.now_ms - 2'000;
  f.last_success_ms = s.now_ms - 60'000;
  s.destinations.push_back(f);
  return s;
}

TEST(StatusFormatTest, HtmlEscapeCoversTextAndAttributes) {
  EXPECT_EQ(EscapeMarkup(kHostile), kHostileEscaped);
  EXPECT_EQ(EscapeMarkup(""), "");
  EXPECT_EQ(EscapeMarkup("plain-name_1.2"), "plain-name_1.2");
  EXPECT_EQ(EscapeMarkup("&amp;"), "&amp;amp;") << "escaped again, never taken as an entity";
}

TEST(StatusFormatTest, Times) {
  EXPECT_EQ(FormatUtcSeconds(kT0), "2026-01-01T00:00:00Z");
  EXPECT_EQ(FormatUtcSeconds(kT0 + 999), "2026-01-01T00:00:00Z") << "seconds, truncated";
  EXPECT_EQ(FormatUtcSeconds(kT0 - 1), "2025-12-31T23:59:59Z");
  EXPECT_EQ(FormatUtcSeconds(951782400000), "2000-02-29T00:00:00Z");
  EXPECT_EQ(FormatDuration(0), "0 s");
  EXPECT_EQ(FormatDuration(-5000), "0 s");
  EXPECT_EQ(FormatDuration(59'999), "59 s");
  EXPECT_EQ(FormatDuration(60'000), "1 min");
  EXPECT_EQ(FormatDuration(61'000), "1 min 1 s");
  EXPECT_EQ(FormatDuration(3'600'000), "1 h");
  EXPECT_EQ(FormatDuration(3'660'000), "1 h 1 min");
  EXPECT_EQ(FormatDuration(90'061'000), "1 d 1 h");
  EXPECT_EQ(FormatDuration(400LL * 86'400'000), "400 d");
  EXPECT_EQ(FormatWhen(0, kT0), "never");
  EXPECT_EQ(FormatWhen(kT0, kT0 + 5'000), "2026-01-01T00:00:00Z (5 s ago)");
  EXPECT_EQ(FormatWhen(kT0 + 7'000, kT0), "2026-01-01T00:00:07Z (in 7 s)");
}

TEST(StatusFormatTest, MoneyIsExact) {
  EXPECT_EQ(FormatMoney(0), "$0.00");
  EXPECT_EQ(FormatMoney(kPicoPerUsd), "$1.00");
  EXPECT_EQ(FormatMoney(1'500'000'000'000), "$1.50");
  EXPECT_EQ(FormatMoney(123'456'789), "$0.000123456789");
  EXPECT_EQ(FormatMoney(1), "$0.000000000001");
  EXPECT_EQ(FormatMoney(PicoSum(12'345'678'901'234)), "$12.345678901234");
  // 10^24 pico: beyond 64 bits, still exact.
  EXPECT_EQ(FormatMoney(PicoSum(1'000'000'000'000) * PicoSum(1'000'000'000'000)),
            "$1000000000000.00");
  EXPECT_EQ(FormatMoney(-2'500'000'000'000), "-$2.50");
  EXPECT_EQ(FormatCount(0), "0");
  EXPECT_EQ(FormatCount(999), "999");
  EXPECT_EQ(FormatCount(1000), "1,000");
  EXPECT_EQ(FormatCount(1234567), "1,234,567");
  EXPECT_EQ(FormatCount(18446744073709551615ull), "18,446,744,073,709,551,615");
}

TEST(StatusPageTest, ShowsEverythingWithoutJavaScript) {
  const std::string html = RenderStatusHtml(Snapshot());
  EXPECT_TRUE(html.starts_with("<!DOCTYPE html>"));
  // The header.
  EXPECT_NE(html.find("<dd id=\"gw-version\">0.1.0</dd>"), std::string::npos);
  EXPECT_NE(html.find("<dd id=\"gw-uptime\">1 h 2 min</dd>"), std::string::npos);
  EXPECT_NE(html.find("<dd id=\"gw-started\">2026-01-01T00:00:00Z (1 h 2 min ago)</dd>"),
            std::string::npos);
  EXPECT_NE(html.find("<dd id=\"gw-devices\">1 of 1</dd>"), std::string::npos);
  EXPECT_NE(html.find("<dd id=\"gw-series\">42</dd>"), std::string::npos);
  // The device row, every cell.
  EXPECT_NE(html.find("<tr class=\"state-online\" data-device=\"laptop\"><td class=\"device\">"
                      "laptop</td><td class=\"state\">online</td><td class=\"last-seen\">"
                      "2026-01-01T01:02:00Z (5 s ago)</td><td class=\"agent\">ccmon-agent/0.1.0"
                      "</td><td class=\"state-copy\">845,312 B, 2026-01-01T01:01:00Z (1 min 5 s "
                      "ago)</td><td class=\"series\">1,234</td><td class=\"spend-today\">$1.50</td>"
                      "<td class=\"spend-month\">$12.345678901234</td><td class=\"cost-total\">"
                      "$1000000.00</td></tr>"),
            std::string::npos)
      << html;
  // The destination row.
  EXPECT_NE(html.find("<tr class=\"forward-failing\" data-destination=\"http://prometheus:9090/"
                      "api/v1/write\"><td class=\"destination\">http://prometheus:9090/api/v1/"
                      "write</td><td class=\"queued-samples\">2,500</td><td class=\"queued-bytes\">"
                      "1,048,576 B</td><td class=\"lag\">1 min 1 s</td><td class=\"sent\">"
                      "1,000,000</td><td class=\"failed\">0</td><td class=\"dropped\">0</td>"
                      "<td class=\"last-success\">2026-01-01T01:01:05Z (1 min ago)</td>"
                      "<td class=\"last-error\">HTTP 503: down</td><td class=\"last-error-at\">"
                      "2026-01-01T01:02:03Z (2 s ago)</td></tr>"),
            std::string::npos)
      << html;
  // No external assets, no reload trick.
  EXPECT_EQ(html.find("http-equiv"), std::string::npos);
  EXPECT_EQ(html.find("src="), std::string::npos);
  EXPECT_EQ(html.find("<link"), std::string::npos);
  EXPECT_EQ(Count(html, "<script"), 1u);
}

TEST(StatusPageTest, EscapesEveryOutsideText) {
  GatewayStatus s = Snapshot();
  s.devices[0].name = std::string(kHostile);
  s.devices[0].agent = std::string(kHostile);
  s.destinations[0].destination = std::string(kHostile);
  s.destinations[0].last_error = std::string(kHostile);
  s.version = std::string(kHostile);
  const std::string html = RenderStatusHtml(s);
  EXPECT_EQ(html.find(kHostile), std::string::npos);
  EXPECT_EQ(html.find("<img"), std::string::npos);
  EXPECT_EQ(html.find("alert(\""), std::string::npos);
  EXPECT_EQ(Count(html, "<script"), 1u) << "only the page's own";
  // Text and attribute occurrences: device (attribute + cell), agent, destination (attribute +
  // cell), last error, version.
  EXPECT_EQ(Count(html, kHostileEscaped), 7u) << html;
  EXPECT_NE(html.find(std::string("data-device=\"") + std::string(kHostileEscaped) + "\""),
            std::string::npos);
}

TEST(StatusPageTest, ControlCharactersAndInvalidUtf8AreShownAsEscapes) {
  GatewayStatus s = Snapshot();
  s.devices[0].name = "a\x1b[31mred\n\xff\xc3\xa9";  // ESC, newline, a stray byte, then "é"
  const std::string html = RenderStatusHtml(s);
  EXPECT_NE(html.find(">a\\x1b[31mred\\n\\xff\xc3\xa9<"), std::string::npos) << html;
  const nlohmann::json j = nlohmann::json::parse(RenderStatusJson(s));
  EXPECT_EQ(j["devices"][0]["name"], "a\\x1b[31mred\\n\\xff\xc3\xa9");
}

TEST(StatusPageTest, BidiControlsAreShownAsEscapes) {
  GatewayStatus s = Snapshot();
  // U+202E (right-to-left override) and U+2066 (left-to-right isolate); U+2019 stays.
  s.devices[0].name = "evil\xe2\x80\xaegnp.exe\xe2\x81\xa6x\xe2\x80\x99";
  const std::string html = RenderStatusHtml(s);
  EXPECT_NE(html.find(">evil\\u202Egnp.exe\\u2066x\xe2\x80\x99<"), std::string::npos) << html;
  EXPECT_EQ(html.find("\xe2\x80\xae"), std::string::npos);
  EXPECT_EQ(html.find("\xe2\x81\xa6"), std::string::npos);
  const nlohmann::json j = nlohmann::json::parse(RenderStatusJson(s));
  EXPECT_EQ(j["devices"][0]["name"], "evil\\u202Egnp.exe\\u2066x\xe2\x80\x99");
}

TEST(StatusPageTest, EmptyStates) {
  GatewayStatus s;
  s.version = "0.1.0";
  s.now_ms = s.started_ms = kT0;
  const std::string html = RenderStatusHtml(s);
  EXPECT_NE(html.find("<tr class=\"empty\"><td colspan=\"9\">No device yet. Register one with: "
                      "ccmon-gateway device add NAME --server URL --admin-token-file F</td></tr>"),
            std::string::npos)
      << html;
  EXPECT_NE(html.find("<tr class=\"empty\"><td colspan=\"10\">No forward destination "
                      "(ccmon-gateway serve --forward URL).</td></tr>"),
            std::string::npos);
  EXPECT_NE(html.find("<dd id=\"gw-devices\">0 of 0</dd>"), std::string::npos);
  EXPECT_EQ(Count(html, "data-device="), 0u);
  const nlohmann::json j = nlohmann::json::parse(RenderStatusJson(s));
  EXPECT_TRUE(j["devices"].empty());
  EXPECT_TRUE(j["destinations"].empty());
}

TEST(StatusPageTest, DeviceStates) {
  GatewayStatus s = Snapshot();
  s.devices.clear();
  DeviceStatus d;
  d.name = "never";
  d.registered = true;
  s.devices.push_back(d);
  d.name = "off";
  d.last_seen_ms = kT0;
  s.devices.push_back(d);
  d.name = "gone";
  d.revoked = true;
  s.devices.push_back(d);
  const std::string html = RenderStatusHtml(s);
  EXPECT_NE(html.find("<tr class=\"state-never\" data-device=\"never\"><td class=\"device\">never"
                      "</td><td class=\"state\">never seen</td><td class=\"last-seen\">never</td>"
                      "<td class=\"agent\">-</td>"),
            std::string::npos)
      << html;
  EXPECT_NE(html.find("<tr class=\"state-offline\" data-device=\"off\">"), std::string::npos);
  EXPECT_NE(html.find("<tr class=\"state-revoked\" data-device=\"gone\">"), std::string::npos);
  EXPECT_NE(html.find("<dd id=\"gw-devices\">0 of 3</dd>"), std::string::npos);
}

TEST(StatusPageTest, ManyDevicesEachOnceInOrder) {
  GatewayStatus s = Snapshot();
  s.devices.clear();
  for (int i = 0; i < 2000; ++i) {
    DeviceStatus d;
    char name[16];
    std::snprintf(name, sizeof name, "dev-%04d", i);
    d.name = name;
    d.last_seen_ms = s.now_ms;
    d.online = i % 2 == 0;
    d.cost_total = PicoSum(i) * kPicoPerUsd;
    s.devices.push_back(d);
  }
  const std::string html = RenderStatusHtml(s);
  EXPECT_EQ(Count(html, "data-device="), 2000u);
  size_t last = 0;
  for (int i = 0; i < 2000; ++i) {
    char row[64];
    std::snprintf(row, sizeof row, "data-device=\"dev-%04d\"", i);
    const size_t at = html.find(row, last);
    ASSERT_NE(at, std::string::npos) << row << " missing or out of order";
    last = at + 1;
  }
  EXPECT_NE(html.find("<dd id=\"gw-devices\">1,000 of 2,000</dd>"), std::string::npos);
  EXPECT_NE(html.find("<td class=\"cost-total\">$1999.00</td>"), std::string::npos);
  EXPECT_LT(html.size(), 2000u * 600) << "a row stays small";
  const nlohmann::json j = nlohmann::json::parse(RenderStatusJson(s));
  ASSERT_EQ(j["devices"].size(), 2000u);
  EXPECT_EQ(j["devices"][1999]["cost_total_pusd"], "1999000000000000");
}

TEST(StatusPageTest, JsonTwinCarriesRawValuesAndTheSameDisplayTexts) {
  GatewayStatus s = Snapshot();
  s.devices[0].name = std::string(kHostile);
  const nlohmann::json j = nlohmann::json::parse(RenderStatusJson(s));
  const auto& d = j["devices"][0];
  EXPECT_EQ(d["name"], kHostile) << "JSON carries the name as it is (the page sets textContent)";
  EXPECT_EQ(d["key"], kHostile);
  EXPECT_EQ(d["state"], "online");
  EXPECT_EQ(d["online"], true);
  EXPECT_EQ(d["series"], 1234);
  EXPECT_EQ(d["spend_today_pusd"], "1500000000000");
  EXPECT_EQ(d["spend_month_pusd"], "12345678901234");
  EXPECT_EQ(d["cost_total_pusd"], "1000000000000000000");
  EXPECT_EQ(d["last_seen_ms"], s.now_ms - 5'000);
  EXPECT_EQ(d["row_class"], "state-online");
  EXPECT_EQ(d["display"]["spend_month"], "$12.345678901234");
  EXPECT_EQ(d["display"]["last_seen"], "2026-01-01T01:02:00Z (5 s ago)");
  const auto& f = j["destinations"][0];
  EXPECT_EQ(f["queued_samples"], 2500);
  EXPECT_EQ(f["last_error"], "HTTP 503: down");
  EXPECT_EQ(f["display"]["lag"], "1 min 1 s");
  EXPECT_EQ(j["gateway"]["version"], "0.1.0");
  EXPECT_EQ(j["gateway"]["uptime_seconds"], 3725);
  EXPECT_EQ(j["gateway"]["display"]["uptime"], "1 h 2 min");
  // Every display text of the JSON is what the page's cells show.
  const std::string html = RenderStatusHtml(s);
  for (const auto& [key, text] : d["display"].items()) {
    EXPECT_NE(html.find(">" + EscapeMarkup(text.get<std::string>()) + "</td>"), std::string::npos)
        << key;
  }
  for (const auto& [key, text] : j["gateway"]["display"].items()) {
    EXPECT_NE(
        html.find("<dd id=\"gw-" + key + "\">" + EscapeMarkup(text.get<std::string>()) + "</dd>"),
        std::string::npos)
        << key;
  }
}

TEST(StatusPageTest, ContentSecurityPolicyAllowsExactlyThePagesScriptAndStyle) {
  const std::string html = RenderStatusHtml(Snapshot());
  const std::string script = Between(html, "<script>", "</script>");
  const std::string style = Between(html, "<style>", "</style>");
  ASSERT_FALSE(script.empty());
  ASSERT_FALSE(style.empty());
  const std::string& csp = StatusContentSecurityPolicy();
  EXPECT_NE(csp.find("script-src 'sha256-" + Sha256Base64(script) + "'"), std::string::npos) << csp;
  EXPECT_NE(csp.find("style-src 'sha256-" + Sha256Base64(style) + "'"), std::string::npos) << csp;
  EXPECT_NE(csp.find("default-src 'none'"), std::string::npos);
  EXPECT_NE(csp.find("connect-src 'self'"), std::string::npos);
  EXPECT_EQ(csp.find("unsafe"), std::string::npos);
  // The script builds rows with DOM calls only, and fetches the JSON twin relative to the page.
  EXPECT_EQ(script.find("innerHTML"), std::string::npos);
  EXPECT_EQ(script.find("outerHTML"), std::string::npos);
  EXPECT_EQ(script.find("document.write"), std::string::npos);
  EXPECT_NE(script.find("new URL(\"api/v1/status\", document.baseURI)"), std::string::npos);
  EXPECT_NE(script.find("textContent"), std::string::npos);
  // The same page whatever the data: the script and style never change.
  GatewayStatus other;
  other.now_ms = kT0;
  const std::string html2 = RenderStatusHtml(other);
  EXPECT_EQ(Between(html2, "<script>", "</script>"), script);
  EXPECT_EQ(Between(html2, "<style>", "</style>"), style);
}

}  // namespace
}  // namespace ccmon::gateway
