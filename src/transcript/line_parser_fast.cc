// The simdjson On-Demand fast path of LineParser. This is the only translation unit that
// instantiates simdjson's inline parser; CMake compiles it for x86-64-v3 (AVX2) and LineParser
// calls it only when the CPU supports that (FastPathSupported()).
#include <simdjson.h>

#include "transcript/line_parser_internal.h"
#include "base/money.h"

namespace ccmon {
namespace line_parser_internal {
namespace {

using simdjson::SUCCESS;
namespace od = simdjson::ondemand;

#define FAST_TRY(expr)                   \
  do {                                   \
    if ((expr) != SUCCESS) return false; \
  } while (0)

bool FastString(od::value& v, std::string_view* out) { return v.get_string().get(*out) == SUCCESS; }

// A token count: a non-negative integer or null (0). Anything else is left to the reference path.
bool FastCount(od::value& v, uint64_t* out) {
  bool is_null = false;
  if (v.is_null().get(is_null) == SUCCESS && is_null) {
    *out = 0;
    return true;
  }
  return v.get_uint64().get(*out) == SUCCESS && *out <= kMaxTokenCount;
}

bool FastContent(od::array arr, ParsedLine* out) {
  for (auto elem : arr) {
    od::value v;
    FAST_TRY(elem.get(v));
    od::json_type t;
    FAST_TRY(v.type().get(t));
    if (t != od::json_type::object) continue;  // skipped by the iterator
    od::object block;
    FAST_TRY(v.get_object().get(block));
    std::string_view type, id, name;
    for (auto field : block) {
      std::string_view key;
      FAST_TRY(field.unescaped_key().get(key));
      od::value fv = field.value();
      if (key == "type") {
        if (!FastString(fv, &type)) return false;
      } else if (key == "id") {
        if (!FastString(fv, &id)) return false;
      } else if (key == "name") {
        if (!FastString(fv, &name)) return false;
      }
    }
    if (type == "tool_use" && !id.empty()) out->tool_uses.push_back({id, name});
  }
  return true;
}

bool FastUsage(od::object usage, Extract* x, ParsedLine* out) {
  for (auto field : usage) {
    std::string_view key;
    FAST_TRY(field.unescaped_key().get(key));
    od::value v = field.value();
    if (key == "input_tokens") {
      if (!FastCount(v, &x->input)) return false;
    } else if (key == "output_tokens") {
      if (!FastCount(v, &x->output)) return false;
    } else if (key == "cache_creation_input_tokens") {
      if (!FastCount(v, &x->cache_creation)) return false;
    } else if (key == "cache_read_input_tokens") {
      if (!FastCount(v, &x->cache_read)) return false;
    } else if (key == "cache_creation") {
      bool is_null = false;
      if (v.is_null().get(is_null) == SUCCESS && is_null) {
        x->has_split = false;
        continue;
      }
      od::object cc;
      FAST_TRY(v.get_object().get(cc));
      x->has_split = true;
      x->eph_5m = x->eph_1h = 0;
      for (auto f2 : cc) {
        std::string_view k2;
        FAST_TRY(f2.unescaped_key().get(k2));
        od::value v2 = f2.value();
        if (k2 == "ephemeral_5m_input_tokens") {
          if (!FastCount(v2, &x->eph_5m)) return false;
        } else if (k2 == "ephemeral_1h_input_tokens") {
          if (!FastCount(v2, &x->eph_1h)) return false;
        }
      }
    } else if (key == "server_tool_use") {
      od::json_type t;
      FAST_TRY(v.type().get(t));
      if (t != od::json_type::object) continue;
      od::object st;
      FAST_TRY(v.get_object().get(st));
      out->web_search_requests = 0;
      for (auto f2 : st) {
        std::string_view k2;
        FAST_TRY(f2.unescaped_key().get(k2));
        od::value v2 = f2.value();
        if (k2 == "web_search_requests") {
          if (!FastCount(v2, &out->web_search_requests)) return false;
        }
      }
    } else if (key == "speed") {
      od::json_type t;
      FAST_TRY(v.type().get(t));
      if (t != od::json_type::string) {
        out->fast = false;
        continue;
      }
      std::string_view speed;
      if (!FastString(v, &speed)) return false;
      out->fast = speed == "fast";
    }
  }
  return true;
}

bool FastMessage(od::object msg, Extract* x, ParsedLine* out) {
  for (auto field : msg) {
    std::string_view key;
    FAST_TRY(field.unescaped_key().get(key));
    od::value v = field.value();
    od::json_type t;
    if (key == "id" || key == "model") {
      FAST_TRY(v.type().get(t));
      std::string_view s;
      if (t == od::json_type::string) {
        if (!FastString(v, &s)) return false;
      }
      (key == "id" ? out->message_id : out->model) = s;
    } else if (key == "usage") {
      FAST_TRY(v.type().get(t));
      x->ResetUsage(out);
      if (t != od::json_type::object) continue;
      od::object usage;
      FAST_TRY(v.get_object().get(usage));
      x->usage_is_object = true;
      if (!FastUsage(usage, x, out)) return false;
    } else if (key == "content") {
      FAST_TRY(v.type().get(t));
      out->tool_uses.clear();
      if (t != od::json_type::array) continue;
      od::array arr;
      FAST_TRY(v.get_array().get(arr));
      if (!FastContent(arr, out)) return false;
    }
  }
  return true;
}

bool FastTop(od::object top, Extract* x, ParsedLine* out) {
  for (auto field : top) {
    std::string_view key;
    FAST_TRY(field.unescaped_key().get(key));
    od::value v = field.value();
    od::json_type t;
    if (key == "message") {
      FAST_TRY(v.type().get(t));
      x->ResetMessage(out);
      if (t != od::json_type::object) continue;
      od::object msg;
      FAST_TRY(v.get_object().get(msg));
      x->message_is_object = true;
      if (!FastMessage(msg, x, out)) return false;
    } else if (key == "type" || key == "requestId" || key == "sessionId" || key == "cwd" ||
               key == "timestamp") {
      FAST_TRY(v.type().get(t));
      std::string_view s;
      bool is_string = t == od::json_type::string;
      if (is_string && !FastString(v, &s)) return false;
      if (key == "type") {
        x->is_assistant = s == "assistant";
      } else if (key == "requestId") {
        out->request_id = s;
        out->has_request_id = is_string;
      } else if (key == "sessionId") {
        out->session_id = s;
      } else if (key == "cwd") {
        out->cwd = s;
      } else {
        x->timestamp = s;
      }
    } else if (key == "isSidechain" || key == "isApiErrorMessage") {
      FAST_TRY(v.type().get(t));
      bool b = false;
      if (t == od::json_type::boolean) FAST_TRY(v.get_bool().get(b));
      (key == "isSidechain" ? out->is_sidechain : out->is_api_error) = b;
    } else if (key == "costUSD") {
      FAST_TRY(v.type().get(t));
      if (t == od::json_type::null) {
        out->has_cost_usd = false;
        continue;
      }
      if (t != od::json_type::number) return false;
      if (!ParseUsdDecimal(TrimSpace(v.raw_json_token()), &out->cost_usd)) return false;
      out->has_cost_usd = true;
    }
  }
  return true;
}

}  // namespace

static_assert(simdjson::SIMDJSON_PADDING <= 64, "LineParser::kPadding must cover simdjson's padding");

struct FastParser {
  od::parser parser;
};

std::unique_ptr<FastParser, void (*)(FastParser*)> NewFastParser() {
  return {new FastParser, [](FastParser* p) { delete p; }};
}

bool FastPathSupported() {
#if defined(__x86_64__) && defined(__AVX2__)
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi2") &&
         __builtin_cpu_supports("pclmul");
#else
  return true;
#endif
}

bool FastParse(FastParser* p, const char* data, size_t len, size_t capacity, Extract* x,
               ParsedLine* out) {
  // The extent of the top-level value must be the whole line: no trailing content.
  od::document doc;
  if (p->parser.iterate(data, len, capacity).get(doc) != SUCCESS) return false;
  std::string_view raw;
  if (doc.raw_json().get(raw) != SUCCESS) return false;
  // (raw_json() may include the whitespace after the value: compare trimmed extents.)
  if (TrimSpace(raw).size() != TrimSpace(std::string_view(data, len)).size()) return false;
  doc.rewind();
  od::object top;
  if (doc.get_object().get(top) != SUCCESS) return false;
  x->top_is_object = true;
  return FastTop(top, x, out);
}

}  // namespace line_parser_internal
}  // namespace ccmon
