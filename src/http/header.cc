#include "http/header.h"

#include <cstdio>
#include <string>
#include <string_view>

#include "http/transport.h"

namespace ccmon {
namespace {

// RFC 9110 tchar: ALPHA DIGIT and ! # $ % & ' * + - . ^ _ ` | ~.
bool IsTokenChar(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         (c != 0 && std::string_view("!#$%&'*+-.^_`|~").find(char(c)) != std::string_view::npos);
}

char AsciiLower(char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; }

std::string ByteName(unsigned char c) {
  switch (c) {
    case '\r':
      return "CR";
    case '\n':
      return "LF";
    case '\0':
      return "NUL";
    default: {
      char buf[8];
      std::snprintf(buf, sizeof buf, "0x%02X", unsigned(c));
      return buf;
    }
  }
}

}  // namespace

bool IsHttpToken(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!IsTokenChar(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (AsciiLower(a[i]) != AsciiLower(b[i])) return false;
  }
  return true;
}

Status ValidateHeaderField(std::string_view name, std::string_view value) {
  if (name.empty()) return Status::InvalidArgument("header with an empty name");
  for (size_t i = 0; i < name.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(name[i]);
    if (!IsTokenChar(c)) {
      // The name is echoed only up to the bad byte: it is not a secret, but may be binary.
      return Status::InvalidArgument(
          "header name '" + std::string(name.substr(0, i)) + "...' has " +
          (c > 0x20 && c < 0x7F ? "'" + std::string(1, char(c)) + "'" : ByteName(c)) + " at byte " +
          std::to_string(i + 1) + ", which an HTTP header name (a token) cannot hold");
    }
  }
  if (EqualsIgnoreCase(name, "Content-Length") || EqualsIgnoreCase(name, "Transfer-Encoding")) {
    return Status::InvalidArgument("header " + std::string(name) +
                                   " is set by the HTTP client and cannot be given");
  }
  for (size_t i = 0; i < value.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(value[i]);
    if ((c < 0x20 && c != '\t') || c == 0x7F) {
      return Status::InvalidArgument("the value of header " + std::string(name) + " has " +
                                     ByteName(c) + " at byte " + std::to_string(i + 1) +
                                     "; header values cannot hold control characters");
    }
  }
  if (!value.empty() && (value.front() == ' ' || value.front() == '\t' || value.back() == ' ' ||
                         value.back() == '\t')) {
    return Status::InvalidArgument("the value of header " + std::string(name) +
                                   " starts or ends with whitespace");
  }
  return Status::Ok();
}

std::string_view HttpResponse::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (EqualsIgnoreCase(k, name)) return v;
  }
  return {};
}

}  // namespace ccmon
