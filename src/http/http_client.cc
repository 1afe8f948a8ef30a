#include "http/http_client.h"

#include <optional>

#include "http/http_client_internal.h"
#include "http/url.h"

namespace ccmon {

namespace {
namespace beast = http_internal::beast;
namespace bhttp = http_internal::bhttp;
namespace net = http_internal::net;
namespace ssl = http_internal::ssl;
using http_internal::BuildRequest;
using http_internal::ConfigureTls;
using http_internal::ConnectPlain;
using http_internal::ConnectTls;
using http_internal::CopyResponse;
using http_internal::ExchangeFailure;
using http_internal::Resolve;
using http_internal::tcp;
using http_internal::ValidateRequest;
using http_internal::WriteAndRead;
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
  tcp::resolver resolver(ioc);
  tcp::resolver::results_type endpoints;
  if (Status s = Resolve(ioc, resolver, u, opt, &endpoints); !s.ok()) return s;
  bhttp::request<bhttp::string_body> req = BuildRequest(request, u);
  bhttp::response<bhttp::string_body> res;
  beast::flat_buffer buffer;
  ExchangeFailure failed_at;
  Status s;
  if (u.tls) {
    beast::ssl_stream<beast::tcp_stream> stream(ioc, *ctx);
    if (s = ConnectTls(ioc, u, opt, endpoints, stream); !s.ok()) return s;
    s = WriteAndRead(ioc, stream, beast::get_lowest_layer(stream), req, opt, buffer, &res,
                     &failed_at);
  } else {
    beast::tcp_stream stream(ioc);
    if (s = ConnectPlain(ioc, u, opt, endpoints, stream); !s.ok()) return s;
    s = WriteAndRead(ioc, stream, stream, req, opt, buffer, &res, &failed_at);
  }
  if (!s.ok()) return Status::IoError(u.host + ": " + s.message());
  CopyResponse(std::move(res), response);
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
