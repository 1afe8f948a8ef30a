#include "http/server.h"

#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <utility>

#include "http/header.h"
#include "http/http_client.h"  // kMaxPemFileBytes

namespace ccmon {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

std::string_view ServerRequest::Header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (EqualsIgnoreCase(n, name)) return v;
  }
  return {};
}

std::string_view ServerRequest::Path() const {
  std::string_view t = target;
  return t.substr(0, t.find('?'));
}

ServerResponse ServerResponse::Text(unsigned status, std::string body, std::string content_type) {
  ServerResponse r;
  r.status = status;
  r.headers.emplace_back("Content-Type", std::move(content_type));
  r.body = std::move(body);
  return r;
}

ResponseCompletion::ResponseCompletion(ResponseCompletion&& other) noexcept
    : send_(std::exchange(other.send_, nullptr)) {}

ResponseCompletion& ResponseCompletion::operator=(ResponseCompletion&& other) noexcept {
  if (this != &other) {
    ResponseCompletion dropped(std::move(*this));  // answers 500 if it was not called
    send_ = std::exchange(other.send_, nullptr);
  }
  return *this;
}

ResponseCompletion::~ResponseCompletion() {
  if (!send_) return;
  try {
    (*this)(ServerResponse::Text(500, "Internal Server Error\n"));
  } catch (...) {
    // A destructor: nothing may escape (the server's own sender does not throw).
  }
}

void ResponseCompletion::operator()(ServerResponse response) {
  std::function<void(ServerResponse)> send = std::exchange(send_, nullptr);
  if (send) send(std::move(response));
}

ServerResponse AsyncHttpHandler::Handle(const ServerRequest& request) {
  struct Wait {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<ServerResponse> response;
  };
  auto wait = std::make_shared<Wait>();
  HandleAsync(request, ResponseCompletion([wait](ServerResponse r) {
                std::lock_guard<std::mutex> lock(wait->mu);
                wait->response = std::move(r);
                wait->cv.notify_all();
              }));
  std::unique_lock<std::mutex> lock(wait->mu);
  wait->cv.wait(lock, [&] { return wait->response.has_value(); });
  return std::move(*wait->response);
}

namespace {

// After a response that closes the connection, unread request bytes are drained for at most
// this long (and this many bytes) before the socket is closed, so that a close with unread data
// does not turn into a reset that destroys the response before the peer read it (a 413 sent
// while the client is still uploading).
constexpr std::chrono::milliseconds kLingerTime{1000};
constexpr size_t kLingerBytes = size_t(1) << 20;
// Transient accept failures (out of file descriptors, memory) are retried after this pause
// instead of in a busy loop.
constexpr std::chrono::milliseconds kAcceptRetry{100};

class SessionBase;

}  // namespace

struct HttpServer::State {
  State(ServerOptions opt, HttpHandler* h)
      : options(std::move(opt)), handler(h), async_handler(dynamic_cast<AsyncHttpHandler*>(h)) {}

  void Log(std::string_view line) {
    if (options.log) {
      options.log(line);
    } else {
      std::fprintf(stderr, "ccmon http server: %.*s\n", int(line.size()), line.data());
    }
  }
  bool MethodAllowed(std::string_view m) const {
    for (const auto& a : options.allowed_methods) {
      if (a == m) return true;
    }
    return false;
  }

  // An async completion was called (or dropped): Stop may be waiting for the last one. The
  // count falls under `mu`, and nothing of the state is touched after the lock is released:
  // once Stop has seen 0 (under `mu`) the server may be destroyed at once, so a check of the
  // count or of stopping_flag after an unlocked decrement would read freed memory (TSan found
  // it in HttpServerAsync.ManyConnectionsWithCompletionsFromAWorkerThread).
  void CompletionDone() {
    std::lock_guard<std::mutex> lock(mu);
    if (pending_completions.fetch_sub(1) == 1) cv.notify_all();
  }

  const ServerOptions options;
  HttpHandler* const handler;
  AsyncHttpHandler* const async_handler;  // handler, when it answers through completions
  std::string allow_header;               // "GET, HEAD, POST"

  // Declared before the io_context: sessions that outlive Stop() (only if a wait ran out) are
  // destroyed with it and still find these.
  std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;  // under mu
  // The same, readable without the lock: a response finished after Stop began closes its
  // connection.
  std::atomic<bool> stopping_flag{false};
  std::unordered_map<SessionBase*, std::weak_ptr<SessionBase>> sessions;  // under mu
  size_t serving = 0;                                                     // under mu
  size_t refusing = 0;                                                    // under mu

