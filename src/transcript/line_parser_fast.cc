// The simdjson On-Demand fast path of LineParser, and the CPU check that guards it.
//
// On x86-64 the fast path is AVX2 code on a binary built for the baseline ISA, and it must never
// run, nor leak into code that runs, on a CPU without AVX2 (docs/accounting.md A12). So this file
// is not compiled with -march: instead
//  * every standard and ccmon header comes first, outside any target region, so the inline
//    functions they define (std::vector, string_view, Extract's helpers, ...) keep the baseline
//    ISA in this object too, whichever copy the linker keeps;
//  * simdjson.h (with its haswell kernel as the "builtin" one On-Demand uses) and the fast-path
//    functions below are compiled inside an AVX2 target region;
//  * CMake compiles the file with -fvisibility=hidden, so that no simdjson inline function
//    compiled here is exported and preempts the shared library's own copy (which may run on any
//    CPU).
// LineParser constructs the FastParser and calls FastParse only when FastPathSupported().
// tests/tools/replay_old_cpu_test.py runs ccmon-replay under qemu-x86_64 -cpu Westmere to prove it.
#include <algorithm>
#include <atomic>
#include <cassert>
#include <cfloat>
#include <cinttypes>
#include <climits>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iomanip>
#include <iterator>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>
#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#include <x86intrin.h>
#endif

#include "base/env.h"
#include "base/money.h"
#include "transcript/line_parser_internal.h"

#if defined(__x86_64__)
#define CCMON_FAST_PATH_X86 1
// The haswell kernel is On-Demand's "builtin" implementation, compiled in the region below
// (simdjson's own check is for -march flags, which this file does not have).
#define SIMDJSON_BUILTIN_IMPLEMENTATION haswell
// simdjson forces inlining of its functions; a standard template defined outside the region (the
// std::pair an ondemand::field derives from) cannot inline an AVX2 function, so let the compiler
// choose: inside the region everything still inlines, and such a template merely calls.
#define simdjson_inline inline
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,bmi,bmi2,pclmul,lzcnt,popcnt"))), \
                             apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,bmi,bmi2,pclmul,lzcnt,popcnt")
#endif
#endif  // __x86_64__

#include <simdjson.h>

