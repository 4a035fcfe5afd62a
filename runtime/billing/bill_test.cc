// Tests of bill.h: A bill: usage and cost per function over a time window, from the ledger, as a ... (see bill.h).
#include "runtime/billing/bill.h"

#include <unistd.h>

#include <filesystem>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace forklet::billing {
namespace {

namespace fs = std::filesystem;

class BillTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = "/tmp/forklet-bill-test-" + std::to_string(getpid()) + "-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    auto l = Ledger::Open(dir_ + "/ledger.db");
    ASSERT_TRUE(l.ok()) << l.error().ToString();
    ledger_ = std::move(l.value());
  }
  void TearDown() override {
    ledger_.reset();
    fs::remove_all(dir_);
  }
  void Add(const std::string& id, const std::string& fn, uint32_t mb, uint64_t billed_ms,
           core::Outcome outcome = core::Outcome::kSuccess) {
    Charge c = ChargeFor(PricingConfig{}, mb, outcome, billed_ms);
    LedgerRecord r;
    r.request_id = id;
    r.function = fn;
    r.runtime = "python3.11";
    r.start_kind = outcome == core::Outcome::kThrottled ? "none" : "warm";
    r.outcome = core::OutcomeName(outcome);
    r.start_ms = 1'714'564'800'000;  // 2024-05-01T12:00:00Z
    r.memory_mb = mb;
    r.billed_ms = c.billed_ms;
    r.mb_ms = c.mb_ms;
    r.request_cost_pd = c.request_cost_pd;
    r.compute_cost_pd = c.compute_cost_pd;
    ASSERT_TRUE(ledger_->Record(r).ok());
  }
  std::string dir_;
  std::unique_ptr<Ledger> ledger_;
};

TEST_F(BillTest, TotalsAreTheSumOfTheFunctions) {
  Add("1", "alpha", 128, 100);
  Add("2", "alpha", 128, 200);
  Add("3", "beta", 1024, 1000);
  Add("4", "beta", 1024, 0, core::Outcome::kThrottled);
  auto b = MakeBill(*ledger_, 0, 2'000'000'000'000);
  ASSERT_TRUE(b.ok());
  ASSERT_EQ(b->functions.size(), 2u);
  // alpha: 2 x $0.0000002 + 0.0375 GB-s; beta: $0.0000002 + 1 GB-s.
  EXPECT_EQ(b->functions[0].mb_ms, 38400);
  EXPECT_EQ(b->functions[0].cost_pd(), 2 * 200000 + 208334 + 416668);
  EXPECT_EQ(b->functions[1].cost_pd(), 200000 + 16666700);
  EXPECT_EQ(b->total.invocations, 4);
  EXPECT_EQ(b->total.requests, 3);
  EXPECT_EQ(b->total.throttled, 1);
  EXPECT_EQ(b->total.cost_pd(), b->functions[0].cost_pd() + b->functions[1].cost_pd());

  auto j = nlohmann::json::parse(BillJson(*b));
  EXPECT_EQ(j["total"]["cost_picodollars"], b->total.cost_pd());
  EXPECT_EQ(j["total"]["cost_usd"], "0.000017891702");
  EXPECT_EQ(j["total"]["gb_seconds"], "1.0375");
  EXPECT_EQ(j["from"], "1970-01-01T00:00:00.000Z");

  std::string csv = BillCsv(*b);
  EXPECT_EQ(csv.substr(0, csv.find('\n')),
            "account,function,invocations,requests,throttled,errors,billed_s,gb_seconds,request_usd,"
            "compute_usd,cost_usd,events_accepted,events_run,events_retried,events_expired,"
            "events_dead_lettered");
  EXPECT_NE(csv.find("\n000000000000,alpha,2,2,0,0,0.300,0.0375,0.000000400000,0.000000625002,0.000001025002,0,0,0,0,0\n"),
            std::string::npos) << csv;
  EXPECT_NE(csv.find("\n*,TOTAL,4,3,1,0,1.300,1.0375,0.000000600000,0.000017291702,0.000017891702,0,0,0,0,0\n"),
            std::string::npos) << csv;

  std::string table = BillTable(*b);
  EXPECT_NE(table.find("COST_USD"), std::string::npos) << table;
  EXPECT_NE(table.find("TOTAL"), std::string::npos) << table;
  EXPECT_NE(table.find("0.000017891702"), std::string::npos) << table;
  EXPECT_EQ(table.find("EVENTS_ACCEPTED"), std::string::npos) << "no events: no event columns";
}