  std::atomic<uint64_t> accepted{0}, refused{0}, requests{0}, bad_requests{0}, timeouts{0},
      tls_failures{0}, handler_failures{0}, handler_timeouts{0};
  // Completions handed to the async handler and not yet called or dropped.
  std::atomic<uint64_t> pending_completions{0};

  std::optional<ssl::context> tls;
  net::io_context ioc;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  net::strand<net::io_context::executor_type> accept_strand{net::make_strand(ioc)};
  tcp::acceptor acceptor{accept_strand};
  net::steady_timer accept_retry{accept_strand};
  std::vector<std::thread> threads;
};

namespace {

using State = HttpServer::State;

class SessionBase : public std::enable_shared_from_this<SessionBase> {
 public:
  SessionBase(State* st, bool counted) : st_(st), counted_(counted) {}
  virtual ~SessionBase() {
    std::lock_guard<std::mutex> lock(st_->mu);
    st_->sessions.erase(this);
    (counted_ ? st_->serving : st_->refusing)--;
    st_->cv.notify_all();
  }
  // Starts the session on its strand.
  virtual void Run() = 0;
  // From Stop(), any thread: closes the connection if it is waiting for a request (or at once
  // when `force`), else marks it to close after the response in flight.
  virtual void Shutdown(bool force) = 0;

 protected:
  State* const st_;
  const bool counted_;  // against max_connections (else one being refused)
};

std::string_view View(beast::string_view s) { return {s.data(), s.size()}; }

const char* ReasonText(unsigned status) {
  switch (status) {
    case 400:
      return "Bad Request\n";
    case 405:
      return "Method Not Allowed\n";
    case 413:
      return "Content Too Large\n";
    case 431:
      return "Request Header Fields Too Large\n";
    case 500:
      return "Internal Server Error\n";
    case 503:
      return "Service Unavailable\n";
    case 505:
      return "HTTP Version Not Supported\n";
  }
  return "\n";
}

// Turns the handler's answer into the response sent, or says why it cannot be sent as given.
bool BuildResponse(ServerResponse&& in, bool head, unsigned version,
                   http::response<http::string_body>* out, std::string* why) {
  if (in.status < 200 || in.status > 599) {
    *why = "status " + std::to_string(in.status) + " is not a final status (200..599)";
    return false;
  }
  out->result(in.status);
  out->version(version);
  for (auto& [name, value] : in.headers) {
    if (EqualsIgnoreCase(name, "Content-Length") || EqualsIgnoreCase(name, "Transfer-Encoding") ||
        EqualsIgnoreCase(name, "Connection")) {
      continue;  // the server's framing
    }
    if (Status s = ValidateHeaderField(name, value); !s.ok()) {
      *why = "response header refused: " + s.message();
      return false;
    }
    out->insert(name, value);
  }
  if (in.status == 204 || in.status == 304) return true;  // no body, no length
  out->content_length(in.body.size());
  if (!head) out->body() = std::move(in.body);
  return true;
}

std::string PeerString(const tcp::endpoint& ep) {
  if (ep.address().is_v6())
    return "[" + ep.address().to_string() + "]:" + std::to_string(ep.port());
  return ep.address().to_string() + ":" + std::to_string(ep.port());
}

template <class Stream>
class Session final : public SessionBase {
  static constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;
  using Clock = std::chrono::steady_clock;
  using TimePoint = Clock::time_point;

 public:
  template <class... Args>
  Session(State* st, bool counted, std::string peer, Args&&... args)
      : SessionBase(st, counted),
        stream_(std::forward<Args>(args)...),
        buffer_(st->options.max_header_bytes + (size_t(64) << 10)),
        peer_(std::move(peer)) {}

  void Run() override {
    net::dispatch(stream_.get_executor(),
                  [self = Self()] { self->Guarded([&] { self->Begin(); }); });
  }

  void Shutdown(bool force) override {
    net::post(stream_.get_executor(), [self = Self(), force] {
      self->stopping_ = true;
      if (force || self->phase_ == Phase::kHandshake || self->phase_ == Phase::kIdle ||
          self->phase_ == Phase::kHeader || self->phase_ == Phase::kLinger) {
        self->CloseNow();
      }
    });
  }

 private:
  // kHandling: an async handler has the request; the session waits for its completion.
  enum class Phase { kHandshake, kIdle, kHeader, kBody, kHandling, kWriting, kLinger, kClosed };

