#include "transcript/model_id.h"

#include <array>

namespace ccmon {
namespace {

bool ConsumePrefix(std::string_view& s, std::string_view prefix) {
  if (s.substr(0, prefix.size()) != prefix) return false;
  s.remove_prefix(prefix.size());
  return true;
}

bool IsDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

}  // namespace

std::string CanonicalModel(std::string_view s) {
  // Provider routing prefixes (LiteLLM and proxy spellings).
  for (std::string_view p : {"anthropic/", "bedrock/", "vertex_ai/", "vertex/"}) {
    if (ConsumePrefix(s, p)) break;
  }
  // Bedrock: optional region/inference-profile prefix, then "anthropic.".
  static constexpr std::array<std::string_view, 7> kRegions = {"us.", "eu.", "apac.", "global.",
                                                               "au.", "jp.", "ca."};
  {
    std::string_view t = s;
    for (std::string_view r : kRegions) {
      if (ConsumePrefix(t, r)) break;
    }
    if (ConsumePrefix(t, "anthropic.")) {
      s = t;
      // Bedrock version suffix "-v1:0" / "-v2".
      size_t v = s.rfind("-v");
      if (v != std::string_view::npos) {
        std::string_view ver = s.substr(v + 2);
        size_t colon = ver.find(':');
        if (IsDigits(ver.substr(0, colon)) &&
            (colon == std::string_view::npos || IsDigits(ver.substr(colon + 1)))) {
          s = s.substr(0, v);
        }
      }
    }
  }
  // Context-window suffix such as "[1m]".
  if (!s.empty() && s.back() == ']') {
    size_t open = s.rfind('[');
    if (open != std::string_view::npos && open > 0) s = s.substr(0, open);
  }
  std::string out(s);
  // Vertex: "claude-x@20250929" -> "claude-x-20250929".
  size_t at = out.find('@');
  if (at != std::string::npos && IsDigits(std::string_view(out).substr(at + 1))) out[at] = '-';
  return out;
}

}  // namespace ccmon
