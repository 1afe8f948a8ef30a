#include "transcript/line_parser.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "base/timeutil.h"
#include "transcript/line_parser_internal.h"

namespace ccmon {
using namespace line_parser_internal;
namespace {

constexpr std::string_view kUsageNeedle = "\"usage\"";
constexpr std::string_view kUserNeedle = "\"user\"";
constexpr std::string_view kToolResultNeedle = "\"tool_result\"";

// ---------------------------------------------------------------------------------------------
// Reference path: nlohmann SAX.

// A JSON number literal (RFC 8259 grammar, as nlohmann_json reports it) that denotes a
// non-negative integer of at most `max`, exactly: 5.0, 50e-1 and 0e-400 do, 1e-400 and
// 1.0000000000000000001 do not (a double would round them to integers, A9).
bool ExactCount(std::string_view lit, uint64_t max, uint64_t* out) {
  size_t i = 0;
  bool negative = i < lit.size() && lit[i] == '-';
  if (negative) ++i;
  std::string digits;  // significant digits of the mantissa, leading zeros dropped
  int64_t exp10 = 0;   // value = digits x 10^exp10
  bool any = false;
  for (; i < lit.size() && lit[i] >= '0' && lit[i] <= '9'; ++i) {
    any = true;
    if (!digits.empty() || lit[i] != '0') digits.push_back(lit[i]);
  }
  if (i < lit.size() && lit[i] == '.') {
    for (++i; i < lit.size() && lit[i] >= '0' && lit[i] <= '9'; ++i) {
      any = true;
      if (!digits.empty() || lit[i] != '0') digits.push_back(lit[i]);
      --exp10;
    }
  }
  if (!any) return false;
  if (i < lit.size() && (lit[i] == 'e' || lit[i] == 'E')) {
    ++i;
    bool neg_exp = i < lit.size() && lit[i] == '-';
    if (i < lit.size() && (lit[i] == '-' || lit[i] == '+')) ++i;
    int64_t e = 0;
    bool exp_digits = false;
    for (; i < lit.size() && lit[i] >= '0' && lit[i] <= '9'; ++i) {
      exp_digits = true;
      if (e < 1'000'000'000) e = e * 10 + (lit[i] - '0');  // saturates far beyond any count
    }
    if (!exp_digits) return false;
    exp10 += neg_exp ? -e : e;
  }
  if (i != lit.size()) return false;
  if (digits.empty()) {  // zero, whatever its sign and exponent
    *out = 0;
    return true;
  }
  if (negative) return false;
  while (digits.back() == '0') {
    digits.pop_back();
    ++exp10;
  }
  if (exp10 < 0) return false;  // a fraction remains
  if (int64_t(digits.size()) + exp10 > 20) return false;
  unsigned __int128 v = 0;
  for (char c : digits) v = v * 10 + unsigned(c - '0');
  for (int64_t k = 0; k < exp10; ++k) v *= 10;
  if (v > max) return false;
  *out = uint64_t(v);
  return true;
}

class RefHandler {
 public:
  using json = nlohmann::json;
  RefHandler(Extract* x, LineParser* owner, std::string_view (*keep)(LineParser*, std::string_view))
      : x_(x), owner_(owner), keep_(keep) {}

  bool failed() const { return failed_; }

  bool null() { return Scalar(Val::kNull, 0, {}); }
  bool boolean(bool b) { return Scalar(Val::kBool, b, {}); }
  bool number_integer(json::number_integer_t v) {
    return v >= 0 ? Scalar(Val::kUint, uint64_t(v), {}) : Scalar(Val::kBadNumber, 0, {});
  }
  bool number_unsigned(json::number_unsigned_t v) { return Scalar(Val::kUint, v, {}); }
  bool number_float(json::number_float_t v, const json::string_t& s) {
    // Out of a double's range (1e400): not a number JSON parsers agree on, so not valid JSON.
    if (!std::isfinite(v)) {
      failed_ = true;
      return false;
    }
    return Scalar(Val::kFloat, 0, s);
  }
  bool string(json::string_t& s) { return Scalar(Val::kString, 0, s); }
  bool binary(json::binary_t&) { return Scalar(Val::kNull, 0, {}); }
  bool key(json::string_t& k) {
    stack_.back().key = k;
    return true;
  }
  bool start_object(std::size_t) { return Open(true); }
  bool end_object() { return Close(); }
  bool start_array(std::size_t) { return Open(false); }
  bool end_array() { return Close(); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) {
    failed_ = true;
    return false;
  }

 private:
  // kTop and kNested are records (kNested: the subagent record of an agent_progress line, at
  // data.message); kMessage and below belong to the record of the level that opened them.
  enum class Frame {
    kTop,
    kData,
    kNested,
    kMessage,
    kUsage,
    kCacheCreation,
    kServerToolUse,
    kContent,
    kBlock,
    kSkip
  };
  enum class Val { kNull, kBool, kUint, kFloat, kString, kBadNumber, kContainer };
  struct Level {
    Frame frame;
    RecordExtract* rec;
    std::string key;
    // kBlock only: the block's members (the last occurrence of each).
    std::string block_type, block_id, block_name, block_text;
    bool text_is_string = false;
  };

  bool Open(bool is_object) {
    Frame next = Frame::kSkip;
    RecordExtract* rec = nullptr;
    if (stack_.empty()) {
      if (is_object) {
        x_->top_is_object = true;
        next = Frame::kTop;
        rec = &x_->top;
      }
    } else {
      Level& p = stack_.back();
      const std::string& k = p.key;
      rec = p.rec;
      const bool record = p.frame == Frame::kTop || p.frame == Frame::kNested;
      if (record && k == "message") {
        rec->ResetMessage();
        if (is_object) {
          rec->message_is_object = true;
          next = Frame::kMessage;
        }
      } else if (p.frame == Frame::kTop && k == "data") {
        x_->ResetData();
        if (is_object) next = Frame::kData;
      } else if (p.frame == Frame::kData && k == "message") {
        x_->nested.ResetAll();
        if (is_object) {
          next = Frame::kNested;
          rec = &x_->nested;
        }
      } else if (p.frame == Frame::kMessage && k == "usage") {
        rec->ResetUsage();
        if (is_object) {
          rec->usage_is_object = true;
          next = Frame::kUsage;
        }
      } else if (p.frame == Frame::kMessage && k == "content") {
        rec->ResetContent();
        if (!is_object) next = Frame::kContent;
      } else if (p.frame == Frame::kUsage && k == "cache_creation") {
        if (is_object) {
          rec->has_split = true;
          rec->eph_5m = rec->eph_1h = 0;
          next = Frame::kCacheCreation;
        } else {
          rec->has_split = false;
        }
      } else if (p.frame == Frame::kUsage && k == "server_tool_use") {
        if (is_object) {
          rec->web_search_requests = 0;
          next = Frame::kServerToolUse;
        }
      } else if (p.frame == Frame::kContent && is_object) {
        next = Frame::kBlock;
      }
      // Any other container where a field of ours is expected counts as a wrong-typed value
      // (e.g. a repeated "type":{} overrides an earlier "type":"assistant", as in the fast path).
      if (next == Frame::kSkip && p.frame != Frame::kContent && p.frame != Frame::kSkip) {
        Scalar(Val::kContainer, 0, {});
      }
    }
    stack_.push_back({next, rec, {}, {}, {}, {}, {}, false});
    return true;
  }

  bool Close() {
    Level& l = stack_.back();
    if (l.frame == Frame::kBlock) {
      RecordExtract* rec = l.rec;
      if (l.block_type == "tool_use" && !l.block_id.empty()) {
        rec->tool_uses->push_back({keep_(owner_, l.block_id), keep_(owner_, l.block_name)});
      } else if (l.block_type == "tool_result") {
        rec->content_has_tool_result = true;
      } else if (l.block_type == "text" && !rec->content_is_text) {
        rec->content_is_text = true;  // the first text block holds the prompt's text
        rec->text.Set(l.text_is_string ? std::string_view(l.block_text) : std::string_view());
      }
    }
    stack_.pop_back();
    return true;
  }

  // A count: a non-negative integer below 2^32, written as an integer or as a number literal that
  // is exactly one (5.0, 1e2), or null (0). Anything else is a bad number.
  void Count(Val t, uint64_t u, std::string_view s, RecordExtract* rec, uint64_t* dst) {
    if (t == Val::kNull) {
      *dst = 0;
    } else if (t == Val::kUint && u <= kMaxTokenCount) {
      *dst = u;
    } else if (t == Val::kFloat && ExactCount(s, kMaxTokenCount, dst)) {
    } else {
      rec->bad_number = true;
    }
  }

  // Members every record has (the line itself, or the nested copy). Returns true if `k` is one.
  bool RecordScalar(RecordExtract* r, const std::string& k, Val t, uint64_t u, std::string_view s) {
    if (k == "message") {
      r->ResetMessage();
    } else if (k == "requestId") {
      r->has_request_id = t == Val::kString;
      r->request_id = t == Val::kString ? keep_(owner_, s) : std::string_view();
    } else if (k == "timestamp") {
      r->timestamp = t == Val::kString ? keep_(owner_, s) : std::string_view();
    } else if (k == "isApiErrorMessage") {
      r->is_api_error = t == Val::kBool && u;
    } else if (k == "costUSD") {
      r->has_cost_usd = false;
      r->bad_cost = false;  // the last costUSD member decides
      if (t == Val::kUint) {
        if (u <= 1000000) {
          r->cost_usd = Pico(u) * kPicoPerUsd;
          r->has_cost_usd = true;
        } else {
          r->bad_cost = true;
        }
      } else if (t == Val::kFloat) {
        if (ParseUsdDecimal(s, &r->cost_usd)) {
          r->has_cost_usd = true;
        } else {
          r->bad_cost = true;
        }
      } else if (t == Val::kBadNumber) {
        r->bad_cost = true;
      }
    } else {
      return false;
    }
    return true;
  }

  bool Scalar(Val t, uint64_t u, std::string_view s) {
    if (stack_.empty()) return true;
    Level& l = stack_.back();
    const std::string& k = l.key;
    RecordExtract* rec = l.rec;
    switch (l.frame) {
      case Frame::kTop:
        if (k == "type") {
          x_->type = t != Val::kString  ? LineType::kOther
                     : s == "assistant" ? LineType::kAssistant
                     : s == "user"      ? LineType::kUser
                     : s == "progress"  ? LineType::kProgress
                                        : LineType::kOther;
        } else if (RecordScalar(rec, k, t, u, s)) {
        } else if (k == "data") {
          x_->ResetData();
        } else if (k == "sessionId") {
          x_->session_id = t == Val::kString ? keep_(owner_, s) : std::string_view();
        } else if (k == "cwd") {
          x_->cwd = t == Val::kString ? keep_(owner_, s) : std::string_view();
        } else if (k == "uuid") {
          x_->uuid = t == Val::kString ? keep_(owner_, s) : std::string_view();
        } else if (k == "isSidechain") {
          x_->is_sidechain = t == Val::kBool && u;
        } else if (k == "isMeta") {
          x_->is_meta = t == Val::kBool && u;
        } else if (k == "isCompactSummary") {
          x_->is_compact_summary = t == Val::kBool && u;
        }
        break;
      case Frame::kData:
        if (k == "type") {
          x_->agent_progress = t == Val::kString && s == "agent_progress";
        } else if (k == "message") {
          x_->nested.ResetAll();
        }
        break;
      case Frame::kNested:
        if (k == "type") {
          rec->is_assistant = t == Val::kString && s == "assistant";
        } else {
          RecordScalar(rec, k, t, u, s);
        }
        break;
      case Frame::kMessage:
        if (k == "id") {
          rec->message_id = t == Val::kString ? keep_(owner_, s) : std::string_view();
        } else if (k == "model") {
          rec->model = t == Val::kString ? keep_(owner_, s) : std::string_view();
        } else if (k == "usage") {
          rec->ResetUsage();
        } else if (k == "content") {
          rec->ResetContent();
          if (t == Val::kString) {
            rec->content_is_text = true;
            rec->text.Set(s);
          }
        }
        break;
      case Frame::kUsage:
        if (k == "input_tokens") {
          Count(t, u, s, rec, &rec->input);
        } else if (k == "output_tokens") {
          Count(t, u, s, rec, &rec->output);
        } else if (k == "cache_creation_input_tokens") {
          Count(t, u, s, rec, &rec->cache_creation);
        } else if (k == "cache_read_input_tokens") {
          Count(t, u, s, rec, &rec->cache_read);
        } else if (k == "cache_creation") {
          rec->has_split = false;
        } else if (k == "speed") {
          rec->fast = t == Val::kString && s == "fast";
        } else if (k == "inference_geo") {
          rec->us_inference = t == Val::kString && s == "us";
        }
        break;
      case Frame::kCacheCreation:
        if (k == "ephemeral_5m_input_tokens") Count(t, u, s, rec, &rec->eph_5m);
        if (k == "ephemeral_1h_input_tokens") Count(t, u, s, rec, &rec->eph_1h);
        break;
      case Frame::kServerToolUse:
        if (k == "web_search_requests") Count(t, u, s, rec, &rec->web_search_requests);
        break;
      case Frame::kBlock:
        if (t == Val::kString) {
          if (k == "type") l.block_type = s;
          if (k == "id") l.block_id = s;
          if (k == "name") l.block_name = s;
          if (k == "text") {
            l.block_text = s;
            l.text_is_string = true;
          }
        } else {
          if (k == "type") l.block_type.clear();
          if (k == "id") l.block_id.clear();
          if (k == "name") l.block_name.clear();
          if (k == "text") {
            l.block_text.clear();
            l.text_is_string = false;
          }
        }
        break;
      default:
        break;
    }
    return true;
  }

  Extract* x_;
  LineParser* owner_;
  std::string_view (*keep_)(LineParser*, std::string_view);
  std::vector<Level> stack_;
  bool failed_ = false;
};

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Reads "\uXXXX" at s[i]; returns the code unit or -1.
int EscapedUnit(std::string_view s, size_t i) {
  if (i + 6 > s.size() || s[i] != '\\' || s[i + 1] != 'u') return -1;
  int v = 0;
  for (size_t k = i + 2; k < i + 6; ++k) {
    int h = HexValue(s[k]);
    if (h < 0) return -1;
    v = v * 16 + h;
  }
  return v;
}

// Replaces lone UTF-16 surrogate escapes (which JavaScript's JSON.stringify writes and
// nlohmann_json rejects) with \ufffd, in place (same length). Returns true if anything changed.
bool ReplaceLoneSurrogates(std::string& s) {
  bool changed = false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\') continue;
    if (i + 1 >= s.size()) break;
    if (s[i + 1] != 'u') {
      ++i;  // skip the escaped character (handles "\\")
      continue;
    }
    int u = EscapedUnit(s, i);
    if (u < 0) {
      i += 1;
      continue;
    }
    if (u >= 0xD800 && u <= 0xDBFF) {
      int lo = EscapedUnit(s, i + 6);
      if (lo >= 0xDC00 && lo <= 0xDFFF) {
        i += 11;
        continue;
      }
    } else if (!(u >= 0xDC00 && u <= 0xDFFF)) {
      i += 5;
      continue;
    }
    std::memcpy(&s[i], "\\ufffd", 6);
    changed = true;
    i += 5;
  }
  return changed;
}

// Text a person did not type: slash-command echoes and their output, `!` shell mode, the caveat
// before local command output, background task notifications and interruption markers (A38).
constexpr std::string_view kPromptPlumbing[] = {
    "<command-name>",
    "<command-message>",
    "<command-args>",
    "<local-command-stdout>",
    "<local-command-stderr>",
    "<local-command-caveat>",
    "<bash-input>",
    "<bash-stdout>",
    "<bash-stderr>",
    "<task-notification>",
    "[Request interrupted by user",
};

}  // namespace

namespace line_parser_internal {

bool IsPromptPlumbing(std::string_view text) {
  for (std::string_view p : kPromptPlumbing) {
    if (text.substr(0, p.size()) == p) return true;
  }
  return false;
}

bool MayBePromptPlumbing(std::string_view prefix) {
  for (std::string_view p : kPromptPlumbing) {
    if (p.substr(0, prefix.size()) == prefix.substr(0, p.size())) return true;
  }
  return false;
}

}  // namespace line_parser_internal

struct LineParser::FastState {
  std::unique_ptr<FastParser, void (*)(FastParser*)> parser = NewFastParser();
};

bool MayHoldRecord(std::string_view line) {
  auto contains = [&](std::string_view needle) {
    return ::memmem(line.data(), line.size(), needle.data(), needle.size()) != nullptr;
  };
  // A prompt pasted in full can be long; a big tool result (the usual long line) is a user line
  // too, but it holds a "tool_result" block.
  return contains(kUsageNeedle) || (contains(kUserNeedle) && !contains(kToolResultNeedle));
}

bool LineParser::FastPathEnabled() { return FastPathSupported(); }

LineParser::LineParser(size_t fast_path_max_bytes) : fast_path_max_bytes_(fast_path_max_bytes) {
  // The fast parser's constructor is AVX2 code too: build it only where it may run.
  if (FastPathSupported()) fast_ = std::make_unique<FastState>();
}

LineParser::~LineParser() = default;

std::string_view LineParser::Keep(std::string_view s) {
  if (kept_used_ == kept_.size()) kept_.push_back(std::make_unique<std::string>());
  std::string& dst = *kept_[kept_used_++];
  dst.assign(s.data(), s.size());
  return dst;
}

namespace {
// A42: what the agent keys its state by, and puts in labels.
bool HasIdTooLong(const ParsedLine& l) {
  auto over = [](std::string_view s) { return s.size() > kMaxIdBytes; };
  if (over(l.message_id) || over(l.request_id) || over(l.session_id) || over(l.uuid) ||
      over(l.model) || over(l.cwd))
    return true;
  for (const ToolUse& t : l.tool_uses) {
    if (over(t.id) || over(t.name)) return true;
  }
  return false;
}
}  // namespace

void LineParser::Parse(std::string_view line, size_t readable, ParsedLine* out,
                       bool first_in_file) {
  ParseAnyLength(line, readable, out, first_in_file);
  if ((out->kind == LineKind::kUsage || out->kind == LineKind::kPrompt) && HasIdTooLong(*out)) {
    out->Reset();
    out->kind = LineKind::kSkipped;
    out->skip_reason = SkipReason::kIdTooLong;
  }
}

void LineParser::ParseAnyLength(std::string_view line, size_t readable, ParsedLine* out,
                                bool first_in_file) {
  out->Reset();
  kept_used_ = 0;
  if (first_in_file && StartsWithBom(line)) {
    line.remove_prefix(kUtf8Bom.size());
    readable -= kUtf8Bom.size();
  }
  std::string_view trimmed = TrimSpace(line);
  if (trimmed.empty()) {
    out->kind = LineKind::kSkipped;
    out->skip_reason = SkipReason::kEmpty;
    return;
  }
  if (line.size() <= fast_path_max_bytes_) {
    // Short lines are parsed outright: simdjson's structural scan is cheaper than a byte search.
    if (!ParseFast(line, readable, out)) ParseReference(line, out);
    return;
  }
  if (!MayHoldRecord(line)) {
    // A long line that cannot be a record (a big tool result): shape and UTF-8 check only.
    if (!ValidUtf8(line)) {
      out->kind = LineKind::kSkipped;
      out->skip_reason = SkipReason::kInvalidUtf8;
    } else if (StartsWithBom(line) || std::memchr(line.data(), 0, line.size()) != nullptr) {
      out->kind = LineKind::kSkipped;
      out->skip_reason = SkipReason::kInvalidJson;
    } else if (trimmed.front() == '{' && trimmed.back() == '}') {
      out->kind = LineKind::kOther;
    } else {
      out->kind = LineKind::kSkipped;
      out->skip_reason = trimmed.front() == '[' && trimmed.back() == ']' ? SkipReason::kNotObject
                                                                         : SkipReason::kInvalidJson;
    }
    return;
  }
  ParseReference(line, out);
}

bool LineParser::ParseFast(std::string_view line, size_t readable, ParsedLine* out) {
  out->Reset();
  kept_used_ = 0;
  if (fast_ == nullptr) return false;
  // simdjson would skip a byte order mark; only a file's first line may have one (Parse strips it).
  if (StartsWithBom(line)) return false;
  const char* data = line.data();
  size_t capacity = readable;
  if (readable < line.size() + kPadding) {
    padded_.assign(line.data(), line.size());
    padded_.resize(line.size() + kPadding, ' ');
    data = padded_.data();
    capacity = padded_.size();
  }
  Extract x(out, &nested_tool_uses_);
  if (!FastParse(fast_->parser.get(), data, line.size(), capacity, &x) || !x.Decidable()) {
    return false;
  }
  x.Finish(out);
  // Only the common outcomes are decided here; every rejection is re-examined by the reference.
  return out->kind != LineKind::kSkipped;
}

void LineParser::ParseReference(std::string_view line, ParsedLine* out) {
  out->Reset();
  kept_used_ = 0;
  if (!ValidUtf8(line)) {
    out->kind = LineKind::kSkipped;
    out->skip_reason = SkipReason::kInvalidUtf8;
    return;
  }
  // nlohmann_json skips a leading byte order mark and treats a NUL byte as the end of the input
  // (so {...}\0garbage would parse): neither is JSON text here (A6, A11).
  if (StartsWithBom(line) || std::memchr(line.data(), 0, line.size()) != nullptr) {
    out->kind = LineKind::kSkipped;
    out->skip_reason = SkipReason::kInvalidJson;
    return;
  }
  std::string_view input = line;
  if (line.find("\\u") != std::string_view::npos) {
    sanitized_.assign(line.data(), line.size());
    if (ReplaceLoneSurrogates(sanitized_)) input = sanitized_;
  }
  Extract x(out, &nested_tool_uses_);
  RefHandler handler(&x, this, [](LineParser* p, std::string_view s) { return p->Keep(s); });
  bool ok = nlohmann::json::sax_parse(input.begin(), input.end(), &handler,
                                      nlohmann::json::input_format_t::json, /*strict=*/true);
  if (!ok || handler.failed()) {
    out->Reset();
    out->kind = LineKind::kSkipped;
    out->skip_reason = SkipReason::kInvalidJson;
    return;
  }
  x.Finish(out);
}

}  // namespace ccmon
