// The keep-alive HTTP/1.1 exchange: status line, headers, a Content-Length body.
#include "bench/forklet_bench/http_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

namespace forklet::bench {
namespace {

constexpr size_t kMaxHeaderBytes = 64 * 1024;
constexpr size_t kMaxBodyBytes = 64ull << 20;

std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string Trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t"), b = s.find_last_not_of(" \t\r");
  return a == std::string::npos ? std::string() : s.substr(a, b - a + 1);
}

}  // namespace

HttpConnection::~HttpConnection() { Close(); }

void HttpConnection::Close() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  in_.clear();
}

Status HttpConnection::Connect() {
  if (endpoint_.rfind("unix:", 0) == 0) {
    std::string path = endpoint_.substr(5);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (path.size() >= sizeof(a.sun_path)) return MakeError("connect " + endpoint_, "path too long");
    memcpy(a.sun_path, path.c_str(), path.size() + 1);
    fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return SysError("socket");
    if (connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
      Error e = SysError("connect " + endpoint_);
      Close();
      return e;
    }
    return {};
  }
  std::string hostport = endpoint_;
  if (hostport.rfind("http://", 0) == 0) hostport = hostport.substr(7);
  if (auto slash = hostport.find('/'); slash != std::string::npos) hostport.resize(slash);
  auto colon = hostport.rfind(':');
  if (colon == std::string::npos) return MakeError("endpoint " + endpoint_, "expected http://HOST:PORT");
  std::string host = hostport.substr(0, colon);
  if (host == "localhost") host = "127.0.0.1";
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(atoi(hostport.c_str() + colon + 1)));
  if (inet_pton(AF_INET, host.c_str(), &a.sin_addr) != 1)
    return MakeError("endpoint " + endpoint_, "expected a numeric IPv4 host");
  fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return SysError("socket");
  int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    Error e = SysError("connect " + endpoint_);
    Close();
    return e;
  }
  return {};
}

Result<HttpReply> HttpConnection::Call(const std::string& method, const std::string& target,
                                       const std::string& body, const std::string& extra_headers) {
  std::string req;
  req.reserve(128 + target.size() + extra_headers.size() + body.size());
  req += method;
  req += ' ';
  req += target;
  req += " HTTP/1.1\r\nHost: forklet\r\nContent-Length: ";
  req += std::to_string(body.size());
  req += "\r\n";
  req += extra_headers;
  req += "\r\n";
  req += body;
  // A kept-alive connection the server closed meanwhile fails on first use: retry once, fresh.
  bool reused = fd_ >= 0;
  if (!reused) {
    if (auto s = Connect(); !s) return s.error();
  }
  auto r = Exchange(req);
  if (!r && reused) {
    Close();
    if (auto s = Connect(); !s) return s.error();
    r = Exchange(req);
  }
  return r;
}

Result<HttpReply> HttpConnection::Exchange(const std::string& request) {
  for (size_t sent = 0; sent < request.size();) {
    ssize_t n = send(fd_, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      Error e = SysError("send");
      Close();
      return e;
    }
    sent += static_cast<size_t>(n);
  }
  auto fill = [&]() -> bool {
    char buf[16384];
    for (;;) {
      ssize_t n = recv(fd_, buf, sizeof(buf), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      in_.append(buf, static_cast<size_t>(n));
      return true;
    }
  };
  size_t head_end;
  while ((head_end = in_.find("\r\n\r\n")) == std::string::npos) {
    if (in_.size() > kMaxHeaderBytes || !fill()) {
      Close();
      return MakeError("http", "connection closed before a complete response header");
    }
  }
  HttpReply reply;
  size_t line_end = in_.find("\r\n");
  // "HTTP/1.1 200 OK"
  if (in_.compare(0, 5, "HTTP/") != 0 || in_.find(' ') == std::string::npos) {
    Close();
    return MakeError("http", "malformed status line");
  }
  reply.status = atoi(in_.c_str() + in_.find(' ') + 1);
  size_t content_length = 0;
  bool close_after = false;
  for (size_t pos = line_end + 2; pos < head_end;) {
    size_t eol = in_.find("\r\n", pos);
    std::string line = in_.substr(pos, eol - pos);
    pos = eol + 2;
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = Lower(line.substr(0, colon));
    std::string value = Trim(line.substr(colon + 1));
    if (name == "content-length") content_length = strtoull(value.c_str(), nullptr, 10);
    if (name == "connection" && Lower(value) == "close") close_after = true;
    reply.headers[std::move(name)] = std::move(value);
  }
  if (content_length > kMaxBodyBytes) {
    Close();
    return MakeError("http", "response body too large");
  }
  size_t total = head_end + 4 + content_length;
  while (in_.size() < total) {
    if (!fill()) {
      Close();
      return MakeError("http", "connection closed inside the response body");
    }
  }
  reply.body.assign(in_, head_end + 4, content_length);
  in_.erase(0, total);
  if (close_after) Close();
  return reply;
}

}  // namespace forklet::bench
