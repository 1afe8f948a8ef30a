// Internal to the http library: the pieces of one HTTP exchange on Boost.Beast that the
// one-shot client (http_client.cc) and the keep-alive transport (persistent_transport.cc)
// share. Not part of the library's interface: only http/*.cc include it.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <optional>
#include <string>

#include "base/status.h"
#include "http/http_client.h"
#include "http/transport.h"
#include "http/url.h"

namespace ccmon {
namespace http_internal {

namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

// Runs one asynchronous operation to completion on `ioc`. Beast's tcp_stream applies its
// expiry only to asynchronous operations, so every step goes through here: a stalled peer ends
// in beast::error::timeout instead of blocking forever. Handlers posted to `ioc` by other
// threads (the transport's Cancel) run here too.
template <class Start>
beast::error_code RunOne(net::io_context& ioc, Start start) {
  beast::error_code result = net::error::would_block;
  start([&result](beast::error_code ec, auto&&...) { result = ec; });
  ioc.restart();
  ioc.run();
  return result;
}

// Everything about a request that can be wrong without the network, checked before it:
// the URL (ParseHttpUrl), the method, every header (ValidateHeaderField). kInvalidArgument.
Status ValidateRequest(const HttpRequest& request, HttpUrl* url);

// Loads the TLS options (CA file or system store, client certificate and key, insecure) into
// `ctx`. kInvalidArgument for unreadable or unusable files.
Status ConfigureTls(const HttpClientOptions& opt, ssl::context& ctx);

// Resolves u.host:u.port with `resolver` (on `ioc`) within opt.timeout. kIoError; a
// resolver.cancel() from a handler run on `ioc` ends it at once.
Status Resolve(net::io_context& ioc, tcp::resolver& resolver, const HttpUrl& u,
               const HttpClientOptions& opt, tcp::resolver::results_type* out);

bool IsIpLiteral(const std::string& host);

// Connects `stream` (plain) or `stream`'s lowest layer and then the TLS handshake (SNI and host
// name verification unless insecure), each within opt.timeout. Errors are prefixed "host: ".
Status ConnectPlain(net::io_context& ioc, const HttpUrl& u, const HttpClientOptions& opt,
                    const tcp::resolver::results_type& endpoints, beast::tcp_stream& stream);
Status ConnectTls(net::io_context& ioc, const HttpUrl& u, const HttpClientOptions& opt,
                  const tcp::resolver::results_type& endpoints,
                  beast::ssl_stream<beast::tcp_stream>& stream);

// The request as Beast sends it: Host and User-Agent first, then the caller's headers (a
// header of the same name replaces the client's); a body (or any POST) gets Content-Length.
bhttp::request<bhttp::string_body> BuildRequest(const HttpRequest& request, const HttpUrl& u);

// Copies a Beast response into the transport's type (status, headers in order, body).
void CopyResponse(bhttp::response<bhttp::string_body>&& res, HttpResponse* response);

// Where a failed exchange stopped, which tells whether the server can have seen the request.
enum class ExchangeFailure {
  kNone,
  kWrite,            // writing the request failed
  kNothingReceived,  // the response's first read failed before a single byte arrived
  kPartiallyRead,    // a response had begun (or the read timed out): the server may have
                     // processed the request
};

// Writes `req` and reads the final response (interim 1xx responses skipped) on an open
// stream. `buffer` holds bytes read past the response (the caller keeps it with the
// connection). On failure *failed_at says where (see ExchangeFailure).
template <class Stream>
Status WriteAndRead(net::io_context& ioc, Stream& stream, beast::tcp_stream& tcp_layer,
                    bhttp::request<bhttp::string_body>& req, const HttpClientOptions& opt,
                    beast::flat_buffer& buffer, bhttp::response<bhttp::string_body>* res,
                    ExchangeFailure* failed_at) {
  *failed_at = ExchangeFailure::kNone;
  tcp_layer.expires_after(opt.timeout);
  beast::error_code ec =
      RunOne(ioc, [&](auto handler) { bhttp::async_write(stream, req, std::move(handler)); });
  if (ec) {
    *failed_at = ExchangeFailure::kWrite;
    return Status::IoError("write: " + ec.message());
  }
  std::optional<bhttp::response_parser<bhttp::string_body>> parser_storage;
  // Interim (1xx) responses may precede the final one (RFC 9110 section 15.2), e.g. a
  // "100 Continue" nobody asked for: they are skipped. The final header must arrive within one
  // timeout however many come first, so a server dripping interim responses cannot hold the
  // exchange open. 101 switches protocols, which was never asked for: an error.
  tcp_layer.expires_after(opt.timeout);
  for (int interim = 0;; ++interim) {
    auto& p = parser_storage.emplace();
    p.body_limit(opt.max_body_bytes);
    const size_t buffered_before = buffer.size();
    ec = RunOne(ioc, [&](auto handler) {
      bhttp::async_read_header(stream, buffer, p, std::move(handler));
    });
    if (ec) {
      const bool nothing = interim == 0 && buffered_before == 0 && buffer.size() == 0 &&
                           !p.got_some() && ec != beast::error::timeout;
      *failed_at = nothing ? ExchangeFailure::kNothingReceived : ExchangeFailure::kPartiallyRead;
      return Status::IoError("read: " + ec.message());
    }
    const unsigned status = p.get().result_int();
    if (status < 100 || status > 199) break;
    if (status == 101) {
      *failed_at = ExchangeFailure::kPartiallyRead;
      return Status::IoError("read: HTTP 101 (Switching Protocols), which was not asked for");
    }
    if (interim + 1 > kMaxInterimResponses) {
      *failed_at = ExchangeFailure::kPartiallyRead;
      return Status::IoError("read: more than " + std::to_string(kMaxInterimResponses) +
                             " interim (1xx) responses");
    }
  }
  bhttp::response_parser<bhttp::string_body>& parser = *parser_storage;
  *failed_at = ExchangeFailure::kPartiallyRead;
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
              [&](auto handler) { bhttp::async_read(stream, buffer, parser, std::move(handler)); });
  if (ec) return Status::IoError("read: " + ec.message());
  *failed_at = ExchangeFailure::kNone;
  *res = parser.release();
  return Status::Ok();
}

}  // namespace http_internal
}  // namespace ccmon
