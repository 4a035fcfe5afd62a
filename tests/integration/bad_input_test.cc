// Bad input gets a clear error and changes nothing.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/integration/daemon.h"

namespace forklet::testing {
namespace {
using nlohmann::json;

class BadInputTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    daemon_ = Daemon::Start().release();
    ASSERT_EQ(Deploy(*daemon_, "good", "hello").exit_code, 0);
  }
  static void TearDownTestSuite() { delete daemon_; }
  void TearDown() override {
    // Whatever was refused, the existing function is intact and the list unchanged.
    std::string body;
    ASSERT_EQ(Invoke(*daemon_, "good", R"({"name": "still"})", &body).exit_code, 0);
    EXPECT_EQ(json::parse(body)["hello"], "still");
    auto l = daemon_->Aws({"list-functions"});
    EXPECT_EQ(json::parse(l.out)["Functions"].size(), 1u) << l.out;
  }
  static CmdResult Curl(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"/usr/bin/curl", "-s", "-o", "/dev/stdout", "-w", "\n%{http_code}"};
    argv.insert(argv.end(), args.begin(), args.end());
    return ::forklet::testing::Run(argv);
  }
  static Daemon* daemon_;
};
Daemon* BadInputTest::daemon_ = nullptr;

void ExpectError(const CmdResult& r, const std::string& type, const std::string& words = "") {
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find(type), std::string::npos) << r.err;
  if (!words.empty()) {
    EXPECT_NE(r.err.find(words), std::string::npos) << r.err;
  }
}

TEST_F(BadInputTest, UnknownFunctionIs404) {
  std::string body;
  ExpectError(Invoke(*daemon_, "nope", "{}", &body), "ResourceNotFoundException", "nope");
  ExpectError(daemon_->Aws({"get-function", "--function-name", "nope"}), "ResourceNotFoundException");
  ExpectError(daemon_->Aws({"delete-function", "--function-name", "nope"}), "ResourceNotFoundException");
}

TEST_F(BadInputTest, MalformedJsonPayload) {
  std::string body;
  ExpectError(Invoke(*daemon_, "good", "{not json", &body), "InvalidRequestContentException");
}

TEST_F(BadInputTest, PayloadOver6MBIs413) {
  std::string path = "/tmp/forklet-big-payload.json";
  {
    std::ofstream f(path);
    f << "\"" << std::string(6 * 1024 * 1024 + 10, 'a') << "\"";
  }
  auto r = Curl({"-X", "POST", "--data-binary", "@" + path,
                 daemon_->endpoint() + "/2015-03-31/functions/good/invocations"});
  unlink(path.c_str());
  EXPECT_EQ(r.out.substr(r.out.rfind('\n') + 1), "413") << r.out;
  EXPECT_NE(r.out.find("Request must be smaller than 6291456 bytes"), std::string::npos) << r.out;
}

TEST_F(BadInputTest, BadFunctionName) {
  ExpectError(Deploy(*daemon_, "bad/name", "hello"), "", "");
  ExpectError(Deploy(*daemon_, std::string(65, 'a'), "hello"), "InvalidParameterValueException");
}

TEST_F(BadInputTest, ZipWithDotDotOrAbsolutePath) {
  for (const std::string entry : {"../evil.py", "/etc/evil.py"}) {
    std::string zip = ZipWithEntry(entry, "x");
    auto r = daemon_->Aws({"create-function", "--function-name", "evil", "--runtime", "python3.11",
                           "--handler", "app.handler", "--zip-file", "fileb://" + zip, "--role",
                           "arn:aws:iam::000000000000:role/x"});
    unlink(zip.c_str());
    ExpectError(r, "InvalidParameterValueException");
  }
}

TEST_F(BadInputTest, UnknownRuntime) {
  ExpectError(Deploy(*daemon_, "rt", "hello", {"--runtime", "cobol85"}), "InvalidParameterValueException",
              "cobol85");
}

