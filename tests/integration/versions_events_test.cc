// Event invocations of a version or an alias through the real aws CLI: the event keeps its
// qualifier, runs exactly that version (an alias's, with the alias's ARN in the context), reaches
// its destination with Lambda's record naming the version, and survives a kill -9 while it waits.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <thread>

#include <nlohmann/json.hpp>

#include "runtime/api/http_server.h"
#include "tests/integration/daemon.h"

namespace forklet::testing {
namespace {
using nlohmann::json;

constexpr const char* kArn = "arn:aws:lambda:us-east-1:000000000000:function:";

// What the recorder (a function that fails at once, without retries) was sent: every record
// lands in the dead-letter store, payload and all.
std::vector<json> Records(Daemon& d) {
  auto r = api::HttpCall(d.endpoint(), "GET", "/forklet/v1/events/dead-letters?function=recorder", "", {});
  std::vector<json> out;
  if (!r || r->status != 200) return out;
  const json dead = json::parse(r->body)["DeadLetters"];  // held: the loop reads into it
  for (const auto& dl : dead) out.push_back(json::parse(dl["Payload"].get<std::string>()));
  return out;
}

// The records by the qualifier the client named (the end of requestContext.functionArn).
std::map<std::string, json> WaitForRecords(Daemon& d, size_t n) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(90);
  std::vector<json> got;
  while (std::chrono::steady_clock::now() < deadline) {
    got = Records(d);
    if (got.size() >= n) break;
    d.ReadLog();
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  std::map<std::string, json> by;
  for (auto& r : got) {
    std::string arn = r["requestContext"]["functionArn"];
    by[arn.substr(arn.rfind(':') + 1)] = r;
  }
  auto stats = api::HttpCall(d.endpoint(), "GET", "/forklet/v1/events");
  EXPECT_EQ(got.size(), n) << json(got).dump() << (stats ? stats->body : "") << d.ReadLog();
  return by;
}

void InvokeEventQ(Daemon& d, const std::string& q) {
  std::string body;
  std::vector<std::string> extra{"--invocation-type", "Event"};
  if (!q.empty()) extra.insert(extra.end(), {"--qualifier", q});
  auto r = Invoke(d, "fn", R"({"k": 1})", &body, extra);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["StatusCode"], 202) << r.out;
}

void DeployVersionsAndRecorder(Daemon& d) {
  ASSERT_EQ(Deploy(d, "recorder", "fail").exit_code, 0);
  ASSERT_EQ(d.Aws({"put-function-event-invoke-config", "--function-name", "recorder",
                   "--maximum-retry-attempts", "0"}).exit_code, 0);
  ASSERT_EQ(Deploy(d, "fn", "lambda-env", {"--environment", "Variables={MY_SETTING=one}"}).exit_code, 0);
  ASSERT_EQ(d.Aws({"publish-version", "--function-name", "fn"}).exit_code, 0);
  ASSERT_EQ(d.Aws({"update-function-configuration", "--function-name", "fn", "--environment",
                   "Variables={MY_SETTING=two}"}).exit_code, 0);
  ASSERT_EQ(d.Aws({"create-alias", "--function-name", "fn", "--name", "live", "--function-version", "1"}).exit_code, 0);
  auto put = d.Aws({"put-function-event-invoke-config", "--function-name", "fn", "--destination-config",
                    json{{"OnSuccess", {{"Destination", std::string(kArn) + "recorder"}}}}.dump()});
  ASSERT_EQ(put.exit_code, 0) << put.err;
}

void ExpectRan(const std::map<std::string, json>& by, const std::string& q, const std::string& version,
               const std::string& setting) {
  SCOPED_TRACE(q);
  ASSERT_TRUE(by.count(q)) << json(by).dump();
  const json& r = by.at(q);
  EXPECT_EQ(r["requestContext"]["functionArn"], std::string(kArn) + "fn:" + q);
  EXPECT_EQ(r["requestContext"]["condition"], "Success");
  EXPECT_EQ(r["responseContext"]["executedVersion"], version);
  EXPECT_EQ(r["responsePayload"]["env"]["MY_SETTING"], setting);
  EXPECT_EQ(r["responsePayload"]["env"]["AWS_LAMBDA_FUNCTION_VERSION"], version);
  EXPECT_EQ(r["responsePayload"]["context"]["invoked_function_arn"],
            std::string(kArn) + "fn" + (q == "$LATEST" ? "" : ":" + q));
}

TEST(VersionsEventsTest, AnEventRunsTheVersionOrAliasItNamed) {
  auto d = Daemon::Start();
  DeployVersionsAndRecorder(*d);
  InvokeEventQ(*d, "1");
  InvokeEventQ(*d, "live");
  InvokeEventQ(*d, "");
  auto by = WaitForRecords(*d, 3);
  ExpectRan(by, "1", "1", "one");
  ExpectRan(by, "live", "1", "one");
  ExpectRan(by, "$LATEST", "$LATEST", "two");
  // A qualifier that names nothing is refused before the 202, as for RequestResponse.
  std::string body;
  auto missing = Invoke(*d, "fn", "{}", &body, {"--invocation-type", "Event", "--qualifier", "9"});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.err.find("ResourceNotFoundException"), std::string::npos) << missing.err;
}

TEST(VersionsEventsTest, WaitingEventsKeepTheirQualifierAcrossKill9) {
  auto first = Daemon::Start();
  const std::string state = first->state_dir() + "-kept";
  first.reset();
  auto d = Daemon::Start({}, state);
  DeployVersionsAndRecorder(*d);
  // Reserved concurrency 0: the events are accepted and wait.
  ASSERT_EQ(d->Aws({"put-function-concurrency", "--function-name", "fn",
                    "--reserved-concurrent-executions", "0"}).exit_code, 0);
  InvokeEventQ(*d, "1");
  InvokeEventQ(*d, "live");
  // The alias moves to $LATEST before its event runs: it runs what the alias names then.
  ASSERT_EQ(d->Aws({"update-alias", "--function-name", "fn", "--name", "live", "--function-version",
                    "$LATEST"}).exit_code, 0);
  d->Kill9();
  d.reset();
  d = Daemon::Start({}, state);
  EXPECT_TRUE(Records(*d).empty());
  ASSERT_EQ(d->Aws({"delete-function-concurrency", "--function-name", "fn"}).exit_code, 0);
  auto by = WaitForRecords(*d, 2);
  ExpectRan(by, "1", "1", "one");
  ExpectRan(by, "live", "$LATEST", "two");
  d.reset();
  std::filesystem::remove_all(state);
}

}  // namespace
}  // namespace forklet::testing
