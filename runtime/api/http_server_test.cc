// Tests for the HTTP transport: both listeners, limits, errors, shutdown, load and latency.
#include "runtime/api/http_server.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <gtest/gtest.h>

namespace forklet::api {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

// A fresh directory for sockets, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/forklet-http-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string Path(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Counts calls and keeps the last request; answers echo what it got.
struct Recorder {
  std::atomic<int> calls{0};
  std::mutex mu;
  HttpRequest last;

  HttpHandler Handler() {
    return [this](const HttpRequest& r) {
      ++calls;
      if (r.path == "/throw") throw std::runtime_error("boom in handler");
      HttpResponse out;
      if (r.path == "/text") out.headers["Content-Type"] = "text/plain";
      out.status = r.method == "POST" ? 201 : 200;
      out.headers["X-Amz-Function-Error"] = "Unhandled";
      out.body = r.body.empty() ? "ok" : r.body;
      if (r.body.size() < 1024) {
        std::lock_guard lock(mu);
        last = r;
      }
      return out;
    };
  }
};

class HttpServerTest : public ::testing::Test {
 protected:
  void StartServer(HttpHandler handler, size_t max_body = 80ull << 20) {
    HttpServerOptions o;
    o.listen = "127.0.0.1:0";
    o.unix_socket = socket_path_;
    o.max_body_bytes = max_body;
    auto s = HttpServer::Start(o, std::move(handler));
    ASSERT_TRUE(s.ok()) << s.error().ToString();
    server_ = std::move(s.value());
    ASSERT_GT(server_->tcp_port(), 0);
  }
  std::string TcpEndpoint() const { return "http://127.0.0.1:" + std::to_string(server_->tcp_port()); }
  std::string UnixEndpoint() const { return "unix:" + socket_path_; }

  TempDir dir_;
  std::string socket_path_ = dir_.Path("forkletd.sock");
  Recorder recorder_;
  std::unique_ptr<HttpServer> server_;
};

// One keep-alive connection driven with Beast, over either transport.
template <class Socket>
class Connection {
 public:
  template <class Endpoint>
  explicit Connection(const Endpoint& endpoint) : socket_(io_) {
    socket_.connect(endpoint);
    if constexpr (std::is_same_v<Socket, asio::ip::tcp::socket>) socket_.set_option(asio::ip::tcp::no_delay(true));
  }
  http::response<http::string_body> Send(http::request<http::string_body> req) {
    req.prepare_payload();
    http::write(socket_, req);
    http::response<http::string_body> res;
    http::read(socket_, buffer_, res);
    return res;
  }
  // True when the server has closed its side.
  bool AtEof() {
    char c;
    beast::error_code ec;
    socket_.read_some(asio::buffer(&c, 1), ec);
    return ec == asio::error::eof;
  }
  Socket& socket() { return socket_; }

 private:
  asio::io_context io_;
  Socket socket_;
  beast::flat_buffer buffer_;
};

using TcpConnection = Connection<asio::ip::tcp::socket>;
using UnixConnection = Connection<asio::local::stream_protocol::socket>;

asio::ip::tcp::endpoint Loopback(int port) {
  return {asio::ip::address_v4::loopback(), static_cast<unsigned short>(port)};
}

asio::local::stream_protocol::endpoint UnixAt(const std::string& path) { return {path}; }

http::request<http::string_body> Get(const std::string& target, unsigned version = 11) {
  http::request<http::string_body> req{http::verb::get, target, version};
  req.set(http::field::host, "localhost");
  return req;
}

// ---- round trips over both transports ----

class BothTransports : public HttpServerTest, public ::testing::WithParamInterface<bool> {
 protected:
  std::string Endpoint() const { return GetParam() ? UnixEndpoint() : TcpEndpoint(); }
};

TEST_P(BothTransports, PostRoundTripDecodesPathQueryAndHeaders) {
  StartServer(recorder_.Handler());
  const std::string target = "/2015-03-31/functions/my%20fn/invocations?Qualifier=%24LATEST&note=a+b%2Bc&flag";
  auto r = HttpCall(Endpoint(), "POST", target, R"({"k":1})", {{"X-Amz-Invocation-Type", "RequestResponse"}});
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->status, 201);
  EXPECT_EQ(r->body, R"({"k":1})");
  EXPECT_EQ(r->headers["x-amz-function-error"], "Unhandled");
  EXPECT_EQ(r->headers["content-type"], "application/json");
  EXPECT_EQ(r->headers["content-length"], "7");

