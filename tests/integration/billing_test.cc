// Billing and reporting through the daemon: billed durations, costs, the ledger after kill -9,
// bills that add up to the ledger, REPORT lines, /metrics, `forklet stats` and its plot.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "runtime/api/http_server.h"
#include "tests/integration/daemon.h"

namespace forklet::testing {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

// Lambda's 2017 prices in picodollars, and the hand arithmetic the tests check against.
constexpr int64_t kRequestPd = 200'000;              // $0.20 per million requests
int64_t ComputePd(int64_t memory_mb, int64_t billed_ms) {  // at $0.0000166667 per GB-second
  // mb * ms / 1,024,000 GB-s * 16,666,700 pd, rounded half up: done in long double is exact
  // enough for these small figures, and independent of the daemon's integer code.
  long double pd = static_cast<long double>(memory_mb) * billed_ms / 1024000.0L * 16666700.0L;
  return static_cast<int64_t>(std::floor(pd + 0.5L));
}

api::HttpResponse Http(Daemon& d, const std::string& method, const std::string& target,
                       const std::string& body = {},
                       const std::map<std::string, std::string>& headers = {}) {
  auto r = api::HttpCall(d.endpoint(), method, target, body, headers);
  if (!r) throw std::runtime_error(method + " " + target + ": " + r.error().ToString());
  return std::move(r.value());
}

api::HttpResponse InvokeHttp(Daemon& d, const std::string& fn, const std::string& payload,
                             bool tail = false) {
  std::map<std::string, std::string> h;
  if (tail) h["X-Amz-Log-Type"] = "Tail";
  return Http(d, "POST", "/2015-03-31/functions/" + fn + "/invocations", payload, h);
}

std::string Header(const api::HttpResponse& r, const std::string& lower) {
  auto it = r.headers.find(lower);
  return it == r.headers.end() ? "" : it->second;
}

// The ledger read as an operator would, with SQLite, while the daemon runs (WAL) or after.
struct Row {
  std::string request_id, function, start_kind, outcome;
  double duration_ms = 0, init_ms = 0;
  int64_t billed_ms = 0, memory_mb = 0, max_memory_mb = 0, mb_ms = 0, cost_pd = 0;
};

std::vector<Row> LedgerRows(const std::string& state_dir, const std::string& where = "1") {
  std::vector<Row> rows;
  sqlite3* db = nullptr;
  std::string path = state_dir + "/ledger.db";
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
    ADD_FAILURE() << "open " << path << ": " << sqlite3_errmsg(db);
    sqlite3_close(db);
    return rows;
  }
  sqlite3_busy_timeout(db, 5000);
  std::string sql =
      "SELECT request_id, function, start_kind, outcome, duration_ms, init_ms, billed_ms,"
      " memory_mb, max_memory_mb, mb_ms, cost_pd FROM invocations WHERE " + where +
      " ORDER BY start_ms";
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) != SQLITE_OK) {
    ADD_FAILURE() << sqlite3_errmsg(db);
  } else {
    while (sqlite3_step(s) == SQLITE_ROW) {
      Row r;
      r.request_id = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
      r.function = reinterpret_cast<const char*>(sqlite3_column_text(s, 1));
      r.start_kind = reinterpret_cast<const char*>(sqlite3_column_text(s, 2));
      r.outcome = reinterpret_cast<const char*>(sqlite3_column_text(s, 3));
      r.duration_ms = sqlite3_column_double(s, 4);
      r.init_ms = sqlite3_column_double(s, 5);
      r.billed_ms = sqlite3_column_int64(s, 6);
      r.memory_mb = sqlite3_column_int64(s, 7);
      r.max_memory_mb = sqlite3_column_int64(s, 8);
      r.mb_ms = sqlite3_column_int64(s, 9);
      r.cost_pd = sqlite3_column_int64(s, 10);
      rows.push_back(std::move(r));
    }
  }
  sqlite3_finalize(s);
  sqlite3_close(db);
  return rows;
}

// The record of one invocation. The daemon moves its log into the table every 100 ms, so an
// outside reader may wait that long for the newest row.
Row RowOf(Daemon& d, const std::string& request_id) {
  std::vector<Row> rows;
  for (int i = 0; i < 300 && rows.empty(); ++i) {
    rows = LedgerRows(d.state_dir(), "request_id = '" + request_id + "'");
    if (rows.empty()) usleep(10000);
  }
  EXPECT_EQ(rows.size(), 1u) << request_id;
  return rows.empty() ? Row{} : rows[0];
}

