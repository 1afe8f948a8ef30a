// The gateway's status page (issue 9 §3), rendered from a GatewayStatus snapshot: pure functions,
// no I/O, thread-safe.
//
// RenderStatusHtml: one self-contained HTML document — the gateway (version, uptime, start),
// a table of devices (state, last seen, agent, series, today's, this month's and all reported
// spend) and a table of forward destinations (queue, lag, sent, failed, dropped, last error and
// when). It reads completely without JavaScript: every value is in the server-rendered tables,
// the CSS is inline, nothing is loaded from elsewhere. With JavaScript, an inline script fetches
// the JSON twin (`api/v1/status`, relative to the page, so that a path prefix added by a
// reverse proxy still works) every kStatusRefreshSeconds and rebuilds both tables and the
// header from it with DOM calls (textContent, setAttribute: never innerHTML), without reloading
// the page; a failed refresh says so on the page and keeps the last values. No <meta refresh>.
//
// Escaping: every text that comes from outside (device names, agents, URLs, error texts) is
// HTML-escaped (& < > " ' — safe in text and in quoted attribute values); bytes that are not
// valid UTF-8 and control characters are shown as \xNN (TerminalSafe), bidirectional
// overrides and isolates as \u202E and the like, in the page and in the JSON, so the two say
// the same. The page is served with StatusContentSecurityPolicy(), which
// allows only the page's own inline script and style (by their SHA-256), so even a missed escape
// could not run a script.
//
// Values: times in UTC ISO-8601 to the second ("2026-11-26T21:30:46Z") with their age ("5 s
// ago"); money exact from pico-dollars ("$12.345678", at least two decimals, never rounded);
// counts with thousands separators. "Today" and "this month" are UTC calendar periods.
//
// RenderStatusJson: the same snapshot as one JSON object for scripts and for the page's
// refresh: raw values (unix ms, exact pico-dollars as decimal strings, counts) and, per row,
// the `display` texts the page shows (see status_page.cc for the field names; the README's
// "Status page" lists them).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/money.h"
#include "gateway/status/status_snapshot.h"

namespace ccmon::gateway {

inline constexpr int kStatusRefreshSeconds = 5;

std::string RenderStatusHtml(const GatewayStatus& status);
std::string RenderStatusJson(const GatewayStatus& status);

// The Content-Security-Policy the page needs (its inline script and style by hash, fetches to
// its own origin only, nothing else).
const std::string& StatusContentSecurityPolicy();

// The pieces, exposed for tests.
// (Escaping: EscapeMarkup, base/markup.h; times: FormatUtcSeconds, base/timeutil.h.)
// A non-negative span, two units at most: "0 s", "59 s", "5 min 3 s", "2 h 3 min", "4 d 2 h".
std::string FormatDuration(int64_t ms);
// "2026-11-26T21:30:46Z (5 s ago)" ("in 5 s" for a time ahead of now); "never" for 0.
std::string FormatWhen(int64_t at_ms, int64_t now_ms);
// "$" and the exact amount with at least two decimals: "$0.00", "$1.50", "$0.000123456789".
std::string FormatMoney(PicoSum pico);
// "1,234,567".
std::string FormatCount(uint64_t n);

}  // namespace ccmon::gateway