namespace ccmon {
namespace line_parser_internal {
namespace {

using simdjson::SUCCESS;
namespace od = simdjson::ondemand;

// simdjson_inline is plain `inline` here (see above): flatten the walkers, so that simdjson's
// iterator steps are inlined into them as its forced inlining would.
#define FAST_WALKER __attribute__((flatten))

// `s == lit` with the length known at compile time, compared 8 bytes at a time in registers
// instead of a memcmp call (keys are compared on every member of every line).
template <typename T>
inline bool SameBytes(const char* a, const char* b) {
  T x, y;
  std::memcpy(&x, a, sizeof(T));
  std::memcpy(&y, b, sizeof(T));
  return x == y;
}

template <size_t N>
inline bool Is(std::string_view s, const char (&lit)[N]) {
  constexpr size_t n = N - 1;
  if (s.size() != n) return false;
  const char* p = s.data();
  if constexpr (n >= 8) {  // 8-byte words, the last one overlapping the one before
    for (size_t i = 0; i + 8 < n; i += 8) {
      if (!SameBytes<uint64_t>(p + i, lit + i)) return false;
    }
    return SameBytes<uint64_t>(p + n - 8, lit + n - 8);
  } else if constexpr (n >= 4) {
    return SameBytes<uint32_t>(p, lit) && SameBytes<uint32_t>(p + n - 4, lit + n - 4);
  } else if constexpr (n >= 2) {
    return SameBytes<uint16_t>(p, lit) && SameBytes<uint16_t>(p + n - 2, lit + n - 2);
  } else {
    return n == 0 || p[0] == lit[0];
  }
}

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

// The first TextPrefix::kBytes bytes of a JSON string, decoded from its raw token (which starts
// at the opening quote) without unescaping the rest: user prompts and, above all, assistant text
// blocks can be long. A \u escape is left to the reference path (undecided), unless the bytes
// before it already tell that the text is not plumbing (A38: that is all the prefix is for).
TextPrefix RawTextPrefix(std::string_view raw) {
  TextPrefix t;
  t.empty = false;
  size_t i = 1;
  while (t.size < TextPrefix::kBytes) {
    if (i >= raw.size()) {
      t.undecided = true;
      return t;
    }
    char c = raw[i];
    if (c == '"') {
      t.empty = t.size == 0;
      return t;
    }
    if (c == '\\') {
      if (i + 1 >= raw.size()) {
        t.undecided = true;
        return t;
      }
      switch (raw[i + 1]) {
        case '"':
          c = '"';
          break;
        case '\\':
          c = '\\';
          break;
        case '/':
          c = '/';
          break;
        case 'b':
          c = '\b';
          break;
        case 'f':
          c = '\f';
          break;
        case 'n':
          c = '\n';
          break;
        case 'r':
          c = '\r';
          break;
        case 't':
          c = '\t';
          break;
        default:
          t.undecided = t.size == 0 || MayBePromptPlumbing(t.view());
          return t;
      }
      i += 2;
    } else {
      ++i;
    }
    t.bytes[t.size++] = c;
  }
  return t;
}

bool FastRawText(od::value& v, TextPrefix* out) {
  std::string_view raw = v.raw_json_token();
  if (raw.empty() || raw.front() != '"') return false;
  *out = RawTextPrefix(raw);
  return true;
}

FAST_WALKER bool FastContent(od::array arr, RecordExtract* rec) {
  for (auto elem : arr) {
    od::value v;
    FAST_TRY(elem.get(v));
    od::json_type t;
    FAST_TRY(v.type().get(t));
    if (t != od::json_type::object) continue;  // skipped by the iterator
    od::object block;
    FAST_TRY(v.get_object().get(block));
    std::string_view type, id, name;
    TextPrefix text;
    for (auto field : block) {
      std::string_view key;
      FAST_TRY(field.unescaped_key().get(key));
      od::value fv = field.value();
      if (Is(key, "type")) {
        if (!FastString(fv, &type)) return false;
      } else if (Is(key, "id")) {
        if (!FastString(fv, &id)) return false;
      } else if (Is(key, "name")) {
        if (!FastString(fv, &name)) return false;
      } else if (Is(key, "text")) {
        FAST_TRY(fv.type().get(t));
        if (t == od::json_type::string) {
          if (!FastRawText(fv, &text)) return false;
        } else {
          text = TextPrefix();
        }
      }
    }
    if (Is(type, "tool_use") && !id.empty()) {
      rec->tool_uses->push_back({id, name});
    } else if (Is(type, "tool_result")) {
      rec->content_has_tool_result = true;
    } else if (Is(type, "text") && !rec->content_is_text) {
      rec->content_is_text = true;  // the first text block holds the prompt's text
      rec->text = text;
    }
  }
  return true;
}

FAST_WALKER bool FastUsage(od::object usage, RecordExtract* rec) {
  for (auto field : usage) {
    std::string_view key;
    FAST_TRY(field.unescaped_key().get(key));
    od::value v = field.value();
    if (Is(key, "input_tokens")) {
      if (!FastCount(v, &rec->input)) return false;
    } else if (Is(key, "output_tokens")) {
      if (!FastCount(v, &rec->output)) return false;
    } else if (Is(key, "cache_creation_input_tokens")) {
      if (!FastCount(v, &rec->cache_creation)) return false;
    } else if (Is(key, "cache_read_input_tokens")) {
      if (!FastCount(v, &rec->cache_read)) return false;
    } else if (Is(key, "cache_creation")) {
      bool is_null = false;
      if (v.is_null().get(is_null) == SUCCESS && is_null) {
        rec->has_split = false;
        continue;
      }
      od::object cc;
      FAST_TRY(v.get_object().get(cc));
      rec->has_split = true;
      rec->eph_5m = rec->eph_1h = 0;
      for (auto f2 : cc) {
        std::string_view k2;
        FAST_TRY(f2.unescaped_key().get(k2));
        od::value v2 = f2.value();
        if (Is(k2, "ephemeral_5m_input_tokens")) {
          if (!FastCount(v2, &rec->eph_5m)) return false;
        } else if (Is(k2, "ephemeral_1h_input_tokens")) {
          if (!FastCount(v2, &rec->eph_1h)) return false;
        }
      }
    } else if (Is(key, "server_tool_use")) {
      od::json_type t;
      FAST_TRY(v.type().get(t));
      if (t != od::json_type::object) continue;
      od::object st;
      FAST_TRY(v.get_object().get(st));
      rec->web_search_requests = 0;
      for (auto f2 : st) {
        std::string_view k2;
        FAST_TRY(f2.unescaped_key().get(k2));
        od::value v2 = f2.value();
        if (Is(k2, "web_search_requests")) {
          if (!FastCount(v2, &rec->web_search_requests)) return false;
        }
      }
    } else if (Is(key, "speed") || Is(key, "inference_geo")) {
      od::json_type t;
      FAST_TRY(v.type().get(t));
      std::string_view s;
      if (t == od::json_type::string && !FastString(v, &s)) return false;
      if (Is(key, "speed")) {
        rec->fast = Is(s, "fast");
      } else {
        rec->us_inference = Is(s, "us");
      }
    }
  }
  return true;
}

FAST_WALKER bool FastMessage(od::object msg, RecordExtract* rec) {
  for (auto field : msg) {
    std::string_view key;
    FAST_TRY(field.unescaped_key().get(key));
    od::value v = field.value();
    od::json_type t;
    if (Is(key, "id") || Is(key, "model")) {
      FAST_TRY(v.type().get(t));
      std::string_view s;
      if (t == od::json_type::string) {
        if (!FastString(v, &s)) return false;
      }
      (Is(key, "id") ? rec->message_id : rec->model) = s;
    } else if (Is(key, "usage")) {
      FAST_TRY(v.type().get(t));
      rec->ResetUsage();
      if (t != od::json_type::object) continue;
      od::object usage;
      FAST_TRY(v.get_object().get(usage));
      rec->usage_is_object = true;
      if (!FastUsage(usage, rec)) return false;
    } else if (Is(key, "content")) {
      FAST_TRY(v.type().get(t));
      rec->ResetContent();
      if (t == od::json_type::string) {
        rec->content_is_text = true;
        if (!FastRawText(v, &rec->text)) return false;
      } else if (t == od::json_type::array) {
        od::array arr;
        FAST_TRY(v.get_array().get(arr));
        if (!FastContent(arr, rec)) return false;
      }
    }
  }
  return true;
}

LineType TypeOf(std::string_view s) {
  if (Is(s, "assistant")) return LineType::kAssistant;
  if (Is(s, "user")) return LineType::kUser;
  if (Is(s, "progress")) return LineType::kProgress;
  return LineType::kOther;
}

bool FastRecord(od::object obj, RecordExtract* rec, Extract* x, bool top);

// data of a progress line: its kind and the subagent record it nests (docs/accounting.md A7).
FAST_WALKER bool FastData(od::object data, Extract* x) {
  for (auto field : data) {
    std::string_view key;
    FAST_TRY(field.unescaped_key().get(key));
    od::value v = field.value();
    od::json_type t;
    if (Is(key, "type")) {
      FAST_TRY(v.type().get(t));
      std::string_view s;
      if (t == od::json_type::string && !FastString(v, &s)) return false;
      x->agent_progress = Is(s, "agent_progress");
    } else if (Is(key, "message")) {
      FAST_TRY(v.type().get(t));
      x->nested.ResetAll();
      if (t != od::json_type::object) continue;
      od::object nested;
      FAST_TRY(v.get_object().get(nested));
      if (!FastRecord(nested, &x->nested, x, /*top=*/false)) return false;
    }
  }
  return true;
}

// The members of a record: the line itself (`top`), or the copy at data.message of an
// agent_progress line, which has no envelope of its own that counts.
FAST_WALKER bool FastRecord(od::object obj, RecordExtract* rec, Extract* x, bool top) {
  for (auto field : obj) {
    std::string_view key;
    FAST_TRY(field.unescaped_key().get(key));
    od::value v = field.value();
    od::json_type t;
    if (Is(key, "message")) {
      FAST_TRY(v.type().get(t));
      rec->ResetMessage();
      if (t != od::json_type::object) continue;
      od::object msg;
      FAST_TRY(v.get_object().get(msg));
      rec->message_is_object = true;
      if (!FastMessage(msg, rec)) return false;
    } else if (Is(key, "type") || Is(key, "requestId") || Is(key, "timestamp") ||
               (top && (Is(key, "sessionId") || Is(key, "cwd")))) {
      FAST_TRY(v.type().get(t));
      std::string_view s;
      bool is_string = t == od::json_type::string;
      if (is_string && !FastString(v, &s)) return false;
      if (Is(key, "type")) {
        if (top) {
          x->type = TypeOf(s);
        } else {
          rec->is_assistant = Is(s, "assistant");
        }
      } else if (Is(key, "requestId")) {
        rec->request_id = s;
        rec->has_request_id = is_string;
      } else if (Is(key, "timestamp")) {
        rec->timestamp = s;
      } else if (Is(key, "sessionId")) {
        x->session_id = s;
      } else {
        x->cwd = s;
      }
    } else if (Is(key, "isApiErrorMessage") ||
               (top &&
                (Is(key, "isSidechain") || Is(key, "isMeta") || Is(key, "isCompactSummary")))) {
      FAST_TRY(v.type().get(t));
      bool b = false;
      if (t == od::json_type::boolean) FAST_TRY(v.get_bool().get(b));
      if (Is(key, "isApiErrorMessage")) {
        rec->is_api_error = b;
      } else if (Is(key, "isSidechain")) {
        x->is_sidechain = b;
      } else if (Is(key, "isMeta")) {
        x->is_meta = b;
      } else {
        x->is_compact_summary = b;
      }
    } else if (Is(key, "costUSD")) {
      FAST_TRY(v.type().get(t));
      if (t == od::json_type::null) {
        rec->has_cost_usd = false;
        continue;
      }
      if (t != od::json_type::number) return false;
      if (!ParseUsdDecimal(TrimSpace(v.raw_json_token()), &rec->cost_usd)) return false;
      rec->has_cost_usd = true;
    } else if (top && Is(key, "uuid")) {
      // Kept raw: only prompts need it, and a uuid never holds an escape.
      FAST_TRY(v.type().get(t));
      x->uuid = {};
      x->uuid_undecided = false;
      if (t != od::json_type::string) continue;
      std::string_view raw = v.raw_json_token();
      size_t end = raw.find('"', 1);
      if (end == std::string_view::npos) return false;
      x->uuid = raw.substr(1, end - 1);
      x->uuid_undecided = x->uuid.find('\\') != std::string_view::npos;
    } else if (top && Is(key, "data")) {
      FAST_TRY(v.type().get(t));
      x->ResetData();
      if (t != od::json_type::object) continue;
      od::object data;
      FAST_TRY(v.get_object().get(data));
      if (!FastData(data, x)) return false;
    }
  }
  return true;
}

}  // namespace

static_assert(simdjson::SIMDJSON_PADDING <= 64,
              "LineParser::kPadding must cover simdjson's padding");

struct FastParser {
  // Written out: implicitly defined members would not get the region's target attribute.
  FastParser() {}
  ~FastParser() {}
  od::parser parser;
};

std::unique_ptr<FastParser, void (*)(FastParser*)> NewFastParser() {
  return {new FastParser, [](FastParser* p) { delete p; }};
}

FAST_WALKER bool FastParse(FastParser* p, const char* data, size_t len, size_t capacity,
                           Extract* x) {
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
  return FastRecord(top, &x->top, x, /*top=*/true);
}

}  // namespace line_parser_internal
}  // namespace ccmon

