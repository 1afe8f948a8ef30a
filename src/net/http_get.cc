#include "net/http_get.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/version.hpp>

namespace ccmon {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

struct Url {
  bool tls = false;
  std::string host, port, target;
};

bool ParseUrl(const std::string& url, Url* out) {
  std::string rest;
  if (url.rfind("https://", 0) == 0) {
    out->tls = true;
    rest = url.substr(8);
  } else if (url.rfind("http://", 0) == 0) {
    rest = url.substr(7);
  } else {
    return false;
  }
  size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  out->target = slash == std::string::npos ? "/" : rest.substr(slash);
  size_t colon = authority.rfind(':');
  if (colon != std::string::npos && authority.find(']') == std::string::npos) {
    out->host = authority.substr(0, colon);
    out->port = authority.substr(colon + 1);
  } else {
    out->host = authority;
    out->port = out->tls ? "443" : "80";
  }
  return !out->host.empty();
}

template <class Stream>
Status Exchange(Stream& stream, beast::tcp_stream& tcp_layer, const Url& u,
                const HttpGetOptions& opt, http::response<http::string_body>* res) {
  http::request<http::empty_body> req{http::verb::get, u.target, 11};
  req.set(http::field::host, u.host);
  req.set(http::field::user_agent, "ccmon-pricing/0.1");
  req.set(http::field::accept, "application/json");
  beast::error_code ec;
  tcp_layer.expires_after(opt.timeout);
  http::write(stream, req, ec);
  if (ec) return Status::IoError("write: " + ec.message());
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(opt.max_body_bytes);
  tcp_layer.expires_after(opt.timeout);
  http::read(stream, buffer, parser, ec);
  if (ec) return Status::IoError("read: " + ec.message());
  *res = parser.release();
  return Status::Ok();
}

}  // namespace

Status HttpGet(const std::string& url_text, const HttpGetOptions& opt, std::string* body) {
  std::string current = url_text;
  for (int hop = 0; hop <= opt.max_redirects; ++hop) {
    Url u;
    if (!ParseUrl(current, &u)) return Status::InvalidArgument("not an http(s) URL: " + current);
    net::io_context ioc;
    beast::error_code ec;
    tcp::resolver resolver(ioc);
    auto endpoints = resolver.resolve(u.host, u.port, ec);
    if (ec) return Status::IoError(u.host + ": resolve: " + ec.message());
    http::response<http::string_body> res;
    Status s;
    if (u.tls) {
      ssl::context ctx(ssl::context::tls_client);
      ctx.set_default_verify_paths();
      ctx.set_verify_mode(ssl::verify_peer);
      beast::ssl_stream<beast::tcp_stream> stream(ioc, ctx);
      if (!SSL_set_tlsext_host_name(stream.native_handle(), u.host.c_str()))
        return Status::IoError(u.host + ": cannot set SNI");
      stream.set_verify_callback(ssl::host_name_verification(u.host));
      beast::get_lowest_layer(stream).expires_after(opt.timeout);
      beast::get_lowest_layer(stream).connect(endpoints, ec);
      if (ec) return Status::IoError(u.host + ": connect: " + ec.message());
      beast::get_lowest_layer(stream).expires_after(opt.timeout);
      stream.handshake(ssl::stream_base::client, ec);
      if (ec) return Status::IoError(u.host + ": TLS handshake: " + ec.message());
      s = Exchange(stream, beast::get_lowest_layer(stream), u, opt, &res);
    } else {
      beast::tcp_stream stream(ioc);
      stream.expires_after(opt.timeout);
      stream.connect(endpoints, ec);
      if (ec) return Status::IoError(u.host + ": connect: " + ec.message());
      s = Exchange(stream, stream, u, opt, &res);
    }
    if (!s.ok()) return Status::IoError(u.host + ": " + s.message());
    unsigned code = res.result_int();
    if (code >= 300 && code < 400 && res.count(http::field::location)) {
      std::string loc(res[http::field::location]);
      if (loc.rfind("/", 0) == 0) loc = (u.tls ? "https://" : "http://") + u.host + ":" + u.port + loc;
      current = loc;
      continue;
    }
    if (code != 200) return Status::IoError(current + ": HTTP " + std::to_string(code));
    *body = std::move(res.body());
    return Status::Ok();
  }
  return Status::IoError(url_text + ": too many redirects");
}

}  // namespace ccmon