  std::lock_guard lock(recorder_.mu);
  const HttpRequest& got = recorder_.last;
  EXPECT_EQ(got.method, "POST");
  EXPECT_EQ(got.target, target);
  EXPECT_EQ(got.path, "/2015-03-31/functions/my fn/invocations");
  EXPECT_EQ(got.query, (std::map<std::string, std::string>{{"Qualifier", "$LATEST"}, {"note", "a b+c"}, {"flag", ""}}));
  EXPECT_EQ(got.Header("x-amz-invocation-type"), "RequestResponse");
  EXPECT_EQ(got.Header("content-length"), "7");
  EXPECT_EQ(got.body, R"({"k":1})");
}

TEST_P(BothTransports, GetKeepsTheHandlersContentType) {
  StartServer(recorder_.Handler());
  auto r = HttpCall(Endpoint(), "GET", "/text");
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->headers["content-type"], "text/plain");
  EXPECT_EQ(r->body, "ok");
}

TEST_P(BothTransports, TenMegabyteBodyRoundTrips) {
  StartServer(recorder_.Handler());
  std::string big(10 << 20, 'x');
  for (size_t i = 0; i < big.size(); i += 4096) big[i] = static_cast<char>('a' + i % 26);
  auto r = HttpCall(Endpoint(), "POST", "/echo", big);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->status, 201);
  EXPECT_TRUE(r->body == big);
}

INSTANTIATE_TEST_SUITE_P(Http, BothTransports, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "Unix" : "Tcp"; });

TEST_F(HttpServerTest, DefaultLimitAcceptsAnEightyMegabyteBodyBothWays) {
  StartServer(recorder_.Handler());
  std::string big(80 << 20, 'z');
  auto r = HttpCall(UnixEndpoint(), "POST", "/echo", big);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->status, 201);
  EXPECT_EQ(r->body.size(), big.size());
}

// ---- connection handling ----

TEST_F(HttpServerTest, KeepAliveServesTwoRequestsOnOneConnection) {
  StartServer(recorder_.Handler());
  TcpConnection tcp(Loopback(server_->tcp_port()));
  EXPECT_EQ(tcp.Send(Get("/a")).body(), "ok");
  EXPECT_EQ(tcp.Send(Get("/b")).body(), "ok");
  UnixConnection unix_conn(UnixAt(socket_path_));
  EXPECT_EQ(unix_conn.Send(Get("/a")).body(), "ok");
  auto second = unix_conn.Send(Get("/b"));
  EXPECT_EQ(second.body(), "ok");
  EXPECT_TRUE(second.keep_alive());
  EXPECT_EQ(recorder_.calls, 4);
}

TEST_F(HttpServerTest, Http10ClosesUnlessKeepAliveIsAsked) {
  StartServer(recorder_.Handler());
  TcpConnection plain(Loopback(server_->tcp_port()));
  EXPECT_EQ(plain.Send(Get("/", 10)).result_int(), 200);
  EXPECT_TRUE(plain.AtEof());

  TcpConnection kept(Loopback(server_->tcp_port()));
  auto req = Get("/", 10);
  req.keep_alive(true);
  EXPECT_TRUE(kept.Send(req).keep_alive());
  EXPECT_EQ(kept.Send(req).result_int(), 200);
}

TEST_F(HttpServerTest, OversizedBodyGets413WithoutReachingTheHandler) {
  StartServer(recorder_.Handler(), 1024);
  auto r = HttpCall(TcpEndpoint(), "POST", "/big", std::string(4096, 'x'));
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(r->headers["x-amzn-errortype"], "RequestTooLargeException");
  EXPECT_NE(r->body.find(R"("Type":"User")"), std::string::npos) << r->body;
  EXPECT_EQ(recorder_.calls, 0);

  auto at_limit = HttpCall(UnixEndpoint(), "POST", "/big", std::string(1024, 'x'));
  ASSERT_TRUE(at_limit.ok()) << at_limit.error().ToString();
  EXPECT_EQ(at_limit->status, 201);
}

TEST_F(HttpServerTest, OversizedBodyOfMegabytesStillGets413) {
  // The client is still writing when the server answers; the answer must survive.
  StartServer(recorder_.Handler(), 1024);
  auto r = HttpCall(UnixEndpoint(), "POST", "/big", std::string(20 << 20, 'x'));
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(recorder_.calls, 0);
}

