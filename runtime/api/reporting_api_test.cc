// Tests of reporting_api.h: forklet's reporting routes: GET /forklet/v1/stats (latency per ... (see reporting_api.h).
#include "runtime/api/reporting_api.h"

#include <unistd.h>

#include <filesystem>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "runtime/metrics/invocation_recorder.h"

namespace forklet::api {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class ReportingApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = "/tmp/forklet-reporting-test-" + std::to_string(getpid()) + "-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    ledger_ = std::move(billing::Ledger::Open(dir_ + "/ledger.db").value());
    metrics::InvocationRecorder rec(billing::PricingConfig{}, ledger_.get(), &stats_);
    core::InvokeResult r;
    r.start = core::StartKind::kWarm;
    r.total_ms = 0.5;
    r.billed_ms = 100;
    r.start_epoch_ms = 1'714'564'800'000;
    r.stages = {{"handler", 0.1}};
    rec.OnInvocation("hello", "python3.11", 128, "r1", r);
    rec.OnInvocation("hello", "python3.11", 128, "r2", r);
    r.start = core::StartKind::kCold;
    r.total_ms = 110;
    rec.OnInvocation("hello", "python3.11", 256, "r3", r);
  }
  void TearDown() override {
    ledger_.reset();
    fs::remove_all(dir_);
  }
  // account: the tenant who asks (empty: the operator).
  HttpResponse Get(ReportingApi& api, const std::string& path,
                   std::map<std::string, std::string> query = {}, const std::string& account = "") {
    HttpRequest r;
    r.method = "GET";
    r.path = path;
    r.query = std::move(query);
    r.account = account;
    return api.Handle(r);
  }
  metrics::NodeGauges Gauges() {
    metrics::NodeGauges g;
    g.instances_idle = 1;
    return g;
  }
  std::string dir_;
  std::unique_ptr<billing::Ledger> ledger_;
  metrics::LatencyStats stats_;
};

TEST_F(ReportingApiTest, Stats) {
  ReportingApi api(&stats_, ledger_.get(), [this] { return Gauges(); });
  auto r = Get(api, "/forklet/v1/stats", {{"histogram", "1"}});
  ASSERT_EQ(r.status, 200) << r.body;
  auto j = json::parse(r.body);
  ASSERT_EQ(j["series"].size(), 2u);
  EXPECT_EQ(j["series"][0]["start_kind"], "cold");
  EXPECT_EQ(j["series"][1]["start_kind"], "warm");
  EXPECT_EQ(j["series"][1]["count"], 2);
  EXPECT_EQ(j["series"][1]["stages_p50_ms"][0]["name"], "handler");
  EXPECT_EQ(j["series"][1]["histogram"].size(), 1u);
  EXPECT_EQ(j["series"][1]["outcomes"]["success"], 2);
}