  std::shared_ptr<Session> Self() { return std::static_pointer_cast<Session>(shared_from_this()); }
  beast::tcp_stream& Tcp() { return beast::get_lowest_layer(stream_); }
  const ServerOptions& Opt() const { return st_->options; }

  // Every completion runs through here: nothing thrown (bad_alloc, a Beast invariant) escapes
  // into the io thread; the connection is closed instead.
  template <class F>
  void Guarded(F&& f) {
    try {
      f();
    } catch (const std::exception& e) {
      st_->Log(std::string("session ") + peer_ + ": " + e.what());
      CloseNow();
    } catch (...) {
      st_->Log("session " + peer_ + ": unknown exception");
      CloseNow();
    }
  }

  void Begin() {
    bool stopping;
    {
      std::lock_guard<std::mutex> lock(st_->mu);
      stopping = st_->stopping;
    }
    if (stopping) return CloseNow();
    if (!counted_) {
      // Over max_connections: a 503 over plain HTTP; over TLS that would need a handshake, so
      // the connection is closed.
      if constexpr (kTls) return CloseNow();
      return Reply(503, /*close=*/true);
    }
    if constexpr (kTls) {
      phase_ = Phase::kHandshake;
      SetDeadline(Opt().read_timeout);
      stream_.async_handshake(ssl::stream_base::server, [self = Self()](beast::error_code ec) {
        self->Guarded([&] { self->OnHandshake(ec); });
      });
    } else {
      WaitRequest();
    }
  }

  void OnHandshake(beast::error_code ec) {
    if (ec) {
      // (A timeout closed the socket and counted itself: the handshake ends aborted.)
      if (ec != net::error::operation_aborted && phase_ != Phase::kClosed) ++st_->tls_failures;
      return CloseNow();
    }
    WaitRequest();
  }

  // Waits for the first byte of the next request under idle_timeout.
  void WaitRequest() {
    if (stopping_) return CloseGracefully();
    phase_ = Phase::kIdle;
    if (buffer_.size() > 0) return ReadHeader();  // pipelined
    SetDeadline(Opt().idle_timeout);
    // Into all the room the buffer has (a request's body was reserved in it before): a request
    // that has arrived whole is read by this one call, not 4 KiB of it and the rest in pieces.
    const size_t room = std::max<size_t>(4096, buffer_.capacity() - buffer_.size());
    stream_.async_read_some(buffer_.prepare(room), [self = Self()](beast::error_code ec, size_t n) {
      self->Guarded([&] {
        if (ec) return self->CloseNow();
        self->buffer_.commit(n);
        self->ReadHeader();
      });
    });
  }

  // The rest of the request, header and body, under one read_timeout.
  void ReadHeader() {
    phase_ = Phase::kHeader;
    parser_.emplace();
    parser_->header_limit(uint32_t(std::min<size_t>(Opt().max_header_bytes, UINT32_MAX)));
    parser_->body_limit(Opt().max_body_bytes);
    SetDeadline(Opt().read_timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = Self()](beast::error_code ec, size_t) {
                              self->Guarded([&] { self->OnHeader(ec); });
                            });
  }

