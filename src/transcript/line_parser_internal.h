// Private to line_parser*.cc: the fields both parser paths gather, and the one classification rule.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "base/timeutil.h"
#include "transcript/usage.h"

namespace ccmon {
namespace line_parser_internal {

inline bool IsJsonSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

inline std::string_view TrimSpace(std::string_view s) {
  while (!s.empty() && IsJsonSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsJsonSpace(s.back())) s.remove_suffix(1);
  return s;
}

// Fields gathered while walking one line, before the final classification. Both parser paths
// fill this; Finish() applies the one classification rule.
struct Extract {
  bool top_is_object = false;
  bool is_assistant = false;
  bool message_is_object = false;
  bool usage_is_object = false;
  bool bad_number = false;  // in message.usage (reset with it)
  bool bad_cost = false;    // top-level costUSD (independent of where "message" appears)
  bool has_split = false;
  uint64_t input = 0, output = 0, cache_creation = 0, cache_read = 0, eph_5m = 0, eph_1h = 0;
  std::string_view timestamp;

  void ResetMessage(ParsedLine* out) {
    message_is_object = false;
    out->message_id = {};
    out->model = {};
    out->tool_uses.clear();
    ResetUsage(out);
  }
  void ResetUsage(ParsedLine* out) {
    usage_is_object = false;
    bad_number = false;
    has_split = false;
    input = output = cache_creation = cache_read = eph_5m = eph_1h = 0;
    out->fast = false;
    out->web_search_requests = 0;
  }

  inline void Finish(ParsedLine* out) const {
    if (!top_is_object) {
      out->kind = LineKind::kSkipped;
      out->skip_reason = SkipReason::kNotObject;
      return;
    }
    if (!is_assistant || !message_is_object || !usage_is_object) {
      out->kind = LineKind::kOther;
      return;
    }
    out->kind = LineKind::kSkipped;
    if (bad_number || bad_cost) {
      out->skip_reason = SkipReason::kBadUsage;
      return;
    }
    if (out->message_id.empty()) {
      out->skip_reason = SkipReason::kMissingId;
      return;
    }
    if (!ParseIso8601Ms(timestamp, &out->timestamp_ms)) {
      out->skip_reason = SkipReason::kBadTimestamp;
      return;
    }
    out->kind = LineKind::kUsage;
    out->tokens.input = input;
    out->tokens.output = output;
    out->tokens.cache_read = cache_read;
    if (has_split) {
      out->tokens.cache_write_5m = eph_5m;
      out->tokens.cache_write_1h = eph_1h;
    } else {
      out->tokens.cache_write_5m = cache_creation;
      out->tokens.cache_write_1h = 0;
    }
  }
};


// The simdjson fast path (line_parser_fast.cc, compiled for AVX2). Opaque parser state.
struct FastParser;
std::unique_ptr<FastParser, void (*)(FastParser*)> NewFastParser();
// False when the CPU lacks what the fast path was compiled for.
bool FastPathSupported();
// `data` has `capacity` >= len + 64 readable bytes. Returns false when undecided (see header).
bool FastParse(FastParser* p, const char* data, size_t len, size_t capacity, Extract* x,
               ParsedLine* out);

}  // namespace line_parser_internal
}  // namespace ccmon
