// The Retry-After response header (RFC 9110 section 10.2.3): delta-seconds or an HTTP-date.
#pragma once

#include <chrono>
#include <cstdint>
#include <string_view>

namespace ccmon {

// Parses an HTTP-date in any of the three forms RFC 9110 section 5.6.7 asks recipients to
// accept: IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"), the obsolete RFC 850 form
// ("Sunday, 06-Nov-94 08:49:37 GMT"; a two-digit year more than 50 years ahead of
// `now_unix_ms` is taken from the previous century) and asctime ("Sun Nov  6 08:49:37 1994").
// Returns false for anything else, including impossible dates (Feb 30) and times.
bool ParseHttpDate(std::string_view text, int64_t now_unix_ms, int64_t* unix_seconds);

// Parses a Retry-After value into the delay it asks for, relative to the wall clock
// `now_unix_ms` for a date. A date in the past gives a negative delay; delta-seconds beyond
// ~68 years saturate (callers clamp to their own maximum). Surrounding SP/HTAB is ignored.
// Returns false when the value is neither form (the header is then treated as absent).
bool ParseRetryAfter(std::string_view value, int64_t now_unix_ms, std::chrono::milliseconds* delay);

}  // namespace ccmon