TEST_F(HttpServerTest, GarbageGets400AndTheConnectionCloses) {
  StartServer(recorder_.Handler());
  TcpConnection conn(Loopback(server_->tcp_port()));
  asio::write(conn.socket(), asio::buffer(std::string("\x16\x03\x01 not http at all\r\n\r\n")));
  std::string reply;
  beast::error_code ec;
  asio::read(conn.socket(), asio::dynamic_buffer(reply), ec);  // until the server closes
  EXPECT_EQ(ec, asio::error::eof);
  EXPECT_EQ(reply.rfind("HTTP/1.1 400", 0), 0u) << reply;
  EXPECT_NE(reply.find(R"({"Type":"User","message":"malformed HTTP request: )"), std::string::npos) << reply;
  EXPECT_NE(reply.find("X-Amzn-ErrorType: InvalidRequestContentException"), std::string::npos) << reply;
  EXPECT_EQ(recorder_.calls, 0);
}

TEST_F(HttpServerTest, ThrowingHandlerGets500AndTheServerGoesOn) {
  StartServer(recorder_.Handler());
  TcpConnection conn(Loopback(server_->tcp_port()));
  auto failed = conn.Send(Get("/throw"));
  EXPECT_EQ(failed.result_int(), 500);
  EXPECT_EQ(failed.body(), R"({"Type":"Service","message":"boom in handler"})");
  EXPECT_EQ(conn.Send(Get("/after")).result_int(), 200);  // same connection
  auto r = HttpCall(UnixEndpoint(), "GET", "/after");
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->status, 200);
}

// ---- the Unix socket file ----

TEST_F(HttpServerTest, StaleSocketFileIsReplacedAndRemovedOnStop) {
  {  // a socket file whose owner died without removing it
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    strcpy(addr.sun_path, socket_path_.c_str());
    ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    close(fd);
  }
  ASSERT_TRUE(fs::is_socket(socket_path_));
  StartServer(recorder_.Handler());
  EXPECT_EQ((fs::status(socket_path_).permissions() & fs::perms::all),
            fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read | fs::perms::group_write);
  auto r = HttpCall(UnixEndpoint(), "GET", "/");
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->status, 200);
  server_->Stop();
  EXPECT_FALSE(fs::exists(socket_path_));
  server_->Stop();  // idempotent
}

TEST_F(HttpServerTest, SecondServerOnTheSameSocketFailsClearly) {
  StartServer(recorder_.Handler());
  HttpServerOptions o;
  o.listen = "127.0.0.1:0";
  o.unix_socket = socket_path_;
  auto second = HttpServer::Start(o, recorder_.Handler());
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.error().ToString().find("another daemon is listening on " + socket_path_), std::string::npos)
      << second.error().ToString();
  auto r = HttpCall(UnixEndpoint(), "GET", "/");  // the first one is untouched
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->status, 200);
}

TEST_F(HttpServerTest, RefusesToReplaceAFileThatIsNotASocket) {
  std::ofstream(socket_path_) << "precious";
  HttpServerOptions o;
  o.listen = "127.0.0.1:0";
  o.unix_socket = socket_path_;
  auto s = HttpServer::Start(o, recorder_.Handler());
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().ToString().find("not a socket"), std::string::npos) << s.error().ToString();
  EXPECT_TRUE(fs::is_regular_file(socket_path_));
}

// ---- TCP address errors ----

TEST_F(HttpServerTest, BadListenAddressesFailClearly) {
  for (const char* bad : {"9000", "127.0.0.1:", ":9000", "127.0.0.1:99999", "127.0.0.1:http"}) {
    HttpServerOptions o;
    o.listen = bad;
    auto s = HttpServer::Start(o, recorder_.Handler());
    ASSERT_FALSE(s.ok()) << bad;
    EXPECT_EQ(s.error().ToString(), std::string("--listen: expected HOST:PORT, got '") + bad + "'");
  }
}

TEST_F(HttpServerTest, AddressInUseNamesTheAddress) {
  StartServer(recorder_.Handler());
  HttpServerOptions o;
  o.listen = "127.0.0.1:" + std::to_string(server_->tcp_port());
  auto s = HttpServer::Start(o, recorder_.Handler());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().ToString(), "cannot listen on " + o.listen + ": Address already in use");
}

// ---- shutdown ----

