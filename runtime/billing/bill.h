// A bill: usage and cost per function over a time window, from the ledger, as a table, JSON or
// CSV. Every figure is an exact sum of ledger rows; money and GB-seconds are printed as exact
// decimals (and, in JSON, also as the integers they are summed from).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/billing/ledger.h"
#include "runtime/billing/pricing.h"

namespace forklet::billing {

struct Bill {
  int64_t from_ms = 0;  // window [from_ms, to_ms) over invocation start times, epoch ms
  int64_t to_ms = 0;
  // function: the key (registry/function_key.h), "ACCOUNT.NAME" outside the default account;
  // ordered by account, then name.
  std::vector<FunctionUsage> functions;
  std::vector<FunctionUsage> accounts;  // per tenant (function: its account id), by account
  FunctionUsage total;  // function "TOTAL": the sum of the rows above
};

// function: one function's key; account: only that tenant's functions (empty: every account).
Result<Bill> MakeBill(Ledger& ledger, int64_t from_ms, int64_t to_ms, const std::string& function = {},
                      const std::string& account = {});

// Each names a function's account and its name in it. With more than one account, the table and
// the CSV have a TOTAL line per account before the grand TOTAL (account "*").
std::string BillTable(const Bill& bill);
// {"from","to","functions":[{"account","function",...}],"accounts":[{"account",...}],"total":{...}}
std::string BillJson(const Bill& bill);
std::string BillCsv(const Bill& bill);  // a header, one line per function, then the TOTALs

// A point in time for a window bound: epoch milliseconds ("1700000000000"), an ISO 8601 UTC
// date or time ("2024-05-01", "2024-05-01T12:00:00Z"), "now", or relative to now ("-15m",
// "-2h", "-7d", "-30s").
Result<int64_t> ParseTime(const std::string& text, int64_t now_ms);

// "2024-05-01T12:00:00.000Z"
std::string FormatTime(int64_t epoch_ms);

}  // namespace forklet::billing