int64_t CeilTo(double ms, int64_t unit) {
  int64_t units = static_cast<int64_t>(std::ceil(ms / unit - 1e-9));
  return std::max<int64_t>(units, 1) * unit;
}

class BillingTest : public ::testing::Test {
 protected:
  void Start(const std::vector<std::string>& args = {}) { daemon_ = Daemon::Start(args); }
  void DeployOk(const std::string& fn, const std::string& dir, const std::vector<std::string>& extra = {}) {
    auto r = Deploy(*daemon_, fn, dir, extra);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  std::unique_ptr<Daemon> daemon_;
};

TEST_F(BillingTest, BilledDurationRoundsTheHandlersSleepUpTo100Ms) {
  Start();
  DeployOk("sleepy", "sleep", {"--timeout", "5", "--memory-size", "128"});
  ASSERT_EQ(InvokeHttp(*daemon_, "sleepy", R"({"seconds": 0})").status, 200);  // now warm
  // Sleeping an exact multiple of 100 ms takes just over it, so it bills the next step up, as on
  // Lambda; values just above a step bill the step after.
  for (auto [seconds, billed] : std::vector<std::pair<const char*, int64_t>>{
           {"0.05", 100}, {"0.1", 200}, {"0.2", 300}, {"0.25", 300}, {"0.301", 400}}) {
    auto r = InvokeHttp(*daemon_, "sleepy", std::string(R"({"seconds": )") + seconds + "}");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(Header(r, "x-forklet-billed-ms"), std::to_string(billed)) << seconds;
    Row row = RowOf(*daemon_, Header(r, "x-amzn-requestid"));
    EXPECT_EQ(row.billed_ms, billed) << seconds;
    EXPECT_EQ(row.billed_ms, CeilTo(row.duration_ms, 100)) << row.duration_ms;
    EXPECT_GE(row.duration_ms, std::stod(seconds) * 1000);
    EXPECT_EQ(row.outcome, "success");
    EXPECT_EQ(row.start_kind, "warm");
    EXPECT_EQ(row.cost_pd, kRequestPd + ComputePd(128, billed)) << seconds;
  }
}

TEST_F(BillingTest, OneMillisecondGranularityAndBilledInit) {
  Start({"--billing-granularity-ms", "1", "--bill-init"});
  DeployOk("sleepy", "sleep", {"--timeout", "5", "--memory-size", "256"});
  // A new instance: its init is billed too (--bill-init), to the millisecond.
  auto first = InvokeHttp(*daemon_, "sleepy", R"({"seconds": 0.01})");
  ASSERT_EQ(first.status, 200) << first.body;
  Row row = RowOf(*daemon_, Header(first, "x-amzn-requestid"));
  EXPECT_NE(row.start_kind, "warm");
  EXPECT_GT(row.init_ms, 0);
  EXPECT_EQ(row.billed_ms, CeilTo(row.duration_ms + row.init_ms, 1));
  EXPECT_EQ(row.cost_pd, kRequestPd + ComputePd(256, row.billed_ms));
  // Warm: the duration alone, rounded up to whole milliseconds.
  auto warm = InvokeHttp(*daemon_, "sleepy", R"({"seconds": 0.1})");
  ASSERT_EQ(warm.status, 200);
  row = RowOf(*daemon_, Header(warm, "x-amzn-requestid"));
  EXPECT_EQ(row.start_kind, "warm");
  EXPECT_EQ(row.billed_ms, CeilTo(row.duration_ms, 1));
  EXPECT_GE(row.billed_ms, 101);  // 100 ms of sleep and then some
  EXPECT_LT(row.billed_ms, 200);  // not rounded to 100 ms
  EXPECT_EQ(row.cost_pd, kRequestPd + ComputePd(256, row.billed_ms));
}

TEST_F(BillingTest, FailuresAreBilledAsLambdaBillsThem) {
  Start();
  DeployOk("sleepy", "sleep", {"--timeout", "1", "--memory-size", "128"});
  DeployOk("failing", "fail", {"--memory-size", "512"});
  DeployOk("closed", "hello");
  // A timeout bills the whole timeout: 1000 ms at 128 MB = 0.125 GB-s.
  auto t = InvokeHttp(*daemon_, "sleepy", R"({"seconds": 30})");
  ASSERT_EQ(t.status, 200);
  Row row = RowOf(*daemon_, Header(t, "x-amzn-requestid"));
  EXPECT_EQ(row.outcome, "timeout");
  EXPECT_EQ(row.billed_ms, 1000);
  EXPECT_EQ(row.mb_ms, 128'000);
  EXPECT_EQ(row.cost_pd, 200'000 + 2'083'338);  // 0.125 x 16666700 = 2083337.5 -> 2083338
  // A function error is billed like a success.
  auto f = InvokeHttp(*daemon_, "failing", "{}");
  ASSERT_EQ(f.status, 200);
  EXPECT_EQ(Header(f, "x-amz-function-error"), "Unhandled");
  row = RowOf(*daemon_, Header(f, "x-amzn-requestid"));
  EXPECT_EQ(row.outcome, "unhandled");
  EXPECT_EQ(row.billed_ms, CeilTo(row.duration_ms, 100));
  EXPECT_EQ(row.cost_pd, kRequestPd + ComputePd(512, row.billed_ms));
  // Throttled invocations are recorded and cost nothing.
  ASSERT_EQ(Http(*daemon_, "PUT", "/2017-10-31/functions/closed/concurrency",
                 R"({"ReservedConcurrentExecutions": 0})").status, 200);
  auto th = InvokeHttp(*daemon_, "closed", "{}");
  EXPECT_EQ(th.status, 429);
  std::vector<Row> rows;  // (a 429 names no request id)
  for (int i = 0; i < 300 && rows.empty(); ++i, usleep(10000))
    rows = LedgerRows(daemon_->state_dir(), "function = 'closed'");
  ASSERT_EQ(rows.size(), 1u);
  row = rows[0];
  EXPECT_EQ(row.outcome, "throttled");
  EXPECT_EQ(row.start_kind, "none");
  EXPECT_EQ(row.cost_pd, 0);
  EXPECT_EQ(row.billed_ms, 0);
}

// Written from Lambda's documentation of the REPORT line (tab-separated fields; Init Duration
// only on the first invocation of an instance), then forklet's own fields.
const std::regex kLambdaReport(
    R"(^REPORT RequestId: ([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\t)"
    R"(Duration: ([0-9]+\.[0-9]{2}) ms\tBilled Duration: ([0-9]+) ms\t)"
    R"(Memory Size: ([0-9]+) MB\tMax Memory Used: ([0-9]+) MB\t)"
    R"((Init Duration: ([0-9]+\.[0-9]{2}) ms\t)?)"
    R"(Start Kind: (cold|zygote|warm)\tStages: ([a-z_0-9]+=[0-9]+\.[0-9]+( [a-z_0-9]+=[0-9]+\.[0-9]+)*)$)");

TEST_F(BillingTest, ReportLineIsLambdas) {
  Start();
  DeployOk("echo", "echo", {"--memory-size", "192"});
  for (const char* expect_kind : {"zygote", "warm"}) {
    std::string body;
    auto r = Invoke(*daemon_, "echo", R"({"a": 1})", &body, {"--log-type", "Tail"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::string log = Base64Decode(json::parse(r.out)["LogResult"]);
    std::string report;
    std::istringstream lines(log);
    for (std::string line; std::getline(lines, line);)
      if (line.rfind("REPORT ", 0) == 0) report = line;
    std::smatch m;
    ASSERT_TRUE(std::regex_match(report, m, kLambdaReport)) << report;
    std::string id = json::parse(body)["request_id"];
    EXPECT_EQ(m[1], id);
    EXPECT_EQ(m[4], "192");
    EXPECT_GT(std::stoi(m[5]), 0);     // Max Memory Used, from the instance's cgroup
    EXPECT_LE(std::stoi(m[5]), 192);
    EXPECT_EQ(m[6].matched, std::string(expect_kind) != "warm");  // Init Duration
    EXPECT_EQ(m[8], expect_kind);
    EXPECT_NE(m[9].str().find("handler="), std::string::npos);
    // The same figures are in the ledger.
    Row row = RowOf(*daemon_, id);
    EXPECT_EQ(std::to_string(row.billed_ms), m[3].str());
    EXPECT_EQ(std::to_string(row.max_memory_mb), m[5].str());
    char duration[32];
    snprintf(duration, sizeof(duration), "%.2f", row.duration_ms);
    EXPECT_EQ(duration, m[2].str());
  }
}

// kill -9 of the daemon while clients invoke: every invocation that got a response has exactly
// one record, and no record is there twice.
TEST_F(BillingTest, NothingLostAfterKill9UnderLoad) {
  std::string state = "/tmp/forklet-billing-k9-" + std::to_string(getpid());
  fs::remove_all(state);
  daemon_ = Daemon::Start({}, state);
  DeployOk("echo", "echo");
  DeployOk("hello", "hello", {"--memory-size", "256"});
  std::mutex mu;
  std::set<std::string> answered;
  std::atomic<bool> stop{false};
  std::atomic<int> errors{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 6; ++t) {
    clients.emplace_back([&, t] {
      std::string fn = t % 2 ? "echo" : "hello";
      while (!stop) {
        auto r = api::HttpCall(daemon_->endpoint(), "POST",
                               "/2015-03-31/functions/" + fn + "/invocations", "{}");
        if (!r) continue;  // the daemon is gone: no response, nothing owed
        if (r->status != 200) {
          errors++;
          continue;
        }
        std::lock_guard lock(mu);
        answered.insert(r->headers["x-amzn-requestid"]);
      }
    });
  }
  for (int i = 0; i < 600; ++i) {
    {
      std::lock_guard lock(mu);
      if (answered.size() >= 400) break;
    }
    usleep(20000);
  }
  daemon_->Kill9();  // mid-load: requests are in flight
  stop = true;
  for (auto& c : clients) c.join();
  EXPECT_EQ(errors.load(), 0);
  ASSERT_GE(answered.size(), 100u);

  // The restarted daemon first moves what its predecessor logged into the table; then the
  // table is read directly.
  daemon_ = Daemon::Start({}, state);
  auto rows = LedgerRows(state);
  std::map<std::string, int> seen;
  for (const auto& r : rows) seen[r.request_id]++;
  for (const auto& [id, n] : seen) EXPECT_EQ(n, 1) << id << " recorded " << n << " times";
  size_t missing = 0;
  for (const auto& id : answered) missing += seen.count(id) ? 0 : 1;
  EXPECT_EQ(missing, 0u) << "of " << answered.size() << " answered invocations";
  EXPECT_GE(rows.size(), answered.size());  // plus any that finished as the daemon died

  // And bills from it.
  auto bill = daemon_->Cli({"bill", "--json"});
  ASSERT_EQ(bill.exit_code, 0) << bill.err;
  EXPECT_EQ(json::parse(bill.out)["total"]["invocations"].get<size_t>(), rows.size());
  daemon_.reset();
  fs::remove_all(state);
}

TEST_F(BillingTest, BillTotalsEqualTheLedger) {
  Start();
  DeployOk("small", "hello", {"--memory-size", "128"});
  DeployOk("large", "echo", {"--memory-size", "1024"});
  DeployOk("failing", "fail", {"--memory-size", "256"});
  for (int i = 0; i < 7; ++i) ASSERT_EQ(InvokeHttp(*daemon_, "small", "{}").status, 200);
  for (int i = 0; i < 5; ++i) ASSERT_EQ(InvokeHttp(*daemon_, "large", "{}").status, 200);
  for (int i = 0; i < 3; ++i) ASSERT_EQ(InvokeHttp(*daemon_, "failing", "{}").status, 200);

  // The bill first: it takes everything answered so far into the table, which is then summed
  // here independently.
  auto j = daemon_->Cli({"bill", "--json"});
  ASSERT_EQ(j.exit_code, 0) << j.err;
  auto rows = LedgerRows(daemon_->state_dir());
  ASSERT_EQ(rows.size(), 15u);
  std::map<std::string, int64_t> cost, mb_ms, count, billed;
  int64_t total_cost = 0, total_mb_ms = 0;
  for (const auto& r : rows) {
    cost[r.function] += r.cost_pd;
    mb_ms[r.function] += r.mb_ms;
    billed[r.function] += r.billed_ms;
    count[r.function]++;
    total_cost += r.cost_pd;
    total_mb_ms += r.mb_ms;
  }
  json bill = json::parse(j.out);
  ASSERT_EQ(bill["functions"].size(), 3u);
  for (const auto& f : bill["functions"]) {
    std::string fn = f["function"];
    EXPECT_EQ(f["invocations"].get<int64_t>(), count[fn]) << fn;
    EXPECT_EQ(f["cost_picodollars"].get<int64_t>(), cost[fn]) << fn;
    EXPECT_EQ(f["mb_ms"].get<int64_t>(), mb_ms[fn]) << fn;
    EXPECT_EQ(f["billed_ms"].get<int64_t>(), billed[fn]) << fn;
  }
  EXPECT_EQ(bill["total"]["cost_picodollars"].get<int64_t>(), total_cost);
  EXPECT_EQ(bill["total"]["mb_ms"].get<int64_t>(), total_mb_ms);
  EXPECT_EQ(bill["total"]["invocations"], 15);
  EXPECT_EQ(bill["total"]["errors"], 3);
  EXPECT_EQ(bill["total"]["requests"], 15);
  // The same totals in the CSV and the table, to the last digit.
  std::string usd = bill["total"]["cost_usd"];
  auto csv = daemon_->Cli({"bill", "--csv"});
  ASSERT_EQ(csv.exit_code, 0) << csv.err;
  // The cost_usd column, found by its header (Event invocations' counts follow it).
  auto cells = [](const std::string& line) {
    std::vector<std::string> out;
    std::stringstream ss(line);
    for (std::string c; std::getline(ss, c, ',');) out.push_back(c);
    return out;
  };
  auto header = cells(csv.out.substr(0, csv.out.find('\n')));
  const size_t last = csv.out.rfind("\n*,TOTAL,") + 1;  // the grand total: every account's
  ASSERT_GT(last, 0u) << csv.out;
  auto total = cells(csv.out.substr(last, csv.out.size() - last - 1));
  auto col = std::find(header.begin(), header.end(), "cost_usd") - header.begin();
  ASSERT_LT(static_cast<size_t>(col), total.size()) << csv.out;
  EXPECT_EQ(total[col], usd) << csv.out;
  EXPECT_EQ(header.back(), "events_dead_lettered");
  EXPECT_NE(csv.out.find("\n000000000000,small,7,7,0,0,"), std::string::npos) << csv.out;
  auto table = daemon_->Cli({"bill"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find(usd), std::string::npos) << table.out;
  // A window that ends before any invocation bills nothing.
  auto empty = daemon_->Cli({"bill", "--json", "--to", "2020-01-01"});
  ASSERT_EQ(empty.exit_code, 0) << empty.err;
  EXPECT_EQ(json::parse(empty.out)["total"]["invocations"], 0);
  auto one = daemon_->Cli({"bill", "--json", "--function", "large", "--from", "-1h"});
  EXPECT_EQ(json::parse(one.out)["total"]["cost_picodollars"].get<int64_t>(), cost["large"]);
}

// /metrics read by the reference parser of the Prometheus text format (Debian's
// python3-prometheus-client).
TEST_F(BillingTest, MetricsParseAsPrometheusText) {
  Start();
  DeployOk("hello", "hello");
  for (int i = 0; i < 4; ++i) ASSERT_EQ(InvokeHttp(*daemon_, "hello", "{}").status, 200);
  auto m = Http(*daemon_, "GET", "/metrics");
  ASSERT_EQ(m.status, 200);
  EXPECT_EQ(Header(m, "content-type").rfind("text/plain; version=0.0.4", 0), 0u);
  std::string path = "/tmp/forklet-metrics-" + std::to_string(getpid()) + ".txt";
  std::ofstream(path) << m.body;
  auto parsed = testing::Run({"/usr/bin/python3", "-c",
                     "import sys, json\n"
                     "from prometheus_client.parser import text_string_to_metric_families\n"
                     "out = {}\n"
                     "for fam in text_string_to_metric_families(open(sys.argv[1]).read()):\n"
                     "    for s in fam.samples:\n"
                     "        labels = ','.join(f'{k}={v}' for k, v in sorted(s.labels.items()))\n"
                     "        out[s.name + '{' + labels + '}'] = s.value\n"
                     "print(json.dumps(out))\n",
                     path});
  unlink(path.c_str());
  ASSERT_EQ(parsed.exit_code, 0) << parsed.err << "\n" << m.body;
  json s = json::parse(parsed.out);
  double all = 0;
  for (const auto& [name, v] : s.items())
    if (name.rfind("forklet_invocations_total{function=hello,", 0) == 0) all += v.get<double>();
  EXPECT_EQ(all, 4.0) << parsed.out;
  double warm = s.value("forklet_invocations_total{function=hello,outcome=success,runtime=python3.11,start_kind=warm}", 0.0);
  EXPECT_EQ(warm, 3.0) << parsed.out;
  EXPECT_EQ(s["forklet_invocation_latency_seconds_count{function=hello,runtime=python3.11,start_kind=warm}"], warm);
  EXPECT_EQ(s["forklet_invocation_latency_seconds_bucket{function=hello,le=+Inf,runtime=python3.11,start_kind=warm}"], warm);
  EXPECT_EQ(s["forklet_instances{state=idle}"], 1.0);
  EXPECT_EQ(s["forklet_instances{state=busy}"], 0.0);
  EXPECT_GE(s["forklet_zygotes{}"].get<double>(), 1.0);
  EXPECT_EQ(s["forklet_memory_reserved_bytes{}"], 128.0 * (1 << 20));
  EXPECT_EQ(s["forklet_ledger_records_total{}"], 4.0);
}

TEST_F(BillingTest, StatsByStartKindAndThePlot) {
  Start();
  DeployOk("hello", "hello");
  auto invoke = [&](const char* kind) {
    if (std::string(kind) != "warm") {
      ASSERT_EQ(Http(*daemon_, "POST", "/forklet/v1/admin/instances/drop?function=hello").status, 200);
    }
    if (std::string(kind) == "cold") {
      ASSERT_EQ(Http(*daemon_, "POST", "/forklet/v1/admin/zygotes/python3/drop").status, 200);
    }
    auto r = InvokeHttp(*daemon_, "hello", "{}");
    ASSERT_EQ(r.status, 200);
    ASSERT_EQ(Header(r, "x-forklet-start-kind"), kind);
  };
  for (int i = 0; i < 3; ++i) invoke("cold");
  for (int i = 0; i < 5; ++i) invoke("zygote");
  for (int i = 0; i < 20; ++i) invoke("warm");

  auto j = daemon_->Cli({"stats", "--json"});
  ASSERT_EQ(j.exit_code, 0) << j.err;
  std::map<std::string, json> by_kind;
  json stats = json::parse(j.out);
  for (const auto& s : stats["series"]) by_kind[s["start_kind"].get<std::string>()] = s;
  ASSERT_EQ(by_kind.size(), 3u) << j.out;
  EXPECT_EQ(by_kind["cold"]["count"], 3);
  EXPECT_EQ(by_kind["zygote"]["count"], 5);
  EXPECT_EQ(by_kind["warm"]["count"], 20);
  EXPECT_GT(by_kind["cold"]["p50_ms"].get<double>(), by_kind["warm"]["p50_ms"].get<double>());
  std::set<std::string> stages;
  for (const auto& st : by_kind["zygote"]["stages_p50_ms"]) stages.insert(st["name"]);
  for (const char* s : {"fork", "init", "handler"}) EXPECT_TRUE(stages.count(s)) << s;
  EXPECT_TRUE(stages.size() > 4u);  // and the sandbox's setup steps

  auto table = daemon_->Cli({"stats"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  for (const char* word : {"P50_MS", "P99_MS", "cold", "zygote", "warm", "stages p50 ms:", "fork="})
    EXPECT_NE(table.out.find(word), std::string::npos) << word << "\n" << table.out;

  for (const char* ext : {".svg", ".png"}) {
    std::string out = "/tmp/forklet-stats-plot-" + std::to_string(getpid()) + ext;
    auto p = daemon_->Cli({"stats", "--plot", out});
    ASSERT_EQ(p.exit_code, 0) << p.err;
    std::ifstream f(out, std::ios::binary);
    std::string data((std::istreambuf_iterator<char>(f)), {});
    unlink(out.c_str());
    if (std::string(ext) == ".svg") {
      EXPECT_NE(data.find("<svg"), std::string::npos);
      EXPECT_NE(data.find("zygote"), std::string::npos);  // the axis labels are text in an SVG
    } else {
      EXPECT_EQ(data.substr(0, 8), "\x89PNG\r\n\x1a\n");
    }
  }
}

}  // namespace
}  // namespace forklet::testing
