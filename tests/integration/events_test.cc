// Event invocations as a user sees them: a burst far past the concurrency runs completely, kill -9
// with a full queue loses nothing, function errors are retried and reach the destinations with
// Lambda's record, old events expire with a record of why, a state dir that cannot take the
// event refuses it. Runs are counted in the billing ledger (one row per attempt); what a
// destination received is read back from the dead-letter store of a destination that fails.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/mount.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "runtime/api/http_server.h"
#include "tests/integration/daemon.h"

namespace forklet::testing {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr const char* kArn = "arn:aws:lambda:us-east-1:000000000000:function:";  // forklet's account

api::HttpResponse Http(Daemon& d, const std::string& method, const std::string& target,
                       const std::string& body = {},
                       const std::map<std::string, std::string>& headers = {}) {
  auto r = api::HttpCall(d.endpoint(), method, target, body, headers);
  if (!r) throw std::runtime_error(method + " " + target + ": " + r.error().ToString());
  return std::move(r.value());
}

api::HttpResponse InvokeEvent(Daemon& d, const std::string& fn, const std::string& payload) {
  return Http(d, "POST", "/2015-03-31/functions/" + fn + "/invocations", payload,
              {{"X-Amz-Invocation-Type", "Event"}});
}

std::string RequestIdOf(const api::HttpResponse& r) {
  auto it = r.headers.find("x-amzn-requestid");
  return it == r.headers.end() ? "" : it->second;
}

// Ledger rows of a function: request id -> outcome (attempts after the first are ID#N).
std::multimap<std::string, std::string> LedgerRuns(const std::string& state_dir, const std::string& fn) {
  std::multimap<std::string, std::string> runs;
  sqlite3* db = nullptr;
  std::string path = state_dir + "/ledger.db";
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    sqlite3_close(db);
    return runs;
  }
  sqlite3_busy_timeout(db, 5000);
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db, "SELECT request_id, outcome FROM invocations WHERE function = ?", -1, &s,
                         nullptr) == SQLITE_OK) {
    sqlite3_bind_text(s, 1, fn.c_str(), -1, SQLITE_TRANSIENT);
    while (sqlite3_step(s) == SQLITE_ROW)
      runs.emplace(reinterpret_cast<const char*>(sqlite3_column_text(s, 0)),
                   reinterpret_cast<const char*>(sqlite3_column_text(s, 1)));
  }
  sqlite3_finalize(s);
  sqlite3_close(db);
  return runs;
}

// The distinct events (request ids without the attempt suffix) that ran with this outcome.
std::set<std::string> EventsRun(const std::string& state_dir, const std::string& fn,
                                const std::string& outcome = "success") {
  std::set<std::string> ids;
  for (const auto& [id, o] : LedgerRuns(state_dir, fn))
    if (o == outcome) ids.insert(id.substr(0, id.find('#')));
  return ids;
}

void ExpectError(const CmdResult& r, const std::string& type, const std::string& what) {
  EXPECT_NE(r.exit_code, 0) << what << ": " << r.out;
  EXPECT_NE(r.err.find(type), std::string::npos) << what << ": " << r.err;
}

// Polls until pred() or the timeout; returns pred().
template <typename Pred>
bool WaitFor(Pred pred, int timeout_s, Daemon* d = nullptr) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    if (d) d->ReadLog();
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return pred();
}

json DeadLetters(Daemon& d, const std::string& fn) {
  auto r = Http(d, "GET", "/forklet/v1/events/dead-letters?function=" + fn);
  EXPECT_EQ(r.status, 200) << r.body;
  return json::parse(r.body)["DeadLetters"];
}

json QueueStats(Daemon& d, const std::string& fn) {
  auto r = Http(d, "GET", "/forklet/v1/events");
  EXPECT_EQ(r.status, 200) << r.body;
  return json::parse(r.body)["Functions"].value(fn, json::object());
}

