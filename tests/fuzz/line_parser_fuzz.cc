// libFuzzer target for the transcript line parser (src/core/line_parser.h) and its neighbours.
//
// For every input it checks:
//  (a) LineParser::Parse never crashes, hangs or trips ASan/UBSan: on the whole input as one line
//      (both the copying path and the zero-copy path with arbitrary bytes in the padding), and on
//      each line that LineReader yields when the input is read as a file from an in-memory
//      SequentialFile (large chunks, and tiny chunks with short reads and a small line cap).
//      LineReader must yield exactly the '\n'-separated lines of the input (kTooLong for lines
//      over the cap) and account for every byte (consumed_offset + pending_bytes == size).
//  (b) differential: ParseFast against ParseReference (the authoritative path).
//        - reference kUsage or kPrompt => fast undecided, or fast the same kind with identical
//                               fields (agent_progress copies and prompts included);
//        - both decide       => same kind, unless the reference says kSkipped/kInvalidJson
//                               (documented: the fast path does not validate skipped values);
//        - for JSON the reference accepts, ParseFast's answer does not depend on whether the
//          line was copied or read in place (nor on the padding bytes).
//      Parse (every route, including the long-line pre-filter reached through a parser with a
//      small fast-path limit) never loses or alters a usage record the reference finds.
//  (c) kUsage and kPrompt lines go into Ledgers: in file order, in reverse order, and as two halves
//      merged.
//      Ledger rules are documented as commutative, so the three ledgers must be identical.
//  (d) the id encoding of dedup keys (core/id_codec.h): the input's two halves, encoded one after
//      the other, decode back to the same two byte strings; decoding arbitrary bytes never crashes.
// Any violated property calls abort() after printing what differed.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "base/env.h"
#include "base/status.h"
#include "ledger/id_codec.h"
#include "ledger/ledger.h"
#include "transcript/line_parser.h"
#include "transcript/line_reader.h"
#include "transcript/usage.h"

namespace ccmon {
namespace {

// ---------------------------------------------------------------------------------------------
// In-memory file with a configurable maximum read size (to exercise short reads).

class MemoryFile : public SequentialFile {
 public:
  MemoryFile(std::string_view data, size_t max_read) : data_(data), max_read_(max_read) {}
  Status Read(char* buf, size_t n, size_t* got) override {
    size_t k = std::min({n, data_.size() - pos_, max_read_});
    if (k > 0) std::memcpy(buf, data_.data() + pos_, k);
    pos_ += k;
    *got = k;
    return Status::Ok();
  }