TEST_F(ReportingApiTest, BillInEveryFormat) {
  ReportingApi api(&stats_, ledger_.get(), [this] { return Gauges(); });
  auto j = json::parse(Get(api, "/forklet/v1/bill").body);
  EXPECT_EQ(j["total"]["invocations"], 3);
  // 2 x 128 MB x 100 ms + 256 MB x 100 ms = 0.05 GB-s; 3 requests.
  EXPECT_EQ(j["total"]["gb_seconds"], "0.05");
  EXPECT_EQ(j["total"]["cost_picodollars"], 3 * 200'000 + 2 * 208'334 + 416'668);
  auto csv = Get(api, "/forklet/v1/bill", {{"format", "csv"}});
  EXPECT_EQ(csv.headers["Content-Type"].rfind("text/csv", 0), 0u);
  EXPECT_NE(csv.body.find("\n*,TOTAL,3,3,0,0,0.300,0.05,"), std::string::npos) << csv.body;
  auto table = Get(api, "/forklet/v1/bill", {{"format", "table"}, {"function", "hello"}});
  EXPECT_NE(table.body.find("hello"), std::string::npos) << table.body;
  // The window: all three started at 2024-05-01T12:00:00Z.
  j = json::parse(Get(api, "/forklet/v1/bill", {{"from", "2024-05-01T12:00:01Z"}}).body);
  EXPECT_EQ(j["total"]["invocations"], 0);
  j = json::parse(Get(api, "/forklet/v1/bill", {{"from", "2024-05-01"}, {"to", "2024-05-02"}}).body);
  EXPECT_EQ(j["total"]["invocations"], 3);
}

TEST_F(ReportingApiTest, BadBillRequests) {
  ReportingApi api(&stats_, ledger_.get(), [this] { return Gauges(); });
  EXPECT_EQ(Get(api, "/forklet/v1/bill", {{"from", "yesterday"}}).status, 400);
  EXPECT_EQ(Get(api, "/forklet/v1/bill", {{"format", "xml"}}).status, 400);
  EXPECT_EQ(Get(api, "/forklet/v1/bill", {{"from", "2024-05-02"}, {"to", "2024-05-01"}}).status, 400);
  ReportingApi no_ledger(&stats_, nullptr, [this] { return Gauges(); });
  EXPECT_EQ(Get(no_ledger, "/forklet/v1/bill").status, 503);
  HttpRequest post;
  post.method = "POST";
  post.path = "/metrics";
  EXPECT_EQ(api.Handle(post).status, 405);
}

TEST_F(ReportingApiTest, Metrics) {
  ReportingApi api(&stats_, ledger_.get(), [this] { return Gauges(); });
  auto r = Get(api, "/metrics");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["Content-Type"], metrics::kPrometheusContentType);
  EXPECT_NE(r.body.find("forklet_instances{state=\"idle\"} 1\n"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("forklet_ledger_records_total 3\n"), std::string::npos) << r.body;
  EXPECT_TRUE(ReportingApi::Serves("/metrics"));
  EXPECT_FALSE(ReportingApi::Serves("/forklet/v1/health"));
}

TEST_F(ReportingApiTest, ATenantSeesItsOwnFiguresOnly) {
  core::InvokeResult r;
  r.start = core::StartKind::kWarm;
  r.total_ms = 0.5;
  r.billed_ms = 100;
  r.start_epoch_ms = 1'714'564'800'000;
  metrics::InvocationRecorder rec(billing::PricingConfig{}, ledger_.get(), &stats_);
  rec.OnInvocation("123456789012.hello", "python3.11", 128, "t1", r);  // another tenant's "hello"
  ReportingApi api(&stats_, ledger_.get(), [this] { return Gauges(); });

  auto mine = json::parse(Get(api, "/forklet/v1/bill", {}, "123456789012").body);
  ASSERT_EQ(mine["functions"].size(), 1u) << mine;
  EXPECT_EQ(mine["functions"][0]["account"], "123456789012");
  EXPECT_EQ(mine["functions"][0]["function"], "hello");
  EXPECT_EQ(mine["total"]["invocations"], 1);
  auto by_name = json::parse(Get(api, "/forklet/v1/bill", {{"function", "hello"}}, "123456789012").body);
  EXPECT_EQ(by_name["total"]["invocations"], 1) << "a tenant's name is its own function";
  auto smuggled = json::parse(Get(api, "/forklet/v1/bill", {{"function", "hello"}}, "999999999999").body);
  EXPECT_EQ(smuggled["total"]["invocations"], 0);

  auto stats = json::parse(Get(api, "/forklet/v1/stats", {}, "123456789012").body);
  ASSERT_EQ(stats["series"].size(), 1u) << stats;
  EXPECT_EQ(stats["series"][0]["function"], "hello");
  auto all = json::parse(Get(api, "/forklet/v1/stats").body);  // the operator
  EXPECT_EQ(all["series"].size(), 3u) << all;

  auto metrics = Get(api, "/metrics", {}, "123456789012");
  EXPECT_EQ(metrics.status, 403);
  EXPECT_EQ(metrics.headers["X-Amzn-ErrorType"], "AccessDeniedException");
  EXPECT_EQ(Get(api, "/metrics").status, 200);
}

}  // namespace
}  // namespace forklet::api
