#include "transcript/usage.h"

#include <algorithm>

namespace ccmon {

void StoredTokens::MaxWith(const StoredTokens& o) {
  input = std::max(input, o.input);
  output = std::max(output, o.output);
  cache_write_5m = std::max(cache_write_5m, o.cache_write_5m);
  cache_write_1h = std::max(cache_write_1h, o.cache_write_1h);
  cache_read = std::max(cache_read, o.cache_read);
}

uint64_t TokenOfType(const TokenCounts& t, int i) {
  switch (i) {
    case 0:
      return t.input;
    case 1:
      return t.output;
    case 2:
      return t.cache_write_5m;
    case 3:
      return t.cache_write_1h;
    default:
      return t.cache_read;
  }
}

std::string_view SkipReasonName(SkipReason r) {
  switch (r) {
    case SkipReason::kEmpty:
      return "empty";
    case SkipReason::kInvalidJson:
      return "invalid_json";
    case SkipReason::kInvalidUtf8:
      return "invalid_utf8";
    case SkipReason::kNotObject:
      return "not_object";
    case SkipReason::kBadUsage:
      return "bad_usage";
    case SkipReason::kMissingId:
      return "missing_id";
    case SkipReason::kBadTimestamp:
      return "bad_timestamp";
    case SkipReason::kTooLong:
      return "too_long";
    case SkipReason::kIncomplete:
      return "incomplete";
    case SkipReason::kIdTooLong:
      return "id_too_long";
  }
  return "unknown";
}

void ParsedLine::Reset() {
  kind = LineKind::kOther;
  skip_reason = SkipReason::kInvalidJson;
  message_id = request_id = model = session_id = cwd = uuid = {};
  has_request_id = false;
  timestamp_ms = 0;
  is_sidechain = is_api_error = fast = us_inference = progress_copy = has_cost_usd = false;
  cost_usd = 0;
  web_search_requests = 0;
  tokens = TokenCounts{};
  tool_uses.clear();
}

uint64_t SkipCounts::total() const {
  uint64_t t = 0;
  for (uint64_t v : by_reason) t += v;
  return t;
}

}  // namespace ccmon
