// Tenants: each access key of --credentials belongs to an account; with the real aws CLI and
// boto3, two tenants see, invoke, change, bill and delete only their own functions (another's is
// 404 ResourceNotFoundException, by name or ARN), may use the same function name, and keep all of
// it across a restart; the Unix socket and an operator key see every account.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "tests/integration/daemon.h"

namespace forklet::testing {
namespace {
using nlohmann::json;

struct Tenant {
  const char* key;
  const char* secret;
  const char* account;
};
constexpr Tenant kA{"AKIDTENANTA", "secret-of-tenant-a-0123", "111111111111"};
constexpr Tenant kB{"AKIDTENANTB", "secret-of-tenant-b-0123", "222222222222"};
constexpr Tenant kOperator{"AKIDOPERATOR", "secret-of-the-operator-0", ""};

std::string Arn(const Tenant& t, const std::string& name) {
  return std::string("arn:aws:lambda:us-east-1:") + t.account + ":function:" + name;
}

// A credentials file with tenants A and B and an operator key.
std::string WriteCredentials(const std::string& path) {
  json doc{{"keys",
            {{{"access_key_id", kA.key}, {"secret_access_key", kA.secret}, {"account_id", kA.account}},
             {{"access_key_id", kB.key}, {"secret_access_key", kB.secret}, {"account_id", kB.account}},
             {{"access_key_id", kOperator.key}, {"secret_access_key", kOperator.secret}, {"operator", true}}}}};
  std::ofstream(path) << doc.dump();
  return path;
}

// `aws lambda ARGS` signed by a tenant's key.
CmdResult AwsAs(const Daemon& d, const Tenant& t, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"/usr/bin/aws", "lambda"};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.insert(argv.end(), {"--endpoint-url", d.endpoint(), "--region", "us-east-1", "--no-cli-pager"});
  return Run(argv, {{"AWS_ACCESS_KEY_ID", t.key},
                    {"AWS_SECRET_ACCESS_KEY", t.secret},
                    {"AWS_MAX_ATTEMPTS", "1"},
                    {"AWS_CONFIG_FILE", "/dev/null"},
                    {"AWS_SHARED_CREDENTIALS_FILE", "/dev/null"},
                    {"AWS_EC2_METADATA_DISABLED", "true"}});
}

CmdResult CreateAs(const Daemon& d, const Tenant& t, const std::string& fn, const std::string& code) {
  std::string zip = ZipFunction(code);
  auto r = AwsAs(d, t, {"create-function", "--function-name", fn, "--runtime", "python3.11", "--handler",
                        "app.handler", "--role", "arn:aws:iam::000000000000:role/x", "--zip-file",
                        "fileb://" + zip});
  unlink(zip.c_str());
  return r;
}

// One boto3 call as a tenant (tests/clients/tenant_client.py): {"ok","status","code","data"}.
json Boto3As(const Daemon& d, const Tenant& t, const std::string& op, const std::string& arg = "") {
  auto r = forklet::testing::Run({"/usr/bin/python3", CLIENTS_DIR "/tenant_client.py", d.endpoint(), t.key, t.secret, "-", op, arg});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  json j = json::parse(r.out, nullptr, false);
  EXPECT_TRUE(j.is_object()) << r.out << r.err;
  return j.is_object() ? j : json{{"ok", false}, {"status", 0}, {"code", "unparsable"}};
}

class TenantsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    credentials_ = WriteCredentials("/tmp/forklet-test-state-tenants-" + std::to_string(getpid()) + ".json");
    state_ = "/tmp/forklet-test-state-tenants-" + std::to_string(getpid());
    std::filesystem::create_directories(state_);
    daemon_ = Daemon::Start({"--credentials", credentials_}, state_);
  }
  void TearDown() override {
    daemon_.reset();
    std::filesystem::remove(credentials_);
    std::filesystem::remove_all(state_);
  }
  std::string credentials_, state_;
  std::unique_ptr<Daemon> daemon_;
};