  void OnHeader(beast::error_code ec) {
    if (ec) return OnReadError(ec);
    const auto& req = parser_->get();
    if (req.version() != 10 && req.version() != 11) {
      ++st_->bad_requests;
      return Reply(505, true);
    }
    if (auto length = parser_->content_length(); length && *length > Opt().max_body_bytes) {
      ++st_->bad_requests;
      return Reply(413, true);  // before reading any of it
    } else if (length) {
      // Room for the whole body (within the buffer's bound), so that it is read in one call
      // rather than in pieces as the buffer doubles; kept for the connection's next requests.
      buffer_.reserve(std::min(buffer_.max_size(), std::max(buffer_.size(), size_t(*length))));
    }
    phase_ = Phase::kBody;
    if (req.version() == 11 && !parser_->is_done() &&
        EqualsIgnoreCase(View(req[http::field::expect]), "100-continue")) {
      static const char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
      net::async_write(stream_, net::buffer(kContinue, sizeof(kContinue) - 1),
                       [self = Self()](beast::error_code ec, size_t) {
                         self->Guarded([&] {
                           if (ec) return self->OnReadError(ec);
                           self->ReadBody();
                         });
                       });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    http::async_read(stream_, buffer_, *parser_, [self = Self()](beast::error_code ec, size_t) {
      self->Guarded([&] {
        if (ec) return self->OnReadError(ec);
        self->Dispatch();
      });
    });
  }

  void OnReadError(beast::error_code ec) {
    if (ec == http::error::header_limit) {
      ++st_->bad_requests;
      return Reply(431, true);
    }
    if (ec == http::error::body_limit) {
      ++st_->bad_requests;
      return Reply(413, true);
    }
    if (ec.category() == http::make_error_code(http::error::bad_method).category() &&
        ec != http::error::end_of_stream && ec != http::error::partial_message &&
        ec != http::error::need_more) {
      ++st_->bad_requests;
      return Reply(400, true);  // malformed: bad method, target, version, field, chunk, …
    }
    CloseNow();  // the peer went away (EOF, reset, TLS truncation) or Stop closed us
  }

  void Dispatch() {
    auto& req = parser_->get();
    ++st_->requests;
    bool keep = Opt().keep_alive && req.keep_alive() && !stopping_;
    ServerRequest r;
    r.method = std::string(View(req.method_string()));
    if (r.method == "HEAD" && st_->MethodAllowed("GET")) {
      r.method = "GET";
      r.head = true;
    }
    if (!r.head && !st_->MethodAllowed(r.method)) {
      ServerResponse denied = ServerResponse::Text(405, ReasonText(405));
      denied.headers.emplace_back("Allow", st_->allow_header);
      return Respond(std::move(denied), false, keep);
    }
    r.target = std::string(View(req.target()));
    if (r.target.empty() || (r.target[0] != '/' && !(r.target == "*" && r.method == "OPTIONS"))) {
      ++st_->bad_requests;
      return Reply(400, true);  // absolute-form (proxy) or authority-form targets
    }
    for (const auto& f : req) {
      r.headers.emplace_back(std::string(View(f.name_string())), std::string(View(f.value())));
    }
    r.body = std::move(req.body());
    r.peer = peer_;
    r.tls = kTls;
    if (st_->async_handler != nullptr) return DispatchAsync(std::move(r), keep);
    ServerResponse answer;
    try {
      answer = st_->handler->Handle(r);
    } catch (const std::exception& e) {
      return Fail(r, std::string("handler threw: ") + e.what(), keep);
    } catch (...) {
      return Fail(r, "handler threw a non-standard exception", keep);
    }
    keep = keep && !st_->stopping_flag;  // Stop may have begun while the handler ran
    Respond(std::move(answer), r.head, keep, &r);
  }

  // Hands the request to the async handler with a completion that brings the answer back onto
  // this strand (or, called inline, straight to the code below), then waits for it without a
  // thread, under handler_timeout.
  void DispatchAsync(ServerRequest r, bool keep) {
    phase_ = Phase::kHandling;
    const uint64_t seq = ++handling_seq_;
    handling_head_ = r.head;
    handling_keep_ = keep;
    inline_response_.reset();
    ++st_->pending_completions;
    ResponseCompletion done([self = Self(), seq](ServerResponse response) mutable {
      State* st = self->st_;
      if (tl_dispatching == self.get()) {
        // Inline, inside HandleAsync on this strand: DispatchAsync sends it when it returns.
        self->inline_response_ = std::move(response);
        self.reset();
      } else {
        Session* s = self.get();
        net::post(s->stream_.get_executor(),
                  [self = std::move(self), seq, response = std::move(response)]() mutable {
                    self->Guarded([&] { self->OnCompletion(seq, std::move(response)); });
                  });
      }
      st->CompletionDone();  // last: the session is no longer held by this thread
    });
    std::string failure;
    tl_dispatching = this;
    try {
      st_->async_handler->HandleAsync(std::move(r), std::move(done));
    } catch (const std::exception& e) {
      failure = std::string("handler threw: ") + e.what();
    } catch (...) {
      failure = "handler threw a non-standard exception";
    }
    tl_dispatching = nullptr;
    if (!failure.empty()) {
      // The completion answers (500, dropped while unwinding, or whatever it was called with).
      ++st_->handler_failures;
      st_->Log("async handler from " + peer_ + ": " + failure);
    }
    if (inline_response_) {
      ServerResponse response = std::move(*inline_response_);
      inline_response_.reset();
      return OnCompletion(seq, std::move(response));
    }
    SetDeadline(Opt().handler_timeout);  // OnDeadline answers 503 in kHandling
  }

  void OnCompletion(uint64_t seq, ServerResponse response) {
    // Dropped: the connection closed (peer gone, Stop), or the handler timed out.
    if (phase_ != Phase::kHandling || seq != handling_seq_) return;
    const bool keep = handling_keep_ && !stopping_ && !st_->stopping_flag;
    Respond(std::move(response), handling_head_, keep);
  }

  void Fail(const ServerRequest& r, const std::string& why, bool keep) {
    ++st_->handler_failures;
    st_->Log(r.method + " " + r.target.substr(0, 200) + " from " + peer_ + ": " + why);
    Respond(ServerResponse::Text(500, ReasonText(500)), r.head, keep);
  }

  void Respond(ServerResponse&& answer, bool head, bool keep, const ServerRequest* r = nullptr) {
    res_ = {};
    std::string why;
    if (!BuildResponse(std::move(answer), head, parser_->get().version(), &res_, &why)) {
      if (r != nullptr) return Fail(*r, why, keep);
      if (phase_ == Phase::kHandling) {  // an async handler's answer
        ++st_->handler_failures;
        st_->Log("async handler from " + peer_ + ": " + why);
      }
      res_ = {};
      BuildResponse(ServerResponse::Text(500, ReasonText(500)), head, 11, &res_, &why);
    }
    Write(keep);
  }

  // A canned error answer, always closing (the rest of the request is not read).
  void Reply(unsigned status, bool close) {
    res_ = {};
    std::string why;
    ServerResponse r = ServerResponse::Text(status, ReasonText(status));
    if (status == 503) r.headers.emplace_back("Retry-After", "1");
    unsigned version = parser_ && parser_->is_header_done() ? parser_->get().version() : 11;
    if (version != 10) version = 11;
    BuildResponse(std::move(r), false, version, &res_, &why);
    Write(!close);
  }

  void Write(bool keep) {
    res_.keep_alive(keep);
    phase_ = Phase::kWriting;
    SetDeadline(Opt().write_timeout);
    http::async_write(stream_, res_, [self = Self(), keep](beast::error_code ec, size_t) {
      self->Guarded([&] {
        if (ec) return self->CloseNow();
        self->res_ = {};
        if (!keep) return self->CloseGracefully();
        self->WaitRequest();
      });
    });
  }

  // Half-closes, then drains what the peer still sends (bounded in time and bytes) before
  // closing, so that the last response is not destroyed by a reset.
  void CloseGracefully() {
    if (phase_ == Phase::kClosed) return;
    phase_ = Phase::kLinger;
    beast::error_code ignored;
    Tcp().socket().shutdown(tcp::socket::shutdown_send, ignored);
    SetDeadline(std::min(kLingerTime, Opt().read_timeout));
    lingered_ = 0;
    Drain();
  }

  void Drain() {
    // Raw TCP bytes, also under TLS: they are discarded unread.
    Tcp().async_read_some(net::buffer(scratch_), [self = Self()](beast::error_code ec, size_t n) {
      self->Guarded([&] {
        self->lingered_ += n;
        if (ec || self->lingered_ > kLingerBytes || self->phase_ != Phase::kLinger) {
          return self->CloseNow();
        }
        self->Drain();
      });
    });
  }

  // Every wait of the session is bounded by one deadline per phase, as Beast's expires_after
  // would bound each operation of the phase (the same absolute time for all of them), but with
  // one timer that is re-armed only when the new deadline is earlier than the pending one:
  // a later deadline is left to the pending wait, which re-arms itself for it when it fires
  // early. So a request costs no timer system call (Beast arms and cancels one per read and
  // write: a timerfd_settime each time the earliest timer changes) while each phase's bound is
  // kept exactly. On the strand.
  void SetDeadline(std::chrono::milliseconds d) {
    deadline_ = Clock::now() + d;
    if (deadline_armed_ <= deadline_) return;  // fires first, then re-arms (OnDeadline)
    ArmDeadline();
  }

  void ArmDeadline() {
    const uint64_t generation = ++deadline_generation_;
    deadline_armed_ = deadline_;
    deadline_timer_.expires_at(deadline_);  // cancels a pending wait: stale by its generation
    deadline_timer_.async_wait([self = Self(), generation](beast::error_code ec) {
      self->Guarded([&] { self->OnDeadline(ec, generation); });
    });
  }

  void OnDeadline(beast::error_code ec, uint64_t generation) {
    if (ec || generation != deadline_generation_ || phase_ == Phase::kClosed) return;
    deadline_armed_ = TimePoint::max();
    if (Clock::now() < deadline_) return ArmDeadline();  // a later phase's deadline
    switch (phase_) {
      case Phase::kHandling:
        ++st_->handler_timeouts;
        st_->Log("async handler from " + peer_ + ": no answer within " +
                 std::to_string(Opt().handler_timeout.count()) + " ms: 503");
        ++handling_seq_;  // the late completion is dropped
        return Reply(503, /*close=*/true);
      case Phase::kLinger:
        return CloseNow();  // the last response had its time: not a timeout
      case Phase::kHandshake:
        ++st_->tls_failures;
        ++st_->timeouts;
        return CloseNow();
      default:  // idle, header, body, writing: the pending operation ends aborted
        ++st_->timeouts;
        return CloseNow();
    }
  }

  void CloseNow() {
    phase_ = Phase::kClosed;
    // A closed connection waits for nothing; the pending wait held the session.
    ++deadline_generation_;
    deadline_armed_ = TimePoint::max();
    deadline_timer_.cancel();
    beast::error_code ignored;
    Tcp().socket().shutdown(tcp::socket::shutdown_both, ignored);
    Tcp().close();
  }

  // The session an io thread is handing a request to right now (inline completions).
  static thread_local Session* tl_dispatching;

  Stream stream_;
  // The phase's deadline (see SetDeadline); the timer is pending at deadline_armed_ (max: not
  // pending), never later than deadline_; a wait of an older generation is stale.
  net::steady_timer deadline_timer_{stream_.get_executor()};
  TimePoint deadline_ = TimePoint::max();
  TimePoint deadline_armed_ = TimePoint::max();
  uint64_t deadline_generation_ = 0;
  uint64_t handling_seq_ = 0;  // the request an async completion answers
  bool handling_head_ = false;
  bool handling_keep_ = false;
  std::optional<ServerResponse> inline_response_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> res_;
  std::string peer_;
  Phase phase_ = Phase::kIdle;
  bool stopping_ = false;
  size_t lingered_ = 0;
  std::array<char, 4096> scratch_;
};

template <class Stream>
thread_local Session<Stream>* Session<Stream>::tl_dispatching = nullptr;

Status ParseListen(const std::string& listen, std::string* host, bool* v6, uint16_t* port) {
  std::string_view s = listen;
  std::string_view port_text;
  *v6 = false;
  if (!s.empty() && s[0] == '[') {
    size_t close = s.find(']');
    if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':') {
      return Status::InvalidArgument("listen address '" + listen +
                                     "': want [IPv6]:port, e.g. [::1]:9100");
    }
    *host = std::string(s.substr(1, close - 1));
    *v6 = true;
    port_text = s.substr(close + 2);
  } else {
    size_t colon = s.rfind(':');
    if (colon == std::string_view::npos) {
      return Status::InvalidArgument("listen address '" + listen +
                                     "': want host:port, e.g. 127.0.0.1:9100 or :9100");
    }
    *host = std::string(s.substr(0, colon));
    if (host->find(':') != std::string::npos) {
      return Status::InvalidArgument("listen address '" + listen +
                                     "': an IPv6 address goes in brackets, e.g. [::1]:9100");
    }
    port_text = s.substr(colon + 1);
  }
  if (port_text.empty() || port_text.size() > 5 ||
      !std::all_of(port_text.begin(), port_text.end(),
                   [](char c) { return c >= '0' && c <= '9'; })) {
    return Status::InvalidArgument("listen address '" + listen +
                                   "': the port must be a number from 0 to 65535");
  }
  unsigned long p = std::stoul(std::string(port_text));
  if (p > 65535) {
    return Status::InvalidArgument("listen address '" + listen +
                                   "': the port must be a number from 0 to 65535");
  }
  *port = uint16_t(p);
  return Status::Ok();
}

}  // namespace

