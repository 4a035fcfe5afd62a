// forklet-bench's client: a minimal keep-alive HTTP/1.1 client over one raw socket, so that what
// it times is the daemon and the kernel, not a client library.
#pragma once

#include <map>
#include <string>

#include "sandbox/error.h"

namespace forklet::bench {

struct HttpReply {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  std::string Header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
};

// One connection, used by one thread. "http://HOST:PORT" (TCP_NODELAY) or "unix:/path".
// Reconnects when the server closed the connection between two requests.
class HttpConnection {
 public:
  explicit HttpConnection(std::string endpoint) : endpoint_(std::move(endpoint)) {}
  ~HttpConnection();
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;

  // extra_headers: complete "Name: value\r\n" lines. The request goes out in one write.
  Result<HttpReply> Call(const std::string& method, const std::string& target,
                         const std::string& body = {}, const std::string& extra_headers = {});

 private:
  Status Connect();
  void Close();
  Result<HttpReply> Exchange(const std::string& request);

  std::string endpoint_;
  int fd_ = -1;
  std::string in_;  // bytes received and not yet consumed
};

}  // namespace forklet::bench
