// The control API keeps its promises: settings survive restarts, qualifiers never widen an
// operation, revisions are preconditions, code trees outlive the invocations using them, and a
// re-created name is another function. Driven by the real aws CLI (and raw HTTP where a CLI per
// request would be too slow to race).
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/api/http_server.h"
#include "tests/integration/daemon.h"

namespace forklet::testing {
namespace {
using nlohmann::json;
namespace fs = std::filesystem;

constexpr const char* kArn = "arn:aws:lambda:us-east-1:000000000000:function:";

// A zip holding app.py with this source, base64-encoded (Code.ZipFile).
std::string ZipBase64(const std::string& app_py) {
  auto r = Run({"/usr/bin/python3", "-c",
                "import io, sys, zipfile, base64\n"
                "b = io.BytesIO()\n"
                "with zipfile.ZipFile(b, 'w') as z:\n"
                "    z.writestr('app.py', sys.argv[1])\n"
                "sys.stdout.write(base64.b64encode(b.getvalue()).decode())\n",
                app_py});
  if (r.exit_code != 0) throw std::runtime_error("zip: " + r.err);
  return r.out;
}

std::string VersionSource(int v) {
  return "def handler(e, c):\n    return {'version': " + std::to_string(v) + "}\n";
}

json CreateBody(const std::string& name, const std::string& zip_b64) {
  return json{{"FunctionName", name},  {"Runtime", "python3.11"}, {"Handler", "app.handler"},
              {"Role", "arn:aws:iam::000000000000:role/x"}, {"MemorySize", 128},
              {"Timeout", 30}, {"Code", {{"ZipFile", zip_b64}}}};
}

api::HttpResponse Call(Daemon& d, const std::string& method, const std::string& target,
                       const std::string& body = {}) {
  auto r = api::HttpCall(d.endpoint(), method, target, body);
  if (!r) return api::HttpResponse{599, {}, r.error().ToString()};
  return *r;
}

api::HttpResponse InvokeHttp(Daemon& d, const std::string& fn, const std::string& payload) {
  return Call(d, "POST", "/2015-03-31/functions/" + fn + "/invocations", payload);
}

// An error the aws CLI printed names the exception.
void ExpectError(const CmdResult& r, const std::string& type, const std::string& what) {
  EXPECT_NE(r.exit_code, 0) << what << ": " << r.out;
  EXPECT_NE(r.err.find(type), std::string::npos) << what << ": " << r.err;
}

class ControlApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string t = "/tmp/forklet-control-api-XXXXXX";
    ASSERT_NE(mkdtemp(t.data()), nullptr);
    state_ = t;
    daemon_ = Daemon::Start({}, state_);
  }
  void TearDown() override {
    daemon_.reset();
    std::error_code ec;
    fs::remove_all(state_, ec);
  }
  void Restart(bool kill9) {
    if (kill9) daemon_->Kill9();
    daemon_.reset();
    daemon_ = Daemon::Start({}, state_);
  }
  std::string state_;
  std::unique_ptr<Daemon> daemon_;
};