 private:
  std::string_view data_;
  size_t max_read_;
  size_t pos_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Owned copy of a ParsedLine (the parser's views die at its next call).

struct OwnedLine {
  LineKind kind = LineKind::kOther;
  SkipReason skip_reason = SkipReason::kInvalidJson;
  std::string message_id, request_id, model, session_id, cwd;
  bool has_request_id = false;
  int64_t timestamp_ms = 0;
  bool is_sidechain = false, is_api_error = false, fast = false, has_cost_usd = false;
  bool us_inference = false, progress_copy = false;
  Pico cost_usd = 0;
  uint64_t web_search_requests = 0;
  TokenCounts tokens;
  std::vector<std::pair<std::string, std::string>> tool_uses;
  std::string uuid;

  explicit OwnedLine(const ParsedLine& p)
      : kind(p.kind),
        skip_reason(p.skip_reason),
        message_id(p.message_id),
        request_id(p.request_id),
        model(p.model),
        session_id(p.session_id),
        cwd(p.cwd),
        has_request_id(p.has_request_id),
        timestamp_ms(p.timestamp_ms),
        is_sidechain(p.is_sidechain),
        is_api_error(p.is_api_error),
        fast(p.fast),
        has_cost_usd(p.has_cost_usd),
        us_inference(p.us_inference),
        progress_copy(p.progress_copy),
        cost_usd(p.cost_usd),
        web_search_requests(p.web_search_requests),
        tokens(p.tokens),
        uuid(p.uuid) {
    for (const ToolUse& t : p.tool_uses) tool_uses.emplace_back(t.id, t.name);
  }

  // A ParsedLine viewing this object (valid while it lives).
  ParsedLine View() const {
    ParsedLine p;
    p.kind = kind;
    p.skip_reason = skip_reason;
    p.message_id = message_id;
    p.request_id = request_id;
    p.has_request_id = has_request_id;
    p.model = model;
    p.session_id = session_id;
    p.cwd = cwd;
    p.timestamp_ms = timestamp_ms;
    p.is_sidechain = is_sidechain;
    p.is_api_error = is_api_error;
    p.fast = fast;
    p.us_inference = us_inference;
    p.progress_copy = progress_copy;
    p.uuid = uuid;
    p.has_cost_usd = has_cost_usd;
    p.cost_usd = cost_usd;
    p.web_search_requests = web_search_requests;
    p.tokens = tokens;
    for (const auto& [id, name] : tool_uses) p.tool_uses.push_back({id, name});
    return p;
  }
};

const char* KindName(LineKind k) {
  switch (k) {
    case LineKind::kOther:
      return "kOther";
    case LineKind::kUsage:
      return "kUsage";
    case LineKind::kSkipped:
      return "kSkipped";
    case LineKind::kPrompt:
      return "kPrompt";
  }
  return "?";
}

void PrintEscaped(std::string_view s) {
  std::fputc('"', stderr);
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      std::fprintf(stderr, "\\%c", c);
    } else if (c >= 0x20 && c < 0x7f) {
      std::fputc(c, stderr);
    } else {
      std::fprintf(stderr, "\\x%02x", c);
    }
  }
  std::fputc('"', stderr);
}

void Dump(const char* label, const OwnedLine& l) {
  std::fprintf(stderr, "  %s: kind=%s", label, KindName(l.kind));
  if (l.kind == LineKind::kSkipped) {
    std::fprintf(stderr, " reason=%.*s\n", int(SkipReasonName(l.skip_reason).size()),
                 SkipReasonName(l.skip_reason).data());
    return;
  }
  std::fprintf(stderr, "\n    message_id=");
  PrintEscaped(l.message_id);
  std::fprintf(stderr, " request_id=");
  PrintEscaped(l.request_id);
  std::fprintf(stderr, " has_request_id=%d model=", l.has_request_id);
  PrintEscaped(l.model);
  std::fprintf(stderr, "\n    session_id=");
  PrintEscaped(l.session_id);
  std::fprintf(stderr, " cwd=");
  PrintEscaped(l.cwd);
  std::fprintf(stderr, " timestamp_ms=%lld uuid=", static_cast<long long>(l.timestamp_ms));
  PrintEscaped(l.uuid);
  std::fprintf(stderr, "\n    us=%d progress_copy=%d\n", l.us_inference, l.progress_copy);
  std::fprintf(
      stderr,
      "    sidechain=%d api_error=%d fast=%d has_cost_usd=%d cost_usd=%lld web_search=%llu\n",
      l.is_sidechain, l.is_api_error, l.fast, l.has_cost_usd, static_cast<long long>(l.cost_usd),
      static_cast<unsigned long long>(l.web_search_requests));
  std::fprintf(stderr, "    tokens in=%llu out=%llu cw5m=%llu cw1h=%llu cr=%llu tool_uses=%zu\n",
               static_cast<unsigned long long>(l.tokens.input),
               static_cast<unsigned long long>(l.tokens.output),
               static_cast<unsigned long long>(l.tokens.cache_write_5m),
               static_cast<unsigned long long>(l.tokens.cache_write_1h),
               static_cast<unsigned long long>(l.tokens.cache_read), l.tool_uses.size());
  for (const auto& [id, name] : l.tool_uses) {
    std::fprintf(stderr, "      tool_use id=");
    PrintEscaped(id);
    std::fprintf(stderr, " name=");
    PrintEscaped(name);
    std::fputc('\n', stderr);
  }
}

[[noreturn]] void Fail(const char* what, std::string_view line, const OwnedLine* a,
                       const char* a_label, const OwnedLine* b, const char* b_label) {
  std::fprintf(stderr, "\n*** line_parser_fuzz: %s\n  line (%zu bytes): ", what, line.size());
  PrintEscaped(line.substr(0, 4096));
  std::fputc('\n', stderr);
  if (a != nullptr) Dump(a_label, *a);
  if (b != nullptr) Dump(b_label, *b);
  std::fflush(stderr);
  std::abort();
}

// The fields the contract requires to be identical between the two paths for a kUsage line.
bool SameUsageFields(const OwnedLine& a, const OwnedLine& b) {
  return a.kind == b.kind && a.message_id == b.message_id && a.request_id == b.request_id &&
         a.has_request_id == b.has_request_id && a.model == b.model &&
         a.session_id == b.session_id && a.cwd == b.cwd && a.timestamp_ms == b.timestamp_ms &&
         a.is_sidechain == b.is_sidechain && a.is_api_error == b.is_api_error && a.fast == b.fast &&
         a.has_cost_usd == b.has_cost_usd && (!a.has_cost_usd || a.cost_usd == b.cost_usd) &&
         a.web_search_requests == b.web_search_requests && a.tokens == b.tokens &&
         a.tool_uses == b.tool_uses && a.us_inference == b.us_inference &&
         a.progress_copy == b.progress_copy;
}

// The fields of a kPrompt line (docs/accounting.md A38).
bool SamePromptFields(const OwnedLine& a, const OwnedLine& b) {
  return a.kind == b.kind && a.uuid == b.uuid && a.timestamp_ms == b.timestamp_ms &&
         a.session_id == b.session_id && a.cwd == b.cwd && a.is_sidechain == b.is_sidechain;
}

// The fields the contract requires for a line of kind kUsage or kPrompt.
bool SameRecord(const OwnedLine& a, const OwnedLine& b) {
  if (a.kind != b.kind) return false;
  return a.kind == LineKind::kPrompt ? SamePromptFields(a, b) : SameUsageFields(a, b);
}

// Everything a decided result carries (for the copy vs zero-copy comparison of one path).
bool SameResult(const OwnedLine& a, const OwnedLine& b) {
  if (a.kind != b.kind) return false;
  if (a.kind == LineKind::kSkipped) return a.skip_reason == b.skip_reason;
  if (a.kind == LineKind::kOther) return true;
  return SameRecord(a, b);
}

// ---------------------------------------------------------------------------------------------

struct Parsers {
  LineParser parse;         // Parse() on LineReader lines
  LineParser whole;         // Parse() on the whole input
  LineParser fast;          // ParseFast, copying
  LineParser fast_inplace;  // ParseFast, zero-copy
  LineParser ref;           // ParseReference
  // A tiny fast-path limit, so that the long-line path (pre-filter, then reference) is reached
  // with short inputs.
  static constexpr size_t kSmallFastPathMaxBytes = 128;
  LineParser small{kSmallFastPathMaxBytes};
};

Parsers& P() {
  static Parsers* p = new Parsers();  // never destroyed: no static destruction order issues
  return *p;
}

// A copy of `line` followed by LineParser::kPadding bytes of junk, so that the zero-copy path is
// taken. The junk is derived from the input (LineReader's padding holds whatever follows).
std::string& PaddedCopy(std::string_view line, uint8_t salt) {
  static std::string* buf = new std::string();
  buf->assign(line.data(), line.size());
  static const char kJunk[] = "\"{}[]:,\\ \n\t0e-.u\"\0tnfa";
  for (size_t i = 0; i < LineParser::kPadding; ++i) {
    char c = line.empty() ? 'x' : line[(i * 7 + salt) % line.size()];
    if ((i + salt) % 3 == 0) c = kJunk[(i + salt) % (sizeof(kJunk) - 1)];
    buf->push_back(c);
  }
  return *buf;
}

// (b): the differential check of the two parser paths on one line.
void Differential(std::string_view line, uint8_t salt) {
  Parsers& p = P();
  ParsedLine out;

  p.ref.ParseReference(line, &out);
  OwnedLine ref(out);

  bool fast_decided = p.fast.ParseFast(line, line.size(), &out);
  OwnedLine fast(out);

  std::string& padded = PaddedCopy(line, salt);
  bool inplace_decided =
      p.fast_inplace.ParseFast(std::string_view(padded.data(), line.size()), padded.size(), &out);
  OwnedLine inplace(out);

  // On malformed JSON simdjson 3.0 may peek at the byte just past the line (its end-of-input
  // sentinel points there): e.g. {"a": "x":2} is "decided" (kOther) when that byte is '}'. This is
  // harmless (LineReader's lines are followed by '\n', copies by ' ') and within the documented
  // leniency, so copy vs in-place is compared only when the reference accepts the JSON.
  bool ref_invalid_json =
      ref.kind == LineKind::kSkipped && ref.skip_reason == SkipReason::kInvalidJson;
  if (!ref_invalid_json &&
      (fast_decided != inplace_decided || (fast_decided && !SameResult(fast, inplace)))) {
    std::fprintf(stderr, "fast (copy) decided=%d, fast (in place) decided=%d\n", fast_decided,
                 inplace_decided);
    Fail("ParseFast depends on copy vs in-place / padding bytes", line, &fast, "fast(copy)",
         &inplace, "fast(in place)");
  }
  if (!fast_decided) return;
  if (fast.kind == LineKind::kSkipped) {
    Fail("ParseFast returned true for a kSkipped line", line, &fast, "fast", &ref, "reference");
  }
  if (ref.kind == LineKind::kUsage || ref.kind == LineKind::kPrompt) {
    if (!SameRecord(ref, fast)) {
      Fail("reference found a record, fast decided differently", line, &ref, "reference", &fast,
           "fast");
    }
    return;
  }
  if (ref_invalid_json) return;  // documented: the fast path does not validate skipped values
  if (ref.kind != fast.kind) {
    Fail("both paths decided, kinds differ", line, &ref, "reference", &fast, "fast");
  }
}

// Parse() (any route: fast path, reference, or the long-line pre-filter) against the reference.
// A usage record must never be lost or altered, and Parse may only find one where the reference
// does or where the reference rejects the JSON (documented fast-path leniency). Skip reasons of
// the long-line pre-filter are shape-only (documented) and are not compared, except invalid UTF-8.
// `prefiltered`: Parse took the long-line route and the line lacks the bytes "usage", so it was
// not parsed at all (docs/accounting.md A13: a key spelled with \u escapes is not recognised
// there); then only "no usage record" and the UTF-8 verdict are checked.
void CheckParse(const char* route, std::string_view line, const OwnedLine& got,
                const OwnedLine& ref, bool prefiltered = false) {
  bool whitespace_only = true;
  for (char c : line) whitespace_only &= c == ' ' || c == '\t' || c == '\r' || c == '\n';
  if (whitespace_only) {
    if (got.kind != LineKind::kSkipped || got.skip_reason != SkipReason::kEmpty) {
      Fail(route, line, &got, "Parse (blank line, expected kEmpty)", &ref, "reference");
    }
    return;
  }
  bool ok = true;
  if (prefiltered) {
    ok = got.kind != LineKind::kUsage && got.kind != LineKind::kPrompt &&
         (ref.kind != LineKind::kSkipped || ref.skip_reason != SkipReason::kInvalidUtf8 ||
          (got.kind == LineKind::kSkipped && got.skip_reason == SkipReason::kInvalidUtf8));
  } else if (ref.kind == LineKind::kUsage || ref.kind == LineKind::kPrompt) {
    ok = SameRecord(ref, got);
  } else if (got.kind == LineKind::kUsage || got.kind == LineKind::kPrompt) {
    ok = ref.kind == LineKind::kSkipped && ref.skip_reason == SkipReason::kInvalidJson;
  } else if (ref.kind == LineKind::kSkipped && ref.skip_reason == SkipReason::kInvalidUtf8) {
    ok = got.kind == LineKind::kSkipped && got.skip_reason == SkipReason::kInvalidUtf8;
  }
  if (!ok) Fail(route, line, &ref, "reference", &got, "Parse");
}

// ---------------------------------------------------------------------------------------------
// (c): ledgers in different orders must agree.

struct LedgerSnapshot {
  using Request = std::tuple<int64_t, std::string, std::string, std::string, uint64_t, uint64_t,
                             uint64_t, uint64_t, uint64_t, uint64_t, bool, Pico, bool, bool, bool>;
  std::map<std::string, Request> requests;
  std::map<std::string, std::pair<int64_t, std::string>> sessions;
  std::map<std::string, std::pair<int64_t, std::string>> tool_uses;
  std::map<std::string, int64_t> api_errors;
  std::map<std::string, std::tuple<int64_t, std::string, std::string>> prompts;
  bool operator==(const LedgerSnapshot&) const = default;
};

LedgerSnapshot Snapshot(const Ledger& l) {
  LedgerSnapshot s;
  const StringPool& st = l.strings();
  for (size_t i = 0; i < l.requests().size(); ++i) {
    const RequestEntry& e = l.requests()[i];
    s.requests[std::string(l.request_key(uint32_t(i)))] = LedgerSnapshot::Request(
        e.timestamp_ms, st.Get(e.model), st.Get(e.cwd), st.Get(e.session), e.tokens.input,
        e.tokens.output, e.tokens.cache_write_5m, e.tokens.cache_write_1h, e.tokens.cache_read,
        e.web_search_requests, e.has_cost_usd, e.has_cost_usd ? e.cost_usd : 0, e.fast, e.sidechain,
        e.us_inference);
  }
  for (const auto& [session, se] : l.sessions()) {
    s.sessions[st.Get(session)] = {se.first_ms, st.Get(se.cwd)};
  }
  for (const auto& [id, t] : l.tool_uses())
    s.tool_uses[std::string(id)] = {t.timestamp_ms, st.Get(t.name)};
  for (const auto& [key, ts] : l.api_errors()) s.api_errors[key] = ts;
  for (const auto& [uuid, p] : l.prompts()) {
    s.prompts[uuid] = {p.timestamp_ms, st.Get(p.session), st.Get(p.cwd)};
  }
  return s;
}

void CheckLedgers(const std::vector<OwnedLine>& usage) {
  if (usage.empty()) return;
  std::vector<ParsedLine> views;
  views.reserve(usage.size());
  for (const OwnedLine& u : usage) views.push_back(u.View());

  // Usage records go through Add, prompts through AddPrompt.
  auto add = [](Ledger* l, const ParsedLine& v) {
    if (v.kind == LineKind::kPrompt) {
      l->AddPrompt(v);
    } else {
      l->Add(v);
    }
  };
  Ledger forward, backward, first, second;
  for (const ParsedLine& v : views) {
    if (v.kind == LineKind::kPrompt) {
      forward.AddPrompt(v);
      continue;
    }
    Ledger::Change c = forward.Add(v);
    if (c.counted != !v.IsSynthetic()) {
      Fail("Ledger::Add counted a <synthetic> line (or not a real one)", v.message_id, nullptr,
           nullptr, nullptr, nullptr);
    }
    if (c.counted && c.index >= forward.requests().size()) {
      Fail("Ledger::Add returned an index out of range", v.message_id, nullptr, nullptr, nullptr,
           nullptr);
    }
  }
  for (size_t i = views.size(); i-- > 0;) add(&backward, views[i]);
  size_t half = views.size() / 2;
  for (size_t i = 0; i < views.size(); ++i) add(i < half ? &first : &second, views[i]);
  first.Merge(second);
  // Adding every line again must change nothing (max/min rules are idempotent).
  Ledger twice;
  for (const ParsedLine& v : views) add(&twice, v);
  for (const ParsedLine& v : views) add(&twice, v);

  LedgerSnapshot f = Snapshot(forward);
  if (!(Snapshot(backward) == f)) {
    Fail("Ledger depends on the order of lines (forward vs reverse)", {}, nullptr, nullptr, nullptr,
         nullptr);
  }
  if (!(Snapshot(first) == f)) {
    Fail("Ledger::Merge of two halves differs from adding all lines", {}, nullptr, nullptr, nullptr,
         nullptr);
  }
  if (!(Snapshot(twice) == f)) {
    Fail("Ledger is not idempotent (adding every line twice changed it)", {}, nullptr, nullptr,
         nullptr, nullptr);
  }
}

// ---------------------------------------------------------------------------------------------
// (a): the input read as a file, with the expected split computed independently.

void ReadAsFile(std::string_view input, const LineReader::Options& options, size_t max_read,
                bool differential, std::vector<OwnedLine>* usage) {
  MemoryFile file(input, max_read);
  LineReader reader(&file, 0, options);
  size_t pos = 0;  // start of the next expected line in `input`
  ParsedLine out;
  for (;;) {
    std::string_view line;
    size_t readable = 0;
    LineReader::Result r = reader.Next(&line, &readable);
    if (r == LineReader::Result::kError) {
      Fail("LineReader returned kError on an in-memory file", {}, nullptr, nullptr, nullptr,
           nullptr);
    }
    size_t nl = input.find('\n', pos);
    if (r == LineReader::Result::kEnd) {
      if (nl != std::string_view::npos) {
        Fail("LineReader returned kEnd before the last '\\n'", input.substr(pos), nullptr, nullptr,
             nullptr, nullptr);
      }
      break;
    }
    if (nl == std::string_view::npos) {
      Fail("LineReader returned a line after the last '\\n'", input.substr(pos), nullptr, nullptr,
           nullptr, nullptr);
    }
    std::string_view expected = input.substr(pos, nl - pos);
    const size_t line_start = pos;
    pos = nl + 1;
    if (r == LineReader::Result::kTooLong) {
      if (expected.size() <= options.max_line_bytes) {
        Fail("LineReader returned kTooLong for a line within the cap", expected, nullptr, nullptr,
             nullptr, nullptr);
      }
    } else {
      if (line != expected) {
        Fail("LineReader returned the wrong bytes for a line", expected, nullptr, nullptr, nullptr,
             nullptr);
      }
      if (expected.size() > options.max_line_bytes) {
        Fail("LineReader returned a line over the cap", expected, nullptr, nullptr, nullptr,
             nullptr);
      }
      if (readable < line.size() + LineReader::kPadding) {
        Fail("LineReader promised less than kPadding readable bytes", expected, nullptr, nullptr,
             nullptr, nullptr);
      }
      // Touch the promised padding so ASan checks that it is really there.
      volatile char sink = line.data()[readable - 1];
      (void)sink;
      P().parse.Parse(line, readable, &out, /*first_in_file=*/line_start == 0);
      if ((out.kind == LineKind::kUsage || out.kind == LineKind::kPrompt) && usage != nullptr) {
        usage->emplace_back(out);
      }
      if (differential) Differential(line, uint8_t(pos));
    }
    if (reader.consumed_offset() != pos) {
      Fail("LineReader consumed_offset() is not just past the last line", expected, nullptr,
           nullptr, nullptr, nullptr);
    }
  }
  if (reader.consumed_offset() != pos ||
      reader.consumed_offset() + reader.pending_bytes() != input.size()) {
    std::fprintf(stderr, "consumed=%llu pending=%llu size=%zu expected consumed=%zu\n",
                 static_cast<unsigned long long>(reader.consumed_offset()),
                 static_cast<unsigned long long>(reader.pending_bytes()), input.size(), pos);
    Fail("LineReader does not account for every byte at kEnd", input.substr(pos), nullptr, nullptr,
         nullptr, nullptr);
  }
}

}  // namespace
}  // namespace ccmon