TEST_F(HttpServerTest, StopLetsAnInFlightRequestFinish) {
  std::atomic<bool> entered{false}, finished{false};
  StartServer([&](const HttpRequest&) {
    entered = true;
    std::this_thread::sleep_for(300ms);
    finished = true;
    return HttpResponse{200, {}, "slow"};
  });
  Result<HttpResponse> reply = MakeError("not called", "");
  std::thread client([&] { reply = HttpCall(TcpEndpoint(), "GET", "/slow"); });
  while (!entered) std::this_thread::sleep_for(1ms);
  server_->Stop();
  EXPECT_TRUE(finished);
  client.join();
  ASSERT_TRUE(reply.ok()) << reply.error().ToString();
  EXPECT_EQ(reply->body, "slow");
  EXPECT_FALSE(HttpCall(TcpEndpoint(), "GET", "/").ok());  // no longer listening
}

TEST_F(HttpServerTest, StopClosesIdleKeepAliveConnections) {
  StartServer(recorder_.Handler());
  TcpConnection tcp(Loopback(server_->tcp_port()));
  UnixConnection unix_conn(UnixAt(socket_path_));
  EXPECT_EQ(tcp.Send(Get("/")).result_int(), 200);
  EXPECT_EQ(unix_conn.Send(Get("/")).result_int(), 200);
  auto start = std::chrono::steady_clock::now();
  server_->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  EXPECT_TRUE(tcp.AtEof());
  EXPECT_TRUE(unix_conn.AtEof());
}

// ---- load ----

int ThreadCount() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("Threads:", 0) == 0) return std::stoi(line.substr(8));
  return -1;
}

TEST_F(HttpServerTest, EightConcurrentClientsOfFiveHundredRequestsAllSucceed) {
  StartServer(recorder_.Handler());
  const int baseline_threads = ThreadCount();
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 8; ++c) {
    clients.emplace_back([&, c] {
      for (int i = 0; i < 500; ++i) {
        std::string body = std::to_string(c) + ":" + std::to_string(i);
        auto r = HttpCall((c + i) % 2 ? UnixEndpoint() : TcpEndpoint(), "POST", "/load", body);
        if (r.ok() && r->status == 201 && r->body == body) ++ok;
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok, 4000);
  EXPECT_EQ(recorder_.calls, 4000);
  // Finished connection threads go away rather than accumulate.
  for (int i = 0; i < 200 && ThreadCount() > baseline_threads; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(ThreadCount(), baseline_threads);
}

// ---- client errors ----

TEST(HttpCallTest, MissingSocketSaysTheDaemonIsNotRunning) {
  TempDir dir;
  std::string path = dir.Path("nope.sock");
  auto r = HttpCall("unix:" + path, "GET", "/");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().ToString(),
            "cannot connect to forkletd at unix:" + path + ": No such file or directory (is the daemon running?)");
}

TEST(HttpCallTest, BadEndpointIsExplained) {
  auto r = HttpCall("127.0.0.1:9000", "GET", "/");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().ToString(),
            "endpoint: expected unix:/path/to.sock or http://HOST:PORT, got '127.0.0.1:9000'");
}

// ---- latency (printed, not asserted) ----

template <class Conn, class Endpoint>
void PrintLatency(const char* transport, const Endpoint& endpoint) {
  Conn conn(endpoint);
  auto req = Get("/2015-03-31/functions/f/invocations");
  req.prepare_payload();
  std::vector<double> micros;
  for (int i = 0; i < 2200; ++i) {
    auto start = std::chrono::steady_clock::now();
    auto res = conn.Send(req);
    auto took = std::chrono::steady_clock::now() - start;
    ASSERT_EQ(res.result_int(), 200);
    if (i >= 200) micros.push_back(std::chrono::duration<double, std::micro>(took).count());  // after warm-up
  }
  std::sort(micros.begin(), micros.end());
  printf("[ latency  ] %s keep-alive GET x%zu: p50 %.1f us, p99 %.1f us\n", transport, micros.size(),
         micros[micros.size() / 2], micros[micros.size() * 99 / 100]);
}

TEST_F(HttpServerTest, RoundTripLatency) {
  StartServer([](const HttpRequest&) { return HttpResponse{200, {}, "{}"}; });
  PrintLatency<TcpConnection>("tcp ", Loopback(server_->tcp_port()));
  PrintLatency<UnixConnection>("unix", UnixAt(socket_path_));
}

}  // namespace
}  // namespace forklet::api
