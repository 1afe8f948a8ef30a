// The extra headers and credentials sent with every request to one endpoint, as a user gives
// them (ccmon-replay's --header / --bearer-token-file / --basic-auth-*, later the agent's and
// the gateway's target configs), turned into a checked header list.
//
// It lives in `http` rather than `remote_write` because nothing in it is remote-write specific
// (any HTTP target takes headers and credentials) and because the header rules it checks
// against (http/header.h) are the ones the HTTP client enforces; one library owns both.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "base/env.h"
#include "base/status.h"
#include "http/transport.h"

namespace ccmon {

struct EndpointHeaderOptions {
  std::vector<std::string> headers;      // "Name: value" each, in order (--header)
  std::string bearer_token_file;         // Authorization: Bearer <token>
  std::string basic_auth_user;           // Authorization: Basic base64(user ":" password) ...
  std::string basic_auth_password_file;  // ... with the password from this file
};

// Token and password files are small; a bigger file (or /dev/zero) is refused unread.
inline constexpr size_t kMaxCredentialFileBytes = size_t(64) << 10;

// "Name: value" -> {Name, value}. The name is everything before the first ':' and must be an
// HTTP token (no surrounding spaces); the value is the rest with surrounding SP/HTAB trimmed
// and must pass ValidateHeaderField (no CR, LF, NUL or other controls). Refused too: the
// headers ccmon sets on every request itself (Host, Connection and the other hop-by-hop
// headers, User-Agent, Accept, Accept-Encoding, Expect, Content-Type, Content-Encoding,
// X-Prometheus-Remote-Write-Version, and every X-Ccmon-* name), since the receiver would get
// two copies and pick one. Authorization may be given (see BuildEndpointHeaders). Errors never
// echo the value.
Status ParseHeaderFlag(std::string_view flag, HttpHeader* out);

// Reads a token or password file through `env` (at most kMaxCredentialFileBytes): one
// trailing "\n" or "\r\n" is removed, then surrounding SP/HTAB. The result must be non-empty
// and hold no control character (a CR, LF or NUL left inside means the file is not one line).
// Errors name the file, never its content.
Status ReadCredentialFile(Env* env, const std::string& path, std::string* out);

// The header list for `options`: the --header entries in order, then the Authorization header
// of the bearer token or basic auth. Refused: a malformed header; the same header name twice
// (case-insensitive; the later one would silently replace the earlier); both a bearer token
// and basic auth, or either together with an Authorization --header; a basic auth user with
// ':' (RFC 7617) or control characters, or a user without a password file and vice versa; a
// bearer token with spaces inside (RFC 6750 b64token has none).
Status BuildEndpointHeaders(Env* env, const EndpointHeaderOptions& options,
                            std::vector<HttpHeader>* out);

}  // namespace ccmon