void CheckIds(std::string_view input) {
  using namespace ccmon;
  const std::string_view a = input.substr(0, input.size() / 2), b = input.substr(input.size() / 2);
  std::string joined;
  AppendEncodedId(a, &joined);
  AppendEncodedId(b, &joined);
  std::string_view in = joined;
  std::string da, db;
  if (!DecodeId(&in, &da) || !DecodeId(&in, &db) || !in.empty() || da != a || db != b) {
    std::fprintf(stderr, "id encoding does not round-trip (%zu + %zu bytes)\n", a.size(), b.size());
    std::abort();
  }
  std::string ignored;
  std::string_view raw = input;
  while (DecodeId(&raw, &ignored)) {
  }
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ccmon;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  Parsers& p = P();
  ParsedLine out;

  // The whole input as one line: copying path, then zero-copy path, then with a small fast-path
  // limit (long-line route), each against the reference.
  p.ref.ParseReference(input, &out);
  OwnedLine ref(out);
  p.whole.Parse(input, &out);
  CheckParse("Parse (copy) disagrees with the reference", input, OwnedLine(out), ref);
  std::string& padded = PaddedCopy(input, uint8_t(size));
  p.whole.Parse(std::string_view(padded.data(), size), padded.size(), &out);
  CheckParse("Parse (in place) disagrees with the reference", input, OwnedLine(out), ref);
  p.small.Parse(input, &out);
  bool long_line = size > Parsers::kSmallFastPathMaxBytes;
  CheckParse(long_line ? "Parse (long-line route) disagrees with the reference"
                       : "Parse (small parser, fast route) disagrees with the reference",
             input, OwnedLine(out), ref, long_line && !MayHoldRecord(input));

  Differential(input, uint8_t(size * 31));

  // A byte order mark is allowed on a file's first line only (docs/accounting.md A6): there the
  // result is that of the rest of the line; elsewhere the reference rejects it (invalid_json, or
  // invalid_utf8 when other bytes are not UTF-8: that check comes first).
  if (input.substr(0, 3) == "\xEF\xBB\xBF") {
    if (ref.kind != LineKind::kSkipped || (ref.skip_reason != SkipReason::kInvalidJson &&
                                           ref.skip_reason != SkipReason::kInvalidUtf8)) {
      Fail("a line starting with a byte order mark is not rejected", input, &ref, "reference",
           nullptr, nullptr);
    }
    p.ref.ParseReference(input.substr(3), &out);
    OwnedLine rest(out);
    p.whole.Parse(input, &out, /*first_in_file=*/true);
    CheckParse("Parse (first line, byte order mark) disagrees with the reference of the rest",
               input.substr(3), OwnedLine(out), rest);
  }

  std::vector<OwnedLine> usage;
  bool multi_line = input.find('\n') != std::string_view::npos;
  // Large chunks and whole reads; every line is also checked differentially. (A chunk just over
  // the input size behaves like the 256 KiB default and avoids a large allocation per run.)
  LineReader::Options large;
  large.chunk_bytes = std::max<size_t>(size + 1, 4096);
  ReadAsFile(input, large, input.size() + 1, multi_line, &usage);
  // Tiny chunks, short reads, a small cap: buffer growth, compaction, kTooLong and shrinking.
  LineReader::Options tiny;
  tiny.chunk_bytes = 1 + size % 23;
  tiny.max_line_bytes = 64 + size % 1024;
  ReadAsFile(input, tiny, 1 + size % 13, false, nullptr);

  CheckLedgers(usage);
  CheckIds(input);
  return 0;
}