#if defined(CCMON_FAST_PATH_X86)
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif

// Baseline ISA from here on: these run on every CPU.
namespace ccmon {
namespace line_parser_internal {

bool CpuHasFastPath() {
#if defined(CCMON_FAST_PATH_X86)
  // What the region above was compiled for, and an OS that saves the AVX registers.
  unsigned eax, ebx, ecx, edx;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return false;
  const bool pclmul = ecx & (1u << 1), popcnt = ecx & (1u << 23), osxsave = ecx & (1u << 27),
             avx = ecx & (1u << 28);
  if (!pclmul || !popcnt || !osxsave || !avx) return false;
  unsigned xcr0_lo, xcr0_hi;
  __asm__("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
  if ((xcr0_lo & 6u) != 6u) return false;  // XMM and YMM state
  if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
  const bool bmi1 = ebx & (1u << 3), avx2 = ebx & (1u << 5), bmi2 = ebx & (1u << 8);
  if (!bmi1 || !avx2 || !bmi2) return false;
  if (!__get_cpuid(0x80000001, &eax, &ebx, &ecx, &edx)) return false;
  return ecx & (1u << 5);  // LZCNT (ABM)
#else
  return true;  // other architectures: simdjson's builtin kernel is the compiler's own target
#endif
}

bool FastPathSupported() {
  static const bool supported = [] {
    if (!CpuHasFastPath()) return false;
    std::optional<std::string> v = Env::Default()->GetEnvVar("CCMON_FAST_PATH");
    return !(v && (*v == "off" || *v == "0"));
  }();
  return supported;
}

bool ValidUtf8(std::string_view s) { return simdjson::validate_utf8(s.data(), s.size()); }

}  // namespace line_parser_internal
}  // namespace ccmon
