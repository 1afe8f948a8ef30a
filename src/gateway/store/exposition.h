// The gateway's /metrics body for the series it received: every series' current value, with its
// labels as received, grouped into families by the metadata known for them (SeriesTable::Family),
// in Prometheus text 0.0.4 or OpenMetrics 1.0. Pure; thread-compatible (read-only on the table).
//
// - No timestamps: a scraper stamps the values at scrape time, as it would a pushgateway's.
// - Text 0.0.4: "# HELP" where known; "# TYPE" counter / gauge / histogram / summary where known
//   (a counter's TYPE names its samples, e.g. "x_total"); nothing for untyped series.
// - OpenMetrics: a counter whose samples end in "_total" is the family without it; a counter
//   named otherwise, and every series without a known type, is "unknown" (OpenMetrics allows a
//   counter's samples only as "_total"). UNIT where known and the family name ends with it.
// - A series whose last sample is a staleness marker (Prometheus's StaleNaN) is left out, as is
//   every series `hidden` returns true for (names the caller exposes itself).
// - Values: the shortest decimal that reads back as the same double; "NaN", "+Inf", "-Inf".
// Families are sorted by name; series within one by name, then labels ("le" and "quantile"
// numerically). The OpenMetrics body does NOT end with "# EOF" (ComposeRenderedMetricsBody of
// selfmetrics/self_metrics.h adds it after the self-metrics).
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "exposition/negotiate.h"
#include "gateway/store/series_table.h"

namespace ccmon::gateway {

void WriteSeriesExposition(const SeriesTable& table, ExpositionFormat format,
                           const std::function<bool(std::string_view name)>& hidden,
                           std::string* out);

// A double as the exposition writes it (see above).
std::string FormatSampleValue(double v);

// Appends `v` escaped for the exposition: backslash and line feed always, '"' too when `quote`
// (label values; also HELP text in OpenMetrics).
void AppendEscapedText(std::string_view v, bool quote, std::string* out);

}  // namespace ccmon::gateway
