// Versions and aliases through the real aws CLI and boto3: PublishVersion, qualifiers on Invoke,
// GetFunction and DeleteFunction, aliases, the published-version waiter, and persistence across
// a restart and kill -9.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "runtime/api/http_server.h"
#include "tests/integration/daemon.h"

namespace forklet::testing {
namespace {
using nlohmann::json;

constexpr const char* kArn = "arn:aws:lambda:us-east-1:000000000000:function:";

json Parse(const CmdResult& r) {
  auto j = json::parse(r.out, nullptr, false);
  return j.is_discarded() ? json::object() : j;
}

// Invokes FN (with --qualifier Q when not empty); the CLI's output in *cli, the body returned.
json InvokeQ(Daemon& d, const std::string& fn, const std::string& q, json* cli = nullptr) {
  std::string body;
  std::vector<std::string> extra;
  if (!q.empty()) extra = {"--qualifier", q};
  auto i = Invoke(d, fn, "{}", &body, extra);
  EXPECT_EQ(i.exit_code, 0) << i.err;
  if (cli) *cli = Parse(i);
  auto b = json::parse(body, nullptr, false);
  return b.is_object() ? b : json::object();
}

void SetSetting(Daemon& d, const std::string& fn, const std::string& value) {
  auto u = d.Aws({"update-function-configuration", "--function-name", fn, "--environment",
                  "Variables={MY_SETTING=" + value + "}"});
  ASSERT_EQ(u.exit_code, 0) << u.err;
}

class VersionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    daemon_ = Daemon::Start();
    auto c = Deploy(*daemon_, "fn", "lambda-env", {"--environment", "Variables={MY_SETTING=one}"});
    ASSERT_EQ(c.exit_code, 0) << c.err;
  }
  json Publish(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args{"publish-version", "--function-name", "fn"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto p = daemon_->Aws(args);
    EXPECT_EQ(p.exit_code, 0) << p.err;
    return Parse(p);
  }
  std::unique_ptr<Daemon> daemon_;
};

TEST_F(VersionsTest, PublishedVersionsAreImmutableAndRunApart) {
  json v1 = Publish({"--description", "first"});
  EXPECT_EQ(v1["Version"], "1");
  EXPECT_EQ(v1["FunctionArn"], std::string(kArn) + "fn:1");
  EXPECT_EQ(v1["Description"], "first");
  EXPECT_EQ(Publish()["Version"], "1") << "nothing changed: no new version";
  SetSetting(*daemon_, "fn", "two");
  EXPECT_EQ(Publish()["Version"], "2");
  SetSetting(*daemon_, "fn", "three");  // $LATEST only

  json cli;
  json latest = InvokeQ(*daemon_, "fn", "", &cli);
  EXPECT_EQ(cli["ExecutedVersion"], "$LATEST");
  EXPECT_EQ(latest["env"]["MY_SETTING"], "three");
  EXPECT_EQ(latest["env"]["AWS_LAMBDA_FUNCTION_VERSION"], "$LATEST");
  json one = InvokeQ(*daemon_, "fn", "1", &cli);
  EXPECT_EQ(cli["ExecutedVersion"], "1");
  EXPECT_EQ(one["env"]["MY_SETTING"], "one");
  EXPECT_EQ(one["env"]["AWS_LAMBDA_FUNCTION_VERSION"], "1");
  EXPECT_EQ(one["context"]["function_version"], "1");
  EXPECT_EQ(one["context"]["invoked_function_arn"], std::string(kArn) + "fn:1");
  // Each runs in its own instance: the log stream names the instance and its version.
  EXPECT_NE(one["context"]["log_stream_name"].get<std::string>().find("/[1]"), std::string::npos);
  EXPECT_NE(one["context"]["log_stream_name"], latest["context"]["log_stream_name"]);
  json two = InvokeQ(*daemon_, std::string(kArn) + "fn:2", "", &cli);
  EXPECT_EQ(cli["ExecutedVersion"], "2");
  EXPECT_EQ(two["env"]["MY_SETTING"], "two");
  // Warm again, each on its own instance.
  EXPECT_EQ(InvokeQ(*daemon_, "fn", "1")["context"]["log_stream_name"], one["context"]["log_stream_name"]);
  EXPECT_EQ(InvokeQ(*daemon_, "fn", "")["context"]["log_stream_name"], latest["context"]["log_stream_name"]);

  auto g = daemon_->Aws({"get-function", "--function-name", "fn", "--qualifier", "1"});
  ASSERT_EQ(g.exit_code, 0) << g.err;
  EXPECT_EQ(Parse(g)["Configuration"]["Version"], "1");
  EXPECT_EQ(Parse(g)["Configuration"]["Environment"]["Variables"]["MY_SETTING"], "one");
  auto gc = daemon_->Aws({"get-function-configuration", "--function-name", "fn:2"});
  ASSERT_EQ(gc.exit_code, 0) << gc.err;
  EXPECT_EQ(Parse(gc)["Version"], "2");
  // A version cannot be changed.
  auto u = daemon_->Aws({"update-function-configuration", "--function-name", "fn:1", "--timeout", "9"});
  EXPECT_NE(u.exit_code, 0);
  EXPECT_NE(u.err.find("InvalidParameterValueException"), std::string::npos) << u.err;
  EXPECT_EQ(InvokeQ(*daemon_, "fn", "1")["env"]["MY_SETTING"], "one");

  auto l = daemon_->Aws({"list-versions-by-function", "--function-name", "fn", "--page-size", "2"});
  ASSERT_EQ(l.exit_code, 0) << l.err;
  std::vector<std::string> versions;
  const json listed = Parse(l);
  for (auto& v : listed["Versions"]) versions.push_back(v["Version"]);
  EXPECT_EQ(versions, std::vector<std::string>({"$LATEST", "1", "2"}));
  auto all = daemon_->Aws({"list-functions", "--function-version", "ALL"});
  ASSERT_EQ(all.exit_code, 0) << all.err;
  EXPECT_EQ(Parse(all)["Functions"].size(), 3u);
  EXPECT_EQ(Parse(daemon_->Aws({"list-functions"}))["Functions"].size(), 1u);

  auto w = daemon_->Aws({"wait", "published-version-active", "--function-name", "fn", "--qualifier", "2"}, 30);
  EXPECT_EQ(w.exit_code, 0) << w.err;
}

TEST_F(VersionsTest, DeletingAVersionDeletesOnlyIt) {
  Publish();
  SetSetting(*daemon_, "fn", "two");
  Publish();
  InvokeQ(*daemon_, "fn", "1");  // an instance of it is idle
  auto d = daemon_->Aws({"delete-function", "--function-name", "fn", "--qualifier", "1"});
  ASSERT_EQ(d.exit_code, 0) << d.err;
  std::string body;
  auto gone = Invoke(*daemon_, "fn", "{}", &body, {"--qualifier", "1"});
  EXPECT_NE(gone.exit_code, 0);
  EXPECT_NE(gone.err.find("ResourceNotFoundException"), std::string::npos) << gone.err;
  auto missing = daemon_->Aws({"delete-function", "--function-name", "fn", "--qualifier", "9"});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.err.find("ResourceNotFoundException"), std::string::npos) << missing.err;
  EXPECT_EQ(InvokeQ(*daemon_, "fn", "2")["env"]["MY_SETTING"], "two");
  EXPECT_EQ(InvokeQ(*daemon_, "fn", "")["env"]["MY_SETTING"], "two");
  // Numbers are never reused.
  SetSetting(*daemon_, "fn", "three");
  EXPECT_EQ(Publish()["Version"], "3");
  // The whole function goes with its versions.
  ASSERT_EQ(daemon_->Aws({"delete-function", "--function-name", "fn"}).exit_code, 0);
  EXPECT_NE(daemon_->Aws({"get-function", "--function-name", "fn:2"}).exit_code, 0);
}

