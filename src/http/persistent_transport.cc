#include "http/persistent_transport.h"

#include <poll.h>

#include <boost/asio/post.hpp>
#include <boost/beast/ssl.hpp>
#include <optional>
#include <utility>

#include "http/http_client_internal.h"
#include "http/url.h"

namespace ccmon {

namespace beast = http_internal::beast;
namespace bhttp = http_internal::bhttp;
namespace net = http_internal::net;
namespace ssl = http_internal::ssl;
using http_internal::ExchangeFailure;
using http_internal::tcp;

class PersistentHttpTransport::Impl {
 public:
  Impl(HttpClientOptions options, std::stop_token stop)
      : options_(std::move(options)), resolver_(ioc_) {
    // Registered last: a stop already requested cancels at once, and the callback is
    // unregistered (waiting for a running one) before anything it touches is destroyed.
    on_stop_.emplace(std::move(stop), CancelOnStop{this});
  }
  ~Impl() { on_stop_.reset(); }

  void Cancel() {
    if (cancelled_.exchange(true)) return;
    // The sockets belong to the exchanging thread: the abort runs there, inside whatever
    // RunOne/Resolve is running now (so its operation completes with operation_aborted), or
    // at the next one. Exchange checks cancelled_ before every step, so nothing new starts.
    net::post(ioc_, [this] { AbortIo(); });
  }
  bool cancelled() const { return cancelled_.load(); }
  bool connected() const { return conn_ != nullptr; }

  PersistentTransportStats stats() const {
    PersistentTransportStats s;
    s.exchanges = exchanges_.load(std::memory_order_relaxed);
    s.connections_opened = connections_opened_.load(std::memory_order_relaxed);
    s.reused = reused_.load(std::memory_order_relaxed);
    s.stale_closed = stale_closed_.load(std::memory_order_relaxed);
    s.repeated = repeated_.load(std::memory_order_relaxed);
    return s;
  }

  Status Exchange(const HttpRequest& request, HttpResponse* response) {
    exchanges_.fetch_add(1, std::memory_order_relaxed);
    if (cancelled()) return Cancelled();
    HttpUrl u;
    if (Status s = http_internal::ValidateRequest(request, &u); !s.ok()) return s;
    const std::string origin = u.Origin();
    if (conn_ && conn_->origin != origin) Close();
    if (conn_ && PeerClosed()) {
      stale_closed_.fetch_add(1, std::memory_order_relaxed);
      Close();
    }
    bool reused = conn_ != nullptr;
    bhttp::request<bhttp::string_body> req = http_internal::BuildRequest(request, u);
    for (;;) {
      if (!conn_) {
        reused = false;
        if (Status s = Connect(u, origin); !s.ok()) {
          Close();
          return cancelled() ? Cancelled() : s;
        }
      } else {
        reused_.fetch_add(1, std::memory_order_relaxed);
      }
      if (cancelled()) {
        Close();
        return Cancelled();
      }
      bhttp::response<bhttp::string_body> res;
      ExchangeFailure failed_at = ExchangeFailure::kNone;
      Status s =
          conn_->tls
              ? http_internal::WriteAndRead(ioc_, *conn_->tls, beast::get_lowest_layer(*conn_->tls),
                                            req, options_, conn_->buffer, &res, &failed_at)
              : http_internal::WriteAndRead(ioc_, *conn_->plain, *conn_->plain, req, options_,
                                            conn_->buffer, &res, &failed_at);
      if (cancelled()) {
        Close();
        return Cancelled();
      }
      if (s.ok()) {
        // Bytes beyond the response were never asked for: the connection's framing can no
        // longer be trusted.
        if (!res.keep_alive() || res.need_eof() || !req.keep_alive() || conn_->buffer.size() > 0)
          Close();
        http_internal::CopyResponse(std::move(res), response);
        return Status::Ok();
      }
      Close();
      if (reused && (failed_at == ExchangeFailure::kWrite ||
                     failed_at == ExchangeFailure::kNothingReceived)) {
        // The server closed the idle connection as we reused it: nothing of the request can
        // have been processed. Once, on a fresh connection.
        repeated_.fetch_add(1, std::memory_order_relaxed);
        reused = false;
        continue;
      }
      return Status::IoError(u.host + ": " + s.message());
    }
  }

