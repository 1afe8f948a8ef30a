#include "transcript/line_parser.h"

#include <simdjson.h>  // validate_utf8 only (runtime-dispatched, not inline)

#include <algorithm>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "transcript/line_parser_internal.h"
#include "base/timeutil.h"

namespace ccmon {
using namespace line_parser_internal;
namespace {

constexpr std::string_view kUsageNeedle = "\"usage\"";

// ---------------------------------------------------------------------------------------------
// Reference path: nlohmann SAX.

class RefHandler {
 public:
  using json = nlohmann::json;
  RefHandler(Extract* x, ParsedLine* out, LineParser* owner,
             std::string_view (*keep)(LineParser*, std::string_view))
      : x_(x), out_(out), owner_(owner), keep_(keep) {}

  bool failed() const { return failed_; }

  bool null() { return Scalar(Val::kNull, 0, 0, {}); }
  bool boolean(bool b) { return Scalar(Val::kBool, b, 0, {}); }
  bool number_integer(json::number_integer_t v) {
    return v >= 0 ? Scalar(Val::kUint, uint64_t(v), 0, {}) : Scalar(Val::kBadNumber, 0, 0, {});
  }
  bool number_unsigned(json::number_unsigned_t v) { return Scalar(Val::kUint, v, 0, {}); }
  bool number_float(json::number_float_t v, const json::string_t& s) {
    return Scalar(Val::kFloat, 0, v, s);
  }
  bool string(json::string_t& s) { return Scalar(Val::kString, 0, 0, s); }
  bool binary(json::binary_t&) { return Scalar(Val::kNull, 0, 0, {}); }
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

  bool saw_top() const { return saw_top_; }

 private:
  enum class Frame { kTop, kMessage, kUsage, kCacheCreation, kServerToolUse, kContent, kBlock, kSkip };
  enum class Val { kNull, kBool, kUint, kFloat, kString, kBadNumber, kContainer };
  struct Level {
    Frame frame;
    std::string key;
    std::string block_type, block_id, block_name;  // kBlock only
  };

  bool Open(bool is_object) {
    Frame next = Frame::kSkip;
    if (stack_.empty()) {
      saw_top_ = true;
      if (is_object) {
        x_->top_is_object = true;
        next = Frame::kTop;
      }
    } else {
      Level& p = stack_.back();
      const std::string& k = p.key;
      if (p.frame == Frame::kTop && k == "message") {
        x_->ResetMessage(out_);
        if (is_object) {
          x_->message_is_object = true;
          next = Frame::kMessage;
        }
      } else if (p.frame == Frame::kMessage && k == "usage") {
        x_->ResetUsage(out_);
        if (is_object) {
          x_->usage_is_object = true;
          next = Frame::kUsage;
        }
      } else if (p.frame == Frame::kMessage && k == "content") {
        out_->tool_uses.clear();
        if (!is_object) next = Frame::kContent;
      } else if (p.frame == Frame::kUsage && k == "cache_creation") {
        if (is_object) {
          x_->has_split = true;
          x_->eph_5m = x_->eph_1h = 0;
          next = Frame::kCacheCreation;
        } else {
          x_->has_split = false;
        }
      } else if (p.frame == Frame::kUsage && k == "server_tool_use") {
        if (is_object) {
          out_->web_search_requests = 0;
          next = Frame::kServerToolUse;
        }
      } else if (p.frame == Frame::kContent && is_object) {
        next = Frame::kBlock;
      }
      // Any other container where a field of ours is expected counts as a wrong-typed value
      // (e.g. a repeated "type":{} overrides an earlier "type":"assistant", as in the fast path).
      if (next == Frame::kSkip && p.frame != Frame::kContent && p.frame != Frame::kSkip) {
        Scalar(Val::kContainer, 0, 0, {});
      }
    }
    stack_.push_back({next, {}, {}, {}, {}});
    return true;
  }

  bool Close() {
    Level& l = stack_.back();
    if (l.frame == Frame::kBlock && l.block_type == "tool_use" && !l.block_id.empty()) {
      out_->tool_uses.push_back({keep_(owner_, l.block_id), keep_(owner_, l.block_name)});
    }
    stack_.pop_back();
    return true;
  }

  // A count: non-negative integer, integral float, or null (0). Anything else is a bad number.
  void Count(Val t, uint64_t u, double d, uint64_t* dst) {
    if (t == Val::kNull) {
      *dst = 0;
    } else if (t == Val::kUint && u <= kMaxTokenCount) {
      *dst = u;
    } else if (t == Val::kFloat && d >= 0 && d <= double(kMaxTokenCount) && std::floor(d) == d) {
      *dst = uint64_t(d);
    } else {
      x_->bad_number = true;
    }
  }