Status CheckListenAddress(const std::string& listen) {
  std::string host;
  bool v6 = false;
  uint16_t port = 0;
  return ParseListen(listen, &host, &v6, &port);
}

namespace {

std::string BindError(const std::string& what, const beast::error_code& ec) {
  if (ec == net::error::address_in_use) return what + ": address already in use";
  if (ec == net::error::access_denied) {
    return what + ": permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)";
  }
  if (ec == boost::system::errc::address_not_available) {
    return what + ": address not available (not an address of this host)";
  }
  return what + ": " + ec.message();
}

Status LoadTls(const ServerOptions& opt, std::optional<ssl::context>* out) {
  if (opt.tls_cert_file.empty() && opt.tls_key_file.empty()) return Status::Ok();
  if (opt.tls_cert_file.empty() || opt.tls_key_file.empty()) {
    return Status::InvalidArgument("TLS needs both a certificate file and a key file");
  }
  Env* env = opt.env ? opt.env : Env::Default();
  std::string cert, key;
  if (Status s = ReadFileToString(env, opt.tls_cert_file, kMaxPemFileBytes, &cert); !s.ok()) {
    return Status::InvalidArgument("TLS certificate: " + s.message());
  }
  if (Status s = ReadFileToString(env, opt.tls_key_file, kMaxPemFileBytes, &key); !s.ok()) {
    return Status::InvalidArgument("TLS key: " + s.message());
  }
  out->emplace(ssl::context::tls_server);
  ssl::context& ctx = **out;
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                  ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                  ssl::context::single_dh_use);
  beast::error_code ec;
  ctx.use_private_key(net::buffer(key), ssl::context::pem, ec);
  OPENSSL_cleanse(key.data(), key.size());
  if (ec) {
    out->reset();
    return Status::InvalidArgument("TLS key " + opt.tls_key_file + ": not a PEM private key (" +
                                   ec.message() + ")");
  }
  ctx.use_certificate_chain(net::buffer(cert), ec);
  if (ec) {
    out->reset();
    return Status::InvalidArgument("TLS certificate " + opt.tls_cert_file +
                                   ": not a PEM certificate (" + ec.message() + ")");
  }
  if (SSL_CTX_check_private_key(ctx.native_handle()) != 1) {
    out->reset();
    return Status::InvalidArgument("TLS key " + opt.tls_key_file +
                                   " does not match the certificate " + opt.tls_cert_file);
  }
  return Status::Ok();
}

