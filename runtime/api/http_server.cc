// HTTP/1.1 server: listeners, accept loops and one blocking Beast thread per connection.
#include "runtime/api/http_server.h"

#include <fcntl.h>
#include <malloc.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "runtime/api/tls.h"
#include "runtime/log/log.h"
#include "runtime/timeline/request_timeline.h"

namespace forklet::api {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

constexpr uint32_t kHeaderLimit = 64 * 1024;

// A connected blocking socket as a Beast sync stream: each call is one recvmsg or sendmsg.
// Each connection is owned by one thread, so there is no io_context: Asio's sockets would
// register every descriptor with an epoll reactor that nothing ever runs.
class FdStream {
 public:
  explicit FdStream(int fd) : fd_(fd) {}

  // Reads and writes fail with timed_out past this point (none: wait forever).
  void set_deadline(std::chrono::steady_clock::time_point d) { deadline_ = d; }
  // Whether a request's first byte arrives within timeout.
  bool WaitReadable(std::chrono::milliseconds timeout) {
    pollfd p{fd_, POLLIN, 0};
    int rc;
    do rc = ::poll(&p, 1, static_cast<int>(timeout.count()));
    while (rc < 0 && errno == EINTR);
    return rc > 0;
  }

  template <class MutableBuffers>
  size_t read_some(const MutableBuffers& buffers, beast::error_code& ec) {
    iovec iov[kMaxIov];
    size_t n = Gather<asio::mutable_buffer>(buffers, iov);
    ec = {};
    if (n == 0) return 0;
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = n;
    ssize_t r;
    // The bytes are usually there already: try first, wait only when there is nothing yet.
    for (;;) {
      r = ::recvmsg(fd_, &msg, MSG_DONTWAIT);
      if (r >= 0 || errno == EINTR) {
        if (r >= 0) break;
        continue;
      }
      if (errno != EAGAIN || !Wait(POLLIN, ec)) break;
    }
    if (r < 0 && !ec) ec.assign(errno, boost::system::system_category());
    else if (r == 0) ec = asio::error::eof;  // Beast turns this into end_of_stream / partial_message
    return r > 0 ? static_cast<size_t>(r) : 0;
  }

  template <class ConstBuffers>
  size_t write_some(const ConstBuffers& buffers, beast::error_code& ec) {
    iovec iov[kMaxIov];
    size_t n = Gather<asio::const_buffer>(buffers, iov);
    ec = {};
    if (n == 0) return 0;
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = n;
    ssize_t r;
    // A vanished client is an error, not SIGPIPE. Wait only when the socket buffer is full.
    for (;;) {
      r = ::sendmsg(fd_, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (r >= 0 || errno == EINTR) {
        if (r >= 0) break;
        continue;
      }
      if (errno != EAGAIN || !Wait(POLLOUT, ec)) break;
    }
    if (r < 0 && !ec) ec.assign(errno, boost::system::system_category());
    return r > 0 ? static_cast<size_t>(r) : 0;
  }

  // The throwing forms complete Beast's SyncReadStream / SyncWriteStream concepts.
  template <class MutableBuffers>
  size_t read_some(const MutableBuffers& buffers) {
    beast::error_code ec;
    size_t n = read_some(buffers, ec);
    if (ec) throw beast::system_error(ec);
    return n;
  }
  template <class ConstBuffers>
  size_t write_some(const ConstBuffers& buffers) {
    beast::error_code ec;
    size_t n = write_some(buffers, ec);
    if (ec) throw beast::system_error(ec);
    return n;
  }

 private:
  // Until fd is ready for events or the deadline passes (then ec is timed_out).
  bool Wait(short events, beast::error_code& ec) {
    const bool forever = deadline_ == std::chrono::steady_clock::time_point::max();
    for (;;) {
      auto left = forever ? -1LL
                          : std::chrono::duration_cast<std::chrono::milliseconds>(
                                deadline_ - std::chrono::steady_clock::now()).count();
      if (!forever && left <= 0) {
        ec = asio::error::timed_out;
        return false;
      }
      pollfd p{fd_, events, 0};
      int rc = ::poll(&p, 1, forever ? -1 : static_cast<int>(std::min<long long>(left, 1 << 30)));
      if (rc > 0) return true;
      if (rc < 0 && errno != EINTR) {
        ec.assign(errno, boost::system::system_category());
        return false;
      }
    }
  }
  std::chrono::steady_clock::time_point deadline_ = std::chrono::steady_clock::time_point::max();
  static constexpr size_t kMaxIov = 16;

  template <class Buffer, class Buffers>
  static size_t Gather(const Buffers& buffers, iovec* iov) {
    size_t n = 0;
    for (auto it = asio::buffer_sequence_begin(buffers), end = asio::buffer_sequence_end(buffers);
         it != end && n < kMaxIov; ++it) {
      Buffer b(*it);
      if (b.size() == 0) continue;
      iov[n].iov_base = const_cast<void*>(static_cast<const void*>(b.data()));
      iov[n].iov_len = b.size();
      ++n;
    }
    return n;
  }

  int fd_;
};

// Closes a descriptor on scope exit unless released.
class FdGuard {
 public:
  explicit FdGuard(int fd) : fd_(fd) {}
  ~FdGuard() {
    if (fd_ >= 0) ::close(fd_);
  }
  FdGuard(const FdGuard&) = delete;
  FdGuard& operator=(const FdGuard&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

// ---- listeners ----

Result<int> ListenTcp(const std::string& listen, int* bound_port) {
  auto colon = listen.rfind(':');
  std::string host = colon == std::string::npos ? "" : listen.substr(0, colon);
  std::string port = colon == std::string::npos ? "" : listen.substr(colon + 1);
  bool port_ok = !port.empty() && port.size() <= 5 &&
                 std::all_of(port.begin(), port.end(), [](unsigned char c) { return std::isdigit(c); }) &&
                 std::stoi(port) <= 65535;
  if (host.empty() || !port_ok) return MakeError("--listen", "expected HOST:PORT, got '" + listen + "'");
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);

  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0)
    return MakeError("--listen", "cannot resolve host '" + host + "': " + gai_strerror(rc));
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> addresses(found, freeaddrinfo);

