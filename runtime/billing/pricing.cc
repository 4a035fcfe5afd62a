// What an invocation costs: billing configuration and exact, integer cost arithmetic.
#include "runtime/billing/pricing.h"

#include <cctype>
#include <cstdio>

namespace forklet::billing {

bool IsBilled(core::Outcome outcome) {
  return outcome != core::Outcome::kThrottled && outcome != core::Outcome::kSetupFailed;
}

int64_t ComputeCostPd(int64_t mb_ms, int64_t gb_second_price_pd) {
  // 128-bit product: 10240 MB x 900 s x a price in picodollars passes int64 for dearer prices.
  __int128 scaled = static_cast<__int128>(mb_ms) * gb_second_price_pd;
  return static_cast<int64_t>((scaled + kMbMsPerGbSecond / 2) / kMbMsPerGbSecond);
}

Charge ChargeFor(const PricingConfig& pricing, uint32_t memory_mb, core::Outcome outcome,
                 uint64_t billed_ms) {
  Charge c;
  if (!IsBilled(outcome)) return c;
  c.billed_ms = billed_ms;
  c.mb_ms = static_cast<int64_t>(memory_mb) * static_cast<int64_t>(billed_ms);
  c.request_cost_pd = pricing.request_price_pd;
  c.compute_cost_pd = ComputeCostPd(c.mb_ms, pricing.gb_second_price_pd);
  return c;
}

Result<int64_t> ParseDollars(const std::string& text) {
  auto bad = [&](const std::string& why) {
    return MakeError("price '" + text + "'", why + " (dollars, e.g. 0.0000166667)");
  };
  size_t i = 0;
  int64_t whole = 0;
  size_t whole_digits = 0;
  for (; i < text.size() && isdigit(static_cast<unsigned char>(text[i])); ++i, ++whole_digits) {
    if (whole_digits >= 6) return bad("too large");
    whole = whole * 10 + (text[i] - '0');
  }
  int64_t frac = 0;
  size_t frac_digits = 0;
  if (i < text.size() && text[i] == '.') {
    for (++i; i < text.size() && isdigit(static_cast<unsigned char>(text[i])); ++i, ++frac_digits) {
      if (frac_digits >= 12) return bad("more than 12 decimals (a picodollar)");
      frac = frac * 10 + (text[i] - '0');
    }
  }
  if (i != text.size() || whole_digits + frac_digits == 0) return bad("not a decimal number");
  for (size_t d = frac_digits; d < 12; ++d) frac *= 10;
  return whole * kPicodollarsPerDollar + frac;
}

Result<PricingConfig> ApplyPricingSettings(PricingConfig p, const nlohmann::json& settings) {
  if (settings.is_null()) return p;
  if (!settings.is_object()) return MakeError("prices", "expected an object");
  for (const auto& [key, v] : settings.items()) {
    auto bad = [&](const std::string& why) { return MakeError("prices: \"" + key + "\"", why); };
    if (key == "price-per-request" || key == "price-per-gb-second") {
      std::string text;
      if (v.is_string()) {
        text = v.get<std::string>();
      } else if (v.is_number() && v.get<double>() >= 0) {
        char buf[64];
        snprintf(buf, sizeof(buf), "%.12f", v.get<double>());
        text = buf;
      } else {
        return bad("expected dollars as a string, e.g. \"0.0000166667\"");
      }
      auto pd = ParseDollars(text);
      if (!pd) return bad(pd.error().ToString());
      (key == "price-per-request" ? p.request_price_pd : p.gb_second_price_pd) = *pd;
    } else if (key == "billing-granularity-ms") {
      if (!v.is_number_unsigned() || v.get<uint64_t>() < 1 || v.get<uint64_t>() > 60000)
        return bad("expected a whole number of milliseconds from 1 to 60000");
      p.granularity_ms = v.get<uint32_t>();
    } else if (key == "bill-init") {
      if (!v.is_boolean()) return bad("expected true or false");
      p.bill_init = v.get<bool>();
    } else {
      return bad("unknown (price-per-request, price-per-gb-second, billing-granularity-ms, bill-init)");
    }
  }
  return p;
}

namespace {

// value / 10^decimals as a decimal string; value >= 0.
std::string FixedPoint(__int128 value, int decimals, bool trim) {
  std::string digits;
  do {
    digits.insert(digits.begin(), static_cast<char>('0' + static_cast<int>(value % 10)));
    value /= 10;
  } while (value > 0);
  if (static_cast<int>(digits.size()) <= decimals)
    digits.insert(0, static_cast<size_t>(decimals + 1) - digits.size(), '0');
  std::string out = digits.substr(0, digits.size() - static_cast<size_t>(decimals)) + "." +
                    digits.substr(digits.size() - static_cast<size_t>(decimals));
  if (trim) {
    while (out.back() == '0') out.pop_back();
    if (out.back() == '.') out.pop_back();
  }
  return out;
}

}  // namespace

std::string FormatDollars(int64_t picodollars) {
  if (picodollars < 0) return "-" + FixedPoint(-static_cast<__int128>(picodollars), 12, false);
  return FixedPoint(picodollars, 12, false);
}

std::string FormatGbSeconds(int64_t mb_ms) {
  // 10^13 / 1,024,000 = 9,765,625 exactly.
  __int128 v = static_cast<__int128>(mb_ms < 0 ? -mb_ms : mb_ms) * 9'765'625;
  return (mb_ms < 0 ? "-" : "") + FixedPoint(v, 13, true);
}

}  // namespace forklet::billing
