// A zygote serves one function (DESIGN.md rule 10), probed as hostile functions would: what a
// fork copies (AT_RANDOM, hence the stack canary and pointer guard; libc's address; Python's hash
// secret) differs between two functions, of Python and of the native runtime; two instances of
// one function may share it (the documented trade-off) but never `random`'s state; a new revision
// gets a new zygote. Through the real aws CLI.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/integration/daemon.h"

namespace forklet::testing {
namespace {
using nlohmann::json;

class ZygoteSecretsTest : public ::testing::Test {
 protected:
  void SetUp() override { daemon_ = Daemon::Start(); }
  json Call(const std::string& fn, std::string* kind = nullptr) {
    std::string body, log;
    InvokeWithLog(*daemon_, fn, "{}", &body, &log);
    if (kind) *kind = StartKindIn(log);
    json r = json::parse(body, nullptr, false);
    EXPECT_FALSE(r.is_discarded() || r.contains("errorType")) << body;
    return r;
  }
  // A new instance of fn (its idle ones dropped): forked from fn's zygote.
  json Fresh(const std::string& fn, std::string* kind = nullptr) {
    EXPECT_EQ(daemon_->Cli({"drop-instances", fn}).exit_code, 0);
    return Call(fn, kind);
  }
  // The pid of the zygote serving fn in GET health (0: none).
  pid_t ZygoteOf(const std::string& fn) {
    auto h = daemon_->Cli({"health"});
    json health = json::parse(h.out, nullptr, false);
    if (health.is_discarded()) return 0;
    for (auto& z : health["zygotes"])
      if (z.value("function", "") == fn) return z["pid"].get<pid_t>();
    return 0;
  }
  std::unique_ptr<Daemon> daemon_;
};

TEST_F(ZygoteSecretsTest, TwoPythonFunctionsShareNoForkedSecret) {
  ASSERT_EQ(Deploy(*daemon_, "alice", "secrets").exit_code, 0);
  ASSERT_EQ(Deploy(*daemon_, "mallory", "secrets").exit_code, 0);
  std::string kind;
  json a = Call("alice", &kind);
  EXPECT_EQ(kind, "zygote") << "a spare zygote was ready for the first start";
  json m = Call("mallory", &kind);
  EXPECT_EQ(kind, "zygote");
  ASSERT_EQ(a["at_random"].get<std::string>().size(), 32u) << a.dump();
  ASSERT_FALSE(a["libc_base"].get<std::string>().empty()) << a.dump();
  EXPECT_NE(a["at_random"], m["at_random"]) << "stack canary and pointer guard come from AT_RANDOM";
  EXPECT_NE(a["libc_base"], m["libc_base"]);
  EXPECT_NE(a["hash"], m["hash"]) << "Python's hash secret (PYTHONHASHSEED unset)";
  EXPECT_NE(a["random"], m["random"]);
  pid_t za = ZygoteOf("alice"), zm = ZygoteOf("mallory");
  EXPECT_NE(za, 0);
  EXPECT_NE(zm, 0);
  EXPECT_NE(za, zm) << "each function has its own zygote";

  // A second instance of alice forks from alice's zygote: it may share what the fork copies
  // (the trade-off that keeps starts fast), never `random`.
  json a2 = Fresh("alice", &kind);
  EXPECT_EQ(kind, "zygote");
  EXPECT_EQ(ZygoteOf("alice"), za);
  EXPECT_EQ(a2["at_random"], a["at_random"]);
  EXPECT_EQ(a2["hash"], a["hash"]);
  EXPECT_NE(a2["random"], a["random"]) << "random is reseeded in every instance";
}

TEST_F(ZygoteSecretsTest, TwoNativeFunctionsShareNoForkedSecret) {
  for (const char* fn : {"alice", "mallory"})
    ASSERT_EQ(DeployDir(*daemon_, fn, NATIVE_TEST_FUNCTIONS_DIR, "native", "libtestfn.secrets").exit_code, 0);
  json a = Call("alice"), m = Call("mallory");
  ASSERT_EQ(a["at_random"].get<std::string>().size(), 32u) << a.dump();
  EXPECT_NE(a["at_random"], m["at_random"]);
  EXPECT_NE(a["canary"], m["canary"]);
  EXPECT_NE(a["libc_base"], m["libc_base"]);
  json a2 = Fresh("alice");
  EXPECT_EQ(a2["canary"], a["canary"]) << "instances of one function fork from its zygote";
}

TEST_F(ZygoteSecretsTest, ANewRevisionGetsANewZygote) {
  ASSERT_EQ(Deploy(*daemon_, "fn", "secrets").exit_code, 0);
  json before = Call("fn");
  pid_t z1 = ZygoteOf("fn");
  ASSERT_NE(z1, 0);
  auto u = daemon_->Aws({"update-function-configuration", "--function-name", "fn", "--memory-size", "256"});
  ASSERT_EQ(u.exit_code, 0) << u.err;
  json after = Call("fn");
  pid_t z2 = ZygoteOf("fn");
  EXPECT_NE(z2, 0);
  EXPECT_NE(z2, z1) << "a zygote never carries one revision's state to the next";
  EXPECT_NE(after["at_random"], before["at_random"]);
  EXPECT_NE(after["hash"], before["hash"]);
  // A deleted function's zygote goes.
  ASSERT_EQ(daemon_->Aws({"delete-function", "--function-name", "fn"}).exit_code, 0);
  EXPECT_EQ(ZygoteOf("fn"), 0);
}

}  // namespace
}  // namespace forklet::testing
