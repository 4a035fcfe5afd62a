// The AWS SDK for JavaScript v3 in the Node.js runtime, as Lambda ships it: a function that
// requires @aws-sdk/client-lambda, client-s3, client-dynamodb and lib-dynamodb without bundling
// them (tools/setup-node-sdk.sh installs them; /var/runtime/node_modules is on NODE_PATH), and a
// function's own copy of a module wins over the runtime's.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>

#include "tests/integration/daemon.h"

namespace forklet::testing {
namespace {
using nlohmann::json;

json InvokeBody(Daemon& d, const std::string& fn) {
  std::string body;
  auto r = Invoke(d, fn, "{}", &body);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out, nullptr, false).value("FunctionError", ""), "") << body;
  auto j = json::parse(body, nullptr, false);
  return j.is_object() ? j : json::object();
}

TEST(NodejsSdkTest, TheSdksClientsLoadWithoutBeingBundled) {
  auto d = Daemon::Start();
  auto c = DeployDir(*d, "sdk-js", TEST_FUNCTIONS_DIR "/node-sdk", "nodejs20.x", "index.handler");
  ASSERT_EQ(c.exit_code, 0) << c.err;
  json out = InvokeBody(*d, "sdk-js");
  EXPECT_EQ(out["lambda"], "function") << out.dump() << d->ReadLog();
  EXPECT_EQ(out["region"], "us-east-1");
  EXPECT_EQ(out["s3_region"], "us-east-1");
  EXPECT_EQ(out["document_client"], "function");
  EXPECT_EQ(out.value("resolved_from", "").rfind("/usr/local/lib/forklet/nodejs-sdk/node_modules/@aws-sdk/client-lambda/", 0), 0u)
      << out.dump();
  std::cout << "require of the four SDK packages in the function's init: " << out["require_ms"] << " ms\n";

  // A function's own @aws-sdk/client-lambda (in its node_modules) wins, as on Lambda.
  char tmpl[] = "/tmp/forklet-node-own-sdk-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  std::filesystem::create_directories(dir + "/node_modules/@aws-sdk/client-lambda");
  std::ofstream(dir + "/node_modules/@aws-sdk/client-lambda/index.js") << "module.exports = { own: true };\n";
  std::ofstream(dir + "/index.js") << "exports.handler = async () => ({ own: require('@aws-sdk/client-lambda').own === true });\n";
  auto own = DeployDir(*d, "own-sdk", dir, "nodejs20.x", "index.handler");
  std::filesystem::remove_all(dir);
  ASSERT_EQ(own.exit_code, 0) << own.err;
  EXPECT_EQ(InvokeBody(*d, "own-sdk")["own"], true);
}

}  // namespace
}  // namespace forklet::testing
