// The Runtime API server: HTTP/1.1 on non-blocking sockets (Beast's parser), Lambda's states.
#include "lang-runners/provided/runtime_api.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cerrno>
#include <cstring>
#include <string_view>
#include <vector>

#include "lang-runners/provided/bootstrap.h"
#include "sandbox/child_setup.h"
#include "zygote/exit_status.h"

namespace forklet::runner {
namespace {

namespace http = boost::beast::http;
using nlohmann::json;

constexpr uint16_t kPort = 9001;
constexpr size_t kMaxHeaderBytes = 16 * 1024;
constexpr size_t kMaxConnections = 32;
constexpr std::string_view kApiPrefix = "/2018-06-01/runtime/";
constexpr const char* kStatusOk = R"({"status":"OK"})";

const char* Reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 202: return "Accepted";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Payload Too Large";
    case 431: return "Request Header Fields Too Large";
    default: return "Error";
  }
}

std::string_view View(boost::beast::string_view s) { return {s.data(), s.size()}; }

int64_t EpochSeconds() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return ts.tv_sec;
}

// An X-Ray trace header as Lambda passes it: Root=1-<epoch hex>-<96 random bits>;Parent=...
std::string TraceId() {
  unsigned char r[20] = {};
  (void)!getrandom(r, sizeof(r), 0);
  auto hex = [](const unsigned char* p, size_t n) {
    static const char* digits = "0123456789abcdef";
    std::string s;
    for (size_t i = 0; i < n; ++i) (s += digits[p[i] >> 4]) += digits[p[i] & 15];
    return s;
  };
  char epoch[9];
  snprintf(epoch, sizeof(epoch), "%08llx", static_cast<unsigned long long>(EpochSeconds()) & 0xffffffffull);
  return std::string("Root=1-") + epoch + "-" + hex(r, 12) + ";Parent=" + hex(r + 12, 8) + ";Sampled=0";
}

json ParseObject(const std::string& body) {
  json j = json::parse(body, nullptr, false);
  return j.is_object() ? j : json::object();
}

std::string StringField(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

// The error a caller sees for /error: the posted JSON as is, or one made from the
// Lambda-Runtime-Function-Error-Type header when the payload is missing or not JSON.
std::string FunctionErrorBody(const std::string& body, const std::string& header_type) {
  json j = json::parse(body, nullptr, false);
  if (j.is_object()) {
    if (!j.contains("errorType") && !header_type.empty()) j["errorType"] = header_type;
    return Dump(j);
  }
  return Dump(ErrorBody(header_type.empty() ? "Unhandled" : header_type, body));
}

}  // namespace

struct RuntimeApiServer::Connection {
  explicit Connection(int f) : fd(f) {}
  int fd;
  std::string in;           // received and not yet consumed by the parser
  std::string out;          // to send
  size_t out_sent = 0;
  std::optional<http::request_parser<http::string_body>> parser;
  bool continue_sent = false;
  bool waiting = false;     // its /next waits for an event: nothing else is read meanwhile
  bool keep_alive = true;
  bool close_after_write = false;
  bool closed = false;

  http::request_parser<http::string_body>& Parser() {
    if (!parser) {
      parser.emplace();
      parser->header_limit(kMaxHeaderBytes);
      parser->body_limit(kMaxResponseBytes);
      parser->eager(true);
      continue_sent = false;
    }
    return *parser;
  }
};

std::unique_ptr<RuntimeApiServer> RuntimeApiServer::Create(const Init& init, std::string* error) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = std::string("socket: ") + strerror(errno);
    return nullptr;
  }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(kPort);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || listen(fd, 64) != 0) {
    *error = std::string("listen on ") + kRuntimeApiAddress + ": " + strerror(errno);
    close(fd);
    return nullptr;
  }
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, nullptr);
  int sfd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
  if (sfd < 0) {
    *error = std::string("signalfd: ") + strerror(errno);
    close(fd);
    return nullptr;
  }
  return std::unique_ptr<RuntimeApiServer>(new RuntimeApiServer(init, fd, sfd));
}

