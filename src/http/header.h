// Header-field rules of RFC 9110 section 5, in one place: the HTTP client checks every request
// against them before anything is sent (so no caller can inject a header line), and flag and
// config parsing (http/endpoint_headers.h) checks against the same rules to give a clear error
// early.
#pragma once

#include <string_view>

#include "base/status.h"

namespace ccmon {

// An RFC 9110 token (a header name): one or more of ALPHA DIGIT ! # $ % & ' * + - . ^ _ ` | ~.
bool IsHttpToken(std::string_view s);

// ASCII case-insensitive equality (header names).
bool EqualsIgnoreCase(std::string_view a, std::string_view b);

// Checks one request header:
// - the name is a token;
// - the value holds no control character other than HTAB (so no CR, LF or NUL: the bytes that
//   would end the line or the string; and no other C0 control or DEL, which RFC 9110's
//   field-value does not allow and receivers may treat differently), and has no leading or
//   trailing SP/HTAB. Bytes 0x80..0xFF (obs-text, e.g. UTF-8) are allowed. Empty values are
//   allowed;
// - the name is not Content-Length or Transfer-Encoding: the message framing is the client's,
//   and a second framing header is how requests are smuggled.
// The error names the header and the offending byte's position, never the value (values are
// often credentials).
Status ValidateHeaderField(std::string_view name, std::string_view value);

}  // namespace ccmon