  const std::string op = "cannot listen on " + listen;
  // Non-blocking so that accept() after poll() cannot hang on a connection reset in between.
  FdGuard fd(socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (fd.get() < 0) return SysError(op);
  int one = 1;
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));  // restart during TIME_WAIT
  if (bind(fd.get(), found->ai_addr, found->ai_addrlen) != 0) return SysError(op);
  if (::listen(fd.get(), SOMAXCONN) != 0) return SysError(op);

  sockaddr_storage bound{};
  socklen_t len = sizeof(bound);
  if (getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &len) != 0) return SysError(op);
  *bound_port = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                                  : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  return fd.release();
}

sockaddr_un UnixAddress(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

// A socket file left by a crashed daemon is replaced; a live daemon's socket, or a file
// that is not a socket, is never touched.
Status ClearStaleSocket(const std::string& path) {
  struct stat st{};
  if (lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return {};
    return SysError("cannot listen on unix:" + path);
  }
  if (!S_ISSOCK(st.st_mode))
    return MakeError("cannot listen on unix:" + path, "the path exists and is not a socket");
  FdGuard probe(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (probe.get() < 0) return SysError("cannot listen on unix:" + path);
  sockaddr_un addr = UnixAddress(path);
  if (connect(probe.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0)
    return MakeError("another daemon is listening on " + path, "stop it or choose another socket path");
  if (errno == ENOENT) return {};
  if (errno != ECONNREFUSED) return SysError("cannot check the existing socket " + path);
  if (unlink(path.c_str()) != 0 && errno != ENOENT) return SysError("cannot remove the stale socket " + path);
  return {};
}

Result<int> ListenUnix(const std::string& path, struct stat* bound) {
  const std::string op = "cannot listen on unix:" + path;
  if (path.size() >= sizeof(sockaddr_un::sun_path))
    return MakeError(op, "the path is longer than " + std::to_string(sizeof(sockaddr_un::sun_path) - 1) +
                             " bytes");
  if (auto s = ClearStaleSocket(path); !s) return s.error();
  FdGuard fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (fd.get() < 0) return SysError(op);
  sockaddr_un addr = UnixAddress(path);
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return SysError(op);
  // Remember which file is ours, so that Stop never removes a successor's socket.
  if (chmod(path.c_str(), 0660) != 0 || stat(path.c_str(), bound) != 0 ||
      ::listen(fd.get(), SOMAXCONN) != 0) {
    Error e = SysError(op);
    unlink(path.c_str());
    return e;
  }
  return fd.release();
}

// ---- request and response conversion ----

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// A '%' not followed by two hex digits is kept as it is.
// "a=1&b=x+y&flag": the first occurrence of a repeated name wins; a bare name maps to "".
std::map<std::string, std::string> ParseQuery(std::string_view query) {
  std::map<std::string, std::string> out;
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    auto eq = pair.find('=');
    std::string value = eq == std::string_view::npos ? "" : PercentDecode(pair.substr(eq + 1), true);
    out.emplace(PercentDecode(pair.substr(0, eq), true), std::move(value));
  }
  return out;
}

std::string Lower(beast::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

HttpRequest ToHttpRequest(http::request<http::string_body>&& req) {
  HttpRequest r;
  r.method = std::string(req.method_string());
  r.target = std::string(req.target());
  std::string_view target = r.target;
  auto question = target.find('?');
  r.path = PercentDecode(target.substr(0, question), false);
  if (question != std::string_view::npos) r.query = ParseQuery(target.substr(question + 1));
  for (const auto& field : req) {
    auto [it, inserted] = r.headers.emplace(Lower(field.name_string()), std::string(field.value()));
    if (!inserted) (it->second += ", ").append(field.value().data(), field.value().size());  // repeated headers fold as a list
  }
  r.body = std::move(req.body());
  return r;
}

HttpResponse ErrorResponse(int status, const std::string& error_type, const std::string& message) {
  HttpResponse r;
  r.status = status;
  r.headers["X-Amzn-ErrorType"] = error_type;
  nlohmann::json body{{"Type", status >= 500 ? "Service" : "User"}, {"message", message}};
  r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

http::response<http::string_body> ToBeastResponse(HttpResponse&& out, unsigned version, bool keep_alive) {
  http::response<http::string_body> res;
  res.version(version);
  res.result(static_cast<unsigned>(out.status));
  bool has_content_type = false;
  for (auto& [name, value] : out.headers) {
    std::string lower = Lower(name);
    // The transport owns framing and connection management.
    if (lower == "content-length" || lower == "transfer-encoding" || lower == "connection") continue;
    has_content_type |= lower == "content-type";
    // A line break in a value would let it forge headers.
    std::replace_if(value.begin(), value.end(), [](char c) { return c == '\r' || c == '\n'; }, ' ');
    res.insert(name, value);
  }
  if (!has_content_type) res.set(http::field::content_type, "application/json");
  res.keep_alive(keep_alive);
  bool bodiless = out.status < 200 || out.status == 204 || out.status == 304;
  if (bodiless) out.body.clear();
  res.body() = std::move(out.body);
  if (!bodiless) res.content_length(res.body().size());
  return res;
}

// What a request that failed to parse gets, or nothing when the client just went away.
std::optional<HttpResponse> RejectionFor(const beast::error_code& ec, size_t max_body_bytes,
                                         const char* timed_out_what) {
  if (ec == http::error::end_of_stream || ec == http::error::partial_message) return std::nullopt;
  if (ec == asio::error::timed_out)
    return ErrorResponse(408, "RequestTimeoutException",
                         std::string("the request's ") + timed_out_what + " did not arrive in time");
  if (ec == http::error::body_limit)
    return ErrorResponse(413, "RequestTooLargeException",
                         "request body exceeds the limit of " + std::to_string(max_body_bytes) + " bytes");
  if (ec == http::error::header_limit)
    return ErrorResponse(431, "RequestHeaderFieldsTooLargeException",
                         "request header exceeds " + std::to_string(kHeaderLimit) + " bytes");
  if (ec.category() == beast::error_code(http::error::bad_method).category())
    return ErrorResponse(400, "InvalidRequestContentException", "malformed HTTP request: " + ec.message());
  return std::nullopt;  // a socket error: nobody to answer
}

// After a rejection the client may still be sending its body. Closing with unread input
// makes the kernel reset the connection, which can destroy our response before the client
// reads it; so stop sending and discard input for a bounded time until the client closes.
// A client refused before its body (429) may send all of it before it reads the answer: then
// the drain lasts up to `patience`, discarding (never holding) what comes.
void DrainBeforeClose(int fd, std::chrono::milliseconds patience = std::chrono::seconds(2)) {
  ::shutdown(fd, SHUT_WR);
  // A TLS connection's socket is non-blocking; the drain waits on it (what it reads is discarded).
  if (int flags = fcntl(fd, F_GETFL); flags >= 0 && (flags & O_NONBLOCK))
    fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  // A pause this long ends the drain (a long one tolerates a busy client's pauses).
  timeval timeout = patience > std::chrono::seconds(2) ? timeval{2, 0} : timeval{0, 200'000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  auto deadline = std::chrono::steady_clock::now() + patience;
  char discard[16 * 1024];
  while (std::chrono::steady_clock::now() < deadline) {
    ssize_t n = recv(fd, discard, sizeof(discard), 0);
    if (n > 0 || (n < 0 && errno == EINTR)) continue;
    break;
  }
}

bool IsLarge(const http::request_parser<http::string_body>& parser, size_t threshold) {
  return parser.chunked() || parser.content_length().value_or(0) >= threshold;
}

// One of the limited places for a large body; released when destroyed.
class LargeBodySlot {
 public:
  LargeBodySlot() = default;
  LargeBodySlot& operator=(LargeBodySlot&& o) noexcept {
    Release();
    count_ = std::exchange(o.count_, nullptr);
    return *this;
  }
  ~LargeBodySlot() { Release(); }
  bool Take(std::atomic<size_t>* count, size_t max) {
    if (count->fetch_add(1) >= max) {
      count->fetch_sub(1);
      return false;
    }
    count_ = count;
    return true;
  }
  bool held() const { return count_ != nullptr; }

 private:
  void Release() {
    if (count_) count_->fetch_sub(1);
    count_ = nullptr;
  }
  std::atomic<size_t>* count_ = nullptr;
};

// Past the connection limit: a best-effort 503 (never blocking the accept loop), then close.
void RefuseConnection(int fd) {
  static const std::string kBody =
      R"({"Type":"Service","message":"too many connections to forkletd; retry later"})";
  static const std::string kResponse =
      "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
      "X-Amzn-ErrorType: ServiceUnavailableException\r\nRetry-After: 1\r\nConnection: close\r\n"
      "Content-Length: " + std::to_string(kBody.size()) + "\r\n\r\n" + kBody;
  (void)!::send(fd, kResponse.data(), kResponse.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  ::shutdown(fd, SHUT_WR);
  ::close(fd);
}

}  // namespace

struct HttpServer::Impl {
  Impl(HttpServerOptions o, HttpHandler h) : options(std::move(o)), handler(std::move(h)) {}
  ~Impl() { CloseListeners(); }

  Status Listen();
  void AcceptLoop(int listen_fd, bool tcp);
  void ServeConnection(int fd, bool tcp);
  template <class Stream>
  void ServeRequests(Stream& stream, int fd, bool tcp);
  std::shared_ptr<TlsCertificate> Certificate() {
    std::lock_guard lock(tls_mu);
    return certificate;
  }
  HttpResponse CallHandler(HttpRequest& request);
  void Stop();
  void CloseListeners();

  const HttpServerOptions options;
  const HttpHandler handler;

  int tcp_fd = -1;
  int tcp_port = 0;
  int unix_fd = -1;
  struct stat unix_file {};  // the socket file we created
  int wake_fd = -1;          // eventfd, readable once Stop begins; wakes the accept loops
  std::vector<std::thread> accept_threads;

  // Connection threads are detached; each fd stays in `connections` until its thread has
  // closed it, so Stop can shut down idle ones safely and wait for the set to empty.
  std::mutex mu;
  std::condition_variable all_closed;
  std::set<int> connections;
  std::atomic<bool> stopping{false};
  std::atomic<size_t> large_bodies{0};  // large request bodies being read or handled

  std::mutex stop_mu;  // serializes Stop callers
  bool stopped = false;

  std::mutex tls_mu;
  std::shared_ptr<TlsCertificate> certificate;  // null: plain TCP
};

Status HttpServer::Impl::Listen() {
  if (options.listen.empty() && options.unix_socket.empty())
    return MakeError("HTTP server", "neither a TCP address nor a Unix socket to listen on");
  wake_fd = eventfd(0, EFD_CLOEXEC);
  if (wake_fd < 0) return SysError("eventfd");
  if (!options.tls_cert.empty() || !options.tls_key.empty()) {
    if (options.tls_cert.empty() || options.tls_key.empty())
      return MakeError("TLS", "--tls-cert and --tls-key go together: give both");
    if (options.listen.empty()) return MakeError("TLS", "no TCP listener to serve TLS on");
    auto loaded = TlsCertificate::Load(options.tls_cert, options.tls_key);
    if (!loaded) return loaded.error();
    certificate = std::move(loaded.value());
  }
  if (!options.listen.empty()) {
    auto fd = ListenTcp(options.listen, &tcp_port);
    if (!fd) return fd.error();
    tcp_fd = *fd;
  }
  if (!options.unix_socket.empty()) {
    auto fd = ListenUnix(options.unix_socket, &unix_file);
    if (!fd) return fd.error();
    unix_fd = *fd;
  }
  return {};
}

void HttpServer::Impl::CloseListeners() {
  if (tcp_fd >= 0) ::close(std::exchange(tcp_fd, -1));
  if (unix_fd >= 0) {
    ::close(std::exchange(unix_fd, -1));
    struct stat now {};
    if (stat(options.unix_socket.c_str(), &now) == 0 && now.st_dev == unix_file.st_dev &&
        now.st_ino == unix_file.st_ino)
      unlink(options.unix_socket.c_str());
  }
  if (wake_fd >= 0) ::close(std::exchange(wake_fd, -1));
}

void HttpServer::Impl::AcceptLoop(int listen_fd, bool tcp) {
  pollfd fds[2] = {{listen_fd, POLLIN, 0}, {wake_fd, POLLIN, 0}};
  for (;;) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      log::Error(std::string("http accept loop: poll: ") + strerror(errno));
      return;
    }
    if (fds[1].revents != 0) return;
    int fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      // Out of descriptors or memory: back off instead of spinning; the rest is transient.
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    if (tcp) {
      int one = 1;  // a small response must not wait for the ACK of the previous one (Nagle)
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    {
      std::lock_guard lock(mu);
      if (connections.size() >= options.max_connections) {
        RefuseConnection(fd);
        continue;
      }
      connections.insert(fd);
    }
    try {
      std::thread(&Impl::ServeConnection, this, fd, tcp).detach();
    } catch (const std::system_error& e) {
      log::Error(std::string("http: cannot start a connection thread: ") + e.what());
      std::lock_guard lock(mu);
      connections.erase(fd);
      ::close(fd);
    }
  }
}

HttpResponse HttpServer::Impl::CallHandler(HttpRequest& request) {
  try {
    HttpResponse out = handler(request);
    if (out.status < 100 || out.status > 599)
      return ErrorResponse(500, "ServiceException",
                           "handler returned the invalid HTTP status " + std::to_string(out.status));
    return out;
  } catch (const std::exception& e) {
    return ErrorResponse(500, "ServiceException", e.what());
  } catch (...) {
    return ErrorResponse(500, "ServiceException", "unknown exception in the request handler");
  }
}

void HttpServer::Impl::ServeConnection(int fd, bool tcp) {
  try {
    std::shared_ptr<TlsCertificate> tls = tcp ? Certificate() : nullptr;
    if (!tls) {
      FdStream stream(fd);
      ServeRequests(stream, fd, tcp);
    } else if (SSL* ssl = fcntl(fd, F_SETFL, O_NONBLOCK) == 0 ? tls->NewSession(fd) : nullptr) {
      TlsStream stream(fd, ssl);
      stream.set_deadline(std::chrono::steady_clock::now() + options.header_timeout);
      beast::error_code ec;
      if (stream.Handshake(ec)) {
        ServeRequests(stream, fd, tcp);
        stream.Shutdown();
      }
    }
  } catch (const std::exception& e) {
    log::Warning(std::string("http connection: ") + e.what());
  }
  // Close under the lock so Stop never shuts down a descriptor number already reused.
  std::lock_guard lock(mu);
  ::close(fd);
  connections.erase(fd);
  if (connections.empty()) all_closed.notify_all();
}

template <class Stream>
void HttpServer::Impl::ServeRequests(Stream& stream, int fd, bool tcp) {
  beast::flat_buffer buffer;  // reused: holds pipelined bytes between requests
  beast::error_code ec;
  using Steady = std::chrono::steady_clock;
  for (;;) {
    // Between requests: the next one's first byte within the idle timeout, else close quietly.
    if (buffer.size() == 0 && !stream.WaitReadable(options.idle_timeout)) break;
    http::request_parser<http::string_body> parser;
    parser.header_limit(kHeaderLimit);
    parser.body_limit(options.max_body_bytes);
    stream.set_deadline(Steady::now() + options.header_timeout);
    const char* phase = "header";
    http::read_header(stream, buffer, parser, ec);
    stream.set_deadline(Steady::now() + options.body_timeout);
    // A large body waits for no slot: it is refused before it is read (memory stays bounded).
    LargeBodySlot slot;
    if (!ec && IsLarge(parser, options.large_body_bytes) &&
        !slot.Take(&large_bodies, options.max_large_bodies)) {
      auto res = ToBeastResponse(
          ErrorResponse(429, "TooManyRequestsException",
                        "Rate Exceeded. (" + std::to_string(options.max_large_bodies) +
                            " uploads are in progress; retry later)"),
          parser.get().version(), false);
      res.set(http::field::retry_after, "1");
      stream.set_deadline(Steady::now() + std::chrono::seconds(2));
      http::write(stream, res, ec);
      DrainBeforeClose(fd, options.body_timeout);
      break;
    }
    // curl waits a second for "100 Continue" before sending a large body.
    if (!ec && beast::iequals(parser.get()[http::field::expect], "100-continue")) {
      http::response<http::empty_body> proceed{http::status::continue_, parser.get().version()};
      http::write(stream, proceed, ec);
    }
    if (!ec) {
      phase = "body";
      http::read(stream, buffer, parser, ec);
    }
    if (ec) {
      if (auto rejection = RejectionFor(ec, options.max_body_bytes, phase)) {
        auto res = ToBeastResponse(std::move(*rejection), 11, false);
        stream.set_deadline(Steady::now() + std::chrono::seconds(2));
        http::write(stream, res, ec);
        DrainBeforeClose(fd);
      }
      break;
    }
    stream.set_deadline(Steady::time_point::max());  // the handler may take its time
    timeline::Begin();
    auto req = parser.release();
    unsigned version = req.version();
    bool keep_alive = req.keep_alive();
    HttpRequest request = ToHttpRequest(std::move(req));
    request.local = !tcp;
    timeline::Mark(timeline::Point::kParsed);
    HttpResponse out = CallHandler(request);
    keep_alive = keep_alive && !stopping.load();
    auto res = ToBeastResponse(std::move(out), version, keep_alive);
    stream.set_deadline(Steady::now() + options.body_timeout);  // a client that never reads
    http::write(stream, res, ec);
    timeline::End();
    if (slot.held()) {
      slot = LargeBodySlot();
      res = {};
      buffer.shrink_to_fit();
      malloc_trim(0);  // a burst of uploads gives its memory back to the system
    }
    if (ec || !keep_alive) break;
  }
}

void HttpServer::Impl::Stop() {
  std::lock_guard stop_lock(stop_mu);
  if (stopped) return;
  stopped = true;
  uint64_t one = 1;
  if (write(wake_fd, &one, sizeof(one)) < 0)
    log::Error(std::string("http: eventfd: ") + strerror(errno));
  for (auto& t : accept_threads) t.join();
  accept_threads.clear();
  CloseListeners();

  std::unique_lock lock(mu);
  stopping = true;
  // A thread blocked reading its next request wakes with end-of-stream; one inside the
  // handler still writes its response (the write side stays open) and then closes.
  for (int fd : connections) ::shutdown(fd, SHUT_RD);
  all_closed.wait(lock, [&] { return connections.empty(); });
}

Result<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpServerOptions& options,
                                                      HttpHandler handler) {
  auto impl = std::make_unique<Impl>(options, std::move(handler));
  if (auto s = impl->Listen(); !s) return s.error();
  Impl* p = impl.get();
  try {
    if (p->tcp_fd >= 0) p->accept_threads.emplace_back(&Impl::AcceptLoop, p, p->tcp_fd, true);
    if (p->unix_fd >= 0) p->accept_threads.emplace_back(&Impl::AcceptLoop, p, p->unix_fd, false);
  } catch (const std::system_error& e) {
    p->Stop();
    return MakeError("HTTP server", std::string("cannot start the accept threads: ") + e.what());
  }
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() { Stop(); }

int HttpServer::tcp_port() const { return impl_->tcp_port; }

bool HttpServer::tls() const { return impl_->Certificate() != nullptr; }

Status HttpServer::ReloadTls() {
  if (!tls()) return {};
  auto loaded = TlsCertificate::Load(impl_->options.tls_cert, impl_->options.tls_key);
  if (!loaded) return loaded.error();
  std::lock_guard lock(impl_->tls_mu);
  impl_->certificate = std::move(loaded.value());
  return {};
}

void HttpServer::Stop() { impl_->Stop(); }

std::string PercentDecode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%' && i + 2 < s.size() && HexValue(s[i + 1]) >= 0 && HexValue(s[i + 2]) >= 0) {
      out += static_cast<char>(HexValue(s[i + 1]) * 16 + HexValue(s[i + 2]));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace forklet::api
