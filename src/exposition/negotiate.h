// Content negotiation for /metrics: which exposition format to answer a scrape with, from its
// Accept header, and the Content-Type that goes with it. Pure functions; thread-safe.
//
// Pairs with the writers of exposition/text_format.h (SnapshotText / SnapshotOpenMetrics) and
// selfmetrics' WriteSelfMetrics.
#pragma once

#include <string_view>

namespace ccmon {

enum class ExpositionFormat {
  kText,         // Prometheus text format 0.0.4
  kOpenMetrics,  // OpenMetrics 1.0.0 (the same body answers an OpenMetrics 0.0.1 request)
};

struct Negotiated {
  ExpositionFormat format = ExpositionFormat::kText;
  // The Content-Type to answer with (a static string).
  std::string_view content_type;
};

inline constexpr std::string_view kTextContentType = "text/plain; version=0.0.4; charset=utf-8";
inline constexpr std::string_view kOpenMetricsContentType =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
inline constexpr std::string_view kOpenMetrics001ContentType =
    "application/openmetrics-text; version=0.0.1; charset=utf-8";

// Chooses a format from an Accept header (RFC 9110 section 12.5.1), as Prometheus's client
// libraries do:
// - application/openmetrics-text with version 1.0.0, 0.0.1 or none is OpenMetrics;
//   text/plain with version 0.0.4 or none is text; application/* and text/* match the one of
//   their type, */* matches both; other media types and versions match nothing;
// - each format takes the q of the most specific range that matches it (exact version, then
//   no version, then type/*, then */*); q=0 refuses it; a malformed q ignores its range;
// - the higher q wins; on a tie, the more specific match, then the range listed first;
// - nothing acceptable (or no header) is text 0.0.4, which every scraper reads.
// Prometheus 2.42 sends "application/openmetrics-text;version=1.0.0,application/openmetrics-text;
// version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1": OpenMetrics 1.0.0.
// An OpenMetrics answer says version=0.0.1 only when 0.0.1 was accepted and 1.0.0 was not.
Negotiated NegotiateExposition(std::string_view accept);

}  // namespace ccmon
