#include "http/url.h"

#include <boost/asio/ip/address_v6.hpp>
#include <cstdio>
#include <utility>

namespace ccmon {
namespace {

bool IsAlnum(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool IsHex(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// RFC 3986 pchar minus '%' (checked apart), plus '/' and '?' (path and query): unreserved
// (ALPHA DIGIT - . _ ~), sub-delims (! $ & ' ( ) * + , ; =), ':' and '@'.
bool IsTargetChar(unsigned char c) {
  return IsAlnum(c) ||
         std::string_view("-._~!$&'()*+,;=:@/?").find(char(c)) != std::string_view::npos;
}

std::string Printable(unsigned char c) {
  if (c > 0x20 && c < 0x7F) return "'" + std::string(1, char(c)) + "'";
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02X", unsigned(c));
  return buf;
}

bool StartsWithIgnoreCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
    if (c != prefix[i]) return false;
  }
  return true;
}

Status ParsePort(std::string_view digits, uint16_t* port) {
  if (digits.empty()) return Status::InvalidArgument("URL has an empty port after ':'");
  uint32_t value = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') {
      return Status::InvalidArgument("URL port '" + std::string(digits) +
                                     "' is not a number (digits only, 1..65535)");
    }
    if (digits.size() > 5) break;  // reported below; no overflow either way
    value = value * 10 + uint32_t(c - '0');
  }
  if (digits.size() > 5 || value == 0 || value > 65535) {
    return Status::InvalidArgument("URL port " + std::string(digits) +
                                   " is out of range (1..65535)");
  }
  *port = uint16_t(value);
  return Status::Ok();
}

}  // namespace

std::string HttpUrl::HostHeader() const {
  std::string h = ipv6 ? "[" + host + "]" : host;
  if (!default_port) h += ":" + std::to_string(port);
  return h;
}

std::string HttpUrl::Origin() const {
  return std::string(tls ? "https://" : "http://") + (ipv6 ? "[" + host + "]" : host) + ":" +
         std::to_string(port);
}

Status ParseHttpUrl(std::string_view url, HttpUrl* out) {
  HttpUrl u;
  std::string_view rest;
  if (StartsWithIgnoreCase(url, "https://")) {
    u.tls = true;
    rest = url.substr(8);
  } else if (StartsWithIgnoreCase(url, "http://")) {
    rest = url.substr(7);
  } else {
    return Status::InvalidArgument("URL must start with http:// or https://");
  }
  u.port = u.tls ? 443 : 80;
  const size_t authority_end = rest.find_first_of("/?#");
  const std::string_view authority = rest.substr(0, authority_end);
  std::string_view target =
      authority_end == std::string_view::npos ? std::string_view() : rest.substr(authority_end);
  if (authority.find('@') != std::string_view::npos) {
    return Status::InvalidArgument(
        "URL has user info (user@ or user:password@); give credentials as a header or a "
        "token/password file instead");
  }
  std::string_view port_text;
  bool has_port = false;
  if (!authority.empty() && authority[0] == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      return Status::InvalidArgument("URL host: '[' without ']' (IPv6 literal)");
    }
    const std::string host(authority.substr(1, close - 1));
    boost::system::error_code ec;
    if (host.empty() || host.find('%') != std::string::npos ||
        (boost::asio::ip::make_address_v6(host, ec), ec)) {
      return Status::InvalidArgument("URL host [" + host + "] is not an IPv6 address");
    }
    u.host = host;
    u.ipv6 = true;
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') {
        return Status::InvalidArgument("URL: unexpected text after the IPv6 address's ']'");
      }
      has_port = true;
      port_text = after.substr(1);
    }
  } else {
    const size_t colon = authority.find(':');
    const std::string_view host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      has_port = true;
      port_text = authority.substr(colon + 1);
      if (port_text.find(':') != std::string_view::npos) {
        return Status::InvalidArgument(
            "URL host has more than one ':' (write an IPv6 address in brackets: "
            "http://[::1]:9090/)");
      }
    }
    if (host.empty()) return Status::InvalidArgument("URL has no host");
    for (size_t i = 0; i < host.size(); ++i) {
      const unsigned char c = static_cast<unsigned char>(host[i]);
      if (!IsAlnum(c) && c != '-' && c != '.' && c != '_') {
        return Status::InvalidArgument("URL host has " + Printable(c) + " at byte " +
                                       std::to_string(i + 1) +
                                       " (a host name holds letters, digits, '-', '.', '_')");
      }
    }
    u.host = std::string(host);
  }
  if (has_port) {
    if (Status s = ParsePort(port_text, &u.port); !s.ok()) return s;
    u.default_port = false;
  }
  if (const size_t hash = target.find('#'); hash != std::string_view::npos) {
    target = target.substr(0, hash);  // the fragment is the client's, never sent
  }
  for (size_t i = 0; i < target.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(target[i]);
    if (c == '%') {
      if (i + 2 >= target.size() || !IsHex(static_cast<unsigned char>(target[i + 1])) ||
          !IsHex(static_cast<unsigned char>(target[i + 2]))) {
        return Status::InvalidArgument("URL path has a '%' at byte " + std::to_string(i + 1) +
                                       " that is not followed by two hex digits");
      }
      continue;
    }
    if (!IsTargetChar(c)) {
      return Status::InvalidArgument("URL path has " + Printable(c) + " at byte " +
                                     std::to_string(i + 1) + "; percent-encode it");
    }
  }
  if (target.empty() || target[0] == '?') {
    u.target = "/" + std::string(target);
  } else {
    u.target = std::string(target);
  }
  *out = std::move(u);
  return Status::Ok();
}

}  // namespace ccmon