TEST_F(ControlApiTest, ReservedConcurrencySurvivesSigtermAndKill9) {
  ASSERT_EQ(Deploy(*daemon_, "f", "echo").exit_code, 0);
  auto get = [&] {
    auto g = daemon_->Aws({"get-function-concurrency", "--function-name", "f"});
    EXPECT_EQ(g.exit_code, 0) << g.err;
    return g.out.empty() ? json::object() : json::parse(g.out);
  };
  auto put = daemon_->Aws({"put-function-concurrency", "--function-name", "f",
                           "--reserved-concurrent-executions", "5"});
  ASSERT_EQ(put.exit_code, 0) << put.err;
  Restart(false);
  EXPECT_EQ(get()["ReservedConcurrentExecutions"], 5);
  auto gf = daemon_->Aws({"get-function", "--function-name", "f"});
  ASSERT_EQ(gf.exit_code, 0) << gf.err;
  EXPECT_EQ(json::parse(gf.out)["Concurrency"]["ReservedConcurrentExecutions"], 5);

  put = daemon_->Aws({"put-function-concurrency", "--function-name", "f",
                      "--reserved-concurrent-executions", "3"});
  ASSERT_EQ(put.exit_code, 0) << put.err;
  Restart(true);
  EXPECT_EQ(get()["ReservedConcurrentExecutions"], 3);

  // A reservation of 0 is a switch-off, and it holds after a restart too.
  put = daemon_->Aws({"put-function-concurrency", "--function-name", "f",
                      "--reserved-concurrent-executions", "0"});
  ASSERT_EQ(put.exit_code, 0) << put.err;
  Restart(true);
  std::string body;
  ExpectError(Invoke(*daemon_, "f", "{}", &body), "TooManyRequestsException", "reserved 0");

  auto del = daemon_->Aws({"delete-function-concurrency", "--function-name", "f"});
  ASSERT_EQ(del.exit_code, 0) << del.err;
  Restart(true);
  EXPECT_FALSE(get().contains("ReservedConcurrentExecutions"));
  EXPECT_EQ(Invoke(*daemon_, "f", "{}", &body).exit_code, 0);
}

