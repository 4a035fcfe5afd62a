// HttpCall: a blocking one-request client (Boost.Beast) for the CLI and tests.
#include <sys/un.h>

#include <cctype>
#include <string_view>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "runtime/api/http_server.h"

namespace forklet::api {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

constexpr uint32_t kHeaderLimit = 64 * 1024;

struct Endpoint {
  std::string unix_path;  // set for "unix:/path"
  std::string host;       // set for "http://host:port"
  std::string port;
};

Result<Endpoint> ParseEndpoint(const std::string& endpoint) {
  constexpr std::string_view kUnix = "unix:", kHttp = "http://";
  std::string_view e = endpoint;
  Endpoint out;
  if (e.substr(0, kUnix.size()) == kUnix) {
    out.unix_path = std::string(e.substr(kUnix.size()));
    if (out.unix_path.empty() || out.unix_path.size() >= sizeof(sockaddr_un::sun_path))
      return MakeError("endpoint " + endpoint, "the socket path is empty or too long");
    return out;
  }
  if (e.substr(0, kHttp.size()) == kHttp) {
    std::string_view rest = e.substr(kHttp.size());
    rest = rest.substr(0, rest.find('/'));  // tolerate a trailing slash
    auto colon = rest.rfind(':');
    if (colon != std::string_view::npos && colon > 0 && colon + 1 < rest.size()) {
      out.host = std::string(rest.substr(0, colon));
      out.port = std::string(rest.substr(colon + 1));
      if (out.host.size() > 2 && out.host.front() == '[' && out.host.back() == ']')
        out.host = out.host.substr(1, out.host.size() - 2);
      return out;
    }
  }
  return MakeError("endpoint", "expected unix:/path/to.sock or http://HOST:PORT, got '" + endpoint + "'");
}

Error ConnectError(const std::string& endpoint, const beast::error_code& ec) {
  return MakeError("cannot connect to forkletd at " + endpoint, ec.message() + " (is the daemon running?)");
}

std::string Lower(beast::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

template <class Socket>
Result<HttpResponse> Exchange(Socket& socket, const std::string& endpoint,
                              http::request<http::string_body>& req) {
  beast::error_code write_ec, ec;
  http::write(socket, req, write_ec);
  // Even when the write failed, the server may have answered first and closed: a 413
  // is sent before an oversized body is read. So read whatever response there is.
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.header_limit(kHeaderLimit);
  parser.body_limit(boost::none);  // responses carry invocation payloads; the caller asked for them
  if (req.method() == http::verb::head) parser.skip(true);
  http::read(socket, buffer, parser, ec);
  if (ec) {
    return MakeError(std::string(req.method_string()) + " " + std::string(req.target()) + " at " + endpoint,
                     (write_ec ? write_ec : ec).message());
  }
  auto res = parser.release();
  HttpResponse out;
  out.status = res.result_int();
  for (const auto& field : res) {
    auto [it, inserted] = out.headers.emplace(Lower(field.name_string()), std::string(field.value()));
    if (!inserted) (it->second += ", ").append(field.value().data(), field.value().size());
  }
  out.body = std::move(res.body());
  return out;
}

}  // namespace

Result<HttpResponse> HttpCall(const std::string& endpoint, const std::string& method,
                              const std::string& target, const std::string& body,
                              const std::map<std::string, std::string>& headers) {
  auto ep = ParseEndpoint(endpoint);
  if (!ep) return ep.error();

  http::request<http::string_body> req;
  req.method_string(method);
  req.target(target.empty() ? "/" : target);
  req.version(11);
  req.set(http::field::host, ep->unix_path.empty() ? ep->host + ":" + ep->port : "localhost");
  for (const auto& [name, value] : headers) req.set(name, value);
  req.keep_alive(false);  // one request per connection
  req.body() = body;
  req.prepare_payload();

  asio::io_context io;
  beast::error_code ec;
  if (!ep->unix_path.empty()) {
    asio::local::stream_protocol::socket socket(io);
    socket.connect(asio::local::stream_protocol::endpoint(ep->unix_path), ec);
    if (ec) return ConnectError(endpoint, ec);
    return Exchange(socket, endpoint, req);
  }
  asio::ip::tcp::resolver resolver(io);
  auto addresses = resolver.resolve(ep->host, ep->port, ec);
  if (ec) return MakeError("cannot resolve " + ep->host + ":" + ep->port, ec.message());
  asio::ip::tcp::socket socket(io);
  asio::connect(socket, addresses, ec);
  if (ec) return ConnectError(endpoint, ec);
  socket.set_option(asio::ip::tcp::no_delay(true), ec);
  return Exchange(socket, endpoint, req);
}

}  // namespace forklet::api