RuntimeApiServer::RuntimeApiServer(const Init& init, int listen_fd, int signal_fd)
    : init_(init), listen_fd_(listen_fd), signal_fd_(signal_fd) {}

RuntimeApiServer::~RuntimeApiServer() {
  for (auto& [fd, c] : conns_) close(fd);
  close(listen_fd_);
  close(signal_fd_);
}

int RuntimeApiServer::Run(pid_t bootstrap, uint64_t init_start_us) {
  bootstrap_ = bootstrap;
  init_start_us_ = init_start_us;
  std::vector<pollfd> fds;
  while (!done_) {
    fds.clear();
    fds.push_back({sandbox::kChannelFd, POLLIN, 0});
    fds.push_back({signal_fd_, POLLIN, 0});
    fds.push_back({listen_fd_, static_cast<short>(conns_.size() < kMaxConnections ? POLLIN : 0), 0});
    for (auto& [fd, c] : conns_) {
      short events = c->waiting ? POLLRDHUP : (c->close_after_write ? 0 : POLLIN);
      if (c->out_sent < c->out.size()) events |= POLLOUT;
      fds.push_back({fd, events, 0});
    }
    if (poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      return 1;
    }
    const bool exited = fds[1].revents && !Reap();
    if (fds[0].revents && !ReadChannel()) return exit_status_;
    if (fds[2].revents & POLLIN) Accept();
    for (size_t i = 3; i < fds.size(); ++i) {
      auto it = conns_.find(fds[i].fd);
      if (it == conns_.end() || it->second->closed) continue;
      Connection& c = *it->second;
      if (fds[i].revents & POLLOUT) OnWritable(c);
      if (c.waiting && (fds[i].revents & (POLLRDHUP | POLLHUP | POLLERR)))
        Close(c.fd);  // the bootstrap gave up on its /next
      else if (!c.waiting && (fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
        OnReadable(c);
    }
    if (exited) {
      // What it sent before exiting still counts: a response posted without waiting for the 202.
      Accept();
      for (auto& [fd, c] : conns_)
        if (!c->closed && !c->waiting) OnReadable(*c);
      return BootstrapExited();
    }
    for (auto it = conns_.begin(); it != conns_.end();) {
      if (it->second->closed) {
        close(it->first);
        it = conns_.erase(it);
      } else {
        ++it;
      }
    }
  }
  return exit_status_;
}

int RuntimeApiServer::BootstrapExited() {
  // Say why where it matters, then end the instance (this is its pid 1).
  std::string why = "Runtime exited with error: " + zygote::DescribeExit(bootstrap_status_);
  uint64_t now = MonotonicMicros();
  if (phase_ == Phase::kInit) {
    SendInitError("Runtime.ExitError", why, now - init_start_us_);
  } else if (phase_ == Phase::kInvoking && current_) {
    SendResult(false, now - current_start_us_,
               Dump(ErrorBody("Runtime.ExitError", "RequestId: " + current_->request_id + " Error: " + why)),
               /*last=*/true);
  }
  return 1;
}

void RuntimeApiServer::Accept() {
  while (conns_.size() < kMaxConnections) {
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    conns_[fd] = std::make_unique<Connection>(fd);
  }
}

void RuntimeApiServer::OnReadable(Connection& c) {
  char buf[64 * 1024];
  for (;;) {
    ssize_t n = recv(c.fd, buf, sizeof(buf), 0);
    if (n > 0) {
      c.in.append(buf, static_cast<size_t>(n));
      Parse(c);
      if (c.closed || c.waiting || c.close_after_write) return;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    Close(c.fd);  // the peer closed, or an error
    return;
  }
}

void RuntimeApiServer::OnWritable(Connection& c) {
  while (c.out_sent < c.out.size()) {
    ssize_t n = send(c.fd, c.out.data() + c.out_sent, c.out.size() - c.out_sent, MSG_NOSIGNAL);
    if (n > 0) {
      c.out_sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    Close(c.fd);
    return;
  }
  c.out.clear();
  c.out_sent = 0;
  if (c.close_after_write) Close(c.fd);
}

void RuntimeApiServer::Parse(Connection& c) {
  while (!c.in.empty() && !c.waiting && !c.close_after_write && !c.closed) {
    auto& parser = c.Parser();
    boost::system::error_code ec;
    size_t used = parser.put(boost::asio::buffer(c.in), ec);
    c.in.erase(0, used);
    if (ec && ec != http::error::need_more) {
      c.keep_alive = false;
      if (ec == http::error::header_limit)
        return ReplyError(c, 431, "RequestHeaderFieldsTooLarge", "Request headers are too large.");
      if (ec == http::error::body_limit) {
        // A response over Lambda's limit fails its invocation, as on Lambda.
        std::string target(View(parser.get().target()));
        if (current_ && target.find("/invocation/" + current_->request_id + "/") != std::string::npos) {
          SendResult(false, MonotonicMicros() - current_start_us_, ResponseTooLargeBody());
          current_.reset();
          phase_ = Phase::kIdle;
        }
        return ReplyError(c, 413, "RequestEntityTooLarge",
                          "Exceeded maximum allowed payload size (" +
                              std::to_string(kMaxResponseBytes) + " bytes).");
      }
      return ReplyError(c, 400, "InvalidRequest", ec.message());
    }
    if (parser.is_done()) {
      Route(c);
      if (!c.waiting) c.parser.reset();
      continue;
    }
    // curl waits a second for "100 Continue" before it sends a large body.
    if (parser.is_header_done() && !c.continue_sent &&
        boost::beast::iequals(parser.get()[http::field::expect], "100-continue")) {
      c.continue_sent = true;
      c.out += "HTTP/1.1 100 Continue\r\n\r\n";
      OnWritable(c);
    }
    if (ec == http::error::need_more || used == 0) return;
  }
}

void RuntimeApiServer::Route(Connection& c) {
  const auto& req = c.parser->get();
  c.keep_alive = req.keep_alive();
  std::string_view target = View(req.target());
  target = target.substr(0, target.find('?'));
  const bool get = req.method() == http::verb::get, post = req.method() == http::verb::post;
  auto wrong_method = [&] {
    ReplyError(c, 405, "MethodNotAllowed", std::string(View(req.method_string())) + " " +
                                               std::string(target) + " is not allowed");
  };
  std::string_view path = target.starts_with(kApiPrefix) ? target.substr(kApiPrefix.size()) : "";
  if (path == "invocation/next") return get ? ServeNext(c) : wrong_method();
  if (path == "init/error") return post ? ServeInitError(c) : wrong_method();
  if (path.starts_with("invocation/")) {
    std::string_view rest = path.substr(std::string_view("invocation/").size());
    size_t slash = rest.find('/');
    if (slash != std::string_view::npos && slash > 0) {
      std::string id(rest.substr(0, slash));
      std::string_view verb = rest.substr(slash + 1);
      if (verb == "response" || verb == "error")
        return post ? ServeResult(c, id, verb == "response") : wrong_method();
    }
  }
  ReplyError(c, 404, "NotFound", "Unknown Runtime API path: " + std::string(target));
}

void RuntimeApiServer::ServeNext(Connection& c) {
  if (phase_ == Phase::kInitFailed)
    return ReplyError(c, 403, "InvalidStateTransition", "The runtime has reported an init error.");
  if (phase_ == Phase::kInvoking)
    return ReplyError(c, 403, "InvalidStateTransition",
                      "Invocation " + current_->request_id + " has no response or error yet.");
  if (waiting_next_ >= 0)
    return ReplyError(c, 403, "InvalidStateTransition", "Another /next is waiting for the event.");
  if (phase_ == Phase::kInit) {  // init is over: the daemon sends the first event now
    phase_ = Phase::kIdle;
    if (!SendReady(MonotonicMicros() - init_start_us_)) {
      done_ = true;
      return;
    }
  }
  c.waiting = true;
  waiting_next_ = c.fd;
  DeliverInvoke();
}

void RuntimeApiServer::DeliverInvoke() {
  if (waiting_next_ < 0 || !queued_) return;
  auto it = conns_.find(waiting_next_);
  waiting_next_ = -1;
  if (it == conns_.end() || it->second->closed) return;
  Connection& c = *it->second;
  c.waiting = false;
  current_ = std::move(queued_);
  queued_.reset();
  phase_ = Phase::kInvoking;
  current_start_us_ = MonotonicMicros();
  std::string headers = "Lambda-Runtime-Aws-Request-Id: " + current_->request_id + "\r\n" +
                        "Lambda-Runtime-Deadline-Ms: " + std::to_string(current_->deadline_ms) + "\r\n" +
                        "Lambda-Runtime-Invoked-Function-Arn: " +
                            (current_->arn.empty() ? init_.arn : current_->arn) + "\r\n" +
                        "Lambda-Runtime-Trace-Id: " + TraceId() + "\r\n";
  std::string event = std::move(current_->event);
  Reply(c, 200, event, headers);
  c.parser.reset();
  Parse(c);  // a request pipelined behind the /next
}

void RuntimeApiServer::ServeResult(Connection& c, const std::string& request_id, bool ok) {
  if (!current_ || request_id != current_->request_id)
    return ReplyError(c, 400, "InvalidRequestID", "Invalid request ID");
  const auto& req = c.parser->get();
  uint64_t handler_us = MonotonicMicros() - current_start_us_;
  bool sent = ok ? SendResult(true, handler_us, req.body())
                 : SendResult(false, handler_us,
                              FunctionErrorBody(req.body(), std::string(View(
                                                                req["Lambda-Runtime-Function-Error-Type"]))));
  current_.reset();
  phase_ = Phase::kIdle;
  if (!sent) done_ = true;
  Reply(c, 202, kStatusOk);
}

void RuntimeApiServer::ServeInitError(Connection& c) {
  if (phase_ != Phase::kInit)
    return ReplyError(c, 403, "InvalidStateTransition", "Init has ended: an init error cannot be reported now.");
  const auto& req = c.parser->get();
  json body = ParseObject(req.body());
  std::string type = StringField(body, "errorType");
  std::string header(View(req["Lambda-Runtime-Function-Error-Type"]));
  if (type.empty()) type = header.empty() ? "Runtime.Unknown" : header;
  std::string message = body.empty() ? req.body() : StringField(body, "errorMessage");
  phase_ = Phase::kInitFailed;
  if (!SendInitError(type, message, MonotonicMicros() - init_start_us_)) done_ = true;
  Reply(c, 202, kStatusOk);
}

bool RuntimeApiServer::ReadChannel() {
  auto frame = ReadFrame();
  if (!frame) return false;  // the daemon closed the channel: the instance is retired
  auto invoke = AsInvoke(std::move(*frame));
  if (!invoke || queued_ || current_) {
    exit_status_ = 2;  // the daemon sends one INVOKE at a time; anything else breaks the protocol
    return false;
  }
  queued_ = std::move(*invoke);
  DeliverInvoke();
  return true;
}

bool RuntimeApiServer::Reap() {
  signalfd_siginfo info;
  while (read(signal_fd_, &info, sizeof(info)) > 0) {
  }
  bool alive = true;
  int status = 0;
  pid_t pid;
  // As pid 1, every orphan of the function's processes is ours to reap.
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
    if (pid == bootstrap_) {
      bootstrap_status_ = status;
      alive = false;
    }
  }
  return alive;
}

void RuntimeApiServer::Reply(Connection& c, int status, const std::string& body, const std::string& headers) {
  c.waiting = false;
  std::string& o = c.out;
  o += "HTTP/1.1 " + std::to_string(status) + " " + Reason(status) + "\r\n";
  o += "Content-Type: application/json\r\n";
  o += headers;
  o += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  if (!c.keep_alive) {
    o += "Connection: close\r\n";
    c.close_after_write = true;
  }
  o += "\r\n";
  o += body;
  OnWritable(c);
}

void RuntimeApiServer::ReplyError(Connection& c, int status, const std::string& type, const std::string& message) {
  Reply(c, status, Dump(ErrorBody(type, message)));
}

void RuntimeApiServer::Close(int fd) {
  auto it = conns_.find(fd);
  if (it == conns_.end()) return;
  it->second->closed = true;
  if (waiting_next_ == fd) waiting_next_ = -1;
}

}  // namespace forklet::runner