TEST_F(ControlApiTest, QualifiersNeverWidenAnOperation) {
  ASSERT_EQ(Deploy(*daemon_, "f", "echo").exit_code, 0);
  const std::string v7 = std::string(kArn) + "f:7";
  const std::string foreign = "arn:aws:lambda:us-east-1:123456789012:function:f";
  std::string body;
  const std::string zip = ZipFunction("echo");
  for (const auto& [what, args] : std::vector<std::pair<std::string, std::vector<std::string>>>{
           {"delete --qualifier 1", {"delete-function", "--function-name", "f", "--qualifier", "1"}},
           {"delete versioned ARN", {"delete-function", "--function-name", v7}},
           {"delete foreign ARN", {"delete-function", "--function-name", foreign}},
           {"get --qualifier", {"get-function", "--function-name", "f", "--qualifier", "7"}},
           {"get foreign ARN", {"get-function", "--function-name", foreign}},
           {"get-configuration", {"get-function-configuration", "--function-name", v7}},
           {"update-configuration", {"update-function-configuration", "--function-name", v7,
                                     "--timeout", "9"}},
           {"update-code", {"update-function-code", "--function-name", v7, "--zip-file",
                            "fileb://" + zip}},
           {"put-concurrency", {"put-function-concurrency", "--function-name", v7,
                                "--reserved-concurrent-executions", "1"}},
       }) {
    ExpectError(daemon_->Aws(args), "ResourceNotFoundException", what);
  }
  unlink(zip.c_str());
  ExpectError(Invoke(*daemon_, "f", "{}", &body, {"--qualifier", "7"}), "ResourceNotFoundException",
              "invoke --qualifier");
  ExpectError(Invoke(*daemon_, foreign, "{}", &body), "ResourceNotFoundException", "invoke foreign");
  // $LATEST is the function itself where Lambda accepts it, and cannot be deleted alone.
  EXPECT_EQ(daemon_->Aws({"get-function", "--function-name", "f", "--qualifier", "$LATEST"}).exit_code, 0);
  EXPECT_EQ(Invoke(*daemon_, std::string(kArn) + "f:$LATEST", "{}", &body).exit_code, 0);
  ExpectError(daemon_->Aws({"delete-function", "--function-name", "f", "--qualifier", "$LATEST"}),
              "InvalidParameterValueException", "delete $LATEST");

  // Nothing was deleted or changed.
  auto g = daemon_->Aws({"get-function-configuration", "--function-name", "f"});
  ASSERT_EQ(g.exit_code, 0) << g.err;
  EXPECT_EQ(json::parse(g.out)["Timeout"], 3);
  auto c = daemon_->Aws({"get-function-concurrency", "--function-name", "f"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  EXPECT_EQ(c.out.find("ReservedConcurrentExecutions"), std::string::npos) << c.out;
  EXPECT_EQ(Invoke(*daemon_, "f", "{}", &body).exit_code, 0);
  EXPECT_EQ(daemon_->Aws({"delete-function", "--function-name", std::string(kArn) + "f"}).exit_code, 0);
}

TEST_F(ControlApiTest, RevisionIdsArePreconditionsAndDryRunChangesNothing) {
  auto c = Deploy(*daemon_, "f", "echo");
  ASSERT_EQ(c.exit_code, 0) << c.err;
  const std::string r1 = json::parse(c.out)["RevisionId"];
  const std::string sha1 = json::parse(c.out)["CodeSha256"];

  auto u = daemon_->Aws({"update-function-configuration", "--function-name", "f", "--timeout", "7",
                         "--revision-id", r1});
  ASSERT_EQ(u.exit_code, 0) << u.err;
  const std::string r2 = json::parse(u.out)["RevisionId"];
  EXPECT_NE(r2, r1);
  auto g = daemon_->Aws({"get-function", "--function-name", "f"});
  ASSERT_EQ(g.exit_code, 0);
  EXPECT_EQ(json::parse(g.out)["Configuration"]["RevisionId"], r2);

  const std::string other = ZipFunction("counter");
  ExpectError(daemon_->Aws({"update-function-code", "--function-name", "f", "--zip-file",
                            "fileb://" + other, "--revision-id", r1}),
              "PreconditionFailedException", "stale code update");
  ExpectError(daemon_->Aws({"update-function-configuration", "--function-name", "f", "--timeout",
                            "9", "--revision-id", r1}),
              "PreconditionFailedException", "stale configuration update");

  auto dry = daemon_->Aws({"update-function-code", "--function-name", "f", "--zip-file",
                           "fileb://" + other, "--dry-run"});
  ASSERT_EQ(dry.exit_code, 0) << dry.err;
  const std::string escape = ZipWithEntry("../escape", "x");
  ExpectError(daemon_->Aws({"update-function-code", "--function-name", "f", "--zip-file",
                            "fileb://" + escape, "--dry-run"}),
              "InvalidParameterValueException", "dry run of a bad zip");
  unlink(escape.c_str());
  g = daemon_->Aws({"get-function-configuration", "--function-name", "f"});
  ASSERT_EQ(g.exit_code, 0);
  auto now = json::parse(g.out);
  EXPECT_EQ(now["RevisionId"], r2);
  EXPECT_EQ(now["CodeSha256"], sha1);
  EXPECT_EQ(now["Timeout"], 7);
  std::string body;
  ASSERT_EQ(Invoke(*daemon_, "f", R"({"k": 1})", &body).exit_code, 0);
  EXPECT_EQ(json::parse(body)["event"]["k"], 1);  // still echo's code

  auto fresh = daemon_->Aws({"update-function-code", "--function-name", "f", "--zip-file",
                             "fileb://" + other, "--revision-id", r2});
  unlink(other.c_str());
  ASSERT_EQ(fresh.exit_code, 0) << fresh.err;
  EXPECT_NE(json::parse(fresh.out)["RevisionId"], r2);
  EXPECT_NE(json::parse(fresh.out)["CodeSha256"], sha1);
}

// Continuous UpdateFunctionCode while invocations run: each answers with some version's code,
// never with none (a removed tree: ImportModuleError, mount_code: No such file).
TEST_F(ControlApiTest, InvocationsDuringContinuousCodeUpdatesAnswerWithSomeVersion) {
  constexpr int kVersions = 4;
  std::vector<std::string> zips;
  for (int v = 0; v < kVersions; ++v) zips.push_back(ZipBase64(VersionSource(v)));
  auto created = Call(*daemon_, "POST", "/2015-03-31/functions", CreateBody("v", zips[0]).dump());
  ASSERT_EQ(created.status, 201) << created.body;

  std::atomic<bool> stop{false};
  std::atomic<int> updates{0}, invocations{0};
  std::mutex mu;
  std::vector<std::string> failures;
  std::vector<std::thread> threads;
  for (int w = 0; w < 2; ++w)
    threads.emplace_back([&, w] {
      for (int i = w; !stop; ++i) {
        auto r = Call(*daemon_, "PUT", "/2015-03-31/functions/v/code",
                      json{{"ZipFile", zips[i % kVersions]}}.dump());
        if (r.status != 200) {
          std::lock_guard lock(mu);
          failures.push_back("update: " + std::to_string(r.status) + " " + r.body);
        }
        ++updates;
      }
    });
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      while (!stop) {
        auto r = InvokeHttp(*daemon_, "v", "{}");
        ++invocations;
        json b = json::parse(r.body, nullptr, false);
        bool ok = r.status == 200 && !r.headers.count("x-amz-function-error") &&
                  b.is_object() && b.contains("version");
        if (!ok) {
          std::lock_guard lock(mu);
          failures.push_back("invoke: " + std::to_string(r.status) + " " + r.body);
        }
      }
    });
  std::this_thread::sleep_for(std::chrono::seconds(8));
  stop = true;
  for (auto& t : threads) t.join();
  EXPECT_GT(updates.load(), 20);
  EXPECT_GT(invocations.load(), 20);
  EXPECT_TRUE(failures.empty()) << failures.size() << " failures of " << invocations << " invocations, "
                                << updates << " updates; first: " << failures.front();
  std::cout << "[ measured ] " << updates << " code updates and " << invocations
            << " invocations in 8 s, " << failures.size() << " failed\n";
  // Only the current tree (and its zip) is left once nothing runs the old ones.
  daemon_->Aws({"list-functions"});
  Restart(false);
  size_t trees = 0;
  for (const auto& e : fs::directory_iterator(state_ + "/code")) trees += e.is_directory();
  EXPECT_EQ(trees, 1u);
}

