#include "http/http_client_internal.h"

#include <openssl/crypto.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/version.hpp>
#include <utility>

#include "base/env.h"
#include "http/header.h"

namespace ccmon {
namespace http_internal {
namespace {

// A PEM file for the TLS context, read through the Env with a cap.
Status ReadPem(Env* env, const char* what, const std::string& path, std::string* out) {
  Status s = ReadFileToString(env, path, kMaxPemFileBytes, out);
  if (!s.ok()) return Status::InvalidArgument(std::string(what) + ": " + s.message());
  return Status::Ok();
}

}  // namespace

Status ValidateRequest(const HttpRequest& request, HttpUrl* url) {
  if (Status s = ParseHttpUrl(request.url, url); !s.ok()) return s;
  if (!IsHttpToken(request.method) ||
      bhttp::string_to_verb(request.method) == bhttp::verb::unknown) {
    return Status::InvalidArgument("unknown HTTP method '" + request.method + "'");
  }
  for (const auto& [name, value] : request.headers) {
    if (Status s = ValidateHeaderField(name, value); !s.ok()) return s;
  }
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

Status Resolve(net::io_context& ioc, tcp::resolver& resolver, const HttpUrl& u,
               const HttpClientOptions& opt, tcp::resolver::results_type* out) {
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

Status ConnectPlain(net::io_context& ioc, const HttpUrl& u, const HttpClientOptions& opt,
                    const tcp::resolver::results_type& endpoints, beast::tcp_stream& stream) {
  stream.expires_after(opt.timeout);
  beast::error_code ec =
      RunOne(ioc, [&](auto handler) { stream.async_connect(endpoints, std::move(handler)); });
  if (ec) return Status::IoError(u.host + ": connect: " + ec.message());
  // Requests and responses alternate: Nagle's algorithm would hold a request's last segment
  // back for the delayed ACK of the previous one on a reused connection.
  stream.socket().set_option(tcp::no_delay(true), ec);
  return Status::Ok();
}

Status ConnectTls(net::io_context& ioc, const HttpUrl& u, const HttpClientOptions& opt,
                  const tcp::resolver::results_type& endpoints,
                  beast::ssl_stream<beast::tcp_stream>& stream) {
  // SNI carries host names only (RFC 6066); an IP literal is verified against the
  // certificate's IP addresses without it.
  if (!IsIpLiteral(u.host) && !SSL_set_tlsext_host_name(stream.native_handle(), u.host.c_str()))
    return Status::IoError(u.host + ": cannot set SNI");
  if (!opt.insecure_skip_verify) stream.set_verify_callback(ssl::host_name_verification(u.host));
  if (Status s = ConnectPlain(ioc, u, opt, endpoints, beast::get_lowest_layer(stream)); !s.ok())
    return s;
  beast::get_lowest_layer(stream).expires_after(opt.timeout);
  beast::error_code ec = RunOne(ioc, [&](auto handler) {
    stream.async_handshake(ssl::stream_base::client, std::move(handler));
  });
  if (ec) return Status::IoError(u.host + ": TLS handshake: " + ec.message());
  return Status::Ok();
}

bhttp::request<bhttp::string_body> BuildRequest(const HttpRequest& request, const HttpUrl& u) {
  bhttp::request<bhttp::string_body> req{bhttp::string_to_verb(request.method), u.target, 11};
  req.set(bhttp::field::host, u.HostHeader());
  req.set(bhttp::field::user_agent, "ccmon/0.1");
  for (const auto& [name, value] : request.headers) req.set(name, value);
  if (!request.body.empty() || req.method() == bhttp::verb::post) {
    req.body() = request.body;
    req.prepare_payload();
  }
  return req;
}

void CopyResponse(bhttp::response<bhttp::string_body>&& res, HttpResponse* response) {
  response->status = res.result_int();
  response->headers.clear();
  for (const auto& field : res) {
    response->headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  response->body = std::move(res.body());
}

}  // namespace http_internal
}  // namespace ccmon
