// Private to line_parser*.cc: the fields both parser paths gather, and the one classification rule.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "base/money.h"
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

// A UTF-8 byte order mark. Only a file's first line may start with one (docs/accounting.md A6).
inline constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";
inline bool StartsWithBom(std::string_view s) { return s.substr(0, 3) == kUtf8Bom; }

// The decoded first bytes of a prompt's text: enough to tell command plumbing from a prompt
// (A38). The fast path decodes them from the raw JSON string itself, the reference path copies
// them from the parsed string; both then classify the same bytes.
struct TextPrefix {
  static constexpr size_t kBytes = 32;  // longer than every plumbing prefix
  char bytes[kBytes];
  uint8_t size = 0;
  bool empty = true;       // the whole text is ""
  bool undecided = false;  // the fast path met an escape it does not decode: ask the reference
  std::string_view view() const { return std::string_view(bytes, size); }
  void Set(std::string_view text) {
    size = uint8_t(text.size() < kBytes ? text.size() : kBytes);
    for (size_t i = 0; i < size; ++i) bytes[i] = text[i];
    empty = text.empty();
    undecided = false;
  }
};

// True when text starting with `prefix` is command plumbing, not something a person typed (A38).
bool IsPromptPlumbing(std::string_view prefix);
// True when some text starting with `prefix` could be plumbing (a plumbing marker starts with it,
// or it starts with one): the rest of the text is needed to tell.
bool MayBePromptPlumbing(std::string_view prefix);

// One assistant record: the line's own, or the subagent record an agent_progress line nests at
// data.message. Both parser paths fill it; Extract::Finish turns it into a ParsedLine.
struct RecordExtract {
  bool is_assistant = false;  // the record's "type" is "assistant"
  bool message_is_object = false;
  bool usage_is_object = false;
  bool bad_number = false;  // in message.usage (reset with it)
  bool bad_cost = false;    // the record's costUSD (independent of where "message" appears)
  bool has_split = false;
  bool fast = false;
  bool us_inference = false;
  bool has_request_id = false;
  bool is_api_error = false;
  bool has_cost_usd = false;
  Pico cost_usd = 0;
  uint64_t input = 0, output = 0, cache_creation = 0, cache_read = 0, eph_5m = 0, eph_1h = 0;
  uint64_t web_search_requests = 0;
  std::string_view message_id, model, request_id, timestamp;
  std::vector<ToolUse>* tool_uses = nullptr;  // tool_use blocks of message.content go here

  // message.content, read for the prompt rule (A38) on the line's own record only.
  bool content_is_text = false;  // content is a string, or an array with a text block
  bool content_has_tool_result = false;
  TextPrefix text;  // the string, or the first text block's text

  // A repeated "message" member replaces everything read from an earlier one.
  void ResetMessage() {
    message_is_object = false;
    message_id = {};
    model = {};
    tool_uses->clear();
    ResetContent();
    ResetUsage();
  }
  void ResetContent() {
    tool_uses->clear();
    content_is_text = false;
    content_has_tool_result = false;
    text = TextPrefix();
  }
  void ResetUsage() {
    usage_is_object = false;
    bad_number = false;
    has_split = false;
    input = output = cache_creation = cache_read = eph_5m = eph_1h = 0;
    fast = false;
    us_inference = false;
    web_search_requests = 0;
  }
  // Everything (a repeated data.message replaces the whole nested record).
  void ResetAll() {
    std::vector<ToolUse>* keep = tool_uses;
    *this = RecordExtract();
    tool_uses = keep;
    tool_uses->clear();
  }
};

enum class LineType : uint8_t { kOther, kAssistant, kUser, kProgress };

// Fields gathered while walking one line, before the final classification. Both parser paths
// fill this; Finish() applies the one classification rule.
struct Extract {
  // `nested_tool_uses` is scratch owned by the parser (reused, so that no line allocates).
  Extract(ParsedLine* out, std::vector<ToolUse>* nested_tool_uses) {
    top.tool_uses = &out->tool_uses;
    nested.tool_uses = nested_tool_uses;
    nested_tool_uses->clear();
  }

  bool top_is_object = false;
  LineType type = LineType::kOther;
  RecordExtract top;
  bool is_sidechain = false;
  bool is_meta = false;
  bool is_compact_summary = false;
  std::string_view session_id, cwd, uuid;
  // The fast path keeps the raw uuid and gives up on it when it holds an escape (never seen).
  bool uuid_undecided = false;
  // data.type == "agent_progress" and the record at data.message.
  bool agent_progress = false;
  RecordExtract nested;

