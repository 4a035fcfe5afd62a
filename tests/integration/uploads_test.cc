// Code uploads as the aws CLI sends them (the zip base64 in a JSON body): a large one is taken out
// of the body without a parsed copy, so the daemon's peak memory stays a small multiple of the zip;
// the function runs with exactly the code uploaded; a broken large body gets Lambda's errors.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "runtime/api/http_server.h"
#include "tests/integration/daemon.h"

namespace forklet::testing {
namespace {

using nlohmann::json;

// A zip with app.py returning `tag` and `mb` MB of incompressible bytes.
std::string BigZip(const std::string& tag, int mb) {
  std::string zip = "/tmp/forklet-fn-upload-" + std::to_string(getpid()) + "-" + tag + ".zip";
  auto r = Run({"/usr/bin/python3", "-c",
                "import os, sys, zipfile\n"
                "with zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_STORED) as z:\n"
                "    z.writestr('app.py', 'def handler(e, c):\\n    return {\"tag\": \"' + sys.argv[2] + '\"}\\n')\n"
                "    z.writestr('noise.bin', os.urandom(int(sys.argv[3]) << 20))\n",
                zip, tag, std::to_string(mb)});
  if (r.exit_code != 0) throw std::runtime_error("zip: " + r.err);
  return zip;
}

// The daemon's peak resident memory so far, in KB (VmHWM).
uint64_t PeakKb(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stoull(line.substr(6));
  return 0;
}

std::string Sha256Base64(const std::string& path) {
  auto r = Run({"/bin/sh", "-c", "openssl dgst -sha256 -binary '" + path + "' | base64 -w0"});
  return r.out;
}

TEST(UploadsTest, ALargeZipIsDecodedFromTheBodyWithoutAParsedCopy) {
  auto d = Daemon::Start();
  const int mb = 20;
  const std::string one = BigZip("one", mb), two = BigZip("two", mb);
  uint64_t before = PeakKb(d->pid());
  auto created = d->Aws({"create-function", "--function-name", "big", "--runtime", "python3.11",
                         "--handler", "app.handler", "--role", "arn:aws:iam::000000000000:role/x",
                         "--zip-file", "fileb://" + one});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  EXPECT_EQ(json::parse(created.out)["CodeSha256"], Sha256Base64(one));
  std::string body;
  ASSERT_EQ(Invoke(*d, "big", "{}", &body).exit_code, 0);
  EXPECT_EQ(json::parse(body)["tag"], "one");
  auto updated = d->Aws({"update-function-code", "--function-name", "big", "--zip-file", "fileb://" + two});
  ASSERT_EQ(updated.exit_code, 0) << updated.err;
  EXPECT_EQ(json::parse(updated.out)["CodeSha256"], Sha256Base64(two));
  ASSERT_EQ(Invoke(*d, "big", "{}", &body).exit_code, 0);
  EXPECT_EQ(json::parse(body)["tag"], "two");
  // The body (4/3 of the zip in base64) and the decoded zip are needed; a parsed copy of the
  // base64 text (grown by doubling) is not: it took the peak to about 7 x the zip before.
  uint64_t grew_mb = (PeakKb(d->pid()) - before) >> 10;
  EXPECT_LT(grew_mb, 4u * mb) << "the daemon's peak memory grew " << grew_mb << " MB for a " << mb
                              << " MB zip";
  unlink(one.c_str());
  unlink(two.c_str());
}

TEST(UploadsTest, ABrokenLargeBodyGetsLambdasErrorsAndChangesNothing) {
  auto d = Daemon::Start();
  ASSERT_EQ(Deploy(*d, "f", "echo").exit_code, 0);
  std::string junk(3 << 20, 'A');
  junk[1000] = '!';  // not base64
  auto call = [&](const std::string& method, const std::string& target, const std::string& b) {
    auto r = api::HttpCall(d->endpoint(), method, target, b, {{"Content-Type", "application/json"}});
    if (!r) throw std::runtime_error(r.error().ToString());
    return std::move(r.value());
  };
  auto bad = call("PUT", "/2015-03-31/functions/f/code", json{{"ZipFile", junk}}.dump());
  EXPECT_EQ(bad.status, 400) << bad.body;
  EXPECT_NE(bad.body.find("not valid base64"), std::string::npos) << bad.body;
  auto cut = call("PUT", "/2015-03-31/functions/f/code", R"({"ZipFile": ")" + junk + R"(", )");
  EXPECT_EQ(cut.status, 400) << cut.body;
  EXPECT_EQ(cut.headers["x-amzn-errortype"], "InvalidRequestContentException") << cut.body;
  auto created = call("POST", "/2015-03-31/functions",
                      json{{"FunctionName", "g"}, {"Runtime", "python3.11"}, {"Handler", "app.handler"},
                           {"Role", "arn:aws:iam::000000000000:role/x"}, {"Code", {{"ZipFile", junk}}}}
                          .dump());
  EXPECT_EQ(created.status, 400) << created.body;
  auto g = d->Aws({"get-function", "--function-name", "g"});
  EXPECT_NE(g.exit_code, 0);
  EXPECT_NE(g.err.find("ResourceNotFoundException"), std::string::npos) << "nothing created: " << g.err;
  std::string body;
  EXPECT_EQ(Invoke(*d, "f", R"({"k": 1})", &body).exit_code, 0);
  EXPECT_EQ(json::parse(body)["event"]["k"], 1) << "still echo's code";
}

}  // namespace
}  // namespace forklet::testing
