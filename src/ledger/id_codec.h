// Compact, exact encoding of the ids Claude Code's lines carry (message.id, requestId, tool_use
// ids). Replay and the agent keep one dedup key per distinct request and one entry per tool_use
// id, so their memory is mostly ids: Anthropic ids are a fixed prefix ("msg_01", "req_011C",
// "toolu_01") and ~22 base-62 characters, which pack into 6 bits per character, 18 bytes instead
// of 28-30. Any other string is stored as is. The encoding is deterministic and decodable, hence
// injective: two ids are equal exactly when their encodings are (docs/store-format.md, "Ids").
//
// Layout of one encoded id (self-delimiting, so encodings can be concatenated):
//   tag < kPackedTags: prefix kIdPrefixes[tag / kMaxPackedTail] and n = tag % kMaxPackedTail
//                      base-62 characters (0-9A-Za-z as 0..61), packed 6 bits each,
//                      least-significant bits first, in ceil(6n/8) bytes;
//   tag == kRawTag:    a LEB128 length, then the bytes as they are.
// kAbsentTag never starts an encoded id; callers use it for "no id here" (a line without
// requestId).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ccmon {

inline constexpr std::string_view kIdPrefixes[] = {"msg_01",      "req_011C",    "toolu_01",
                                                   "srvtoolu_01", "msg_bdrk_01", ""};
inline constexpr uint8_t kMaxPackedTail = 40;
inline constexpr uint8_t kPackedTags = uint8_t(std::size(kIdPrefixes) * kMaxPackedTail);
inline constexpr uint8_t kAbsentTag = 0xFE;
inline constexpr uint8_t kRawTag = 0xFF;
static_assert(kPackedTags <= kAbsentTag);

// Appends the encoding of `id` to *out.
void AppendEncodedId(std::string_view id, std::string* out);

// Decodes one encoded id from the front of *in, appends it to *out and advances *in.
// False (and *in unchanged) if *in does not start with a valid encoded id.
bool DecodeId(std::string_view* in, std::string* out);

}  // namespace ccmon