TEST_F(BillTest, EventStepsAreCountedPerFunctionInTheWindow) {
  Add("1", "alpha", 128, 100);
  const int64_t t0 = 1'714'564'800'000;  // Add's start time
  auto step = [&](const std::string& id, const std::string& fn, const std::string& kind,
                  uint32_t attempt, int64_t at) {
    ASSERT_TRUE(ledger_->RecordEvent(EventRecord{id, fn, kind, attempt, t0 + at}).ok());
  };
  step("e1", "alpha", "accepted", 0, 10);
  step("e1", "alpha", "run", 1, 20);
  step("e1", "alpha", "retried", 1, 21);
  step("e1", "alpha", "run", 2, 30);
  step("e1", "alpha", "run", 2, 30);  // the same step twice (a replayed log): counted once
  step("e1", "alpha", "dead_lettered", 0, 40);
  step("e2", "gamma", "accepted", 0, 10);  // a function with events and no invocation yet
  step("e2", "gamma", "expired", 0, 50);
  step("e2", "gamma", "dead_lettered", 0, 50);
  step("e3", "gamma", "accepted", 0, 5000);  // outside the window
  EXPECT_FALSE(ledger_->RecordEvent(EventRecord{"e4", "alpha", "bogus", 0, 1}).ok());
  auto b = MakeBill(*ledger_, t0, t0 + 1000);
  ASSERT_TRUE(b.ok()) << b.error().ToString();
  ASSERT_EQ(b->functions.size(), 2u);
  const auto& a = b->functions[0];
  EXPECT_EQ(a.function, "alpha");
  EXPECT_EQ(a.invocations, 1);
  EXPECT_EQ(a.events_accepted, 1);
  EXPECT_EQ(a.events_run, 2);
  EXPECT_EQ(a.events_retried, 1);
  EXPECT_EQ(a.events_dead_lettered, 1);
  const auto& g = b->functions[1];
  EXPECT_EQ(g.function, "gamma");
  EXPECT_EQ(g.invocations, 0);
  EXPECT_EQ(g.events_accepted, 1);
  EXPECT_EQ(g.events_expired, 1);
  EXPECT_EQ(b->total.events_accepted, 2);
  EXPECT_EQ(b->total.events_dead_lettered, 2);
  auto j = nlohmann::json::parse(BillJson(*b));
  EXPECT_EQ(j["functions"][1]["events"]["expired"], 1);
  EXPECT_EQ(j["total"]["events"]["run"], 2);
  EXPECT_NE(BillCsv(*b).find("\n000000000000,gamma,0,0,0,0,0.000,0,0.000000000000,0.000000000000,0.000000000000,1,0,0,1,1\n"),
            std::string::npos) << BillCsv(*b);
  std::string table = BillTable(*b);
  EXPECT_NE(table.find("EVENTS_DEAD_LETTERED"), std::string::npos) << table;
  // Across a restart (the log replayed into SQLite): the same counts.
  ledger_.reset();
  ledger_ = Ledger::Open(dir_ + "/ledger.db").value();
  auto again = MakeBill(*ledger_, t0, t0 + 1000);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->total.events_run, 2);
  EXPECT_EQ(again->total.events_accepted, 2);
}

TEST_F(BillTest, TenantsAreBilledApart) {
  Add("1", "alpha", 128, 100);                 // the default account's
  Add("2", "123456789012.alpha", 128, 200);    // another tenant's function of the same name
  Add("3", "123456789012.beta", 1024, 1000);
  auto all = MakeBill(*ledger_, 0, 2'000'000'000'000);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->functions.size(), 3u);
  ASSERT_EQ(all->accounts.size(), 2u);
  EXPECT_EQ(all->accounts[0].function, "000000000000");
  EXPECT_EQ(all->accounts[0].invocations, 1);
  EXPECT_EQ(all->accounts[1].function, "123456789012");
  EXPECT_EQ(all->accounts[1].invocations, 2);
  EXPECT_EQ(all->accounts[0].cost_pd() + all->accounts[1].cost_pd(), all->total.cost_pd());
  std::string csv = BillCsv(*all);
  EXPECT_NE(csv.find("\n123456789012,alpha,1,1,0,0,0.200,"), std::string::npos) << csv;
  EXPECT_NE(csv.find("\n123456789012,TOTAL,2,2,"), std::string::npos) << csv;
  EXPECT_NE(csv.find("\n*,TOTAL,3,3,"), std::string::npos) << csv;
  auto j = nlohmann::json::parse(BillJson(*all));
  EXPECT_EQ(j["functions"][1]["account"], "123456789012");
  EXPECT_EQ(j["functions"][1]["function"], "alpha");
  EXPECT_EQ(j["accounts"][1]["account"], "123456789012");

  // One tenant's bill has its functions only.
  auto mine = MakeBill(*ledger_, 0, 2'000'000'000'000, "", "123456789012");
  ASSERT_TRUE(mine.ok());
  ASSERT_EQ(mine->functions.size(), 2u);
  EXPECT_EQ(mine->total.invocations, 2);
  EXPECT_EQ(BillCsv(*mine).find("000000000000"), std::string::npos) << BillCsv(*mine);
}

TEST_F(BillTest, AnEmptyWindowIsAZeroBill) {
  Add("1", "alpha", 128, 100);
  auto b = MakeBill(*ledger_, 0, 1000);
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(b->functions.empty());
  EXPECT_EQ(b->total.cost_pd(), 0);
  EXPECT_NE(BillCsv(*b).find("*,TOTAL,0,0,0,0,0.000,0,0.000000000000"), std::string::npos);
}

TEST(ParseTime, Forms) {
  const int64_t now = 1'714'564'800'000;  // 2024-05-01T12:00:00Z
  EXPECT_EQ(ParseTime("now", now).value(), now);
  EXPECT_EQ(ParseTime("1700000000000", now).value(), 1'700'000'000'000);
  EXPECT_EQ(ParseTime("2024-05-01", now).value(), now - 12 * 3'600'000);
  EXPECT_EQ(ParseTime("2024-05-01T12:00:00Z", now).value(), now);
  EXPECT_EQ(ParseTime("2024-05-01T12:00", now).value(), now);
  EXPECT_EQ(ParseTime("2024-05-01T12:00:00.250Z", now).value(), now + 250);
  EXPECT_EQ(ParseTime("-15m", now).value(), now - 15 * 60'000);
  EXPECT_EQ(ParseTime("-2h", now).value(), now - 2 * 3'600'000);
  EXPECT_EQ(ParseTime("-7d", now).value(), now - 7 * 86'400'000LL);
  for (const char* bad : {"", "yesterday", "2024-13-01", "2024-05-01T25:00", "-5x", "-m",
                          "2024-05-01T12:00:00+02:00"})
    EXPECT_FALSE(ParseTime(bad, now).ok()) << bad;
  EXPECT_EQ(FormatTime(now + 7), "2024-05-01T12:00:00.007Z");
}

}  // namespace
}  // namespace forklet::billing
