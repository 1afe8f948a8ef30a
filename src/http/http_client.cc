#include "http/http_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/version.hpp>
#include <optional>

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
  const size_t slash = rest.find('/');
  const std::string authority = rest.substr(0, slash);
  out->target = slash == std::string::npos ? "/" : rest.substr(slash);
  out->port = out->tls ? "443" : "80";
  if (!authority.empty() && authority[0] == '[') {  // [IPv6]:port
    const size_t close = authority.find(']');
    if (close == std::string::npos) return false;
    out->host = authority.substr(1, close - 1);
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') return false;
      out->port = authority.substr(close + 2);
    }
  } else {
    const size_t colon = authority.rfind(':');
    out->host = authority.substr(0, colon);
    if (colon != std::string::npos) out->port = authority.substr(colon + 1);
  }
  return !out->host.empty() && !out->port.empty();
}

// Runs one asynchronous operation to completion on `ioc`. Beast's tcp_stream applies its
// expiry only to asynchronous operations, so every step goes through here: a stalled peer ends
// in beast::error::timeout instead of blocking forever.
template <class Start>
beast::error_code RunOne(net::io_context& ioc, Start start) {
  beast::error_code result = net::error::would_block;
  start([&result](beast::error_code ec, auto&&...) { result = ec; });
  ioc.restart();
  ioc.run();
  return result;
}

template <class Stream>
Status Exchange(net::io_context& ioc, Stream& stream, beast::tcp_stream& tcp_layer, const Url& u,
                const HttpRequest& request, const HttpGetOptions& opt,
                http::response<http::string_body>* res) {
  http::request<http::string_body> req{http::string_to_verb(request.method), u.target, 11};
  req.set(http::field::host, u.host);
  req.set(http::field::user_agent, "ccmon/0.1");
  for (const auto& [name, value] : request.headers) req.set(name, value);
  if (!request.body.empty() || req.method() == http::verb::post) {
    req.body() = request.body;
    req.prepare_payload();
  }
  tcp_layer.expires_after(opt.timeout);
  beast::error_code ec =
      RunOne(ioc, [&](auto handler) { http::async_write(stream, req, std::move(handler)); });
  if (ec) return Status::IoError("write: " + ec.message());
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(opt.max_body_bytes);
  tcp_layer.expires_after(opt.timeout);
  ec = RunOne(ioc, [&](auto handler) {
    http::async_read_header(stream, buffer, parser, std::move(handler));
  });
  if (ec) return Status::IoError("read: " + ec.message());
  // Boost 1.74's parser skips its Content-Length check against body_limit when it parses eagerly
  // (as async_read does), so the declared length is checked here; chunked and read-to-EOF
  // bodies are limited by the parser itself.
  if (parser.content_length() && *parser.content_length() > opt.max_body_bytes) {
    return Status::IoError("read: body of " + std::to_string(*parser.content_length()) +
                           " bytes is over the body limit of " +
                           std::to_string(opt.max_body_bytes));
  }
  tcp_layer.expires_after(opt.timeout);
  ec = RunOne(ioc,
              [&](auto handler) { http::async_read(stream, buffer, parser, std::move(handler)); });
  if (ec) return Status::IoError("read: " + ec.message());
  *res = parser.release();
  return Status::Ok();
}

Status Resolve(net::io_context& ioc, const Url& u, const HttpGetOptions& opt,
               tcp::resolver::results_type* out) {
  tcp::resolver resolver(ioc);
  std::optional<beast::error_code> result;
  resolver.async_resolve(u.host, u.port, [&](beast::error_code ec, tcp::resolver::results_type r) {
    result = ec;
    *out = std::move(r);
  });
  ioc.restart();
  ioc.run_for(opt.timeout);
  if (!result) {
    resolver.cancel();
    ioc.restart();
    ioc.run();
    return Status::IoError(u.host + ": resolve: timed out");
  }
  if (*result) return Status::IoError(u.host + ": resolve: " + result->message());
  return Status::Ok();
}

}  // namespace

Status HttpExchange(const HttpRequest& request, const HttpGetOptions& opt, HttpResponse* response) {
  Url u;
  if (!ParseUrl(request.url, &u)) {
    return Status::InvalidArgument("not an http(s) URL: " + request.url);
  }
  if (http::string_to_verb(request.method) == http::verb::unknown) {
    return Status::InvalidArgument("unknown HTTP method " + request.method);
  }
  net::io_context ioc;
  tcp::resolver::results_type endpoints;
  if (Status s = Resolve(ioc, u, opt, &endpoints); !s.ok()) return s;
  http::response<http::string_body> res;
  Status s;
  beast::error_code ec;
  if (u.tls) {
    ssl::context ctx(ssl::context::tls_client);
    ctx.set_default_verify_paths();  // the system CAs (or $SSL_CERT_FILE / $SSL_CERT_DIR)
    ctx.set_verify_mode(ssl::verify_peer);
    beast::ssl_stream<beast::tcp_stream> stream(ioc, ctx);
    if (!SSL_set_tlsext_host_name(stream.native_handle(), u.host.c_str()))
      return Status::IoError(u.host + ": cannot set SNI");
    stream.set_verify_callback(ssl::host_name_verification(u.host));
    beast::tcp_stream& tcp_layer = beast::get_lowest_layer(stream);
    tcp_layer.expires_after(opt.timeout);
    ec = RunOne(ioc, [&](auto handler) { tcp_layer.async_connect(endpoints, std::move(handler)); });
    if (ec) return Status::IoError(u.host + ": connect: " + ec.message());
    tcp_layer.expires_after(opt.timeout);
    ec = RunOne(ioc, [&](auto handler) {
      stream.async_handshake(ssl::stream_base::client, std::move(handler));
    });
    if (ec) return Status::IoError(u.host + ": TLS handshake: " + ec.message());
    s = Exchange(ioc, stream, tcp_layer, u, request, opt, &res);
  } else {
    beast::tcp_stream stream(ioc);
    stream.expires_after(opt.timeout);
    ec = RunOne(ioc, [&](auto handler) { stream.async_connect(endpoints, std::move(handler)); });
    if (ec) return Status::IoError(u.host + ": connect: " + ec.message());
    s = Exchange(ioc, stream, stream, u, request, opt, &res);
  }
  if (!s.ok()) return Status::IoError(u.host + ": " + s.message());
  response->status = res.result_int();
  response->location = std::string(res[http::field::location]);
  response->retry_after = std::string(res[http::field::retry_after]);
  response->body = std::move(res.body());
  // Relative redirects are resolved against the request's origin.
  if (response->location.rfind("/", 0) == 0) {
    const std::string host = u.host.find(':') != std::string::npos ? "[" + u.host + "]" : u.host;
    response->location =
        (u.tls ? "https://" : "http://") + host + ":" + u.port + response->location;
  }
  return Status::Ok();
}

Status HttpGet(const std::string& url_text, const HttpGetOptions& opt, std::string* body) {
  HttpRequest request;
  request.url = url_text;
  request.headers = {{"Accept", "application/json"}, {"User-Agent", "ccmon-pricing/0.1"}};
  for (int hop = 0; hop <= opt.max_redirects; ++hop) {
    HttpResponse res;
    if (Status s = HttpExchange(request, opt, &res); !s.ok()) return s;
    if (res.status >= 300 && res.status < 400 && !res.location.empty()) {
      request.url = res.location;
      continue;
    }
    if (res.status != 200)
      return Status::IoError(request.url + ": HTTP " + std::to_string(res.status));
    *body = std::move(res.body);
    return Status::Ok();
  }
  return Status::IoError(url_text + ": too many redirects");
}

}  // namespace ccmon
