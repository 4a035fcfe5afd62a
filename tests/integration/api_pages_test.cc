// Paginated List operations and waiters as the real aws CLI and boto3 use them.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/integration/daemon.h"

namespace forklet::testing {
namespace {
using nlohmann::json;

// Runs a Python program with boto3 against the daemon: `client` is a Lambda client there.
CmdResult Boto3(Daemon& d, const std::string& program) {
  std::string prelude =
      "import boto3, botocore.config, json, sys\n"
      "client = boto3.client('lambda', endpoint_url='" + d.endpoint() + "', region_name='us-east-1',"
      " aws_access_key_id='forklet', aws_secret_access_key='forklet',"
      " config=botocore.config.Config(retries={'max_attempts': 1}))\n";
  return Run({"/usr/bin/python3", "-c", prelude + program},
             {{"AWS_CONFIG_FILE", "/dev/null"}, {"AWS_SHARED_CREDENTIALS_FILE", "/dev/null"},
              {"AWS_EC2_METADATA_DISABLED", "true"}});
}

std::vector<std::string> Names(const json& functions) {
  std::vector<std::string> names;
  for (const auto& f : functions) names.push_back(f["FunctionName"]);
  return names;
}

class ApiPagesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    daemon_ = Daemon::Start();
    for (const char* fn : {"fa", "fb", "fc", "fd", "fe"}) {
      auto c = Deploy(*daemon_, fn, "hello");
      ASSERT_EQ(c.exit_code, 0) << c.err;
    }
  }
  const std::vector<std::string> all_{"fa", "fb", "fc", "fd", "fe"};
  std::unique_ptr<Daemon> daemon_;
};

TEST_F(ApiPagesTest, AwsCliPagesThroughListFunctions) {
  // --page-size: MaxItems on each request, the CLI follows NextMarker to the end.
  auto paged = daemon_->Aws({"list-functions", "--page-size", "2"});
  ASSERT_EQ(paged.exit_code, 0) << paged.err;
  EXPECT_EQ(Names(json::parse(paged.out)["Functions"]), all_);
  // --max-items: the first N and a token to resume from.
  auto first = daemon_->Aws({"list-functions", "--max-items", "3"});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  auto j = json::parse(first.out);
  EXPECT_EQ(Names(j["Functions"]), std::vector<std::string>({"fa", "fb", "fc"}));
  ASSERT_TRUE(j.contains("NextToken")) << first.out;
  auto rest = daemon_->Aws({"list-functions", "--starting-token", j["NextToken"]});
  ASSERT_EQ(rest.exit_code, 0) << rest.err;
  EXPECT_EQ(Names(json::parse(rest.out)["Functions"]), std::vector<std::string>({"fd", "fe"}));
  // --no-paginate: one request, the API's own MaxItems and NextMarker.
  auto one = daemon_->Aws({"list-functions", "--no-paginate", "--max-items", "2"});
  ASSERT_EQ(one.exit_code, 0) << one.err;
  auto o = json::parse(one.out);
  EXPECT_EQ(Names(o["Functions"]), std::vector<std::string>({"fa", "fb"}));
  EXPECT_TRUE(o.contains("NextMarker")) << one.out;
  auto all = daemon_->Aws({"list-functions"});
  ASSERT_EQ(all.exit_code, 0) << all.err;
  EXPECT_EQ(Names(json::parse(all.out)["Functions"]), all_);
}

TEST_F(ApiPagesTest, Boto3PaginatorAndBadMarkers) {
  auto r = Boto3(*daemon_, R"(
pages = list(client.get_paginator('list_functions').paginate(PaginationConfig={'PageSize': 2}))
print(json.dumps({'pages': len(pages),
                  'names': [f['FunctionName'] for p in pages for f in p['Functions']]}))
)");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = json::parse(r.out);
  EXPECT_EQ(j["pages"], 3);
  EXPECT_EQ(j["names"].get<std::vector<std::string>>(), all_);
  auto bad = daemon_->Aws({"list-functions", "--no-paginate", "--marker", "garbage"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("InvalidParameterValueException"), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("Marker"), std::string::npos) << bad.err;
  // The CLI checks MaxItems itself; without its check the daemon refuses it in Lambda's shape.
  auto zero = Boto3(*daemon_, R"(
raw = boto3.client('lambda', endpoint_url=client.meta.endpoint_url, region_name='us-east-1',
                   aws_access_key_id='forklet', aws_secret_access_key='forklet',
                   config=botocore.config.Config(parameter_validation=False))
try:
    raw.list_functions(MaxItems=0)
    print('accepted')
except raw.exceptions.InvalidParameterValueException as e:
    print(e.response['Error']['Message'])
)");
  ASSERT_EQ(zero.exit_code, 0) << zero.err;
  EXPECT_NE(zero.out.find("maxItems"), std::string::npos) << zero.out;
}

TEST_F(ApiPagesTest, EventInvokeConfigsArePaged) {
  auto put = daemon_->Aws({"put-function-event-invoke-config", "--function-name", "fa",
                           "--maximum-retry-attempts", "1"});
  ASSERT_EQ(put.exit_code, 0) << put.err;
  auto l = daemon_->Aws({"list-function-event-invoke-configs", "--function-name", "fa",
                         "--page-size", "1"});
  ASSERT_EQ(l.exit_code, 0) << l.err;
  EXPECT_EQ(json::parse(l.out)["FunctionEventInvokeConfigs"].size(), 1u) << l.out;
  auto too_many = daemon_->Aws({"list-function-event-invoke-configs", "--function-name", "fa",
                                "--no-paginate", "--max-items", "51"});
  EXPECT_NE(too_many.exit_code, 0);
}

TEST_F(ApiPagesTest, WaitersReturnAtOnce) {
  for (const char* waiter : {"function-active-v2", "function-updated-v2", "function-active",
                             "function-updated", "function-exists"}) {
    auto w = daemon_->Aws({"wait", waiter, "--function-name", "fa"}, 30);
    EXPECT_EQ(w.exit_code, 0) << waiter << ": " << w.err;
  }
  auto u = daemon_->Aws({"update-function-configuration", "--function-name", "fa", "--timeout", "9"});
  ASSERT_EQ(u.exit_code, 0) << u.err;
  auto w = daemon_->Aws({"wait", "function-updated-v2", "--function-name", "fa"}, 30);
  EXPECT_EQ(w.exit_code, 0) << w.err;
  auto r = Boto3(*daemon_, R"(
client.get_waiter('function_active_v2').wait(FunctionName='fb', WaiterConfig={'Delay': 1, 'MaxAttempts': 2})
client.get_waiter('function_updated_v2').wait(FunctionName='fb', WaiterConfig={'Delay': 1, 'MaxAttempts': 2})
print('ok')
)");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  // A function that does not exist fails the waiter rather than hanging.
  auto missing = daemon_->Aws({"wait", "function-active-v2", "--function-name", "nope"}, 60);
  EXPECT_NE(missing.exit_code, 0);
}

}  // namespace
}  // namespace forklet::testing
