// Tests of pricing.h: What an invocation costs: billing configuration and exact, integer cost ... (see pricing.h).
#include "runtime/billing/pricing.h"

#include <gtest/gtest.h>

#include "runtime/core/report.h"

namespace forklet::billing {
namespace {

using core::Outcome;

TEST(BilledMs, RoundsUpToTheGranularity) {
  EXPECT_EQ(core::BilledMs(0.0), 100u);  // every invocation bills at least one unit
  EXPECT_EQ(core::BilledMs(1.27), 100u);
  EXPECT_EQ(core::BilledMs(99.99), 100u);
  EXPECT_EQ(core::BilledMs(100.0), 100u);  // an exact multiple is not rounded up
  EXPECT_EQ(core::BilledMs(100.01), 200u);  // just above is
  EXPECT_EQ(core::BilledMs(200.0), 200u);
  EXPECT_EQ(core::BilledMs(200.001), 300u);
  EXPECT_EQ(core::BilledMs(3000.0), 3000u);  // a 3 s timeout bills 3000 ms
}

TEST(BilledMs, OneMillisecondGranularity) {
  EXPECT_EQ(core::BilledMs(0.2, 1), 1u);
  EXPECT_EQ(core::BilledMs(1.0, 1), 1u);
  EXPECT_EQ(core::BilledMs(1.27, 1), 2u);
  EXPECT_EQ(core::BilledMs(100.0, 1), 100u);
  EXPECT_EQ(core::BilledMs(100.01, 1), 101u);
}

// Hand-computed with Lambda's 2017 prices: $0.20 per million requests, $0.0000166667 per GB-s.
TEST(Charge, LambdaPrices128MbFor100Ms) {
  PricingConfig p;
  Charge c = ChargeFor(p, 128, Outcome::kSuccess, 100);
  EXPECT_EQ(c.mb_ms, 12800);                    // 0.125 GB x 0.1 s
  EXPECT_EQ(FormatGbSeconds(c.mb_ms), "0.0125");
  EXPECT_EQ(c.request_cost_pd, 200'000);        // $0.0000002
  EXPECT_EQ(c.compute_cost_pd, 208'334);        // 0.0125 x 16666700 pd = 208333.75 -> 208334
  EXPECT_EQ(FormatDollars(c.cost_pd()), "0.000000408334");
}

TEST(Charge, OneGbSecondIsTheGbSecondPrice) {
  Charge c = ChargeFor(PricingConfig{}, 1024, Outcome::kSuccess, 1000);
  EXPECT_EQ(FormatGbSeconds(c.mb_ms), "1");
  EXPECT_EQ(FormatDollars(c.compute_cost_pd), "0.000016666700");
}

TEST(Charge, LambdaPricingPageExample) {
  // 512 MB, 3 million invocations of 1 s each: 1,500,000 GB-s and $0.60 of requests.
  Charge c = ChargeFor(PricingConfig{}, 512, Outcome::kSuccess, 1000);
  EXPECT_EQ(c.compute_cost_pd, 8'333'350);  // 0.5 GB-s x 16666700 pd, exact
  int64_t compute = 0, requests = 0, mb_ms = 0;
  for (int i = 0; i < 3'000'000; ++i) {
    compute += c.compute_cost_pd;
    requests += c.request_cost_pd;
    mb_ms += c.mb_ms;
  }
  EXPECT_EQ(FormatGbSeconds(mb_ms), "1500000");
  EXPECT_EQ(FormatDollars(compute), "25.000050000000");  // 1.5M x $0.0000166667
  EXPECT_EQ(FormatDollars(requests), "0.600000000000");
}

TEST(Charge, TimeoutBillsTheWholeTimeout) {
  // The scheduler reports a timed-out invocation's duration as the timeout: 3 s at 128 MB.
  Charge c = ChargeFor(PricingConfig{}, 128, Outcome::kTimeout, core::BilledMs(3000.0));
  EXPECT_EQ(c.billed_ms, 3000u);
  EXPECT_EQ(FormatGbSeconds(c.mb_ms), "0.375");
  EXPECT_EQ(c.compute_cost_pd, 6'250'013);  // 6250012.5 rounds half up
}

TEST(Charge, OneMillisecondAtOddMemorySizes) {
  Charge c = ChargeFor(PricingConfig{}, 1536, Outcome::kSuccess, 1);
  EXPECT_EQ(FormatGbSeconds(c.mb_ms), "0.0015");
  EXPECT_EQ(c.compute_cost_pd, 25'000);  // 25000.05
  c = ChargeFor(PricingConfig{}, 1, Outcome::kSuccess, 1);
  EXPECT_EQ(FormatGbSeconds(c.mb_ms), "0.0000009765625");  // 1/1024000, exact
  EXPECT_EQ(c.compute_cost_pd, 16);                         // 16.276...
}

TEST(Charge, ThrottledAndServiceFailuresAreFree) {
  for (Outcome o : {Outcome::kThrottled, Outcome::kSetupFailed}) {
    Charge c = ChargeFor(PricingConfig{}, 128, o, 100);
    EXPECT_EQ(c.cost_pd(), 0);
    EXPECT_EQ(c.mb_ms, 0);
    EXPECT_EQ(c.billed_ms, 0u);
  }
  for (Outcome o : {Outcome::kUnhandled, Outcome::kOutOfMemory, Outcome::kCrashed}) {
    EXPECT_EQ(ChargeFor(PricingConfig{}, 128, o, 100).cost_pd(), 408'334);
  }
}

TEST(Charge, ConfiguredPrices) {
  PricingConfig p;
  p.request_price_pd = ParseDollars("0.0000004").value();
  p.gb_second_price_pd = ParseDollars("0.00005").value();
  Charge c = ChargeFor(p, 2048, Outcome::kSuccess, 250);
  EXPECT_EQ(FormatGbSeconds(c.mb_ms), "0.5");
  EXPECT_EQ(FormatDollars(c.cost_pd()), "0.000025400000");
}

TEST(Dollars, ParseIsExact) {
  EXPECT_EQ(ParseDollars("0.0000166667").value(), 16'666'700);
  EXPECT_EQ(ParseDollars("0.0000002").value(), 200'000);
  EXPECT_EQ(ParseDollars("0.000000000001").value(), 1);
  EXPECT_EQ(ParseDollars("1").value(), kPicodollarsPerDollar);
  EXPECT_EQ(ParseDollars("2.5").value(), 2'500'000'000'000);
  EXPECT_EQ(ParseDollars(".5").value(), 500'000'000'000);
  EXPECT_EQ(ParseDollars("0").value(), 0);
  for (const char* bad : {"", ".", "-1", "1e-6", "0.0000000000001", "$1", "1,5", "abc", "1.2.3",
                          "10000000"})
    EXPECT_FALSE(ParseDollars(bad).ok()) << bad;
}

TEST(Dollars, Format) {
  EXPECT_EQ(FormatDollars(0), "0.000000000000");
  EXPECT_EQ(FormatDollars(1), "0.000000000001");
  EXPECT_EQ(FormatDollars(1'234'567'890'123'456), "1234.567890123456");
  EXPECT_EQ(FormatDollars(-5), "-0.000000000005");
}

TEST(GbSeconds, Format) {
  EXPECT_EQ(FormatGbSeconds(0), "0");
  EXPECT_EQ(FormatGbSeconds(1024000), "1");
  EXPECT_EQ(FormatGbSeconds(512000), "0.5");
  EXPECT_EQ(FormatGbSeconds(128 * 900'000), "112.5");
}

}  // namespace
}  // namespace forklet::billing

namespace forklet::billing {
namespace {

TEST(PricingSettings, FromTheConfigurationFile) {
  auto p = ApplyPricingSettings(PricingConfig{}, nlohmann::json::parse(R"({
      "price-per-request": "0.0000004", "price-per-gb-second": 0.00005,
      "billing-granularity-ms": 1, "bill-init": true})"));
  ASSERT_TRUE(p.ok()) << p.error().ToString();
  EXPECT_EQ(p->request_price_pd, 400'000);
  EXPECT_EQ(p->gb_second_price_pd, 50'000'000);
  EXPECT_EQ(p->granularity_ms, 1u);
  EXPECT_TRUE(p->bill_init);
  EXPECT_EQ(ApplyPricingSettings(PricingConfig{}, nullptr)->gb_second_price_pd, 16'666'700);
  for (const char* bad : {R"({"price-per-request": "x"})", R"({"billing-granularity-ms": 0})",
                          R"({"bill-init": 1})", R"({"discount": 1})", R"([1])"})
    EXPECT_FALSE(ApplyPricingSettings(PricingConfig{}, nlohmann::json::parse(bad)).ok()) << bad;
}

}  // namespace
}  // namespace forklet::billing
