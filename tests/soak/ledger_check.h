// The billing ledger (runtime/billing, <state>/ledger.db) read as an operator would, for the
// fault and soak tests: whole, without duplicates, holding every answered request.
#pragma once

#include <cstdint>
#include <set>
#include <string>

namespace forklet::testing {

// Adds a test failure for every problem found. Returns false, and checks nothing, when this
// build has no ledger; *rows gets the number of records.
bool CheckLedger(const std::string& state_dir, const std::set<std::string>& answered_request_ids,
                 int64_t* rows = nullptr);

}  // namespace forklet::testing