  bool Scalar(Val t, uint64_t u, double d, std::string_view s) {
    if (stack_.empty()) {
      saw_top_ = true;
      return true;
    }
    Level& l = stack_.back();
    const std::string& k = l.key;
    switch (l.frame) {
      case Frame::kTop:
        if (k == "type") {
          x_->is_assistant = t == Val::kString && s == "assistant";
        } else if (k == "message") {
          x_->ResetMessage(out_);
        } else if (k == "requestId") {
          out_->has_request_id = t == Val::kString;
          out_->request_id = t == Val::kString ? keep_(owner_, s) : std::string_view();
        } else if (k == "sessionId") {
          out_->session_id = t == Val::kString ? keep_(owner_, s) : std::string_view();
        } else if (k == "cwd") {
          out_->cwd = t == Val::kString ? keep_(owner_, s) : std::string_view();
        } else if (k == "timestamp") {
          x_->timestamp = t == Val::kString ? keep_(owner_, s) : std::string_view();
        } else if (k == "isSidechain") {
          out_->is_sidechain = t == Val::kBool && u;
        } else if (k == "isApiErrorMessage") {
          out_->is_api_error = t == Val::kBool && u;
        } else if (k == "costUSD") {
          out_->has_cost_usd = false;
          x_->bad_cost = false;  // the last costUSD member decides
          if (t == Val::kUint) {
            if (u <= 1000000) {
              out_->cost_usd = Pico(u) * kPicoPerUsd;
              out_->has_cost_usd = true;
            } else {
              x_->bad_cost = true;
            }
          } else if (t == Val::kFloat) {
            if (ParseUsdDecimal(s, &out_->cost_usd)) {
              out_->has_cost_usd = true;
            } else {
              x_->bad_cost = true;
            }
          } else if (t == Val::kBadNumber) {
            x_->bad_cost = true;
          }
        }
        break;
      case Frame::kMessage:
        if (k == "id") {
          out_->message_id = t == Val::kString ? keep_(owner_, s) : std::string_view();
        } else if (k == "model") {
          out_->model = t == Val::kString ? keep_(owner_, s) : std::string_view();
        } else if (k == "usage") {
          x_->ResetUsage(out_);
        } else if (k == "content") {
          out_->tool_uses.clear();
        }
        break;
      case Frame::kUsage:
        if (k == "input_tokens") {
          Count(t, u, d, &x_->input);
        } else if (k == "output_tokens") {
          Count(t, u, d, &x_->output);
        } else if (k == "cache_creation_input_tokens") {
          Count(t, u, d, &x_->cache_creation);
        } else if (k == "cache_read_input_tokens") {
          Count(t, u, d, &x_->cache_read);
        } else if (k == "cache_creation") {
          x_->has_split = false;
        } else if (k == "speed") {
          out_->fast = t == Val::kString && s == "fast";
        }
        break;
      case Frame::kCacheCreation:
        if (k == "ephemeral_5m_input_tokens") Count(t, u, d, &x_->eph_5m);
        if (k == "ephemeral_1h_input_tokens") Count(t, u, d, &x_->eph_1h);
        break;
      case Frame::kServerToolUse:
        if (k == "web_search_requests") Count(t, u, d, &out_->web_search_requests);
        break;
      case Frame::kBlock:
        if (t == Val::kString) {
          if (k == "type") l.block_type = s;
          if (k == "id") l.block_id = s;
          if (k == "name") l.block_name = s;
        } else {
          if (k == "type") l.block_type.clear();
          if (k == "id") l.block_id.clear();
          if (k == "name") l.block_name.clear();
        }
        break;
      default:
        break;
    }
    return true;
  }

  Extract* x_;
  ParsedLine* out_;
  LineParser* owner_;
  std::string_view (*keep_)(LineParser*, std::string_view);
  std::vector<Level> stack_;
  bool failed_ = false;
  bool saw_top_ = false;
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

}  // namespace

struct LineParser::FastState {
  std::unique_ptr<FastParser, void (*)(FastParser*)> parser = NewFastParser();
  bool supported = FastPathSupported();
};

bool MayHoldUsage(std::string_view line) {
  return ::memmem(line.data(), line.size(), kUsageNeedle.data(), kUsageNeedle.size()) != nullptr;
}

LineParser::LineParser(size_t fast_path_max_bytes)
    : fast_path_max_bytes_(fast_path_max_bytes), fast_(std::make_unique<FastState>()) {}

LineParser::~LineParser() = default;

std::string_view LineParser::Keep(std::string_view s) {
  if (kept_used_ == kept_.size()) kept_.push_back(std::make_unique<std::string>());
  std::string& dst = *kept_[kept_used_++];
  dst.assign(s.data(), s.size());
  return dst;
}

void LineParser::Parse(std::string_view line, size_t readable, ParsedLine* out) {
  out->Reset();
  kept_used_ = 0;
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
  if (!MayHoldUsage(line)) {
    // A long line without the bytes "usage" (a big tool result): shape and UTF-8 check only.
    if (!simdjson::validate_utf8(line.data(), line.size())) {
      out->kind = LineKind::kSkipped;
      out->skip_reason = SkipReason::kInvalidUtf8;
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
  if (!fast_->supported) return false;
  const char* data = line.data();
  size_t capacity = readable;
  if (readable < line.size() + kPadding) {
    padded_.assign(line.data(), line.size());
    padded_.resize(line.size() + kPadding, ' ');
    data = padded_.data();
    capacity = padded_.size();
  }
  Extract x;
  if (!FastParse(fast_->parser.get(), data, line.size(), capacity, &x, out)) return false;
  x.Finish(out);
  // Only the common outcomes are decided here; every rejection is re-examined by the reference.
  return out->kind != LineKind::kSkipped;
}

void LineParser::ParseReference(std::string_view line, ParsedLine* out) {
  out->Reset();
  kept_used_ = 0;
  if (!simdjson::validate_utf8(line.data(), line.size())) {
    out->kind = LineKind::kSkipped;
    out->skip_reason = SkipReason::kInvalidUtf8;
    return;
  }
  std::string_view input = line;
  if (line.find("\\u") != std::string_view::npos) {
    sanitized_.assign(line.data(), line.size());
    if (ReplaceLoneSurrogates(sanitized_)) input = sanitized_;
  }
  Extract x;
  RefHandler handler(&x, out, this, [](LineParser* p, std::string_view s) { return p->Keep(s); });
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