 private:
  struct Connection {
    std::string origin;
    std::optional<ssl::context> tls_context;  // outlives the stream below
    std::unique_ptr<beast::tcp_stream> plain;
    std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> tls;
    beast::flat_buffer buffer;  // bytes read past a response (none, normally)

    beast::tcp_stream& tcp_layer() { return tls ? beast::get_lowest_layer(*tls) : *plain; }
  };
  struct CancelOnStop {
    Impl* impl;
    void operator()() const { impl->Cancel(); }
  };

  static Status Cancelled() { return Status::IoError("exchange cancelled"); }

  Status Connect(const HttpUrl& u, const std::string& origin) {
    auto conn = std::make_unique<Connection>();
    conn->origin = origin;
    if (u.tls) {
      conn->tls_context.emplace(ssl::context::tls_client);
      if (Status s = http_internal::ConfigureTls(options_, *conn->tls_context); !s.ok()) return s;
    }
    tcp::resolver::results_type endpoints;
    if (Status s = http_internal::Resolve(ioc_, resolver_, u, options_, &endpoints); !s.ok())
      return s;
    if (cancelled()) return Cancelled();
    // Installed before connecting, so that a cancellation's AbortIo finds the socket to close.
    if (u.tls) {
      conn->tls = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(ioc_, *conn->tls_context);
      conn_ = std::move(conn);
      if (Status s = http_internal::ConnectTls(ioc_, u, options_, endpoints, *conn_->tls); !s.ok())
        return s;
    } else {
      conn->plain = std::make_unique<beast::tcp_stream>(ioc_);
      conn_ = std::move(conn);
      if (Status s = http_internal::ConnectPlain(ioc_, u, options_, endpoints, *conn_->plain);
          !s.ok())
        return s;
    }
    connections_opened_.fetch_add(1, std::memory_order_relaxed);
    return Status::Ok();
  }

  // True when the idle connection can no longer carry a request: the peer closed or reset it,
  // or sent something nobody asked for (plain HTTP; a TLS connection may hold a late session
  // ticket, which is harmless). Never blocks.
  bool PeerClosed() {
    pollfd p{};
    p.fd = conn_->tcp_layer().socket().native_handle();
    p.events = POLLRDHUP | (conn_->tls ? 0 : POLLIN);
    if (::poll(&p, 1, 0) < 0) return true;
    return (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL | POLLIN)) != 0;
  }

  void Close() {
    if (!conn_) return;
    beast::error_code ec;
    conn_->tcp_layer().socket().shutdown(tcp::socket::shutdown_both, ec);
    conn_->tcp_layer().close();
    conn_.reset();
  }

  // On the exchanging thread (posted by Cancel): whatever is pending completes with
  // operation_aborted.
  void AbortIo() {
    resolver_.cancel();
    if (conn_) conn_->tcp_layer().close();
  }

  HttpClientOptions options_;
  net::io_context ioc_;  // destroyed last: pending handlers die with it, uninvoked
  tcp::resolver resolver_;
  std::unique_ptr<Connection> conn_;
  std::atomic<bool> cancelled_{false};
  std::atomic<uint64_t> exchanges_{0}, connections_opened_{0}, reused_{0}, stale_closed_{0},
      repeated_{0};
  std::optional<std::stop_callback<CancelOnStop>> on_stop_;
};

PersistentHttpTransport::PersistentHttpTransport(HttpClientOptions options, std::stop_token stop)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(stop))) {}

PersistentHttpTransport::~PersistentHttpTransport() = default;

Status PersistentHttpTransport::Exchange(const HttpRequest& request, HttpResponse* response) {
  return impl_->Exchange(request, response);
}
void PersistentHttpTransport::Cancel() { impl_->Cancel(); }
bool PersistentHttpTransport::cancelled() const { return impl_->cancelled(); }
bool PersistentHttpTransport::connected() const { return impl_->connected(); }
PersistentTransportStats PersistentHttpTransport::stats() const { return impl_->stats(); }

}  // namespace ccmon