void DoAccept(State* st);

void OnAccept(State* st, beast::error_code ec, tcp::socket socket) {
  if (ec) {
    if (ec == net::error::operation_aborted || !st->acceptor.is_open()) return;
    st->Log("accept: " + ec.message());
    // EMFILE and friends persist until a connection closes: retry after a pause.
    st->accept_retry.expires_after(kAcceptRetry);
    st->accept_retry.async_wait([st](beast::error_code e) {
      if (!e) DoAccept(st);
    });
    return;
  }
  beast::error_code peer_ec;
  tcp::endpoint peer = socket.remote_endpoint(peer_ec);
  bool counted = false, refuse = false, stopping = false;
  {
    std::lock_guard<std::mutex> lock(st->mu);
    stopping = st->stopping;
    if (stopping || peer_ec) {
      refuse = true;
    } else if (st->serving < st->options.max_connections) {
      ++st->serving;
      counted = true;
    } else if (st->refusing < st->options.max_connections) {
      ++st->refusing;
    } else {
      refuse = true;  // not even a 503: too many connections being refused already
    }
  }
  if (refuse) {
    if (!stopping) ++st->refused;
    beast::error_code ignored;
    socket.close(ignored);
  } else {
    (counted ? st->accepted : st->refused)++;
    beast::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    std::shared_ptr<SessionBase> session;
    if (st->tls) {
      session = std::make_shared<Session<beast::ssl_stream<beast::tcp_stream>>>(
          st, counted, PeerString(peer), std::move(socket), *st->tls);
    } else {
      session = std::make_shared<Session<beast::tcp_stream>>(st, counted, PeerString(peer),
                                                             std::move(socket));
    }
    {
      std::lock_guard<std::mutex> lock(st->mu);
      st->sessions.emplace(session.get(), session);
    }
    session->Run();
  }
  DoAccept(st);
}