  // Starts a new "data" member (a repeated key replaces the earlier one).
  void ResetData() {
    agent_progress = false;
    nested.ResetAll();
  }

  // False when the fast path cannot decide this line (it read a value only raw); the reference
  // path then parses it.
  bool Decidable() const {
    if (type != LineType::kUser || !IsPromptCandidate()) return true;
    return !top.text.undecided && !uuid_undecided;
  }

  void Finish(ParsedLine* out) const {
    if (!top_is_object) {
      out->kind = LineKind::kSkipped;
      out->skip_reason = SkipReason::kNotObject;
      return;
    }
    out->session_id = session_id;
    out->cwd = cwd;
    out->is_sidechain = is_sidechain;
    switch (type) {
      case LineType::kAssistant:
        if (top.message_is_object && top.usage_is_object) {
          FinishRecord(top, out);
          return;
        }
        break;
      case LineType::kProgress:
        if (agent_progress && nested.is_assistant && nested.message_is_object &&
            nested.usage_is_object) {
          FinishRecord(nested, out);
          out->is_sidechain = true;  // a subagent's request (A18: a main-transcript copy wins)
          out->progress_copy = true;
          out->tool_uses.swap(*nested.tool_uses);
          return;
        }
        break;
      case LineType::kUser:
        if (IsPromptCandidate() && !top.text.empty && !IsPromptPlumbing(top.text.view()) &&
            ParseIso8601Ms(top.timestamp, &out->timestamp_ms)) {
          out->kind = LineKind::kPrompt;
          out->uuid = uuid;
          out->tool_uses.clear();
          return;
        }
        break;
      case LineType::kOther:
        break;
    }
    out->kind = LineKind::kOther;
    out->tool_uses.clear();
  }

 private:
  // The shape of a prompt (A38) without its text: not a subagent's, not meta, a uuid, and text
  // content without tool results.
  bool IsPromptCandidate() const {
    return !is_sidechain && !is_meta && !is_compact_summary && !uuid.empty() &&
           top.message_is_object && top.content_is_text && !top.content_has_tool_result;
  }

  static void FinishRecord(const RecordExtract& r, ParsedLine* out) {
    out->kind = LineKind::kSkipped;
    if (r.bad_number || r.bad_cost) {
      out->skip_reason = SkipReason::kBadUsage;
      return;
    }
    if (r.message_id.empty()) {
      out->skip_reason = SkipReason::kMissingId;
      return;
    }
    if (!ParseIso8601Ms(r.timestamp, &out->timestamp_ms)) {
      out->skip_reason = SkipReason::kBadTimestamp;
      return;
    }
    out->kind = LineKind::kUsage;
    out->message_id = r.message_id;
    out->model = r.model;
    out->request_id = r.request_id;
    out->has_request_id = r.has_request_id;
    out->is_api_error = r.is_api_error;
    out->fast = r.fast;
    out->us_inference = r.us_inference;
    out->has_cost_usd = r.has_cost_usd;
    out->cost_usd = r.has_cost_usd ? r.cost_usd : 0;
    out->web_search_requests = r.web_search_requests;
    out->tokens.input = r.input;
    out->tokens.output = r.output;
    out->tokens.cache_read = r.cache_read;
    if (r.has_split) {
      out->tokens.cache_write_5m = r.eph_5m;
      out->tokens.cache_write_1h = r.eph_1h;
    } else {
      out->tokens.cache_write_5m = r.cache_creation;
      out->tokens.cache_write_1h = 0;
    }
  }
};

// The simdjson fast path (line_parser_fast.cc). Opaque parser state, built only when the CPU
// supports the fast path.
struct FastParser;
std::unique_ptr<FastParser, void (*)(FastParser*)> NewFastParser();
// False when the CPU lacks what the fast path was compiled for, or when CCMON_FAST_PATH=off.
bool FastPathSupported();
// True when the CPU has what the fast path was compiled for (ignores CCMON_FAST_PATH).
bool CpuHasFastPath();
// `data` has `capacity` >= len + 64 readable bytes. Returns false when undecided (see header).
// Precondition: FastPathSupported().
bool FastParse(FastParser* p, const char* data, size_t len, size_t capacity, Extract* x);
// Strict UTF-8 check (simdjson's runtime-dispatched validator: safe on any CPU).
bool ValidUtf8(std::string_view s);

}  // namespace line_parser_internal
}  // namespace ccmon
