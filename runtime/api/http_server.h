// HTTP/1.1 transport (Boost.Beast): TCP (plain or TLS) and a Unix socket, one thread per connection.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "sandbox/error.h"

namespace forklet::api {

struct HttpRequest {
  std::string method;                          // "GET", "POST", ...
  std::string target;                          // path with query, as received
  std::string path;                            // percent-decoded path without the query
  std::map<std::string, std::string> query;    // decoded query parameters
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  // A large code upload spooled to disk as it arrived (HttpServerOptions::spool_dir): body is
  // empty and this file holds it until the response is sent.
  std::string body_file;
  bool local = false;  // came over the Unix socket, whose file mode is its access control
  // The tenant who asks (set by the authentication in front of the APIs): the account id of the
  // access key that signed the request. Empty: the operator (the Unix socket, a TCP API without
  // --credentials, an operator key), who sees every account.
  std::string account;
  std::string Header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
};

struct HttpResponse {
  int status = 200;
  std::map<std::string, std::string> headers;  // Content-Length is set by the transport
  std::string body;
};

// The handler may fill in what it learns about the request (HttpRequest::account).
using HttpHandler = std::function<HttpResponse(HttpRequest&)>;

// %XX decoded (malformed escapes kept as they are); '+' is a space in query strings only.
std::string PercentDecode(std::string_view s, bool plus_is_space);

struct HttpServerOptions {
  std::string listen = "127.0.0.1:9000";  // HOST:PORT; port 0 picks a free port; empty for none
  std::string unix_socket;                // path; empty for none. Replaced if stale.
  size_t max_body_bytes = 80ull << 20;    // larger bodies get 413 without reaching the handler
  // A slow or idle client cannot hold a connection (a thread and a descriptor) forever:
  std::chrono::milliseconds header_timeout{10'000};  // from a request's first byte to its header's end
  std::chrono::milliseconds body_timeout{120'000};   // reading a body; also writing a response
  std::chrono::milliseconds idle_timeout{60'000};    // a keep-alive connection between requests
  size_t max_connections = 512;  // beyond it a new connection gets 503 and is closed
  // Large bodies (code uploads) are held in memory while they are handled: at most this many at
  // once; one more gets 429 TooManyRequestsException with Retry-After before its body is read.
  size_t large_body_bytes = 1 << 20;  // a body this size or larger (or chunked) is large
  size_t max_large_bodies = 4;
  // Where large bodies of the requests spool() picks are written as they arrive instead of held in
  // memory (HttpRequest::body_file); empty: in memory.
  std::string spool_dir;
  std::function<bool(std::string_view method, std::string_view target)> spool;
  // TLS on the TCP listener (PEM files; both or neither). The Unix socket stays plain.
  std::string tls_cert;
  std::string tls_key;
};

// Serves until Stop(). Malformed HTTP gets 400, an oversized body 413, a header or body not
// complete in time 408, a connection past the limit 503, a large body past the limit 429, all
// with a JSON
// {"Type":"User","message":...} body; the handler never sees them. A handler that throws
// gets a 500 with the exception text; the server keeps running.
class HttpServer {
 public:
  static Result<std::unique_ptr<HttpServer>> Start(const HttpServerOptions& options,
                                                   HttpHandler handler);
  ~HttpServer();  // Stop()
  int tcp_port() const;  // the bound port (useful with port 0); 0 without TCP
  bool tls() const;      // whether the TCP listener speaks TLS
  // The certificate and key files again (a renewed certificate): new connections use them, open
  // ones keep theirs. On error the ones in force stay.
  Status ReloadTls();
  // Closes the listeners, then waits for in-flight requests to finish; idle keep-alive
  // connections are closed. Idempotent.
  void Stop();

 private:
  struct Impl;
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A small blocking client for the CLI and tests: "unix:/path" or "http://host:port" endpoints.
Result<HttpResponse> HttpCall(const std::string& endpoint, const std::string& method,
                              const std::string& target, const std::string& body = {},
                              const std::map<std::string, std::string>& headers = {});

}  // namespace forklet::api