void DoAccept(State* st) {
  st->acceptor.async_accept(
      net::make_strand(st->ioc),
      [st](beast::error_code ec, tcp::socket socket) { OnAccept(st, ec, std::move(socket)); });
}

}  // namespace

HttpServer::HttpServer(ServerOptions options, HttpHandler* handler)
    : state_(std::make_unique<State>(std::move(options), handler)) {}

HttpServer::~HttpServer() { Stop(); }

Status HttpServer::Start() {
  if (started_) return Status::InvalidArgument("HttpServer::Start called twice");
  started_ = true;
  return StartLocked();
}

Status HttpServer::StartLocked() {
  State* st = state_.get();
  const ServerOptions& opt = st->options;
  if (opt.io_threads < 1) return Status::InvalidArgument("io_threads must be at least 1");
  if (opt.max_connections < 1) return Status::InvalidArgument("max_connections must be >= 1");
  if (opt.max_header_bytes < 64) return Status::InvalidArgument("max_header_bytes must be >= 64");
  if (st->handler == nullptr) return Status::InvalidArgument("no handler");
  for (const auto& m : opt.allowed_methods) {
    if (!IsHttpToken(m)) return Status::InvalidArgument("allowed method '" + m + "' is no token");
    if (!st->allow_header.empty()) st->allow_header += ", ";
    st->allow_header += m;
  }
  std::string host;
  bool v6 = false;
  uint16_t port = 0;
  if (Status s = ParseListen(opt.listen, &host, &v6, &port); !s.ok()) return s;
  if (Status s = LoadTls(opt, &st->tls); !s.ok()) return s;

  const std::string what = "listen on " + opt.listen;
  tcp::endpoint endpoint;
  beast::error_code ec;
  if (v6) {
    auto addr = net::ip::make_address_v6(host, ec);
    if (ec) return Status::InvalidArgument(what + ": '" + host + "' is not an IPv6 address");
    endpoint = tcp::endpoint(addr, port);
  } else if (host.empty()) {
    endpoint = tcp::endpoint(net::ip::address_v4::any(), port);
  } else {
    auto addr = net::ip::make_address_v4(host, ec);
    if (!ec) {
      endpoint = tcp::endpoint(addr, port);
    } else {
      tcp::resolver resolver(st->ioc);
      auto results = resolver.resolve(host, std::to_string(port), ec);
      if (ec || results.empty()) {
        return Status::IoError(what + ": cannot resolve '" + host + "' (" + ec.message() + ")");
      }
      endpoint = results.begin()->endpoint();
    }
  }
  st->acceptor.open(endpoint.protocol(), ec);
  if (ec) return Status::IoError(BindError(what, ec));
  st->acceptor.set_option(net::socket_base::reuse_address(true), ec);
  st->acceptor.bind(endpoint, ec);
  if (!ec) st->acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    beast::error_code ignored;
    st->acceptor.close(ignored);
    return Status::IoError(BindError(what, ec));
  }
  port_ = st->acceptor.local_endpoint(ec).port();
  st->work.emplace(st->ioc.get_executor());
  DoAccept(st);
  for (int i = 0; i < opt.io_threads; ++i) {
    st->threads.emplace_back([st] {
      for (;;) {
        try {
          st->ioc.run();
          return;
        } catch (const std::exception& e) {
          st->Log(std::string("io thread: ") + e.what());  // and keep serving
        }
      }
    });
  }
  return Status::Ok();
}