// The bill's event counts per function (forklet bill --json).
json BillEvents(Daemon& d) {
  auto r = d.Cli({"bill", "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  json out = json::object();
  json bill = json::parse(r.out);
  for (const auto& f : bill["functions"]) out[f["function"].get<std::string>()] = f["events"];
  return out;
}

// A destination that records what it was sent: it fails at once, without retries, so every
// record it gets lands in the dead-letter store, payload and all.
void DeployRecorder(Daemon& d, const std::string& name) {
  ASSERT_EQ(Deploy(d, name, "fail").exit_code, 0);
  auto r = d.Aws({"put-function-event-invoke-config", "--function-name", name,
                  "--maximum-retry-attempts", "0"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
}

std::vector<json> RecordsAt(Daemon& d, const std::string& recorder) {
  std::vector<json> records;
  for (const auto& dl : DeadLetters(d, recorder)) records.push_back(json::parse(dl["Payload"].get<std::string>()));
  return records;
}

TEST(EventsTest, ABurstFarPastReservedConcurrencyRunsCompletely) {
  auto d = Daemon::Start();
  ASSERT_EQ(Deploy(*d, "slow", "sleep").exit_code, 0);
  auto c = d->Aws({"put-function-concurrency", "--function-name", "slow",
                   "--reserved-concurrent-executions", "2"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  std::set<std::string> accepted;
  // One through the aws CLI, as a user would; the rest of the burst over HTTP, at once.
  auto cli = d->Aws({"invoke", "--function-name", "slow", "--invocation-type", "Event",
                     "--cli-binary-format", "raw-in-base64-out", "--payload", R"({"seconds": 0.5})",
                     "/dev/null"});
  ASSERT_EQ(cli.exit_code, 0) << cli.err;
  EXPECT_EQ(json::parse(cli.out)["StatusCode"], 202);
  for (int i = 0; i < 29; ++i) {
    auto r = InvokeEvent(*d, "slow", R"({"seconds": 0.5})");
    ASSERT_EQ(r.status, 202) << r.body;
    accepted.insert(RequestIdOf(r));
  }
  EXPECT_EQ(accepted.size(), 29u);
  // 30 x 0.5 s at 2 at a time: about 8 s; generous for a busy machine.
  EXPECT_TRUE(WaitFor([&] { return EventsRun(d->state_dir(), "slow").size() >= 30; }, 120, d.get()))
      << EventsRun(d->state_dir(), "slow").size() << " of 30 ran";
  auto runs = EventsRun(d->state_dir(), "slow");
  EXPECT_EQ(runs.size(), 30u);
  for (const auto& id : accepted) EXPECT_TRUE(runs.count(id)) << id << " never ran";
  auto all = LedgerRuns(d->state_dir(), "slow");
  for (const auto& [id, outcome] : all) EXPECT_EQ(outcome, "success") << id;
  auto stats = QueueStats(*d, "slow");
  EXPECT_EQ(stats["received"], 30);
  EXPECT_EQ(stats["succeeded"], 30);
  EXPECT_EQ(stats["depth"], 0);
  EXPECT_GT(stats["throttled"].get<int>(), 0) << "the concurrency limit was never reached";
  EXPECT_TRUE(DeadLetters(*d, "slow").empty());
  // What an operator sees: /metrics, forklet stats, forklet events.
  auto metrics = Http(*d, "GET", "/metrics").body;
  EXPECT_NE(metrics.find(R"(forklet_async_events_received_total{function="slow"} 30)"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find(R"(forklet_async_queue_depth{function="slow"} 0)"), std::string::npos) << metrics;
  auto st = d->Cli({"stats"});
  EXPECT_NE(st.out.find("slow: queued 0"), std::string::npos) << st.out;
  EXPECT_NE(st.out.find("received 30, succeeded 30"), std::string::npos) << st.out;
  auto ev = d->Cli({"events"});
  EXPECT_EQ(ev.exit_code, 0) << ev.err;
  EXPECT_NE(ev.out.find("slow"), std::string::npos) << ev.out;
}

TEST(EventsTest, AHotFunctionDoesNotStarveAnother) {
  auto d = Daemon::Start({"--event-workers", "2"});
  ASSERT_EQ(Deploy(*d, "hot", "sleep").exit_code, 0);
  ASSERT_EQ(Deploy(*d, "other", "hello").exit_code, 0);
  for (int i = 0; i < 20; ++i) ASSERT_EQ(InvokeEvent(*d, "hot", R"({"seconds": 1})").status, 202);
  ASSERT_EQ(InvokeEvent(*d, "other", "{}").status, 202);
  // Two workers, 20 one-second events ahead of it: the other function's event still gets a turn
  // long before the hot function's queue is empty.
  ASSERT_TRUE(WaitFor([&] { return QueueStats(*d, "other")["succeeded"] == 1; }, 60, d.get()));
  EXPECT_GT(QueueStats(*d, "hot")["depth"].get<int>(), 5) << QueueStats(*d, "hot").dump();
}

TEST(EventsTest, AGracefulStopKeepsTheWaitingEventsAndTheRestartRunsThem) {
  std::string state = "/tmp/forklet-test-state-events-stop-" + std::to_string(getpid());
  fs::remove_all(state);
  std::set<std::string> accepted;
  {
    auto d = Daemon::Start({}, state);
    ASSERT_EQ(Deploy(*d, "queued", "sleep").exit_code, 0);
    ASSERT_EQ(d->Aws({"put-function-concurrency", "--function-name", "queued",
                      "--reserved-concurrent-executions", "1"}).exit_code, 0);
    for (int i = 0; i < 8; ++i) {
      auto r = InvokeEvent(*d, "queued", R"({"seconds": 1})");
      ASSERT_EQ(r.status, 202) << r.body;
      accepted.insert(RequestIdOf(r));
    }
    ASSERT_TRUE(WaitFor([&] { return QueueStats(*d, "queued")["in_flight"] == 1; }, 30));
  }  // SIGTERM: the running event finishes, the waiting ones stay in the log
  auto before = EventsRun(state, "queued");
  EXPECT_GE(before.size(), 1u);
  EXPECT_LT(before.size(), 8u);
  auto d = Daemon::Start({}, state);
  EXPECT_TRUE(WaitFor([&] { return EventsRun(state, "queued").size() >= 8; }, 120, d.get()))
      << EventsRun(state, "queued").size() << " of 8 ran";
  auto runs = EventsRun(state, "queued");
  for (const auto& id : accepted) EXPECT_TRUE(runs.count(id)) << id << " was lost";
  // Nothing was cut short by the stop, nothing ran twice.
  auto all = LedgerRuns(state, "queued");
  for (const auto& [id, outcome] : all) EXPECT_EQ(outcome, "success") << id;
  EXPECT_EQ(all.size(), 8u);
  d.reset();
  fs::remove_all(state);
}

TEST(EventsTest, Kill9WithAFullQueueThenRestartRunsEveryAcceptedEvent) {
  std::string state = "/tmp/forklet-test-state-events-kill9-" + std::to_string(getpid());
  fs::remove_all(state);
  std::set<std::string> accepted;
  {
    auto d = Daemon::Start({}, state);
    ASSERT_EQ(Deploy(*d, "queued", "sleep").exit_code, 0);
    ASSERT_EQ(d->Aws({"put-function-concurrency", "--function-name", "queued",
                      "--reserved-concurrent-executions", "1"}).exit_code, 0);
    for (int i = 0; i < 20; ++i) {
      auto r = InvokeEvent(*d, "queued", R"({"seconds": 0.3})");
      ASSERT_EQ(r.status, 202) << r.body;
      accepted.insert(RequestIdOf(r));
    }
    d->Kill9();  // one runs, 19 wait
  }
  auto d = Daemon::Start({}, state);
  EXPECT_NE(d->ReadLog().find("queued again"), std::string::npos) << d->log();
  EXPECT_TRUE(WaitFor([&] { return EventsRun(state, "queued").size() >= 20; }, 120, d.get()))
      << EventsRun(state, "queued").size() << " of 20 ran";
  auto runs = EventsRun(state, "queued");
  for (const auto& id : accepted) EXPECT_TRUE(runs.count(id)) << id << " was lost";
  EXPECT_EQ(runs.size(), 20u);
  // Finished ones are not run again by a further restart.
  d.reset();
  d = Daemon::Start({}, state);
  EXPECT_EQ(d->ReadLog().find("queued again"), std::string::npos) << d->log();
  d.reset();
  fs::remove_all(state);
}

TEST(EventsTest, ErrorsAreRetriedAndDestinationsGetLambdasRecord) {
  auto d = Daemon::Start({"--event-retry-base-ms", "200"});
  DeployRecorder(*d, "recorder");
  ASSERT_EQ(Deploy(*d, "flaky", "fail").exit_code, 0);
  ASSERT_EQ(Deploy(*d, "good", "echo").exit_code, 0);
  auto put = d->Aws({"put-function-event-invoke-config", "--function-name", "flaky",
                     "--maximum-retry-attempts", "2", "--destination-config",
                     json{{"OnFailure", {{"Destination", std::string(kArn) + "recorder"}}}}.dump()});
  ASSERT_EQ(put.exit_code, 0) << put.err;
  auto conf = json::parse(put.out);
  EXPECT_EQ(conf["MaximumRetryAttempts"], 2);
  EXPECT_EQ(conf["DestinationConfig"]["OnFailure"]["Destination"], std::string(kArn) + "recorder");
  put = d->Aws({"put-function-event-invoke-config", "--function-name", "good", "--destination-config",
                json{{"OnSuccess", {{"Destination", std::string(kArn) + "recorder"}}}}.dump()});
  ASSERT_EQ(put.exit_code, 0) << put.err;

  auto failing = InvokeEvent(*d, "flaky", R"({"why": "on purpose"})");
  ASSERT_EQ(failing.status, 202);
  auto succeeding = InvokeEvent(*d, "good", R"({"k": 1})");
  ASSERT_EQ(succeeding.status, 202);
  ASSERT_TRUE(WaitFor([&] { return DeadLetters(*d, "recorder").size() >= 2; }, 60, d.get()))
      << DeadLetters(*d, "recorder").dump() << d->ReadLog();
  std::map<std::string, json> by_condition;
  for (auto& r : RecordsAt(*d, "recorder")) by_condition[r["requestContext"]["condition"]] = r;
  ASSERT_TRUE(by_condition.count("RetriesExhausted")) << json(by_condition).dump();
  ASSERT_TRUE(by_condition.count("Success")) << json(by_condition).dump();

  json f = by_condition["RetriesExhausted"];
  EXPECT_EQ(f["version"], "1.0");
  EXPECT_TRUE(f["timestamp"].is_string());
  EXPECT_EQ(f["requestContext"]["requestId"], RequestIdOf(failing));
  EXPECT_EQ(f["requestContext"]["functionArn"], std::string(kArn) + "flaky:$LATEST");
  EXPECT_EQ(f["requestContext"]["approximateInvokeCount"], 3);  // the first try and 2 retries
  EXPECT_EQ(f["requestPayload"], json({{"why", "on purpose"}}));
  EXPECT_EQ(f["responseContext"]["statusCode"], 200);
  EXPECT_EQ(f["responseContext"]["executedVersion"], "$LATEST");
  EXPECT_EQ(f["responseContext"]["functionError"], "Unhandled");
  EXPECT_EQ(f["responsePayload"]["errorType"], "CustomError");

  json s = by_condition["Success"];
  EXPECT_EQ(s["requestContext"]["requestId"], RequestIdOf(succeeding));
  EXPECT_EQ(s["requestContext"]["approximateInvokeCount"], 1);
  EXPECT_FALSE(s["responseContext"].contains("functionError"));
  EXPECT_EQ(s["responsePayload"]["event"], json({{"k", 1}}));

  // Three attempts of the failing event were billed; the failure went to its destination, not
  // to the dead-letter store.
  // ledger.db is read from outside: a record reaches its table within a flush of the ledger (its
  // log has it before the destination is delivered), so wait for the rows, then count them.
  EXPECT_TRUE(WaitFor([&] { return LedgerRuns(d->state_dir(), "flaky").size() >= 3; }, 10, d.get()));
  EXPECT_EQ(LedgerRuns(d->state_dir(), "flaky").size(), 3u);
  EXPECT_EQ(QueueStats(*d, "flaky")["retried"], 2);
  EXPECT_EQ(QueueStats(*d, "flaky")["dropped"]["RetriesExhausted"], 1);
  EXPECT_TRUE(DeadLetters(*d, "flaky").empty());

  // Without a destination, a failed event waits in the dead-letter store; redriven, it runs again.
  ASSERT_EQ(d->Aws({"delete-function-event-invoke-config", "--function-name", "flaky"}).exit_code, 0);
  ASSERT_EQ(d->Aws({"put-function-event-invoke-config", "--function-name", "flaky",
                    "--maximum-retry-attempts", "0"}).exit_code, 0);
  auto lost = InvokeEvent(*d, "flaky", R"({"why": "again"})");
  ASSERT_TRUE(WaitFor([&] { return DeadLetters(*d, "flaky").size() == 1; }, 60, d.get()));
  json dl = DeadLetters(*d, "flaky")[0];
  EXPECT_EQ(dl["RequestId"], RequestIdOf(lost));
  EXPECT_EQ(dl["Reason"], "RetriesExhausted");
  auto listed = d->Cli({"events", "dead-letters", "flaky"});
  EXPECT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_NE(listed.out.find(RequestIdOf(lost)), std::string::npos) << listed.out;
  auto redriven = d->Cli({"events", "redrive", RequestIdOf(lost)});
  EXPECT_EQ(redriven.exit_code, 0) << redriven.err;
  EXPECT_TRUE(WaitFor([&] { return LedgerRuns(d->state_dir(), "flaky").size() == 5; }, 60, d.get()))
      << LedgerRuns(d->state_dir(), "flaky").size();
}

TEST(EventsTest, InvokeConfigValidationInLambdasShape) {
  auto d = Daemon::Start();
  ASSERT_EQ(Deploy(*d, "f", "hello").exit_code, 0);
  auto r = d->Aws({"put-function-event-invoke-config", "--function-name", "f",
                   "--maximum-retry-attempts", "3"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("InvalidParameterValueException"), std::string::npos) << r.err;
  // The CLI checks the age's floor itself; the daemon says the same to other clients.
  auto young = Http(*d, "PUT", "/2019-09-25/functions/f/event-invoke-config",
                    R"({"MaximumEventAgeInSeconds": 30})");
  EXPECT_EQ(young.status, 400);
  EXPECT_EQ(young.headers["x-amzn-errortype"], "InvalidParameterValueException");
  EXPECT_NE(young.body.find("greater than or equal to 60"), std::string::npos) << young.body;
  r = d->Aws({"get-function-event-invoke-config", "--function-name", "f"});
  EXPECT_NE(r.err.find("ResourceNotFoundException"), std::string::npos) << r.err;
  r = d->Aws({"put-function-event-invoke-config", "--function-name", "nope",
              "--maximum-retry-attempts", "1"});
  EXPECT_NE(r.err.find("ResourceNotFoundException"), std::string::npos) << r.err;
  r = d->Aws({"put-function-event-invoke-config", "--function-name", "f",
              "--maximum-event-age-in-seconds", "600"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = d->Aws({"update-function-event-invoke-config", "--function-name", "f",
              "--maximum-retry-attempts", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["MaximumEventAgeInSeconds"], 600);
  EXPECT_EQ(json::parse(r.out)["MaximumRetryAttempts"], 1);
  r = d->Aws({"list-function-event-invoke-configs", "--function-name", "f"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["FunctionEventInvokeConfigs"].size(), 1u);
  r = d->Aws({"get-function-event-invoke-config", "--function-name", "f"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["MaximumRetryAttempts"], 1);
  r = d->Aws({"delete-function-event-invoke-config", "--function-name", "f"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = d->Aws({"get-function-event-invoke-config", "--function-name", "f"});
  EXPECT_NE(r.err.find("ResourceNotFoundException"), std::string::npos) << r.err;
}

TEST(EventsTest, InvokeConfigSurvivesARestart) {
  std::string state = "/tmp/forklet-test-state-events-config-" + std::to_string(getpid());
  fs::remove_all(state);
  {
    auto d = Daemon::Start({}, state);
    ASSERT_EQ(Deploy(*d, "f", "hello").exit_code, 0);
    ASSERT_EQ(d->Aws({"put-function-event-invoke-config", "--function-name", "f",
                      "--maximum-retry-attempts", "1", "--maximum-event-age-in-seconds", "300"})
                  .exit_code, 0);
  }
  {
    auto d = Daemon::Start({}, state);
    auto r = d->Aws({"get-function-event-invoke-config", "--function-name", "f"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(json::parse(r.out)["MaximumRetryAttempts"], 1);
    EXPECT_EQ(json::parse(r.out)["MaximumEventAgeInSeconds"], 300);
    // Deleting the function deletes its configuration.
    ASSERT_EQ(d->Aws({"delete-function", "--function-name", "f"}).exit_code, 0);
    ASSERT_EQ(Deploy(*d, "f", "hello").exit_code, 0);
    r = d->Aws({"get-function-event-invoke-config", "--function-name", "f"});
    EXPECT_NE(r.err.find("ResourceNotFoundException"), std::string::npos) << r.err;
  }
  fs::remove_all(state);
}

// MaximumEventAgeInSeconds is at least 60 (Lambda's floor): this test waits a minute.
TEST(EventsTest, EventsOlderThanTheirMaximumAgeAreDroppedWithTheReason) {
  auto d = Daemon::Start();
  DeployRecorder(*d, "recorder");
  ASSERT_EQ(Deploy(*d, "stuck", "hello").exit_code, 0);
  // Reserved concurrency 0: it can never run, so its event only ages.
  ASSERT_EQ(d->Aws({"put-function-concurrency", "--function-name", "stuck",
                    "--reserved-concurrent-executions", "0"}).exit_code, 0);
  ASSERT_EQ(d->Aws({"put-function-event-invoke-config", "--function-name", "stuck",
                    "--maximum-event-age-in-seconds", "60", "--destination-config",
                    json{{"OnFailure", {{"Destination", std::string(kArn) + "recorder"}}}}.dump()})
                .exit_code, 0);
  auto nowhere = InvokeEvent(*d, "stuck", R"({"n": 1})");
  ASSERT_EQ(nowhere.status, 202);
  EXPECT_GE(QueueStats(*d, "stuck")["depth"].get<int>(), 1);
  ASSERT_TRUE(WaitFor([&] { return DeadLetters(*d, "recorder").size() == 1; }, 120, d.get()));
  json rec = RecordsAt(*d, "recorder")[0];
  EXPECT_EQ(rec["requestContext"]["condition"], "EventAgeExceeded");
  EXPECT_EQ(rec["requestContext"]["requestId"], RequestIdOf(nowhere));
  EXPECT_EQ(rec["requestContext"]["approximateInvokeCount"], 0);
  EXPECT_EQ(rec["requestPayload"], json({{"n", 1}}));
  EXPECT_TRUE(LedgerRuns(d->state_dir(), "stuck").empty());
  EXPECT_EQ(QueueStats(*d, "stuck")["dropped"]["EventAgeExceeded"], 1);
  auto metrics = Http(*d, "GET", "/metrics").body;
  EXPECT_NE(metrics.find(R"(forklet_async_events_dropped_total{function="stuck",reason="EventAgeExceeded"} 1)"),
            std::string::npos) << metrics;
  // The bill: stuck's event accepted and expired (its record went to the destination, not the
  // dead-letter store); the recorder's accepted, run once and dead-lettered.
  auto bill = BillEvents(*d);
  EXPECT_EQ(bill["stuck"], (json{{"accepted", 1}, {"run", 0}, {"retried", 0}, {"expired", 1},
                                 {"dead_lettered", 0}})) << bill.dump();
  EXPECT_EQ(bill["recorder"], (json{{"accepted", 1}, {"run", 1}, {"retried", 0}, {"expired", 0},
                                    {"dead_lettered", 1}})) << bill.dump();
}

TEST(EventsTest, TheBillCountsEachFunctionsEventsAcrossARestart) {
  std::string state = "/tmp/forklet-test-state-events-bill-" + std::to_string(getpid());
  fs::remove_all(state);
  {
    auto d = Daemon::Start({"--event-retry-base-ms", "100"}, state);
    ASSERT_EQ(Deploy(*d, "flaky", "fail").exit_code, 0);
    ASSERT_EQ(Deploy(*d, "fine", "hello").exit_code, 0);
    ASSERT_EQ(d->Aws({"put-function-event-invoke-config", "--function-name", "flaky",
                      "--maximum-retry-attempts", "1"}).exit_code, 0);
    for (int i = 0; i < 2; ++i) ASSERT_EQ(InvokeEvent(*d, "flaky", "{}").status, 202);
    for (int i = 0; i < 3; ++i) ASSERT_EQ(InvokeEvent(*d, "fine", "{}").status, 202);
    ASSERT_TRUE(WaitFor([&] { return DeadLetters(*d, "flaky").size() == 2 &&
                                     QueueStats(*d, "fine")["succeeded"] == 3; }, 60, d.get()));
    auto bill = BillEvents(*d);
    EXPECT_EQ(bill["flaky"], (json{{"accepted", 2}, {"run", 4}, {"retried", 2}, {"expired", 0},
                                   {"dead_lettered", 2}})) << bill.dump();
    EXPECT_EQ(bill["fine"], (json{{"accepted", 3}, {"run", 3}, {"retried", 0}, {"expired", 0},
                                  {"dead_lettered", 0}})) << bill.dump();
    auto table = d->Cli({"bill"});
    EXPECT_NE(table.out.find("EVENTS_DEAD_LETTERED"), std::string::npos) << table.out;
    d->Kill9();
  }
  auto d = Daemon::Start({}, state);
  auto bill = BillEvents(*d);
  EXPECT_EQ(bill["flaky"]["run"], 4) << bill.dump();
  EXPECT_EQ(bill["fine"]["accepted"], 3) << bill.dump();
  d.reset();
  fs::remove_all(state);
}


TEST(EventsTest, AFullStateDirRefusesEventsClearlyAndKeepsTheAcceptedOnes) {
  SmallDisk disk("events-full", "48m");
  ASSERT_TRUE(disk.mounted()) << "mount tmpfs: " << strerror(errno);
  // Without the free-space margin (tested below): the write itself fails and refuses.
  auto d = Daemon::Start({"--event-min-free-disk-mb", "0"}, disk.path());
  ASSERT_EQ(Deploy(*d, "f", "hello").exit_code, 0);
  ASSERT_EQ(InvokeEvent(*d, "f", "{}").status, 202);
  {  // fill the disk to the last byte
    int fd = open((disk.path() + "/filler").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0);
    std::string chunk(1 << 16, 'x');
    while (write(fd, chunk.data(), chunk.size()) > 0) {
    }
    while (write(fd, "x", 1) > 0) {
    }
    close(fd);
  }
  // The log's last page may still have room for a few lines (as any file system's last block):
  // events are accepted until it has none, then refused, never accepted and lost.
  std::string payload = json{{"pad", std::string(2000, 'p')}}.dump();
  int accepted = 1;
  api::HttpResponse refused;
  for (int i = 0; i < 100; ++i) {
    refused = InvokeEvent(*d, "f", payload);
    if (refused.status != 202) break;
    accepted++;
  }
  EXPECT_EQ(refused.status, 503) << refused.body;
  EXPECT_EQ(refused.headers["x-amzn-errortype"], "ServiceUnavailableException");
  EXPECT_NE(refused.body.find("No space left on device"), std::string::npos) << refused.body;
  auto cli = d->Aws({"invoke", "--function-name", "f", "--invocation-type", "Event",
                     "--cli-binary-format", "raw-in-base64-out", "--payload", payload, "/dev/null"});
  EXPECT_NE(cli.exit_code, 0);
  EXPECT_NE(cli.err.find("ServiceUnavailableException"), std::string::npos) << cli.err;
  EXPECT_EQ(QueueStats(*d, "f")["received"], accepted) << "what was refused is not queued";
  // Synchronous invocations still work; every accepted event runs.
  std::string body;
  EXPECT_EQ(Invoke(*d, "f", "{}", &body).exit_code, 0);
  EXPECT_TRUE(WaitFor([&] { return QueueStats(*d, "f")["succeeded"] == accepted; }, 60, d.get()))
      << QueueStats(*d, "f").dump() << " accepted " << accepted;
  fs::remove(disk.path() + "/filler");
  EXPECT_EQ(InvokeEvent(*d, "f", "{}").status, 202) << "room again: accepted again";
  d.reset();
}

// A refusal for room: 429 TooManyRequestsException with Retry-After, before anything is stored.
void ExpectQueueRefusal(const api::HttpResponse& r, const std::string& reason, const std::string& words) {
  EXPECT_EQ(r.status, 429) << r.body;
  auto it = r.headers.find("x-amzn-errortype");
  EXPECT_TRUE(it != r.headers.end() && it->second == "TooManyRequestsException") << r.body;
  EXPECT_EQ(r.headers.count("retry-after"), 1u);
  json b = json::parse(r.body, nullptr, false);
  EXPECT_EQ(b.value("Reason", ""), reason) << r.body;
  EXPECT_NE(b.value("message", "").find(words), std::string::npos) << r.body;
  EXPECT_NE(b.value("message", "").find("not accepted"), std::string::npos) << r.body;
}

TEST(EventsTest, AFullQueueRefusesBeforeThe202AndLosesNothingAccepted) {
  auto d = Daemon::Start({"--event-queue-max-per-function", "5", "--event-queue-max", "8",
                          "--event-queue-max-mb-per-function", "1"});
  ASSERT_EQ(Deploy(*d, "held", "sleep").exit_code, 0);
  ASSERT_EQ(Deploy(*d, "other", "sleep").exit_code, 0);
  ASSERT_EQ(Deploy(*d, "big", "sleep").exit_code, 0);
  for (const char* fn : {"held", "other", "big"})  // nothing runs: the queues only fill
    ASSERT_EQ(d->Aws({"put-function-concurrency", "--function-name", fn,
                      "--reserved-concurrent-executions", "0"}).exit_code, 0);
  std::set<std::string> accepted;
  for (int i = 0; i < 5; ++i) {
    auto r = InvokeEvent(*d, "held", R"({"seconds": 0})");
    ASSERT_EQ(r.status, 202) << r.body;
    accepted.insert(RequestIdOf(r));
  }
  ExpectQueueRefusal(InvokeEvent(*d, "held", R"({"seconds": 0})"), "EventQueueFull",
                     "--event-queue-max-per-function 5");
  // The aws CLI shows the refusal (after its own retries of a throttle).
  auto cli = d->Aws({"invoke", "--function-name", "held", "--invocation-type", "Event",
                     "--cli-binary-format", "raw-in-base64-out", "--payload", "{}", "/dev/null"});
  EXPECT_NE(cli.exit_code, 0);
  EXPECT_NE(cli.err.find("TooManyRequestsException"), std::string::npos) << cli.err;
  // Payload bytes per function: 4 x 250,000 fit in 1 MB, a fifth does not.
  std::string pad = json{{"seconds", 0}, {"pad", std::string(250000 - 30, 'p')}}.dump();
  ASSERT_EQ(InvokeEvent(*d, "big", pad).status, 202);
  ASSERT_EQ(InvokeEvent(*d, "big", pad).status, 202);
  // All functions together: 5 + 2 + 1 = 8, the ninth is refused whoever it is for.
  ASSERT_EQ(InvokeEvent(*d, "other", R"({"seconds": 0})").status, 202);
  ExpectQueueRefusal(InvokeEvent(*d, "other", R"({"seconds": 0})"), "EventQueueFull",
                     "--event-queue-max 8");
  EXPECT_EQ(QueueStats(*d, "held")["received"], 5);
  EXPECT_GE(QueueStats(*d, "held")["refused"]["events"].get<int>(), 2);
  auto metrics = Http(*d, "GET", "/metrics").body;
  EXPECT_NE(metrics.find(R"(forklet_async_events_refused_total{function="other",bound="events"} 1)"),
            std::string::npos) << metrics;
  // Room comes back as events finish: let "held" run; what was accepted runs, new ones are taken.
  ASSERT_EQ(d->Aws({"delete-function-concurrency", "--function-name", "held"}).exit_code, 0);
  ASSERT_TRUE(WaitFor([&] { return EventsRun(d->state_dir(), "held").size() >= 5; }, 60, d.get()))
      << QueueStats(*d, "held").dump();
  auto runs = EventsRun(d->state_dir(), "held");
  for (const auto& id : accepted) EXPECT_TRUE(runs.count(id)) << id << " was lost";
  EXPECT_EQ(runs.size(), 5u) << "nothing refused ran";
  EXPECT_EQ(InvokeEvent(*d, "held", R"({"seconds": 0})").status, 202) << "room again";
  EXPECT_EQ(InvokeEvent(*d, "big", pad).status, 202);
  EXPECT_EQ(InvokeEvent(*d, "big", pad).status, 202);
  ExpectQueueRefusal(InvokeEvent(*d, "big", pad), "EventQueueFull",
                     "--event-queue-max-mb-per-function 1 MB");
}

TEST(EventsTest, LowFreeDiskRefusesNewEventsBeforeTheDiskIsFull) {
  SmallDisk disk("events-low", "96m");
  ASSERT_TRUE(disk.mounted()) << "mount tmpfs: " << strerror(errno);
  auto d = Daemon::Start({"--event-min-free-disk-mb", "40"}, disk.path());
  ASSERT_EQ(Deploy(*d, "f", "hello").exit_code, 0);
  ASSERT_EQ(InvokeEvent(*d, "f", "{}").status, 202);
  {  // 60 MB of the 96: under 40 MB free
    int fd = open((disk.path() + "/filler").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0);
    std::string chunk(1 << 20, 'x');
    for (int i = 0; i < 60; ++i) ASSERT_EQ(write(fd, chunk.data(), chunk.size()), 1 << 20);
    close(fd);
  }
  ExpectQueueRefusal(InvokeEvent(*d, "f", "{}"), "EventStorageLow", "--event-min-free-disk-mb 40 MB");
  EXPECT_EQ(QueueStats(*d, "f")["refused"]["disk"], 1);
  std::string body;
  EXPECT_EQ(Invoke(*d, "f", "{}", &body).exit_code, 0) << "synchronous invocations still run";
  EXPECT_TRUE(WaitFor([&] { return QueueStats(*d, "f")["succeeded"] == 1; }, 60, d.get()));
  fs::remove(disk.path() + "/filler");
  EXPECT_EQ(InvokeEvent(*d, "f", "{}").status, 202) << "room again: accepted again";
  d.reset();
}

// No SQS or SNS here: a dead-letter queue is refused with where failed events do go, never stored
// and returned as if dead letters went there.
TEST(EventsTest, DeadLetterConfigNamesWhereDeadLettersReallyGo) {
  auto d = Daemon::Start();
  auto created = Deploy(*d, "f", "fail", {"--dead-letter-config", "TargetArn=arn:aws:sqs:us-east-1:000000000000:dlq"});
  ExpectError(created, "InvalidParameterValueException", "create with an SQS DLQ");
  EXPECT_NE(created.err.find("no SQS or SNS"), std::string::npos) << created.err;
  EXPECT_NE(created.err.find("forklet events dead-letters"), std::string::npos) << created.err;
  EXPECT_EQ(json::parse(d->Aws({"list-functions"}).out)["Functions"].size(), 0u) << "nothing created";
  ASSERT_EQ(Deploy(*d, "f", "fail").exit_code, 0);
  auto update = d->Aws({"update-function-configuration", "--function-name", "f", "--timeout", "9",
                        "--dead-letter-config", "TargetArn=arn:aws:sns:us-east-1:000000000000:topic"});
  ExpectError(update, "InvalidParameterValueException", "update with an SNS DLQ");
  ExpectError(d->Aws({"update-function-configuration", "--function-name", "f", "--dead-letter-config",
                      "TargetArn=my-queue"}),
              "InvalidParameterValueException", "not an ARN");
  auto g = d->Aws({"get-function-configuration", "--function-name", "f"});
  ASSERT_EQ(g.exit_code, 0) << g.err;
  EXPECT_EQ(json::parse(g.out)["Timeout"], 3) << "the refused update changed nothing";
  EXPECT_FALSE(json::parse(g.out).contains("DeadLetterConfig")) << g.out;
  // Removing a DLQ (an empty target) is what forklet has: accepted.
  auto none = d->Aws({"update-function-configuration", "--function-name", "f", "--dead-letter-config",
                      "TargetArn="});
  EXPECT_EQ(none.exit_code, 0) << none.err;
  // And failed events do land in the dead-letter store.
  ASSERT_EQ(d->Aws({"put-function-event-invoke-config", "--function-name", "f",
                    "--maximum-retry-attempts", "0"}).exit_code, 0);
  ASSERT_EQ(InvokeEvent(*d, "f", "{}").status, 202);
  EXPECT_TRUE(WaitFor([&] { return DeadLetters(*d, "f").size() == 1; }, 60, d.get()));
}

TEST(EventsTest, AReadOnlyStateDirRefusesEventsClearly) {
  std::string state = "/tmp/forklet-test-state-events-ro-" + std::to_string(getpid());
  fs::remove_all(state);
  fs::create_directories(state + "/events");
  ASSERT_EQ(mount((state + "/events").c_str(), (state + "/events").c_str(), nullptr, MS_BIND, nullptr), 0)
      << strerror(errno);
  ASSERT_EQ(mount(nullptr, (state + "/events").c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr), 0)
      << strerror(errno);
  {
    auto d = Daemon::Start({}, state);
    EXPECT_NE(d->ReadLog().find("Event invocations are refused"), std::string::npos) << d->log();
    ASSERT_EQ(Deploy(*d, "f", "hello").exit_code, 0);
    auto refused = InvokeEvent(*d, "f", "{}");
    EXPECT_EQ(refused.status, 503) << refused.body;
    EXPECT_NE(refused.body.find("Read-only file system"), std::string::npos) << refused.body;
    std::string body;
    EXPECT_EQ(Invoke(*d, "f", "{}", &body).exit_code, 0);
  }
  umount2((state + "/events").c_str(), MNT_DETACH);
  fs::remove_all(state);
}

}  // namespace
}  // namespace forklet::testing
