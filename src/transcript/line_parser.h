// LineParser: one JSONL transcript line -> ParsedLine (docs/accounting.md, "What is a usage record"
// and "Prompts").
//
// Two implementations of one contract:
//  * a fast path on simdjson On-Demand for candidate lines up to `fast_path_max_bytes`, compiled
//    for AVX2 and used only on CPUs that have it (never even constructed elsewhere);
//  * a reference path on nlohmann_json's SAX parser (streaming, fully validating, memory bounded
//    by the largest string value), used for larger lines and to classify every line the fast
//    path rejects, so skip reasons always come from the reference path.
// Lines longer than `fast_path_max_bytes` that contain neither the bytes `"usage"` nor the bytes
// `"user"` without `"tool_result"` (big tool results) are not parsed: they can hold no usage record
// and no prompt, and are only checked for shape and UTF-8 (docs/accounting.md A13).
//
// Not thread-safe: use one parser per thread. Views in the ParsedLine stay valid until the next
// Parse() on the same parser.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "transcript/usage.h"

namespace ccmon {

class LineParser {
 public:
  static constexpr size_t kDefaultFastPathMaxBytes = 1 << 20;
  // Bytes that must be readable past the end of a line for the zero-copy fast path.
  static constexpr size_t kPadding = 64;

  explicit LineParser(size_t fast_path_max_bytes = kDefaultFastPathMaxBytes);
  ~LineParser();
  LineParser(const LineParser&) = delete;
  LineParser& operator=(const LineParser&) = delete;

  // `line` excludes the terminating '\n'. `readable` is the number of bytes readable from
  // line.data() (>= line.size()); when readable >= line.size() + kPadding the line is not copied.
  // `first_in_file`: the line starts at offset 0 of its file, the only place where a UTF-8 byte
  // order mark is allowed (it is then ignored; anywhere else it makes the line invalid_json).
  // A record whose ids, model, tools or cwd are over kMaxIdBytes is skipped (id_too_long, A42).
  void Parse(std::string_view line, size_t readable, ParsedLine* out, bool first_in_file = false);
  void Parse(std::string_view line, ParsedLine* out, bool first_in_file = false) {
    Parse(line, line.size(), out, first_in_file);
  }

  // Each path on its own (tests and the fuzz target compare them). Neither applies the
  // pre-filter, the id length rule (A42) nor accepts a byte order mark. ParseFast returns false
  // when it cannot decide (any error, or the fast path is off): the caller must then use
  // ParseReference.
  bool ParseFast(std::string_view line, size_t readable, ParsedLine* out);
  void ParseReference(std::string_view line, ParsedLine* out);

  // Whether ParseFast can decide anything here: the CPU has AVX2 (and BMI2, PCLMUL) and the
  // environment does not turn the fast path off (CCMON_FAST_PATH=off, for tests and diagnosis).
  static bool FastPathEnabled();

 private:
  void ParseAnyLength(std::string_view line, size_t readable, ParsedLine* out, bool first_in_file);
  struct FastState;
  std::string_view Keep(std::string_view s);  // copies into scratch that lives until next Parse

  size_t fast_path_max_bytes_;
  std::unique_ptr<FastState> fast_;        // null when the fast path is off
  std::vector<ToolUse> nested_tool_uses_;  // scratch: tool_use blocks of a progress copy
  std::string padded_;                     // padded copy of a line for the fast path
  std::string sanitized_;                  // reference-path copy with lone surrogates replaced
  std::vector<std::unique_ptr<std::string>> kept_;  // strings owned until next Parse
  size_t kept_used_ = 0;
};

// True when a long line can possibly be a usage record or a prompt (the pre-filter described
// above).
bool MayHoldRecord(std::string_view line);

}  // namespace ccmon
