// Base64 (RFC 4648): HTTP Basic credentials, the status page's CSP hashes, device keys.
#pragma once

#include <string>
#include <string_view>

namespace ccmon {

// Standard base64 with padding (RFC 4648 §4).
std::string Base64Encode(std::string_view bytes);
// Its strict inverse: false (and *bytes unchanged) for anything that is not canonical padded
// base64 — a length not a multiple of 4, a character outside the alphabet, '=' anywhere but at
// the end of the last group, non-zero bits under the padding.
bool Base64Decode(std::string_view text, std::string* bytes);
// The URL and file name safe alphabet ('-' and '_'), without padding (RFC 4648 §5).
std::string Base64UrlEncode(std::string_view bytes);

}  // namespace ccmon
