// What one transcript line contributes to the accounting (see docs/accounting.md).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/money.h"

namespace ccmon {

// Token counts of one request, split by billing type.
struct TokenCounts {
  uint64_t input = 0;
  uint64_t output = 0;
  uint64_t cache_write_5m = 0;
  uint64_t cache_write_1h = 0;
  uint64_t cache_read = 0;

  uint64_t Total() const { return input + output + cache_write_5m + cache_write_1h + cache_read; }
  // The prompt size that decides the long-context tier.
  uint64_t PromptTokens() const { return input + cache_write_5m + cache_write_1h + cache_read; }
  bool operator==(const TokenCounts&) const = default;
};

// One request's counts as the ledger stores them (4 bytes each: a single request's count is far
// below 2^32, and the parser rejects larger ones, docs/accounting.md A9).
struct StoredTokens {
  uint32_t input = 0;
  uint32_t output = 0;
  uint32_t cache_write_5m = 0;
  uint32_t cache_write_1h = 0;
  uint32_t cache_read = 0;

  StoredTokens() = default;
  StoredTokens(const TokenCounts& t)  // NOLINT: implicit, the counts fit (checked by the parser)
      : input(uint32_t(t.input)),
        output(uint32_t(t.output)),
        cache_write_5m(uint32_t(t.cache_write_5m)),
        cache_write_1h(uint32_t(t.cache_write_1h)),
        cache_read(uint32_t(t.cache_read)) {}
  operator TokenCounts() const {  // NOLINT: implicit widening
    return TokenCounts{input, output, cache_write_5m, cache_write_1h, cache_read};
  }
  // Field-wise maximum (the dedup rule for copies of one request).
  void MaxWith(const StoredTokens& o);
  bool operator==(const StoredTokens&) const = default;
  bool operator==(const TokenCounts& t) const { return TokenCounts(*this) == t; }
};
// The largest count a usage field may hold (larger values make the line bad_usage).
inline constexpr uint64_t kMaxTokenCount = UINT32_MAX;

// Token type names as they appear in the `type` label, in TokenCounts field order.
inline constexpr std::string_view kTokenTypes[5] = {"input", "output", "cache_creation_5m",
                                                    "cache_creation_1h", "cache_read"};
uint64_t TokenOfType(const TokenCounts& t, int type_index);

// Why a line was skipped. Stable names: they are the `reason` label of ccmon_skipped_lines_total.
enum class SkipReason : uint8_t {
  kEmpty,         // blank or whitespace-only line
  kInvalidJson,   // not JSON (plain text, NUL garbage, truncated JSON)
  kInvalidUtf8,   // bytes that are not UTF-8
  kNotObject,     // valid JSON that is not an object
  kBadUsage,      // an assistant line whose message.usage is not an object or holds bad numbers
  kMissingId,     // a usage record without message.id (cannot be deduplicated)
  kBadTimestamp,  // a usage record without a parseable ISO-8601 timestamp
  kTooLong,       // longer than the line cap
  kIncomplete,    // replay only: a final line without '\n' at the end of a finished read
  kIdTooLong,     // a record whose ids, model, tool or cwd are over kMaxIdBytes (A42)
};
inline constexpr int kSkipReasonCount = 10;
// A42: the longest message.id, requestId, sessionId, uuid, model, tool_use id or name, or cwd
// a record may carry. Real ones are tens of bytes (a cwd at most PATH_MAX, 4096); the agent keys
// its state by them, and its store takes keys of at most 64 KiB.
inline constexpr size_t kMaxIdBytes = 4096;
std::string_view SkipReasonName(SkipReason r);

// Skipped lines by reason.
struct SkipCounts {
  std::array<uint64_t, kSkipReasonCount> by_reason{};
  uint64_t total() const;
};

enum class LineKind : uint8_t {
  kOther,    // a valid line that carries neither a usage record nor a prompt (summary, …)
  kUsage,    // a usage record (may be <synthetic> and/or an API error; see flags), or the copy
             // of a subagent's record in an agent_progress line (progress_copy)
  kSkipped,  // malformed; see skip_reason
  kPrompt,   // a prompt a person typed (docs/accounting.md A38): uuid, timestamp, cwd, session
};

struct ToolUse {
  std::string_view id;
  std::string_view name;
};

// One parsed line. String views point into the line or into the parser's scratch space and are
// valid until the parser's next Parse() call.
struct ParsedLine {
  LineKind kind = LineKind::kOther;
  SkipReason skip_reason = SkipReason::kInvalidJson;

  std::string_view message_id;
  std::string_view request_id;  // empty when absent
  bool has_request_id = false;
  std::string_view model;  // raw message.model ("" when absent)
  std::string_view session_id;
  std::string_view cwd;
  int64_t timestamp_ms = 0;
  bool is_sidechain = false;
  bool is_api_error = false;
  bool fast = false;          // usage.speed == "fast"
  bool us_inference = false;  // usage.inference_geo == "us" (US-only inference, A39)
  // kUsage: the record is a subagent request copied into the parent's agent_progress line
  // (data.message); is_sidechain is then true and session_id/cwd are the outer line's (A7).
  bool progress_copy = false;
  bool has_cost_usd = false;  // top-level costUSD present (legacy lines)
  Pico cost_usd = 0;
  uint64_t web_search_requests = 0;
  TokenCounts tokens;
  std::vector<ToolUse> tool_uses;  // tool_use blocks of message.content
  std::string_view uuid;           // kPrompt: the line's uuid (never empty)

  bool IsSynthetic() const { return model == "<synthetic>"; }
  void Reset();
};

}  // namespace ccmon
