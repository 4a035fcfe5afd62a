// Fuzzes the HTTP server's request path as it runs in forkletd: Beast's parser with the server's
// limits, then the conversion to HttpRequest (percent-decoding, query, folded headers), through a
// real HttpServer on a Unix socket. Whatever bytes arrive, the server answers with well-formed
// responses (or closes) and never crashes; the handler sees only requests that parsed.
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "runtime/api/http_server.h"
#include "tests/fuzz/fuzz_util.h"

namespace forklet::fuzz {
const char* const kTarget = "http_request_fuzz";
}  // namespace forklet::fuzz

namespace {
using forklet::fuzz::Fail;
using forklet::fuzz::TempDir;
using namespace forklet;
namespace http = boost::beast::http;

api::HttpResponse Echo(const api::HttpRequest& r) {
  if (r.method.empty() || r.target.empty()) Fail("the handler got a request without method or target");
  for (const auto& [name, value] : r.headers)
    for (char c : name)
      if (std::isupper(static_cast<unsigned char>(c))) Fail("header name not lower-cased: " + name);
  api::HttpResponse out;
  // The raw target in a header: the transport must keep it from splitting the response. (The
  // decoded path may hold any byte; no route puts decoded client bytes in a header, so the body.)
  out.headers["X-Echo-Target"] = r.target;
  out.body = r.path + "\n" + r.body;
  return out;
}

struct Server {
  std::string socket_path;
  std::unique_ptr<api::HttpServer> server;
  Server() {
    std::string dir = TempDir("http");
    socket_path = dir + "/api.sock";
    api::HttpServerOptions o;
    o.listen = "";
    o.unix_socket = socket_path;
    o.max_body_bytes = 64 * 1024;
    auto s = api::HttpServer::Start(o, Echo);
    if (!s) Fail(s.error().ToString());
    server = std::move(s.value());
  }
};

// Every response in `bytes` must parse as HTTP/1.1.
void CheckResponses(const std::string& bytes) {
  if (bytes.empty()) return;  // closed without an answer: the client sent nothing, or went away
  boost::beast::flat_buffer buffer;
  auto out = buffer.prepare(bytes.size());
  memcpy(out.data(), bytes.data(), bytes.size());
  buffer.commit(bytes.size());
  while (buffer.size() > 0) {
    http::response_parser<http::string_body> parser;
    parser.body_limit(boost::none);
    parser.eager(true);
    boost::beast::error_code ec;
    size_t used = parser.put(buffer.data(), ec);
    if (ec == http::error::need_more) Fail("a truncated response: " + bytes);
    if (ec) Fail("a malformed response (" + ec.message() + "): " + bytes);
    buffer.consume(used);
    if (!parser.is_done()) Fail("an incomplete response: " + bytes);
    int status = parser.get().result_int();
    if (status >= 500) Fail("a server error for client input: " + bytes);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Server* server = new Server;  // lives for the whole run
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  memcpy(addr.sun_path, server->socket_path.c_str(), server->socket_path.size() + 1);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0)
    Fail(std::string("connect: ") + strerror(errno));
  // Send, reading as we go: the server may answer (and close) before all is sent.
  std::string response;
  size_t sent = 0;
  bool write_open = true;
  char buf[65536];
  for (;;) {
    pollfd p{fd, static_cast<short>(POLLIN | (write_open ? POLLOUT : 0)), 0};
    int ready;
    do ready = poll(&p, 1, 20000);  // libFuzzer's -timeout alarm interrupts calls (EINTR)
    while (ready < 0 && errno == EINTR);
    if (ready <= 0)
      Fail("the server neither answered nor closed within 20 s (sent " + std::to_string(sent) + " of " +
           std::to_string(size) + " bytes; got: " + response + ")");
    if (p.revents & POLLIN) {
      ssize_t n = read(fd, buf, sizeof(buf));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      response.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (write_open && (p.revents & POLLOUT)) {
      // Never block in send: the server may be blocked writing responses this loop must read.
      ssize_t n = size > sent ? send(fd, data + sent, size - sent, MSG_NOSIGNAL | MSG_DONTWAIT) : 0;
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (n > 0) sent += static_cast<size_t>(n);
      if (n < 0 || sent == size) {
        shutdown(fd, SHUT_WR);
        write_open = false;
      }
      continue;
    }
    if (p.revents & (POLLHUP | POLLERR)) break;
  }
  close(fd);
  CheckResponses(response);
  return 0;
}
