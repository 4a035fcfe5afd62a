// Only callers with credentials get in: the real aws CLI, boto3 and botocore's signer against a
// forkletd with --credentials (AWS Signature V4 on its TCP API).
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "runtime/api/http_server.h"
#include "tests/integration/daemon.h"

namespace forklet::testing {
namespace {
using nlohmann::json;

constexpr const char* kKeyOne = "AKIDFORKLETONE";
constexpr const char* kSecretOne = "secret-one-0123456789";
constexpr const char* kKeyTwo = "AKIDFORKLETTWO";
constexpr const char* kSecretTwo = "secret-two-0123456789";

class CredentialsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    file_ = "/tmp/forklet-test-state-credentials-" + std::to_string(getpid()) + ".json";
    WriteKeys({{kKeyOne, kSecretOne}});
    daemon_ = Daemon::Start({"--credentials", file_});
  }
  void TearDown() override {
    daemon_.reset();
    std::filesystem::remove(file_);
  }
  void WriteKeys(const std::vector<std::pair<std::string, std::string>>& keys) {
    json doc{{"keys", json::array()}};
    for (const auto& [id, secret] : keys)
      // The default account: the operator's `forklet deploy` (Unix socket) creates functions there.
      doc["keys"].push_back({{"access_key_id", id}, {"secret_access_key", secret}, {"account_id", "000000000000"}});
    std::ofstream(file_) << doc.dump();
  }
  // The aws CLI signing with this key and secret.
  CmdResult Aws(const std::string& key, const std::string& secret, const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"/usr/bin/aws", "lambda"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), {"--endpoint-url", daemon_->endpoint(), "--region", "us-east-1", "--no-cli-pager"});
    return forklet::testing::Run(argv, {{"AWS_ACCESS_KEY_ID", key},
                      {"AWS_SECRET_ACCESS_KEY", secret},
                      {"AWS_MAX_ATTEMPTS", "1"},
                      {"AWS_CONFIG_FILE", "/dev/null"},
                      {"AWS_SHARED_CREDENTIALS_FILE", "/dev/null"},
                      {"AWS_EC2_METADATA_DISABLED", "true"}});
  }
  // botocore's signer, bent as the mode says (tests/clients/sigv4_client.py): status, error type, body.
  std::vector<std::string> Botocore(const std::string& mode, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> argv = {"/usr/bin/python3", CLIENTS_DIR "/sigv4_client.py", daemon_->endpoint(),
                                     kKeyOne, kSecretOne, mode};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto r = forklet::testing::Run(argv);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::vector<std::string> parts;
    size_t at = 0;
    for (int i = 0; i < 2; ++i) {
      size_t tab = r.out.find('\t', at);
      parts.push_back(r.out.substr(at, tab - at));
      at = tab == std::string::npos ? r.out.size() : tab + 1;
    }
    parts.push_back(r.out.substr(at));
    return parts;
  }
  std::string file_;
  std::unique_ptr<Daemon> daemon_;
};

// A large code upload is spooled to disk before it is handled: its signature still covers its
// bytes (the payload hash is computed from the spooled file), and a wrong key is still refused.
TEST_F(CredentialsTest, ASignedLargeUploadIsVerifiedFromItsSpooledBody) {
  const std::string zip = "/tmp/forklet-fn-signed-" + std::to_string(getpid()) + ".zip";
  auto made = forklet::testing::Run(
      {"/usr/bin/python3", "-c",
       "import os, sys, zipfile\n"
       "with zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_STORED) as z:\n"
       "    z.writestr('app.py', 'def handler(e, c):\\n    return 7\\n')\n"
       "    z.writestr('noise.bin', os.urandom(3 << 20))\n",
       zip});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  const std::vector<std::string> create = {"create-function", "--function-name", "signed", "--runtime",
                                           "python3.11", "--handler", "app.handler", "--role",
                                           "arn:aws:iam::000000000000:role/x", "--zip-file", "fileb://" + zip};
  auto wrong = Aws(kKeyOne, "not-the-secret", create);
  EXPECT_NE(wrong.exit_code, 0);
  EXPECT_NE(wrong.err.find("InvalidSignatureException"), std::string::npos) << wrong.err;
  auto ok = Aws(kKeyOne, kSecretOne, create);
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  unlink(zip.c_str());
}

