// The CLI's reporting commands: `forklet bill` (usage and cost from the ledger) and
// `forklet stats` (latency by start kind, live with --watch, drawn with --plot).
#pragma once

#include <string>
#include <vector>

namespace forklet::tools {

// Both return the process exit code; errors are printed to stderr.
int BillCommand(const std::string& endpoint, const std::vector<std::string>& args);
int StatsCommand(const std::string& endpoint, const std::vector<std::string>& args);

}  // namespace forklet::tools