TEST_F(TenantsTest, ATenantNeverReachesAnothersFunctionsButBothUseOneName) {
  ASSERT_EQ(CreateAs(*daemon_, kA, "only-a", "echo").exit_code, 0);
  // The same name in two accounts: two functions, each with its own code and ARN.
  auto a_shared = CreateAs(*daemon_, kA, "shared", "echo");
  ASSERT_EQ(a_shared.exit_code, 0) << a_shared.err;
  EXPECT_NE(a_shared.out.find(Arn(kA, "shared")), std::string::npos) << a_shared.out;
  auto b_shared = CreateAs(*daemon_, kB, "shared", "hello");
  ASSERT_EQ(b_shared.exit_code, 0) << b_shared.err;
  EXPECT_NE(b_shared.out.find(Arn(kB, "shared")), std::string::npos) << b_shared.out;
  auto again = CreateAs(*daemon_, kB, "shared", "hello");
  EXPECT_NE(again.err.find("ResourceConflictException"), std::string::npos) << again.err;

  auto a_out = Boto3As(*daemon_, kA, "invoke", "shared");
  ASSERT_TRUE(a_out["ok"]) << a_out;
  EXPECT_NE(a_out["data"].get<std::string>().find("\"arn\": \"" + Arn(kA, "shared") + "\""), std::string::npos)
      << a_out;  // the function's context carries its account's ARN
  EXPECT_NE(a_out["data"].get<std::string>().find("\"function_name\": \"shared\""), std::string::npos) << a_out;
  auto b_out = Boto3As(*daemon_, kB, "invoke", "shared");
  ASSERT_TRUE(b_out["ok"]) << b_out;
  EXPECT_EQ(b_out["data"], "{\"hello\": \"world\"}");

  // Each lists its own functions only, with its own account in every ARN.
  auto a_list = Boto3As(*daemon_, kA, "list");
  ASSERT_TRUE(a_list["ok"]) << a_list;
  EXPECT_EQ(a_list["data"], json::parse("[[\"only-a\", \"" + Arn(kA, "only-a") + "\"], [\"shared\", \"" +
                                        Arn(kA, "shared") + "\"]]"));
  auto b_list = AwsAs(*daemon_, kB, {"list-functions"});
  ASSERT_EQ(b_list.exit_code, 0) << b_list.err;
  EXPECT_EQ(b_list.out.find("only-a"), std::string::npos) << b_list.out;
  EXPECT_EQ(b_list.out.find(kA.account), std::string::npos) << b_list.out;

  // B cannot get, invoke, update, reserve, or delete A's function, by name or by ARN: it does not
  // exist for B (404, never a 403 that would tell it does).
  for (const std::string& id : {std::string("only-a"), Arn(kA, "only-a"), std::string(kA.account) + ":function:only-a"}) {
    for (const char* op : {"get", "invoke", "update", "concurrency", "delete"}) {
      auto r = Boto3As(*daemon_, kB, op, id);
      EXPECT_FALSE(r["ok"]) << op << " " << id << ": " << r;
      EXPECT_EQ(r["status"], 404) << op << " " << id << ": " << r;
      EXPECT_EQ(r["code"], "ResourceNotFoundException") << op << " " << id << ": " << r;
    }
  }
  auto cli_get = AwsAs(*daemon_, kB, {"get-function", "--function-name", Arn(kA, "shared")});
  EXPECT_NE(cli_get.exit_code, 0);
  EXPECT_NE(cli_get.err.find("ResourceNotFoundException"), std::string::npos) << cli_get.err;
  auto cli_invoke = AwsAs(*daemon_, kB, {"invoke", "--function-name", "only-a", "/dev/null"});
  EXPECT_NE(cli_invoke.err.find("ResourceNotFoundException"), std::string::npos) << cli_invoke.err;
  auto cli_delete = AwsAs(*daemon_, kB, {"delete-function", "--function-name", Arn(kA, "only-a")});
  EXPECT_NE(cli_delete.err.find("ResourceNotFoundException"), std::string::npos) << cli_delete.err;
  // Nor create one in A's account.
  auto foreign_create = AwsAs(*daemon_, kB, {"create-function", "--function-name", Arn(kA, "planted"), "--runtime",
                                             "python3.11", "--handler", "app.handler", "--role", "r",
                                             "--zip-file", "fileb:///dev/null"});
  EXPECT_NE(foreign_create.exit_code, 0);
  EXPECT_EQ(foreign_create.err.find("ResourceConflict"), std::string::npos) << foreign_create.err;
  EXPECT_TRUE(Boto3As(*daemon_, kA, "get", "only-a")["ok"]) << "all of the above left A's function alone";
  EXPECT_TRUE(Boto3As(*daemon_, kA, "get", "shared")["ok"]);

  // B deleting its "shared" leaves A's "shared".
  EXPECT_TRUE(Boto3As(*daemon_, kB, "delete", "shared")["ok"]);
  EXPECT_TRUE(Boto3As(*daemon_, kA, "invoke", "shared")["ok"]);
  EXPECT_EQ(Boto3As(*daemon_, kB, "invoke", "shared")["code"], "ResourceNotFoundException");
}