// Delete and re-create a name while invocations of the old function run: the new one shares no
// pool, count or limit with them (no 429), and the old invocations finish on their own code.
TEST_F(ControlApiTest, ARecreatedNameIsANewFunction) {
  const std::string sleepy =
      "import time\ndef handler(e, c):\n    time.sleep(e.get('s', 0))\n    return {'gen': 'old'}\n";
  auto created = Call(*daemon_, "POST", "/2015-03-31/functions", CreateBody("f", ZipBase64(sleepy)).dump());
  ASSERT_EQ(created.status, 201) << created.body;
  std::vector<std::thread> old_calls;
  std::vector<api::HttpResponse> old_results(10);
  for (int i = 0; i < 10; ++i)  // the default limit: 10 instances per function
    old_calls.emplace_back([&, i] { old_results[i] = InvokeHttp(*daemon_, "f", R"({"s": 4})"); });
  // Until all ten run (no timing assert: just wait for the count).
  for (int i = 0; i < 200; ++i) {
    json j = json::parse(Call(*daemon_, "GET", "/forklet/v1/capacity").body, nullptr, false);
    if (j.is_object() && j["instances"].value("running", 0) >= 10) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  auto del = daemon_->Aws({"delete-function", "--function-name", "f"});
  ASSERT_EQ(del.exit_code, 0) << del.err;
  const std::string fresh = "def handler(e, c):\n    return {'gen': 'new'}\n";
  created = Call(*daemon_, "POST", "/2015-03-31/functions", CreateBody("f", ZipBase64(fresh)).dump());
  ASSERT_EQ(created.status, 201) << created.body;
  auto r = InvokeHttp(*daemon_, "f", "{}");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body, nullptr, false).value("gen", ""), "new") << r.body;
  for (auto& t : old_calls) t.join();
  for (auto& o : old_results) {
    EXPECT_EQ(o.status, 200) << o.body;
    EXPECT_EQ(json::parse(o.body, nullptr, false).value("gen", ""), "old") << o.body;
  }
}

}  // namespace
}  // namespace forklet::testing