TEST_F(VersionsTest, AliasesNameAVersion) {
  Publish();
  SetSetting(*daemon_, "fn", "two");
  Publish();
  auto c = daemon_->Aws({"create-alias", "--function-name", "fn", "--name", "live",
                         "--function-version", "1", "--description", "prod"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  EXPECT_EQ(Parse(c)["AliasArn"], std::string(kArn) + "fn:live");
  EXPECT_EQ(Parse(c)["FunctionVersion"], "1");
  auto dup = daemon_->Aws({"create-alias", "--function-name", "fn", "--name", "live", "--function-version", "2"});
  EXPECT_NE(dup.err.find("ResourceConflictException"), std::string::npos) << dup.err;
  auto bad = daemon_->Aws({"create-alias", "--function-name", "fn", "--name", "x", "--function-version", "7"});
  EXPECT_NE(bad.err.find("ResourceNotFoundException"), std::string::npos) << bad.err;
  json cli;
  json via_alias = InvokeQ(*daemon_, "fn", "live", &cli);
  EXPECT_EQ(via_alias["env"]["MY_SETTING"], "one");
  EXPECT_EQ(cli["ExecutedVersion"], "1");
  EXPECT_EQ(via_alias["context"]["invoked_function_arn"], std::string(kArn) + "fn:live");
  EXPECT_EQ(via_alias["context"]["function_version"], "1");
  // The alias runs on version 1's instance: the version's own ARN when invoked directly.
  json direct = InvokeQ(*daemon_, "fn", "1");
  EXPECT_EQ(direct["context"]["invoked_function_arn"], std::string(kArn) + "fn:1");
  EXPECT_EQ(direct["context"]["log_stream_name"], via_alias["context"]["log_stream_name"]);
  auto u = daemon_->Aws({"update-alias", "--function-name", "fn", "--name", "live", "--function-version", "2"});
  ASSERT_EQ(u.exit_code, 0) << u.err;
  EXPECT_EQ(Parse(u)["Description"], "prod");
  EXPECT_EQ(InvokeQ(*daemon_, std::string(kArn) + "fn:live", "", &cli)["env"]["MY_SETTING"], "two");
  EXPECT_EQ(cli["ExecutedVersion"], "2");
  // A version an alias names cannot be deleted.
  auto held = daemon_->Aws({"delete-function", "--function-name", "fn", "--qualifier", "2"});
  EXPECT_NE(held.err.find("ResourceConflictException"), std::string::npos) << held.err;
  EXPECT_NE(held.err.find("live"), std::string::npos) << held.err;
  ASSERT_EQ(daemon_->Aws({"create-alias", "--function-name", "fn", "--name", "edge",
                          "--function-version", "$LATEST"}).exit_code, 0);
  auto l = daemon_->Aws({"list-aliases", "--function-name", "fn", "--page-size", "1"});
  ASSERT_EQ(l.exit_code, 0) << l.err;
  ASSERT_EQ(Parse(l)["Aliases"].size(), 2u) << l.out;
  EXPECT_EQ(Parse(l)["Aliases"][0]["Name"], "edge");
  auto g = daemon_->Aws({"get-alias", "--function-name", "fn", "--name", "live"});
  EXPECT_EQ(Parse(g)["FunctionVersion"], "2");
  ASSERT_EQ(daemon_->Aws({"delete-alias", "--function-name", "fn", "--name", "live"}).exit_code, 0);
  auto after = daemon_->Aws({"get-alias", "--function-name", "fn", "--name", "live"});
  EXPECT_NE(after.err.find("ResourceNotFoundException"), std::string::npos) << after.err;
  ASSERT_EQ(daemon_->Aws({"delete-function", "--function-name", "fn", "--qualifier", "2"}).exit_code, 0);
  auto weighted = daemon_->Aws({"create-alias", "--function-name", "fn", "--name", "w",
                                "--function-version", "1", "--routing-config",
                                R"({"AdditionalVersionWeights": {"1": 0.5}})"});
  EXPECT_NE(weighted.err.find("RoutingConfig"), std::string::npos) << weighted.err;
}

TEST_F(VersionsTest, Boto3PublishesAndPaginates) {
  std::string prelude =
      "import boto3, botocore.config, json\n"
      "c = boto3.client('lambda', endpoint_url='" + daemon_->endpoint() + "', region_name='us-east-1',"
      " aws_access_key_id='forklet', aws_secret_access_key='forklet',"
      " config=botocore.config.Config(retries={'max_attempts': 1}))\n";
  auto r = testing::Run({"/usr/bin/python3", "-c", prelude + R"(
v = c.publish_version(FunctionName='fn')['Version']
c.update_function_configuration(FunctionName='fn', Environment={'Variables': {'MY_SETTING': 'b'}})
c.get_waiter('function_updated_v2').wait(FunctionName='fn')
w = c.publish_version(FunctionName='fn')['Version']
c.get_waiter('published_version_active').wait(FunctionName='fn', Qualifier=w)
c.create_alias(FunctionName='fn', Name='a1', FunctionVersion=v)
c.create_alias(FunctionName='fn', Name='a2', FunctionVersion=w)
vs = [x['Version'] for p in c.get_paginator('list_versions_by_function').paginate(
      FunctionName='fn', PaginationConfig={'PageSize': 1}) for x in p['Versions']]
al = [x['Name'] for p in c.get_paginator('list_aliases').paginate(
      FunctionName='fn', PaginationConfig={'PageSize': 1}) for x in p['Aliases']]
out = c.invoke(FunctionName='fn', Qualifier='a1')
print(json.dumps({'versions': vs, 'aliases': al, 'executed': out['ExecutedVersion']}))
)"},
               {{"AWS_CONFIG_FILE", "/dev/null"}, {"AWS_SHARED_CREDENTIALS_FILE", "/dev/null"}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = json::parse(r.out);
  EXPECT_EQ(j["versions"], json({"$LATEST", "1", "2"}));
  EXPECT_EQ(j["aliases"], json({"a1", "a2"}));
  EXPECT_EQ(j["executed"], "1");
}

TEST_F(VersionsTest, GetFunctionOfAVersionLocatesItsOwnZip) {
  const std::string zip1 = ZipFunction("lambda-env"), zip2 = ZipFunction("echo");
  auto read = [](const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
  };
  auto fetch = [&](const std::string& q) {
    std::vector<std::string> args{"get-function", "--function-name", "fn"};
    if (!q.empty()) args.insert(args.end(), {"--qualifier", q});
    json g = Parse(daemon_->Aws(args));
    auto r = api::HttpCall(daemon_->endpoint(), "GET", g["Code"]["Location"].get<std::string>());
    EXPECT_TRUE(r && r->status == 200) << g.dump();
    EXPECT_EQ(r ? r->body.size() : 0, g["Configuration"]["CodeSize"].get<size_t>());
    return r ? r->body : std::string();
  };
  ASSERT_EQ(daemon_->Aws({"update-function-code", "--function-name", "fn", "--zip-file", "fileb://" + zip1}).exit_code, 0);
  ASSERT_EQ(Publish()["Version"], "1");
  ASSERT_EQ(daemon_->Aws({"update-function-code", "--function-name", "fn", "--zip-file", "fileb://" + zip2}).exit_code, 0);
  ASSERT_EQ(daemon_->Aws({"create-alias", "--function-name", "fn", "--name", "live", "--function-version", "1"}).exit_code, 0);
  EXPECT_EQ(fetch("1"), read(zip1));
  EXPECT_EQ(fetch("live"), read(zip1));
  EXPECT_EQ(fetch(""), read(zip2));
  EXPECT_EQ(fetch("$LATEST"), read(zip2));
  unlink(zip1.c_str());
  unlink(zip2.c_str());
}

TEST(VersionsRestartTest, VersionsAndAliasesSurviveARestartAndKill9) {
  auto d = Daemon::Start();
  const std::string state = d->state_dir() + "-kept";
  d.reset();
  d = Daemon::Start({}, state);
  ASSERT_EQ(Deploy(*d, "fn", "lambda-env", {"--environment", "Variables={MY_SETTING=one}"}).exit_code, 0);
  ASSERT_EQ(d->Aws({"publish-version", "--function-name", "fn"}).exit_code, 0);
  SetSetting(*d, "fn", "two");
  // New code for $LATEST: version 1 keeps the old code tree.
  const std::string zip = ZipFunction("lambda-env");
  auto updated = d->Aws({"update-function-code", "--function-name", "fn", "--zip-file", "fileb://" + zip});
  unlink(zip.c_str());
  ASSERT_EQ(updated.exit_code, 0) << updated.err;
  ASSERT_EQ(d->Aws({"create-alias", "--function-name", "fn", "--name", "live",
                    "--function-version", "1"}).exit_code, 0);
  d->Kill9();
  d.reset();
  d = Daemon::Start({}, state);
  EXPECT_EQ(InvokeQ(*d, "fn", "1")["env"]["MY_SETTING"], "one") << d->ReadLog();
  EXPECT_EQ(InvokeQ(*d, "fn", "live")["env"]["MY_SETTING"], "one");
  EXPECT_EQ(InvokeQ(*d, "fn", "")["env"]["MY_SETTING"], "two");
  d.reset();  // a clean stop and start too
  d = Daemon::Start({}, state);
  EXPECT_EQ(InvokeQ(*d, "fn", "1")["env"]["MY_SETTING"], "one");
  auto p = d->Aws({"publish-version", "--function-name", "fn"});
  EXPECT_EQ(Parse(p)["Version"], "2") << p.err;
  d.reset();
  std::filesystem::remove_all(state);
}

}  // namespace
}  // namespace forklet::testing
