// Tests for TLS on the HTTP listener: curl over HTTPS (keep-alive, a large body), plain HTTP on
// the TLS port, bad certificate and key files, and a reloaded certificate.
#include "runtime/api/tls.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "runtime/api/http_server.h"

namespace forklet::api {
namespace {

namespace fs = std::filesystem;

struct Cmd {
  int exit_code = -1;
  std::string out;  // stdout and stderr together
};

Cmd Shell(const std::string& command) {
  Cmd r;
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) r.out.append(buf, n);
  int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// A temp dir with a self-signed certificate for 127.0.0.1 (openssl CLI), removed afterwards.
class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    signal(SIGPIPE, SIG_IGN);  // as forkletd does: a vanished TLS client is an error, not a signal
    char tmpl[] = "/tmp/forklet-tls-XXXXXX";
    dir_ = mkdtemp(tmpl);
    MakeCertificate("cert.pem", "key.pem");
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }
  void MakeCertificate(const std::string& cert, const std::string& key) {
    auto r = Shell("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
                   "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout " +
                   Path(key) + " -out " + Path(cert));
    ASSERT_EQ(r.exit_code, 0) << r.out;
  }
  std::unique_ptr<HttpServer> Start(const std::string& cert = "cert.pem",
                                    const std::string& key = "key.pem") {
    HttpServerOptions o;
    o.listen = "127.0.0.1:0";
    o.tls_cert = Path(cert);
    o.tls_key = Path(key);
    auto s = HttpServer::Start(o, [](const HttpRequest& r) {
      HttpResponse out;
      out.body = r.method + " " + r.path + " " + std::to_string(r.body.size());
      return out;
    });
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().ToString());
    return s.ok() ? std::move(s.value()) : nullptr;
  }
  std::string Url(const HttpServer& s, const std::string& path) {
    return "https://127.0.0.1:" + std::to_string(s.tcp_port()) + path;
  }
  std::string dir_;
};

TEST_F(TlsTest, CurlTalksHttpsAndKeepsTheConnectionAlive) {
  auto server = Start();
  ASSERT_TRUE(server);
  EXPECT_TRUE(server->tls());
  auto r = Shell("curl -sS -v --cacert " + Path("cert.pem") + " " + Url(*server, "/a") + " " +
                 Url(*server, "/b"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("GET /a 0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("GET /b 0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Re-using existing connection"), std::string::npos) << r.out;
  // A body larger than one TLS record arrives whole.
  std::ofstream(Path("big")) << std::string(3 << 20, 'x');
  r = Shell("curl -sS --cacert " + Path("cert.pem") + " --data-binary @" + Path("big") + " " +
            Url(*server, "/big"));
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(r.out, "POST /big " + std::to_string(3 << 20));
}

TEST_F(TlsTest, AnUntrustedCertificateOrPlainHttpGetsNoAnswer) {
  auto server = Start();
  ASSERT_TRUE(server);
  auto untrusted = Shell("curl -sS " + Url(*server, "/a"));
  EXPECT_NE(untrusted.exit_code, 0) << untrusted.out;
  auto plain = Shell("curl -sS --max-time 5 http://127.0.0.1:" + std::to_string(server->tcp_port()) + "/a");
  EXPECT_NE(plain.exit_code, 0) << plain.out;
  EXPECT_EQ(plain.out.find("GET /a"), std::string::npos) << plain.out;
  // The server still serves after both.
  EXPECT_EQ(Shell("curl -sS --cacert " + Path("cert.pem") + " " + Url(*server, "/c")).out, "GET /c 0");
}

TEST_F(TlsTest, BadFilesAreRefusedWithTheirReason) {
  auto missing = TlsCertificate::Load(Path("nope.pem"), Path("key.pem"));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().ToString().find("--tls-cert " + Path("nope.pem")), std::string::npos)
      << missing.error().ToString();
  EXPECT_NE(missing.error().ToString().find("No such file"), std::string::npos) << missing.error().ToString();

  std::ofstream(Path("garbage.pem")) << "not a certificate\n";
  auto garbage = TlsCertificate::Load(Path("garbage.pem"), Path("key.pem"));
  ASSERT_FALSE(garbage.ok());
  EXPECT_NE(garbage.error().ToString().find("not a PEM certificate"), std::string::npos)
      << garbage.error().ToString();

  auto key_as_cert = TlsCertificate::Load(Path("cert.pem"), Path("cert.pem"));
  ASSERT_FALSE(key_as_cert.ok());
  EXPECT_NE(key_as_cert.error().ToString().find("--tls-key"), std::string::npos);

  MakeCertificate("other.pem", "other-key.pem");
  auto mismatch = TlsCertificate::Load(Path("cert.pem"), Path("other-key.pem"));
  ASSERT_FALSE(mismatch.ok());
  EXPECT_NE(mismatch.error().ToString().find("does not match the certificate"), std::string::npos)
      << mismatch.error().ToString();
  // The private key's bytes are never in a message.
  std::ifstream key(Path("other-key.pem"));
  std::string line;
  while (std::getline(key, line)) {
    if (line.find("-----") == std::string::npos) {
      EXPECT_EQ(mismatch.error().ToString().find(line), std::string::npos);
    }
  }

  HttpServerOptions o;
  o.listen = "127.0.0.1:0";
  o.tls_cert = Path("cert.pem");
  auto half = HttpServer::Start(o, [](const HttpRequest&) { return HttpResponse{}; });
  ASSERT_FALSE(half.ok());
  EXPECT_NE(half.error().ToString().find("give both"), std::string::npos) << half.error().ToString();
}

TEST_F(TlsTest, AReloadedCertificateServesNewConnectionsAndABadOneKeepsTheOld) {
  auto server = Start();
  ASSERT_TRUE(server);
  fs::copy_file(Path("cert.pem"), Path("first.pem"));
  MakeCertificate("cert.pem", "key.pem");  // renewed in place
  ASSERT_TRUE(server->ReloadTls().ok());
  EXPECT_NE(Shell("curl -sS --cacert " + Path("first.pem") + " " + Url(*server, "/a")).exit_code, 0);
  EXPECT_EQ(Shell("curl -sS --cacert " + Path("cert.pem") + " " + Url(*server, "/a")).out, "GET /a 0");
  std::ofstream(Path("key.pem")) << "broken";
  EXPECT_FALSE(server->ReloadTls().ok());
  EXPECT_EQ(Shell("curl -sS --cacert " + Path("cert.pem") + " " + Url(*server, "/b")).out, "GET /b 0");
}

}  // namespace
}  // namespace forklet::api
