// HTTPS on the TCP API (--tls-cert/--tls-key): the real aws CLI with --ca-bundle and boto3 with
// verify=CERT deploy, invoke and list over TLS with signed requests; plain HTTP gets nothing; bad
// certificate files stop the start with their reason.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "tests/integration/daemon.h"

namespace forklet::testing {
namespace {
using nlohmann::json;

constexpr const char* kKey = "AKIDTLSTENANT";
constexpr const char* kSecret = "secret-of-the-tls-tenant";

class TlsApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = "/tmp/forklet-test-state-tls-" + std::to_string(getpid());
    std::filesystem::create_directories(dir_);
    MakeCertificate();
    json keys{{"keys", {{{"access_key_id", kKey}, {"secret_access_key", kSecret}, {"account_id", "333333333333"}}}}};
    std::ofstream(dir_ + "/keys.json") << keys.dump();
  }
  void TearDown() override {
    daemon_.reset();
    std::filesystem::remove_all(dir_);
  }
  // A self-signed certificate for 127.0.0.1 in cert.pem and key.pem (replacing what is there).
  void MakeCertificate() {
    auto r = forklet::testing::Run({"/usr/bin/openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                                    "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", dir_ + "/key.pem",
                                    "-out", dir_ + "/cert.pem"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  void StartDaemon() {
    daemon_ = Daemon::Start({"--credentials", dir_ + "/keys.json", "--tls-cert", dir_ + "/cert.pem",
                             "--tls-key", dir_ + "/key.pem"});
  }
  // The harness's endpoint is http://; this daemon speaks TLS on that port.
  std::string Endpoint() { return "https" + daemon_->endpoint().substr(4); }
  CmdResult Aws(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"/usr/bin/aws", "lambda"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), {"--endpoint-url", Endpoint(), "--ca-bundle", dir_ + "/cert.pem",
                             "--region", "us-east-1", "--no-cli-pager"});
    return forklet::testing::Run(argv, {{"AWS_ACCESS_KEY_ID", kKey},
                      {"AWS_SECRET_ACCESS_KEY", kSecret},
                      {"AWS_MAX_ATTEMPTS", "1"},
                      {"AWS_CONFIG_FILE", "/dev/null"},
                      {"AWS_SHARED_CREDENTIALS_FILE", "/dev/null"},
                      {"AWS_EC2_METADATA_DISABLED", "true"}});
  }
  json Boto3(const std::string& op, const std::string& arg = "", const std::string& ca = "") {
    auto r = forklet::testing::Run({"/usr/bin/python3", CLIENTS_DIR "/tenant_client.py", Endpoint(), kKey, kSecret,
                  ca.empty() ? dir_ + "/cert.pem" : ca, op, arg});
    json j = json::parse(r.out, nullptr, false);
    return j.is_object() ? j : json{{"ok", false}, {"status", 0}, {"code", "client failed"}, {"data", r.err}};
  }
  std::string dir_;
  std::unique_ptr<Daemon> daemon_;
};

TEST_F(TlsApiTest, TheAwsCliAndBoto3WorkOverHttps) {
  StartDaemon();
  EXPECT_NE(daemon_->log().find("ready on https://127.0.0.1:"), std::string::npos) << daemon_->log();
  std::string zip = ZipFunction("hello");
  auto created = Aws({"create-function", "--function-name", "hello", "--runtime", "python3.11", "--handler",
                      "app.handler", "--role", "arn:aws:iam::333333333333:role/x", "--zip-file", "fileb://" + zip});
  std::filesystem::remove(zip);
  ASSERT_EQ(created.exit_code, 0) << created.err;
  EXPECT_NE(created.out.find("arn:aws:lambda:us-east-1:333333333333:function:hello"), std::string::npos);
  std::string out = dir_ + "/out.json";
  auto invoked = Aws({"invoke", "--function-name", "hello", "--payload", "{\"name\": \"tls\"}",
                      "--cli-binary-format", "raw-in-base64-out", out});
  ASSERT_EQ(invoked.exit_code, 0) << invoked.err;
  std::ifstream f(out);
  std::string body((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_EQ(body, "{\"hello\": \"tls\"}");

  // boto3 keeps one connection for its calls (keep-alive over TLS).
  auto listed = Boto3("list");
  EXPECT_TRUE(listed["ok"]) << listed;
  EXPECT_EQ(listed["data"].size(), 1u) << listed;
  auto b = Boto3("invoke", "hello");
  EXPECT_TRUE(b["ok"]) << b;
  // Without trusting the certificate, nothing is sent.
  auto untrusted = Boto3("list", "", "-");
  EXPECT_FALSE(untrusted["ok"]) << untrusted;
  // Plain HTTP on the TLS port gets no answer, and the daemon goes on serving.
  std::string plain = daemon_->endpoint();
  auto r = forklet::testing::Run({"/usr/bin/curl", "-sS", "--max-time", "5", plain + "/2015-03-31/functions/"});
  EXPECT_NE(r.exit_code, 0) << r.out;
  EXPECT_TRUE(Boto3("invoke", "hello")["ok"]);
}

TEST_F(TlsApiTest, SighupServesARenewedCertificateAndABadOneKeepsTheOld) {
  StartDaemon();
  ASSERT_TRUE(Boto3("list")["ok"]);
  std::filesystem::copy_file(dir_ + "/cert.pem", dir_ + "/old.pem");
  MakeCertificate();  // renewed in place, as certbot does
  kill(daemon_->pid(), SIGHUP);
  json renewed;
  for (int i = 0; i < 50; ++i) {  // the reload is asynchronous
    renewed = Boto3("list");
    if (renewed["ok"]) break;
    usleep(100'000);
  }
  EXPECT_TRUE(renewed["ok"]) << renewed;
  EXPECT_FALSE(Boto3("list", "", dir_ + "/old.pem")["ok"]) << "new connections get the new certificate";
  std::ofstream(dir_ + "/key.pem") << "not a key";
  kill(daemon_->pid(), SIGHUP);
  usleep(500'000);
  EXPECT_TRUE(Boto3("list")["ok"]) << "the certificate in force stays";
  EXPECT_NE(daemon_->ReadLog().find("(the certificate in force stays)"), std::string::npos) << daemon_->log();
}

TEST_F(TlsApiTest, BadCertificateFilesStopTheStartWithTheirReason) {
  auto start = [&](const std::string& cert, const std::string& key) {
    return forklet::testing::Run({FORKLETD_PATH, "--config", "", "--listen", "127.0.0.1:0", "--state-dir", dir_ + "/state",
                "--no-warmup", "--tls-cert", cert, "--tls-key", key});
  };
  auto missing = start(dir_ + "/cert.pem", dir_ + "/nokey.pem");
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.err.find("--tls-key " + dir_ + "/nokey.pem"), std::string::npos) << missing.err;
  EXPECT_NE(missing.err.find("No such file"), std::string::npos) << missing.err;
  auto swapped = start(dir_ + "/key.pem", dir_ + "/cert.pem");
  EXPECT_NE(swapped.exit_code, 0);
  EXPECT_NE(swapped.err.find("not a PEM certificate"), std::string::npos) << swapped.err;
  std::filesystem::remove_all(dir_ + "/state");
}

}  // namespace
}  // namespace forklet::testing
