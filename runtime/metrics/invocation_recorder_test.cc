// Tests of invocation_recorder.h: The daemon's InvocationObserver: prices each finished ... (see invocation_recorder.h).
#include "runtime/metrics/invocation_recorder.h"

#include <unistd.h>

#include <filesystem>

#include <gtest/gtest.h>

namespace forklet::metrics {
namespace {

namespace fs = std::filesystem;
using core::Outcome;
using core::StartKind;

class RecorderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = "/tmp/forklet-recorder-test-" + std::to_string(getpid()) + "-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    ledger_ = std::move(billing::Ledger::Open(dir_ + "/ledger.db").value());
  }
  void TearDown() override {
    ledger_.reset();
    fs::remove_all(dir_);
  }
  std::string dir_;
  std::unique_ptr<billing::Ledger> ledger_;
  LatencyStats stats_;
};

TEST_F(RecorderTest, EveryInvocationIsPricedRecordedAndCounted) {
  InvocationRecorder rec(billing::PricingConfig{}, ledger_.get(), &stats_);
  core::InvokeResult cold;
  cold.start = StartKind::kCold;
  cold.init_ms = 107.95;
  cold.duration_ms = 1.27;
  cold.total_ms = 115;
  cold.billed_ms = 100;
  cold.max_memory_mb = 36;
  cold.start_epoch_ms = 1000;
  cold.end_epoch_ms = 1115;
  rec.OnInvocation("f", "python3.11", 128, "r-cold", cold);

  core::InvokeResult timeout;
  timeout.start = StartKind::kWarm;
  timeout.outcome = Outcome::kTimeout;
  timeout.duration_ms = 3000;
  timeout.billed_ms = 3000;
  timeout.start_epoch_ms = 2000;
  rec.OnInvocation("f", "python3.11", 128, "r-timeout", timeout);

  core::InvokeResult throttled;
  throttled.outcome = Outcome::kThrottled;
  throttled.start_epoch_ms = 3000;
  rec.OnInvocation("f", "python3.11", 128, "r-throttled", throttled);

  auto rows = ledger_->Records(0, 10'000);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 3u);
  const auto& c = (*rows)[0];
  EXPECT_EQ(c.request_id, "r-cold");
  EXPECT_EQ(c.start_kind, "cold");
  EXPECT_EQ(c.outcome, "success");
  EXPECT_DOUBLE_EQ(c.init_ms, 107.95);
  EXPECT_EQ(c.billed_ms, 100u);
  EXPECT_EQ(c.memory_mb, 128u);
  EXPECT_EQ(c.max_memory_mb, 36u);
  EXPECT_EQ(c.cost_pd(), 408'334);
  const auto& t = (*rows)[1];
  EXPECT_EQ(t.outcome, "timeout");
  EXPECT_EQ(t.billed_ms, 3000u);
  EXPECT_EQ(t.cost_pd(), 200'000 + 6'250'013);
  const auto& th = (*rows)[2];
  EXPECT_EQ(th.outcome, "throttled");
  EXPECT_EQ(th.start_kind, "none");
  EXPECT_EQ(th.cost_pd(), 0);
  EXPECT_EQ(th.billed_ms, 0u);

  auto snap = stats_.Snapshot(false);
  ASSERT_EQ(snap.size(), 3u);  // cold, warm (the timeout), none
  EXPECT_EQ(snap[0].count, 1u);
  EXPECT_EQ(snap[1].outcomes.at("timeout"), 1u);
}

TEST_F(RecorderTest, WithoutALedgerOnlyStatistics) {
  InvocationRecorder rec(billing::PricingConfig{}, nullptr, &stats_);
  core::InvokeResult r;
  rec.OnInvocation("f", "python3.11", 128, "r1", r);
  EXPECT_EQ(stats_.Snapshot(false).size(), 1u);
  EXPECT_EQ(ledger_->Records(0, 10'000)->size(), 0u);
}

}  // namespace
}  // namespace forklet::metrics
