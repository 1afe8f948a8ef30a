// Canonical Claude model ids.
#pragma once

#include <string>
#include <string_view>

namespace ccmon {

// Returns the canonical Anthropic model id for the provider spellings Claude Code writes:
//   "anthropic/claude-x"                     -> "claude-x"
//   "us.anthropic.claude-x-20250929-v1:0"    -> "claude-x-20250929"   (Bedrock, any region prefix)
//   "bedrock/…", "vertex_ai/…"               -> prefix dropped
//   "claude-x@20250929"                      -> "claude-x-20250929"   (Vertex)
//   "claude-x[1m]"                           -> "claude-x"            (context-window suffix)
// Anything else is returned unchanged (an unknown id stays visible rather than being guessed).
// Pure function; thread-safe.
std::string CanonicalModel(std::string_view raw);

}  // namespace ccmon
