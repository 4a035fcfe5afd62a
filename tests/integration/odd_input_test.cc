// Odd but legitimate input and slow clients: Lambda's response limit with Lambda's error, JSON
// numbers of any size, zip names the filesystem cannot hold, Lambda fields forklet cannot apply,
// and HTTP clients that send slowly or not at all.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/api/http_server.h"
#include "tests/integration/daemon.h"

namespace forklet::testing {
namespace {
using nlohmann::json;
namespace fs = std::filesystem;

// A function directory with one file, removed at the end of the test.
class FunctionDir {
 public:
  FunctionDir(const std::string& file, const std::string& source) {
    std::string t = "/tmp/forklet-odd-fn-XXXXXX";
    if (mkdtemp(t.data()) == nullptr) throw std::runtime_error("mkdtemp");
    path_ = t;
    std::ofstream(path_ + "/" + file) << source;
  }
  ~FunctionDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

void ExpectError(const CmdResult& r, const std::string& type, const std::string& what) {
  EXPECT_NE(r.exit_code, 0) << what << ": " << r.out;
  EXPECT_NE(r.err.find(type), std::string::npos) << what << ": " << r.err;
}

class OddInputTest : public ::testing::Test {
 protected:
  void SetUp() override { daemon_ = Daemon::Start(); }
  std::unique_ptr<Daemon> daemon_;
};

TEST_F(OddInputTest, ResponseSizeTooLargeIsLambdasErrorAndTheInstanceLives) {
  FunctionDir py("app.py",
                 "import os\n"
                 "def handler(e, c):\n"
                 "    return 'x' * e['n'] if 'n' in e else {'pid': os.getpid()}\n");
  FunctionDir node("index.js",
                   "exports.handler = async (e) => (e.n ? 'x'.repeat(e.n) : {pid: process.pid});\n");
  ASSERT_EQ(DeployDir(*daemon_, "big-py", py.path()).exit_code, 0);
  auto n = DeployDir(*daemon_, "big-node", node.path(), "nodejs20.x", "index.handler");
  ASSERT_EQ(n.exit_code, 0) << n.err;
  for (const char* fn : {"big-py", "big-node"}) {
    std::string body, log;
    InvokeWithLog(*daemon_, fn, "{}", &body);
    const int pid = json::parse(body)["pid"];
    // Past 6,291,556 bytes; the Node runner sends it, the daemon drops it unread.
    for (int size : {6291557, 7 * 1024 * 1024}) {
      json out = InvokeWithLog(*daemon_, fn, R"({"n": )" + std::to_string(size) + "}", &body, &log);
      EXPECT_EQ(out["StatusCode"], 200);
      EXPECT_EQ(out.value("FunctionError", ""), "Unhandled") << fn;
      json err = json::parse(body, nullptr, false);
      ASSERT_TRUE(err.is_object()) << fn << ": " << body.substr(0, 200);
      EXPECT_EQ(err["errorType"], "Function.ResponseSizeTooLarge") << fn;
      EXPECT_NE(err["errorMessage"].get<std::string>().find(
                    "exceeded maximum allowed payload size (6291556 bytes)"),
                std::string::npos)
          << err.dump();
      EXPECT_NE(log.find("Function.ResponseSizeTooLarge"), std::string::npos) << fn << ": " << log;
      EXPECT_NE(log.find("REPORT RequestId"), std::string::npos) << log;
    }
    InvokeWithLog(*daemon_, fn, "{}", &body);
    EXPECT_EQ(json::parse(body)["pid"], pid) << fn << ": the instance lives on";
  }
}

TEST_F(OddInputTest, JsonNumbersOfAnySizeReachTheFunctionUntouched) {
  // A plain program (stdin convention) answers with the SHA-256 of the bytes it was given.
  FunctionDir fn("app.py",
                 "import hashlib, sys\n"
                 "def main():\n"
                 "    sys.stdout.write(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())\n");
  auto c = DeployDir(*daemon_, "digest", fn.path(), "python3.11", "app.main",
                     {"--environment", "Variables={FORKLET_HANDLER_CONVENTION=stdin}"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  for (const std::string& payload :
       {std::string(R"({"x": 1e400})"), R"({"x": )" + std::string(5000, '7') + "}",
        std::string(R"({"x": -0.000000000000000000000000000000000000000000001e-400})")}) {
    auto r = api::HttpCall(daemon_->endpoint(), "POST", "/2015-03-31/functions/digest/invocations",
                           payload);
    ASSERT_TRUE(r) << r.error().ToString();
    EXPECT_EQ(r->status, 200) << r->body;
    auto sha = ::forklet::testing::Run({"/usr/bin/python3", "-c",
                    "import hashlib, sys; print(hashlib.sha256(sys.argv[1].encode()).hexdigest(), end='')",
                    payload});
    EXPECT_EQ(r->body, sha.out) << payload.substr(0, 40);
  }
  auto bad = api::HttpCall(daemon_->endpoint(), "POST", "/2015-03-31/functions/digest/invocations",
                           R"({"x": 1e})");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
}

TEST_F(OddInputTest, AZipEntryNameTooLongIsTheZipsFault) {
  for (const std::string& name : {std::string(300, 'a') + ".py", "dir/" + std::string(256, 'b')}) {
    std::string zip = ZipWithEntry(name, "x");
    auto r = daemon_->Aws({"create-function", "--function-name", "long", "--runtime", "python3.11",
                           "--handler", "app.handler", "--zip-file", "fileb://" + zip, "--role",
                           "arn:aws:iam::000000000000:role/x"});
    unlink(zip.c_str());
    ExpectError(r, "InvalidParameterValueException", name.substr(0, 10));
    EXPECT_NE(r.err.find("longer than 255 bytes"), std::string::npos) << r.err;
  }
  auto l = daemon_->Aws({"list-functions"});
  EXPECT_EQ(json::parse(l.out)["Functions"].size(), 0u);
}

TEST_F(OddInputTest, LambdaFieldsForkletCannotApplyAreRefused) {
  for (const auto& [what, extra] : std::vector<std::pair<std::string, std::vector<std::string>>>{
           {"arm64", {"--architectures", "arm64"}},
           {"layers", {"--layers", "arn:aws:lambda:us-east-1:000000000000:layer:l:1"}},
           {"vpc", {"--vpc-config", "SubnetIds=subnet-1,SecurityGroupIds=sg-1"}},
           {"publish", {"--publish"}},
           {"ephemeral 100000", {"--ephemeral-storage", "Size=100000"}},
       }) {
    ExpectError(Deploy(*daemon_, "f", "echo", extra), "InvalidParameterValueException", what);
  }
  EXPECT_EQ(json::parse(daemon_->Aws({"list-functions"}).out)["Functions"].size(), 0u);
  // What it can apply it accepts: x86_64, 512 MB of /tmp, an empty VPC configuration.
  auto ok = Deploy(*daemon_, "f", "echo",
                   {"--architectures", "x86_64", "--ephemeral-storage", "Size=512", "--vpc-config",
                    "SubnetIds=[],SecurityGroupIds=[]"});
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  ExpectError(daemon_->Aws({"update-function-configuration", "--function-name", "f", "--layers",
                            "arn:aws:lambda:us-east-1:000000000000:layer:l:1"}),
              "InvalidParameterValueException", "update layers");
  const std::string zip = ZipFunction("echo");
  ExpectError(daemon_->Aws({"update-function-code", "--function-name", "f", "--zip-file",
                            "fileb://" + zip, "--publish"}),
              "InvalidParameterValueException", "update-code publish");
  unlink(zip.c_str());
  auto g = daemon_->Aws({"get-function-configuration", "--function-name", "f"});
  EXPECT_EQ(json::parse(g.out)["RevisionId"], json::parse(ok.out)["RevisionId"]);
}

TEST_F(OddInputTest, VariablesLambdaDoesNotReserveAreTheFunctions) {
  FunctionDir fn("app.py",
                 "import os\n"
                 "def handler(e, c):\n"
                 "    return {k: os.environ.get(k) for k in ('PATH', 'TZ', 'LANG', 'AWS_REGION')}\n");
  auto c = DeployDir(*daemon_, "env", fn.path(),
                     {"--environment", "Variables={PATH=/opt/bin:/usr/bin,TZ=Europe/Paris}"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  std::string body;
  InvokeWithLog(*daemon_, "env", "{}", &body);
  json env = json::parse(body);
  EXPECT_EQ(env["PATH"], "/opt/bin:/usr/bin");
  EXPECT_EQ(env["TZ"], "Europe/Paris");
  EXPECT_EQ(env["LANG"], "C.UTF-8");  // the default where the function sets none
  EXPECT_EQ(env["AWS_REGION"], "us-east-1");
  ExpectError(daemon_->Aws({"update-function-configuration", "--function-name", "env",
                            "--environment", "Variables={AWS_REGION=eu-west-1}"}),
              "InvalidParameterValueException", "reserved AWS_REGION");
}

// A raw TCP connection to the daemon.
int Connect(Daemon& d) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(std::stoi(d.endpoint().substr(d.endpoint().rfind(':') + 1))));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// What the server sends until it closes, or until 20 s have passed ("<open>" appended then).
std::string ReadUntilClosed(int fd) {
  std::string got;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 200) <= 0) continue;
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) return got;
    got.append(buf, static_cast<size_t>(n));
  }
  return got + "<open>";
}

TEST(SlowClientTest, SlowHeadersIdleConnectionsAndTooManyConnectionsAreBounded) {
  auto d = Daemon::Start({"--http-header-timeout", "1", "--http-body-timeout", "1",
                          "--http-idle-timeout", "2", "--http-max-connections", "16"});
  // A header that never ends: 408 and closed.
  int slow = Connect(*d);
  ASSERT_GE(slow, 0);
  std::string partial = "GET /forklet/v1/health HTTP/1.1\r\nHost: x\r\n";
  ASSERT_EQ(write(slow, partial.data(), partial.size()), static_cast<ssize_t>(partial.size()));
  std::string got = ReadUntilClosed(slow);
  close(slow);
  EXPECT_NE(got.find("408"), std::string::npos) << got;
  EXPECT_NE(got.find("RequestTimeoutException"), std::string::npos) << got;

  // A body that never ends: 408 too.
  int body = Connect(*d);
  std::string head = "POST /2015-03-31/functions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{";
  ASSERT_EQ(write(body, head.data(), head.size()), static_cast<ssize_t>(head.size()));
  got = ReadUntilClosed(body);
  close(body);
  EXPECT_NE(got.find("408"), std::string::npos) << got;

  // Connections that say nothing are closed quietly.
  int idle = Connect(*d);
  EXPECT_EQ(ReadUntilClosed(idle), "");
  close(idle);

  // Past the connection limit: 503 at once, and the API answers again once they are gone.
  std::vector<int> held;
  for (int i = 0; i < 16; ++i) held.push_back(Connect(*d));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // all accepted
  int extra = Connect(*d);
  got = ReadUntilClosed(extra);
  close(extra);
  EXPECT_NE(got.find("503"), std::string::npos) << got;
  for (int fd : held) EXPECT_EQ(ReadUntilClosed(fd), "");  // idle: closed by the server
  for (int fd : held) close(fd);
  auto h = api::HttpCall(d->endpoint(), "GET", "/forklet/v1/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
}

TEST(SlowClientTest, ConcurrentUploadsAreLimitedWithRetryAfter) {
  auto d = Daemon::Start({"--max-concurrent-uploads", "1"});
  // One upload holds the only place: its header is in, its body comes slowly.
  int holder = Connect(*d);
  ASSERT_GE(holder, 0);
  std::string head = "PUT /2015-03-31/functions/x/code HTTP/1.1\r\nHost: x\r\n"
                     "Content-Length: 5000000\r\n\r\n{\"ZipFile\": \"";
  ASSERT_EQ(write(holder, head.data(), head.size()), static_cast<ssize_t>(head.size()));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const std::string big(2 << 20, ' ');  // 2 MB of JSON whitespace
  auto refused = api::HttpCall(d->endpoint(), "PUT", "/2015-03-31/functions/x/code", big + "{}");
  ASSERT_TRUE(refused) << refused.error().ToString();
  EXPECT_EQ(refused->status, 429) << refused->body;
  EXPECT_EQ(refused->headers["retry-after"], "1");
  EXPECT_NE(refused->body.find("uploads are in progress"), std::string::npos) << refused->body;
  // Small requests are not held back.
  auto health = api::HttpCall(d->endpoint(), "GET", "/forklet/v1/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  close(holder);  // its place is free again
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto after = api::HttpCall(d->endpoint(), "PUT", "/2015-03-31/functions/x/code", big + "{}");
  ASSERT_TRUE(after);
  EXPECT_NE(after->status, 429) << after->body;
}

}  // namespace
}  // namespace forklet::testing