TEST_F(CredentialsTest, SignedCallsWorkAndEveryOtherIsRefused) {
  auto zip = ZipFunction("echo");
  auto created = Aws(kKeyOne, kSecretOne,
                     {"create-function", "--function-name", "echo", "--runtime", "python3.11", "--handler",
                      "app.handler", "--role", "arn:aws:iam::123456789012:role/x", "--zip-file", "fileb://" + zip});
  std::filesystem::remove(zip);
  ASSERT_EQ(created.exit_code, 0) << created.err;
  auto listed = Aws(kKeyOne, kSecretOne, {"list-functions"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_NE(listed.out.find("\"echo\""), std::string::npos);

  auto wrong_secret = Aws(kKeyOne, "not-the-secret-at-all", {"list-functions"});
  EXPECT_NE(wrong_secret.exit_code, 0);
  EXPECT_NE(wrong_secret.err.find("InvalidSignatureException"), std::string::npos) << wrong_secret.err;
  EXPECT_EQ(wrong_secret.err.find(kSecretOne), std::string::npos);
  auto unknown = Aws("AKIDNOBODY", kSecretOne, {"list-functions"});
  EXPECT_NE(unknown.exit_code, 0);
  EXPECT_NE(unknown.err.find("UnrecognizedClientException"), std::string::npos) << unknown.err;

  // No signature at all: nothing is created, invoked or listed.
  for (auto [method, path] : std::vector<std::pair<std::string, std::string>>{
           {"GET", "/2015-03-31/functions/"},
           {"POST", "/2015-03-31/functions/echo/invocations"},
           {"DELETE", "/2015-03-31/functions/echo"},
           {"GET", "/forklet/v1/health"}}) {
    auto r = api::HttpCall(daemon_->endpoint(), method, path, "{}");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 403) << method << " " << path;
    EXPECT_EQ(r->headers["x-amzn-errortype"], "MissingAuthenticationTokenException");
  }
  // The Unix socket (root's) needs no signature: the forklet CLI still works, and the function is
  // still there after all of the above.
  auto cli = daemon_->Cli({"list"});
  EXPECT_EQ(cli.exit_code, 0) << cli.err;
  EXPECT_NE(cli.out.find("echo"), std::string::npos);
}

TEST_F(CredentialsTest, ReplaysOutsideTheWindowTamperedBodiesAndPresignedUrls) {
  ASSERT_NE(Deploy(*daemon_, "echo", "echo").exit_code, 0) << "the harness's throwaway key is refused";
  ASSERT_EQ(daemon_->Cli({"deploy", "echo", TEST_FUNCTIONS_DIR "/echo"}).exit_code, 0);
  auto ok = Botocore("invoke", {"echo"});
  EXPECT_EQ(ok[0], "200") << ok[2];
  EXPECT_NE(ok[2].find("\"amount\": 1"), std::string::npos) << ok[2];
  auto replay = Botocore("skewed-list");
  EXPECT_EQ(replay[0], "403");
  EXPECT_EQ(replay[1], "InvalidSignatureException");
  EXPECT_NE(replay[2].find("Signature expired"), std::string::npos) << replay[2];
  auto tampered = Botocore("tampered-invoke", {"echo"});
  EXPECT_EQ(tampered[0], "403");
  EXPECT_EQ(tampered[1], "InvalidSignatureException") << tampered[2];
  auto presigned = Botocore("presigned-list");
  EXPECT_EQ(presigned[0], "200") << presigned[2];
  EXPECT_NE(presigned[2].find("\"echo\""), std::string::npos) << presigned[2];
}

TEST_F(CredentialsTest, SighupReloadsTheKeysAndABadFileKeepsThoseInForce) {
  EXPECT_NE(Aws(kKeyTwo, kSecretTwo, {"list-functions"}).exit_code, 0);
  WriteKeys({{kKeyOne, kSecretOne}, {kKeyTwo, kSecretTwo}});
  kill(daemon_->pid(), SIGHUP);
  CmdResult two;
  for (int i = 0; i < 50; ++i) {  // the reload is asynchronous
    two = Aws(kKeyTwo, kSecretTwo, {"list-functions"});
    if (two.exit_code == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(two.exit_code, 0) << two.err;
  std::ofstream(file_) << "{broken";
  kill(daemon_->pid(), SIGHUP);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(Aws(kKeyTwo, kSecretTwo, {"list-functions"}).exit_code, 0) << "the keys in force stay";
  EXPECT_NE(daemon_->ReadLog().find("the access keys in force stay"), std::string::npos) << daemon_->log();
}

}  // namespace
}  // namespace forklet::testing
