#include "http/endpoint_headers.h"

#include <cstdint>

#include "base/base64.h"
#include "http/header.h"

namespace ccmon {
namespace {

bool IsOws(char c) { return c == ' ' || c == '\t'; }

std::string_view TrimOws(std::string_view v) {
  while (!v.empty() && IsOws(v.front())) v.remove_prefix(1);
  while (!v.empty() && IsOws(v.back())) v.remove_suffix(1);
  return v;
}

// Headers ccmon itself puts on every request to an endpoint: the HTTP client's (Host,
// Connection and its hop-by-hop kin, User-Agent), the remote-write protocol's, and ccmon's own
// batch identity and state headers (X-Ccmon-...), which the gateway trusts to recognise a
// retried batch. A --header copy would be sent beside ours, and a receiver would pick one of
// the two: a wrong Content-Type or a forged X-Ccmon-Batch changes how the body is read or
// whether it is applied at all.
constexpr std::string_view kReservedHeaderNames[] = {
    "Host",       "Connection",     "Keep-Alive",       "Proxy-Connection",
    "TE",         "Upgrade",        "Trailer",          "Expect",
    "User-Agent", "Content-Type",   "Content-Encoding", "X-Prometheus-Remote-Write-Version",
    "Accept",     "Accept-Encoding"};
constexpr std::string_view kReservedHeaderPrefix = "X-Ccmon-";

bool IsReservedHeaderName(std::string_view name) {
  for (std::string_view r : kReservedHeaderNames) {
    if (EqualsIgnoreCase(name, r)) return true;
  }
  return name.size() >= kReservedHeaderPrefix.size() &&
         EqualsIgnoreCase(name.substr(0, kReservedHeaderPrefix.size()), kReservedHeaderPrefix);
}

}  // namespace

Status ParseHeaderFlag(std::string_view flag, HttpHeader* out) {
  const size_t colon = flag.find(':');
  if (colon == std::string_view::npos) {
    return Status::InvalidArgument("a header is 'Name: value'; this one has no ':'");
  }
  const std::string_view name = flag.substr(0, colon);
  if (name.empty()) return Status::InvalidArgument("a header is 'Name: value'; the name is empty");
  const std::string_view value = TrimOws(flag.substr(colon + 1));
  if (Status s = ValidateHeaderField(name, value); !s.ok()) return s;
  if (IsReservedHeaderName(name)) {
    return Status::InvalidArgument("header " + std::string(name) +
                                   " is set by ccmon on every request and cannot be given");
  }
  *out = {std::string(name), std::string(value)};
  return Status::Ok();
}

Status ReadCredentialFile(Env* env, const std::string& path, std::string* out) {
  std::string text;
  if (Status s = ReadFileToString(env, path, kMaxCredentialFileBytes, &text); !s.ok()) return s;
  std::string_view v = text;
  if (v.size() >= 2 && v.substr(v.size() - 2) == "\r\n") {
    v.remove_suffix(2);
  } else if (!v.empty() && v.back() == '\n') {
    v.remove_suffix(1);
  }
  v = TrimOws(v);
  if (v.empty()) return Status::InvalidArgument(path + ": empty (no token or password in it)");
  for (size_t i = 0; i < v.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(v[i]);
    if ((c < 0x20 && c != '\t') || c == 0x7F) {
      const std::string what = c == '\r'   ? "a CR"
                               : c == '\n' ? "a line break"
                               : c == 0    ? "a NUL byte"
                                           : "a control character";
      return Status::InvalidArgument(path + ": " + what +
                                     " inside the content (a token or "
                                     "password file holds one line)");
    }
  }
  out->assign(v);
  return Status::Ok();
}

Status BuildEndpointHeaders(Env* env, const EndpointHeaderOptions& options,
                            std::vector<HttpHeader>* out) {
  std::vector<HttpHeader> headers;
  for (const std::string& flag : options.headers) {
    HttpHeader h;
    if (Status s = ParseHeaderFlag(flag, &h); !s.ok()) return s;
    for (const HttpHeader& earlier : headers) {
      if (EqualsIgnoreCase(earlier.first, h.first)) {
        return Status::InvalidArgument("header " + h.first + " is given twice");
      }
    }
    headers.push_back(std::move(h));
  }
  const bool bearer = !options.bearer_token_file.empty();
  const bool basic = !options.basic_auth_user.empty() || !options.basic_auth_password_file.empty();
  if (bearer && basic) {
    return Status::InvalidArgument("give a bearer token or basic auth, not both");
  }
  if (bearer || basic) {
    for (const HttpHeader& h : headers) {
      if (EqualsIgnoreCase(h.first, "Authorization")) {
        return Status::InvalidArgument(
            "an Authorization header is given both as a header and as a " +
            std::string(bearer ? "bearer token" : "basic auth user"));
      }
    }
  }
  if (bearer) {
    std::string token;
    Status s = ReadCredentialFile(env, options.bearer_token_file, &token);
    if (!s.ok()) return Status::InvalidArgument("bearer token file " + s.message());
    if (token.find_first_of(" \t") != std::string::npos) {
      return Status::InvalidArgument("bearer token file " + options.bearer_token_file +
                                     ": the token has whitespace inside");
    }
    headers.emplace_back("Authorization", "Bearer " + token);
  }
  if (basic) {
    const std::string& user = options.basic_auth_user;
    if (user.empty() || options.basic_auth_password_file.empty()) {
      return Status::InvalidArgument("basic auth needs both a user and a password file");
    }
    for (char c : user) {
      const unsigned char u = static_cast<unsigned char>(c);
      if (c == ':' || u < 0x20 || u == 0x7F) {
        return Status::InvalidArgument(
            "the basic auth user cannot hold ':' or control characters (RFC 7617)");
      }
    }
    std::string password;
    Status s = ReadCredentialFile(env, options.basic_auth_password_file, &password);
    if (!s.ok()) return Status::InvalidArgument("basic auth password file " + s.message());
    headers.emplace_back("Authorization", "Basic " + Base64Encode(user + ":" + password));
  }
  for (const HttpHeader& h : headers) {  // the client would refuse them anyway; say so now
    if (Status s = ValidateHeaderField(h.first, h.second); !s.ok()) return s;
  }
  *out = std::move(headers);
  return Status::Ok();
}

}  // namespace ccmon
