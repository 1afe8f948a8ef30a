#include "http/http_client.h"

#include <openssl/crypto.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/version.hpp>
#include <optional>

#include "http/header.h"
#include "http/url.h"

namespace ccmon {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

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

// Everything about a request that can be wrong without the network, checked before it.
Status ValidateRequest(const HttpRequest& request, HttpUrl* url) {
  if (Status s = ParseHttpUrl(request.url, url); !s.ok()) return s;
  if (!IsHttpToken(request.method) || http::string_to_verb(request.method) == http::verb::unknown) {
    return Status::InvalidArgument("unknown HTTP method '" + request.method + "'");
  }
  for (const auto& [name, value] : request.headers) {
    if (Status s = ValidateHeaderField(name, value); !s.ok()) return s;
  }
  return Status::Ok();
}

// A PEM file for the TLS context, read through the Env with a cap.
Status ReadPem(Env* env, const char* what, const std::string& path, std::string* out) {
  Status s = ReadFileToString(env, path, kMaxPemFileBytes, out);
  if (!s.ok()) return Status::InvalidArgument(std::string(what) + ": " + s.message());
  return Status::Ok();
}

Status ConfigureTls(const HttpClientOptions& opt, ssl::context& ctx) {
  Env* env = opt.env ? opt.env : Env::Default();
  beast::error_code ec;
  if (opt.insecure_skip_verify) {
    ctx.set_verify_mode(ssl::verify_none);
  } else {
    if (opt.ca_file.empty()) {
      ctx.set_default_verify_paths();  // the system CAs (or $SSL_CERT_FILE / $SSL_CERT_DIR)
    } else {
      std::string pem;
      if (Status s = ReadPem(env, "CA file", opt.ca_file, &pem); !s.ok()) return s;
      ctx.add_certificate_authority(net::buffer(pem), ec);
      if (ec) {
        return Status::InvalidArgument("CA file " + opt.ca_file + ": no PEM certificate in it (" +
                                       ec.message() + ")");
      }
    }
    ctx.set_verify_mode(ssl::verify_peer);
  }
  if (opt.client_cert_file.empty() != opt.client_key_file.empty()) {
    return Status::InvalidArgument(
        "a client certificate needs both a certificate file and a key file");
  }
  if (!opt.client_cert_file.empty()) {
    std::string cert, key;
    if (Status s = ReadPem(env, "client certificate", opt.client_cert_file, &cert); !s.ok())
      return s;
    if (Status s = ReadPem(env, "client key", opt.client_key_file, &key); !s.ok()) return s;
    // The key first: OpenSSL then drops a key that does not match the certificate loaded after
    // it, and the check below can say so plainly.
    ctx.use_private_key(net::buffer(key), ssl::context::pem, ec);
    OPENSSL_cleanse(key.data(), key.size());  // the key's bytes do not outlive the exchange
    if (ec) {
      return Status::InvalidArgument("client key " + opt.client_key_file +
                                     ": not a PEM private key (" + ec.message() + ")");
    }
    ctx.use_certificate_chain(net::buffer(cert), ec);
    if (ec) {
      return Status::InvalidArgument("client certificate " + opt.client_cert_file +
                                     ": not a PEM certificate (" + ec.message() + ")");
    }
    if (SSL_CTX_check_private_key(ctx.native_handle()) != 1) {
      return Status::InvalidArgument("client key " + opt.client_key_file +
                                     " does not match the certificate " + opt.client_cert_file);
    }
  }
  return Status::Ok();
}

template <class Stream>
Status Exchange(net::io_context& ioc, Stream& stream, beast::tcp_stream& tcp_layer,
                const HttpUrl& u, const HttpRequest& request, const HttpClientOptions& opt,
                http::response<http::string_body>* res) {
  http::request<http::string_body> req{http::string_to_verb(request.method), u.target, 11};
  req.set(http::field::host, u.HostHeader());
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
  beast::flat_buffer buffer;  // kept across responses: it may hold the start of the next one
  std::optional<http::response_parser<http::string_body>> parser_storage;
  // Interim (1xx) responses may precede the final one (RFC 9110 section 15.2), e.g. a
  // "100 Continue" nobody asked for: they are skipped. The final header must arrive within one
  // timeout however many come first, so a server dripping interim responses cannot hold the
  // exchange open. 101 switches protocols, which was never asked for: an error.
  tcp_layer.expires_after(opt.timeout);
  for (int interim = 0;; ++interim) {
    auto& p = parser_storage.emplace();
    p.body_limit(opt.max_body_bytes);
    ec = RunOne(
        ioc, [&](auto handler) { http::async_read_header(stream, buffer, p, std::move(handler)); });
    if (ec) return Status::IoError("read: " + ec.message());
    const unsigned status = p.get().result_int();
    if (status < 100 || status > 199) break;
    if (status == 101) {
      return Status::IoError("read: HTTP 101 (Switching Protocols), which was not asked for");
    }
    if (interim + 1 > kMaxInterimResponses) {
      return Status::IoError("read: more than " + std::to_string(kMaxInterimResponses) +
                             " interim (1xx) responses");
    }
  }
  http::response_parser<http::string_body>& parser = *parser_storage;
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

Status Resolve(net::io_context& ioc, const HttpUrl& u, const HttpClientOptions& opt,
               tcp::resolver::results_type* out) {
  tcp::resolver resolver(ioc);
  std::optional<beast::error_code> result;
  resolver.async_resolve(u.host, std::to_string(u.port),
                         [&](beast::error_code ec, tcp::resolver::results_type r) {
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

bool IsIpLiteral(const std::string& host) {
  beast::error_code ec;
  net::ip::make_address(host, ec);
  return !ec;
}

}  // namespace

Status HttpExchange(const HttpRequest& request, const HttpClientOptions& opt,
                    HttpResponse* response) {
  HttpUrl u;
  if (Status s = ValidateRequest(request, &u); !s.ok()) return s;
  std::optional<ssl::context> ctx;
  if (u.tls) {
    ctx.emplace(ssl::context::tls_client);
    if (Status s = ConfigureTls(opt, *ctx); !s.ok()) return s;
  }
  net::io_context ioc;
  tcp::resolver::results_type endpoints;
  if (Status s = Resolve(ioc, u, opt, &endpoints); !s.ok()) return s;
  http::response<http::string_body> res;
  Status s;
  beast::error_code ec;
  if (u.tls) {
    beast::ssl_stream<beast::tcp_stream> stream(ioc, *ctx);
    // SNI carries host names only (RFC 6066); an IP literal is verified against the
    // certificate's IP addresses without it.
    if (!IsIpLiteral(u.host) && !SSL_set_tlsext_host_name(stream.native_handle(), u.host.c_str()))
      return Status::IoError(u.host + ": cannot set SNI");
    if (!opt.insecure_skip_verify) stream.set_verify_callback(ssl::host_name_verification(u.host));
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
  response->headers.clear();
  for (const auto& field : res) {
    response->headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  response->body = std::move(res.body());
  return Status::Ok();
}

Status HttpGet(const std::string& url_text, const HttpClientOptions& opt, std::string* body) {
  HttpRequest request;
  request.url = url_text;
  request.headers = {{"Accept", "application/json"}, {"User-Agent", "ccmon-pricing/0.1"}};
  for (int hop = 0; hop <= opt.max_redirects; ++hop) {
    HttpResponse res;
    if (Status s = HttpExchange(request, opt, &res); !s.ok()) return s;
    const std::string location(res.Header("Location"));
    if (res.status >= 300 && res.status < 400 && !location.empty()) {
      HttpUrl from;
      if (Status s = ParseHttpUrl(request.url, &from); !s.ok()) return s;
      // Relative redirects ("/path") are resolved against the request's origin.
      std::string next = location.rfind("/", 0) == 0 && location.rfind("//", 0) != 0
                             ? from.Origin() + location
                             : location;
      HttpUrl to;
      if (Status s = ParseHttpUrl(next, &to); !s.ok()) {
        return Status::IoError(request.url + ": redirect to an unusable location: " + s.message());
      }
      if (from.tls && !to.tls) {
        return Status::IoError(request.url + ": refusing a redirect from https to http");
      }
      request.url = std::move(next);
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