TEST_F(TenantsTest, BillsSplitByTenantAndOnlyTheOperatorSeesTheNode) {
  ASSERT_EQ(CreateAs(*daemon_, kA, "fa", "hello").exit_code, 0);
  ASSERT_EQ(CreateAs(*daemon_, kB, "fb", "hello").exit_code, 0);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Boto3As(*daemon_, kA, "invoke", "fa")["ok"]);
  ASSERT_TRUE(Boto3As(*daemon_, kB, "invoke", "fb")["ok"]);

  // The operator's bill (Unix socket) has both accounts, each with its total.
  auto csv = daemon_->Cli({"bill", "--csv"});
  ASSERT_EQ(csv.exit_code, 0) << csv.err;
  EXPECT_NE(csv.out.find("\n111111111111,fa,3,3,"), std::string::npos) << csv.out;
  EXPECT_NE(csv.out.find("\n222222222222,fb,1,1,"), std::string::npos) << csv.out;
  EXPECT_NE(csv.out.find("\n111111111111,TOTAL,3,3,"), std::string::npos) << csv.out;
  EXPECT_NE(csv.out.find("\n*,TOTAL,4,4,"), std::string::npos) << csv.out;

  // A tenant's bill (signed GET) is its own.
  auto a_bill = Boto3As(*daemon_, kA, "signed-get", "/forklet/v1/bill?format=csv");
  ASSERT_TRUE(a_bill["ok"]) << a_bill;
  std::string a_csv = a_bill["data"];
  EXPECT_NE(a_csv.find("\n111111111111,fa,3,3,"), std::string::npos) << a_csv;
  EXPECT_EQ(a_csv.find("fb"), std::string::npos) << a_csv;
  EXPECT_NE(a_csv.find("\n*,TOTAL,3,3,"), std::string::npos) << a_csv;
  auto a_other = Boto3As(*daemon_, kA, "signed-get", "/forklet/v1/bill?format=csv&function=fb");
  EXPECT_EQ(a_other["data"].get<std::string>().find("fb"), std::string::npos) << a_other;
  auto a_stats = Boto3As(*daemon_, kA, "signed-get", "/forklet/v1/stats");
  ASSERT_TRUE(a_stats["ok"]) << a_stats;
  EXPECT_NE(a_stats["data"].get<std::string>().find("\"fa\""), std::string::npos) << a_stats;
  EXPECT_EQ(a_stats["data"].get<std::string>().find("fb"), std::string::npos) << a_stats;

  // The node's own routes (every account's state) are the operator's.
  for (const char* path : {"/forklet/v1/health", "/metrics", "/forklet/v1/events", "/forklet/v1/capacity"}) {
    auto r = Boto3As(*daemon_, kA, "signed-get", path);
    EXPECT_EQ(r["status"], 403) << path << ": " << r;
    EXPECT_EQ(r["code"], "AccessDeniedException") << path << ": " << r;
  }
  auto op_health = Boto3As(*daemon_, kOperator, "signed-get", "/forklet/v1/health");
  EXPECT_EQ(op_health["status"], 200) << op_health;
  auto op_list = Boto3As(*daemon_, kOperator, "list");
  ASSERT_TRUE(op_list["ok"]) << op_list;
  EXPECT_EQ(op_list["data"].size(), 2u) << op_list;
  EXPECT_TRUE(Boto3As(*daemon_, kOperator, "invoke", Arn(kB, "fb"))["ok"]) << "the operator reaches any account by ARN";
}

TEST_F(TenantsTest, EveryTenantsFunctionsSurviveARestart) {
  ASSERT_EQ(CreateAs(*daemon_, kA, "same", "echo").exit_code, 0);
  ASSERT_EQ(CreateAs(*daemon_, kB, "same", "hello").exit_code, 0);
  daemon_.reset();
  daemon_ = Daemon::Start({"--credentials", credentials_}, state_);
  auto a = Boto3As(*daemon_, kA, "list");
  EXPECT_EQ(a["data"], json::parse("[[\"same\", \"" + Arn(kA, "same") + "\"]]")) << a;
  auto b = Boto3As(*daemon_, kB, "invoke", "same");
  EXPECT_EQ(b["data"], "{\"hello\": \"world\"}") << b;
  // The operator's CLI lists both.
  auto cli = daemon_->Cli({"list"});
  ASSERT_EQ(cli.exit_code, 0) << cli.err;
  EXPECT_NE(cli.out.find(kA.account), std::string::npos) << cli.out;
  EXPECT_NE(cli.out.find(kB.account), std::string::npos) << cli.out;
  auto by_arn = daemon_->Cli({"invoke", Arn(kB, "same")});
  EXPECT_EQ(by_arn.exit_code, 0) << by_arn.err;
  EXPECT_NE(by_arn.out.find("\"hello\": \"world\""), std::string::npos) << by_arn.out;
}

TEST(InsecureNoAuth, UnsignedRequestsBeyondLoopbackOnlyWhenAskedForByName) {
  const std::string state = "/tmp/forklet-test-state-noauth-" + std::to_string(getpid());
  auto open = forklet::testing::Run({FORKLETD_PATH, "--config", "", "--listen", "0.0.0.0:0", "--state-dir", state});
  EXPECT_NE(open.exit_code, 0);
  EXPECT_NE(open.err.find("give --credentials FILE"), std::string::npos) << open.err;
  EXPECT_NE(open.err.find("--insecure-no-auth"), std::string::npos) << open.err;
  auto both = forklet::testing::Run({FORKLETD_PATH, "--config", "", "--listen", "127.0.0.1:0", "--state-dir", state,
                   "--credentials", "/nonexistent", "--insecure-no-auth"});
  EXPECT_NE(both.exit_code, 0);
  EXPECT_NE(both.err.find("contradict"), std::string::npos) << both.err;
  EXPECT_FALSE(std::filesystem::exists(state)) << "refused before anything was set up";
  // The harness asks for it explicitly; the daemon says what it means.
  auto d = Daemon::Start();
  EXPECT_NE(d->log().find("--insecure-no-auth: the TCP API"), std::string::npos) << d->log();
}

}  // namespace
}  // namespace forklet::testing