TEST_F(BadInputTest, MemoryAndTimeoutOutOfRange) {
  // The aws CLI refuses some of these itself; the daemon must refuse them from any client.
  std::string zip = ZipFunction("hello");
  auto create = [&](int memory, int timeout) {
    auto b64 = ::forklet::testing::Run({"/usr/bin/base64", "-w0", zip}).out;
    std::string body = R"({"FunctionName":"range","Runtime":"python3.11","Handler":"app.handler",)"
                       R"("Role":"r","MemorySize":)" + std::to_string(memory) +
                       R"(,"Timeout":)" + std::to_string(timeout) + R"(,"Code":{"ZipFile":")" + b64 + R"("}})";
    std::string path = "/tmp/forklet-range.json";
    std::ofstream(path) << body;
    auto r = Curl({"-X", "POST", "--data-binary", "@" + path, daemon_->endpoint() + "/2015-03-31/functions"});
    unlink(path.c_str());
    return r;
  };
  for (auto [memory, timeout] : {std::pair{64, 3}, {10241, 3}, {128, 0}, {128, 901}}) {
    auto r = create(memory, timeout);
    EXPECT_EQ(r.out.substr(r.out.rfind('\n') + 1), "400") << memory << " " << timeout << r.out;
    EXPECT_NE(r.out.find(memory != 128 ? "memorySize" : "timeout"), std::string::npos) << r.out;
  }
  unlink(zip.c_str());
  ExpectError(Deploy(*daemon_, "m", "hello", {"--memory-size", "10241"}), "InvalidParameterValueException");
  ExpectError(daemon_->Aws({"update-function-configuration", "--function-name", "good",
                            "--timeout", "901"}),
              "InvalidParameterValueException");
}

TEST_F(BadInputTest, DuplicateCreateConflicts) {
  ExpectError(Deploy(*daemon_, "good", "echo"), "ResourceConflictException");
}

TEST_F(BadInputTest, MalformedRequestBody) {
  auto r = Curl({"-X", "POST", "--data-binary", "{oops", daemon_->endpoint() + "/2015-03-31/functions"});
  EXPECT_EQ(r.out.substr(r.out.rfind('\n') + 1), "400") << r.out;
}

TEST(CodeSizeLimit, ZipOverTheLimitIsRefused) {
  auto d = Daemon::Start({"--max-code-mb", "1"});
  std::string zip = ZipWithEntry("big.bin", std::string(0, 'x'));
  // 2 MB of incompressible bytes in the zip: over the daemon's 1 MB limit.
  auto r = ::forklet::testing::Run(
      {"/usr/bin/python3", "-c",
       "import os, sys, zipfile\n"
       "with zipfile.ZipFile(sys.argv[1], 'a') as z: z.writestr('noise.bin', os.urandom(2 << 20))\n",
       zip});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto c = d->Aws({"create-function", "--function-name", "big", "--runtime", "python3.11", "--handler",
                   "app.handler", "--zip-file", "fileb://" + zip, "--role", "arn:aws:iam::0:role/x"});
  unlink(zip.c_str());
  EXPECT_NE(c.exit_code, 0);
  EXPECT_NE(c.err.find("RequestEntityTooLargeException"), std::string::npos) << c.err;
  EXPECT_NE(c.err.find("Zipped size must be smaller than"), std::string::npos) << c.err;
  EXPECT_EQ(json::parse(d->Aws({"list-functions"}).out)["Functions"].size(), 0u);
}

TEST_F(BadInputTest, GarbageZip) {
  // The aws CLI refuses a file that is not a zip before sending it; any other client can send one.
  std::string body = R"({"FunctionName":"garbage","Runtime":"python3.11","Handler":"app.handler",)"
                     R"("Role":"r","Code":{"ZipFile":"bm90IGEgemlwIGZpbGUgYXQgYWxs"}})";
  auto r = Curl({"-X", "POST", "--data-binary", body, daemon_->endpoint() + "/2015-03-31/functions"});
  EXPECT_EQ(r.out.substr(r.out.rfind('\n') + 1), "400") << r.out;
  EXPECT_NE(r.out.find("Could not unzip uploaded file"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace forklet::testing