void HttpServer::Stop() {
  State* st = state_.get();
  if (!started_ || stopped_) return;
  stopped_ = true;
  auto snapshot = [st] {
    std::vector<std::weak_ptr<SessionBase>> v;
    std::lock_guard<std::mutex> lock(st->mu);
    st->stopping = true;
    st->stopping_flag = true;
    for (auto& [p, w] : st->sessions) v.push_back(w);
    return v;
  };
  auto shut = [](const std::vector<std::weak_ptr<SessionBase>>& v, bool force) {
    for (const auto& w : v) {
      if (auto s = w.lock()) s->Shutdown(force);
    }
  };
  auto wait_empty = [st](std::chrono::milliseconds d) {
    std::unique_lock<std::mutex> lock(st->mu);
    return st->cv.wait_for(lock, d, [st] { return st->sessions.empty(); });
  };
  shut(snapshot(), false);
  net::post(st->accept_strand, [st] {
    beast::error_code ignored;
    st->acceptor.close(ignored);
    st->accept_retry.cancel();
  });
  if (!wait_empty(st->options.shutdown_grace)) {
    shut(snapshot(), true);
    wait_empty(std::chrono::milliseconds(2000));
  }
  {
    // Every completion handed out is called (or dropped) before the io threads go: it posts
    // onto them, and holds its session.
    std::unique_lock<std::mutex> lock(st->mu);
    st->cv.wait(lock, [st] { return st->pending_completions.load() == 0; });
  }
  st->work.reset();
  bool empty;
  {
    std::lock_guard<std::mutex> lock(st->mu);
    empty = st->sessions.empty();
  }
  if (!empty) st->ioc.stop();
  for (auto& t : st->threads) {
    if (t.joinable()) t.join();
  }
}

ServerStats HttpServer::stats() const {
  State* st = state_.get();
  ServerStats s;
  s.connections_accepted = st->accepted;
  s.connections_refused = st->refused;
  s.requests = st->requests;
  s.bad_requests = st->bad_requests;
  s.timeouts = st->timeouts;
  s.tls_failures = st->tls_failures;
  s.handler_failures = st->handler_failures;
  s.handler_timeouts = st->handler_timeouts;
  s.pending_completions = st->pending_completions;
  std::lock_guard<std::mutex> lock(st->mu);
  s.active_connections = st->serving;
  return s;
}

}  // namespace ccmon
